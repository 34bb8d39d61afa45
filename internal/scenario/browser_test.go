package scenario

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/fault"
	"github.com/cairnhq/cairn/internal/testenv"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"
)

// browserTimeout bounds everything the browser test asks of Chromium, its
// start included. The quick run takes its 2 s plus the Handler's default
// drain (DefaultDrain, 15 s) before it is done; the bound only keeps a
// hung browser from stalling the suite on a loaded machine.
const browserTimeout = 2 * time.Minute

// waitTimeout bounds each wait for the page to show something. The
// longest wait is for the quick run to be done: about 17 s.
const waitTimeout = 45 * time.Second

// The browser test's catalog: a quick scenario that runs to the end, with
// one event and two Eventually assertions, one that passes and one that
// cannot, and a long one that the test stops.
const (
	quickScenario    = "browser-quick"
	quickEvent       = "payment provider fails"
	quickPasses      = "the fault is injected"
	quickFails       = "the provider recovers by itself"
	longScenario     = "browser-long"
	longEvent        = "inventory fails"
	longAssertion    = "the run is stopped first"
	quickErrorRate   = "0.75" // what the test types over the default 0.5
	badErrorRate     = "1.5"  // not a rate: answered 400
	quickDefaultRate = "0.5"
)

// browserCatalog returns the browser test's scenarios, acting on env.
// The passing assertion reads back, from env, the error rate the event set,
// so the page shows that the parameter typed in reached the run.
func browserCatalog(env *fakeEnv) []*Scenario {
	injected := func(_ context.Context, _ Probe, w Window) (Observation, error) {
		faults, _, _ := env.state()
		f, ok := faults[TargetPaymentProvider]
		if !ok {
			return Observation{Text: "no fault on " + TargetPaymentProvider}, nil
		}
		want := w.Params.Float("error_rate")
		return Observation{OK: f.ErrorRate == want,
			Text: fmt.Sprintf("%s error rate %g", TargetPaymentProvider, f.ErrorRate)}, nil
	}
	never := func(context.Context, Probe, Window) (Observation, error) {
		return Observation{Text: "still failing"}, nil
	}
	return []*Scenario{
		{
			Name:    quickScenario,
			Summary: "The payment provider fails a quarter of the way through a short run.",
			Params: []Param{
				{Name: "error_rate", Type: Rate, Default: quickDefaultRate, Help: "fraction of provider calls that fail"},
				{Name: "within", Type: Duration, Default: "1s", Help: "how long the provider has to recover"},
			},
			RPS:      5,
			Duration: 2 * time.Second,
			Timeline: []Event{{At: 0.25, Name: quickEvent, Do: func(_ context.Context, env Env, p Params) error {
				return env.SetFault(TargetPaymentProvider, fault.Settings{ErrorRate: p.Float("error_rate")})
			}}},
			Assertions: []Assertion{
				{Name: quickPasses, Kind: Eventually, After: quickEvent, Within: time.Second, Check: injected},
				{Name: quickFails, Kind: Eventually, After: quickEvent, WithinParam: "within", Check: never},
			},
		},
		{
			Name:     longScenario,
			Summary:  "Inventory fails for a minute, unless someone stops it.",
			RPS:      5,
			Duration: time.Minute,
			Timeline: []Event{{At: 0, Name: longEvent, Do: func(_ context.Context, env Env, _ Params) error {
				return env.SetFault(TargetInventory, fault.Settings{ErrorRate: 0.5})
			}}},
			Assertions: []Assertion{{Name: longAssertion, Kind: Eventually, Check: never}},
		},
	}
}

// TestBrowserScenarios drives the fault scenarios' page in headless
// Chromium, mounted under /scenarios/ as the demo mounts it: it checks the
// scenarios and their parameter inputs are listed, changes a parameter and
// starts a run, waits until the page shows the run's assertions passed and
// failed and its event fired, then that a bad parameter and a start while
// another scenario runs show the server's error on the page (and keep it
// there across the page's polls), and that Stop stops a long run. Every
// step is screenshotted into an artifact directory (CAIRN_ARTIFACTS when
// set). It skips when Chromium is missing, except under CI=true.
func TestBrowserScenarios(t *testing.T) {
	execPath := chromiumPath(t)
	env := newFakeEnv()
	srv := Handler(env, browserCatalog(env), nil)
	mux := http.NewServeMux()
	mux.Handle("/scenarios/", http.StripPrefix("/scenarios", srv)) // as internal/demo does
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	t.Cleanup(srv.Close) // runs first: stops a run a failed step left behind
	page := ts.URL + "/scenarios/"

	b := startBrowser(t, execPath)

	if !t.Run("page lists the scenarios", func(t *testing.T) {
		// The prefix without its slash redirects to the page, whose
		// relative links need it.
		b.navigate(t, ts.URL+"/scenarios")
		if loc := b.location(t); loc != page {
			t.Errorf("after loading /scenarios the page is %s, want %s", loc, page)
		}
		b.screenshot(t, "list")
		if got, want := b.texts(t, "section.scenario h3"), []string{quickScenario, longScenario}; !cmp.Equal(got, want) {
			t.Errorf("scenarios listed = %q, want %q", got, want)
		}
		quickInputs := "#scenario-" + quickScenario + " form.start input"
		if got, want := b.attrs(t, quickInputs, "name"), []string{"duration", "rps", "error_rate", "within"}; !cmp.Equal(got, want) {
			t.Errorf("%s inputs = %q, want %q", quickScenario, got, want)
		}
		if got, want := b.values(t, quickInputs), []string{"2s", "5", quickDefaultRate, "1s"}; !cmp.Equal(got, want) {
			t.Errorf("%s input values = %q, want the defaults %q", quickScenario, got, want)
		}
		if got, want := b.attrs(t, "#scenario-"+longScenario+" form.start input", "name"), []string{"duration", "rps"}; !cmp.Equal(got, want) {
			t.Errorf("%s inputs = %q, want %q", longScenario, got, want)
		}
		if got, want := b.texts(t, "#scenario-"+quickScenario+" ul li"), []string{
			"eventually: " + quickPasses + " (after “" + quickEvent + "”)",
			"eventually: " + quickFails + " (after “" + quickEvent + "”)",
		}; !cmp.Equal(got, want) {
			t.Errorf("%s assertions listed = %q, want %q", quickScenario, got, want)
		}
		if got := b.text(t, "#run-head"); got != "No scenario has run yet." {
			t.Errorf("run head = %q before any run, want %q", got, "No scenario has run yet.")
		}
		if !b.disabled(t, "#stop-button") {
			t.Error("Stop is enabled while nothing runs")
		}
	}) {
		t.FailNow() // the steps below need the page
	}

	if !t.Run("start a run and see its results", func(t *testing.T) {
		quick := "#scenario-" + quickScenario
		b.do(t, chromedp.SetValue(chromedp.CSS(quick+` input[name="error_rate"]`), quickErrorRate))
		b.do(t, chromedp.Click(chromedp.CSS(quick+" button[type=submit]")))

		// The page polls the status every second; each assertion's state
		// shows once decided.
		b.waitFor(t, "the passing assertion shown passed and the failing one failed",
			fmt.Sprintf(`(() => {
				const rows = [...document.querySelectorAll("#results tbody tr")].map(tr => [...tr.cells].map(td => td.textContent));
				const state = name => (rows.find(r => r[1] === name) || [])[0];
				return state(%q) === "passed" && state(%q) === "failed";
			})()`, quickPasses, quickFails))
		b.screenshot(t, "run-results")

		rows := b.rowCells(t, "#results tbody tr")
		if len(rows) != 2 {
			t.Fatalf("results table rows = %q, want the 2 assertions", rows)
		}
		byName := map[string][]string{}
		for _, r := range rows {
			if len(r) != 5 {
				t.Fatalf("results row %q has %d cells, want 5", r, len(r))
			}
			byName[r[1]] = r
		}
		if r := byName[quickPasses]; r == nil || r[2] != "eventually after “"+quickEvent+"”" ||
			r[4] != TargetPaymentProvider+" error rate "+quickErrorRate {
			t.Errorf("passing assertion row = %q, want kind %q and observed %q (the error rate typed in)",
				r, "eventually after “"+quickEvent+"”", TargetPaymentProvider+" error rate "+quickErrorRate)
		}
		if r := byName[quickFails]; r == nil || r[4] != "still failing" {
			t.Errorf("failing assertion row = %q, want observed %q", r, "still failing")
		}
		if classes := b.attrs(t, "#results tbody td:first-child", "class"); !slices.Contains(classes, "state-passed") ||
			!slices.Contains(classes, "state-failed") {
			t.Errorf("state cells' classes = %q, want state-passed and state-failed", classes)
		}
		if ev := b.text(t, "#run-events"); !strings.Contains(ev, "0.5s "+quickEvent+" ✓") {
			t.Errorf("events line = %q, want %q fired at 0.5s", ev, quickEvent)
		}

		// The run drains (DefaultDrain) and ends; the page shows it done,
		// what the cleanup undid, and Stop disabled again.
		b.waitFor(t, "the run shown done", fmt.Sprintf(`document.getElementById("run-head").textContent.startsWith(%q)`,
			quickScenario+": done"))
		b.waitFor(t, "Stop disabled once the run is done", `document.getElementById("stop-button").disabled`)
		b.screenshot(t, "run-done")
		if ev := b.text(t, "#run-events"); !strings.Contains(ev, "cleanup: cleared fault "+TargetPaymentProvider) {
			t.Errorf("events line = %q, want the cleanup of the fault on %s", ev, TargetPaymentProvider)
		}
		if !b.hidden(t, "#run-errors") {
			t.Errorf("run errors shown after a clean run: %q", b.text(t, "#run-errors"))
		}
		if !slices.ContainsFunc(env.callList(), func(c call) bool {
			return strings.HasPrefix(c.What, "fault "+TargetPaymentProvider+" {ErrorRate:"+quickErrorRate+" ")
		}) {
			t.Errorf("env calls %+v lack the fault at the error rate %s typed in", env.callList(), quickErrorRate)
		}
		if !env.healthy() {
			t.Error("the env still has faults or load after the run is done")
		}
	}) {
		t.FailNow()
	}

	t.Run("bad parameter shows the 400", func(t *testing.T) {
		calls := len(env.callList())
		quick := "#scenario-" + quickScenario
		b.do(t, chromedp.SetValue(chromedp.CSS(quick+` input[name="error_rate"]`), badErrorRate))
		b.do(t, chromedp.Click(chromedp.CSS(quick+" button[type=submit]")))
		want := fmt.Sprintf("scenario: param error_rate = %q: want a number in [0, 1]", badErrorRate)
		b.waitFor(t, "the bad parameter's error shown", fmt.Sprintf(
			`!document.getElementById("run-errors").hidden && document.getElementById("run-errors").textContent.includes(%q)`, want))
		// The page keeps polling the status, whose report (the last run's)
		// has no errors: the message must survive that.
		b.waitPolls(t, 2)
		b.screenshot(t, "bad-param")
		if got := b.text(t, "#run-errors"); b.hidden(t, "#run-errors") || !strings.Contains(got, want) {
			t.Errorf("after two status polls the errors line is %q (hidden %v), want it to still show %q",
				got, b.hidden(t, "#run-errors"), want)
		}
		if head := b.text(t, "#run-head"); !strings.HasPrefix(head, quickScenario+": done") {
			t.Errorf("run head = %q after a refused start, want the last run, done", head)
		}
		if n := len(env.callList()); n != calls {
			t.Errorf("a refused start acted on the env: %+v", env.callList()[calls:])
		}
		// Put the parameter right for a person reading the screenshots.
		b.do(t, chromedp.SetValue(chromedp.CSS(quick+` input[name="error_rate"]`), quickErrorRate))
	})

	t.Run("stop a long run", func(t *testing.T) {
		long := "#scenario-" + longScenario
		b.do(t, chromedp.Click(chromedp.CSS(long+" button[type=submit]")))
		b.waitFor(t, "the long run shown running with Stop enabled", fmt.Sprintf(
			`document.getElementById("run-head").textContent.startsWith(%q) && !document.getElementById("stop-button").disabled`,
			longScenario+": running"))
		b.waitFor(t, "the long run's event shown fired", fmt.Sprintf(
			`document.getElementById("run-events").textContent.includes(%q)`, longEvent+" ✓"))
		if !b.hidden(t, "#run-errors") {
			t.Errorf("the refused start's error still shows after a successful start: %q", b.text(t, "#run-errors"))
		}

		// Starting another scenario meanwhile is refused with 409, and
		// the page says so until the next successful action.
		b.do(t, chromedp.Click(chromedp.CSS("#scenario-"+quickScenario+" button[type=submit]")))
		conflict := fmt.Sprintf("scenario: %s is running; stop it before starting %s", longScenario, quickScenario)
		b.waitFor(t, "the conflict's error shown", fmt.Sprintf(
			`!document.getElementById("run-errors").hidden && document.getElementById("run-errors").textContent.includes(%q)`, conflict))
		b.waitPolls(t, 2)
		if got := b.text(t, "#run-errors"); b.hidden(t, "#run-errors") || !strings.Contains(got, conflict) {
			t.Errorf("after two status polls the errors line is %q (hidden %v), want it to still show %q",
				got, b.hidden(t, "#run-errors"), conflict)
		}
		b.screenshot(t, "long-running")

		b.do(t, chromedp.Click(chromedp.CSS("#stop-button")))
		b.waitFor(t, "the long run shown stopped with Stop disabled", fmt.Sprintf(
			`document.getElementById("run-head").textContent.startsWith(%q) && document.getElementById("stop-button").disabled`,
			longScenario+": stopped"))
		b.screenshot(t, "long-stopped")
		if ev := b.text(t, "#run-events"); !strings.Contains(ev, "cleanup: cleared fault "+TargetInventory) {
			t.Errorf("events line = %q, want the cleanup of the fault on %s", ev, TargetInventory)
		}
		if got := b.text(t, "#run-errors"); b.hidden(t, "#run-errors") || !strings.Contains(got, "stopped") ||
			strings.Contains(got, conflict) {
			t.Errorf("errors line = %q (hidden %v), want the run's stop and not the earlier conflict", got, b.hidden(t, "#run-errors"))
		}
		if rows := b.rowCells(t, "#results tbody tr"); len(rows) != 1 || rows[0][0] != "pending" || rows[0][1] != longAssertion {
			t.Errorf("results rows = %q, want %q pending", rows, longAssertion)
		}
		if !env.healthy() {
			t.Error("the env still has faults or load after the stop")
		}
	})

	for _, u := range b.requests() {
		if !strings.HasPrefix(u, ts.URL+"/") {
			t.Errorf("the page requested %s, outside the test server", u)
		}
	}
}

// chromiumPath returns the Chromium to drive: $CAIRN_CHROMIUM, else
// chromium on the PATH. Without one it skips the test, or fails it under
// CI=true.
func chromiumPath(t *testing.T) string {
	t.Helper()
	candidates := []string{"/usr/bin/chromium", "chromium"}
	if env := os.Getenv("CAIRN_CHROMIUM"); env != "" {
		candidates = []string{env}
	}
	for _, p := range candidates {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	msg := fmt.Sprintf("scenario: no Chromium at %s: install it (apt-get install chromium) or set CAIRN_CHROMIUM to its path",
		strings.Join(candidates, " or "))
	if testenv.InCI() {
		t.Fatal(msg + "; failing, not skipping, because CI=true")
	}
	t.Skip(msg)
	return ""
}

// browser is one headless Chromium with one tab, and the URLs of every
// request its pages made.
type browser struct {
	ctx context.Context // the tab; its deadline bounds every action
	dir string          // where screenshots go

	mu   sync.Mutex
	urls []string // guarded by mu
	shot int      // screenshots taken; guarded by mu
}

// startBrowser launches Chromium at execPath with a fresh profile. The
// browser is stopped, and its process checked to be gone, when the test
// ends.
func startBrowser(t *testing.T, execPath string) *browser {
	t.Helper()
	b := &browser{dir: artifactDir(t)}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(execPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(filepath.Join(t.TempDir(), "profile")),
		chromedp.WindowSize(1280, 900),
		// A closed network: no background fetches, updates, sync or QUIC
		// probes to the outside.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-features", "Translate,OptimizationHints,MediaRouter"),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("safebrowsing-disable-auto-update", true),
		chromedp.Flag("password-store", "basic"),
	}
	timeout, cancelTimeout := context.WithTimeout(context.Background(), browserTimeout)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(timeout, opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithListener(func(ev any) {
		if ev, ok := ev.(*network.EventRequestWillBeSent); ok {
			b.mu.Lock()
			b.urls = append(b.urls, ev.Request.URL)
			b.mu.Unlock()
		}
	}))
	b.ctx = ctx
	t.Cleanup(func() {
		var proc *os.Process
		var children []int
		if c := chromedp.FromContext(ctx); c != nil && c.Browser != nil {
			proc = c.Browser.Process()
			children = descendants(proc.Pid)
			t.Logf("stopping Chromium: pid %d and %d child processes", proc.Pid, len(children))
		}
		cancelTab()
		cancelAlloc() // waits for the browser process to exit
		cancelTimeout()
		if proc == nil {
			return
		}
		if err := proc.Signal(syscall.Signal(0)); !errors.Is(err, os.ErrProcessDone) {
			t.Errorf("Chromium (pid %d) still runs after the test: signal 0 = %v", proc.Pid, err)
		}
		// Its renderer, GPU and utility processes exit on their own once
		// the browser is gone; give them a moment.
		deadline := time.Now().Add(5 * time.Second)
		for _, pid := range children {
			for processRunning(pid) {
				if time.Now().After(deadline) {
					t.Errorf("Chromium child process %d still runs after the test", pid)
					break
				}
				time.Sleep(20 * time.Millisecond) // polling the process table, not synchronising
			}
		}
	})
	start := time.Now()
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium %s: %v", execPath, err)
	}
	t.Logf("Chromium %s started in %v", execPath, time.Since(start).Round(time.Millisecond))
	return b
}

// descendants returns the ids of the running descendants of process pid,
// read from /proc; none where there is no /proc.
func descendants(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	parent := make(map[int]int)
	for _, e := range entries {
		id, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, state, ok := procStat(id); ok && state != "Z" {
			parent[id] = ppid
		}
	}
	var out []int
	for id := range parent {
		for p, depth := parent[id], 0; p > 1 && depth < 64; p, depth = parent[p], depth+1 {
			if p == pid {
				out = append(out, id)
				break
			}
		}
	}
	return out
}

// processRunning reports whether process pid exists and is not a zombie.
func processRunning(pid int) bool {
	_, state, ok := procStat(pid)
	return ok && state != "Z"
}

// procStat reads the parent id and state of process pid from
// /proc/{pid}/stat: "pid (comm) state ppid ...", where comm may hold
// spaces and parentheses.
func procStat(pid int) (ppid int, state string, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, "", false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, "", false
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 2 {
		return 0, "", false
	}
	ppid, err = strconv.Atoi(fields[1])
	return ppid, fields[0], err == nil
}

// artifactDir returns the directory screenshots are written to: a
// directory named after the test under $CAIRN_ARTIFACTS when set, so CI
// keeps them (emptied first, so it holds this run's only), else in the
// test's temp dir.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "artifacts")
	if root := os.Getenv("CAIRN_ARTIFACTS"); root != "" {
		dir = filepath.Join(root, t.Name())
		if err := os.RemoveAll(dir); err != nil {
			t.Fatalf("artifact directory: %v", err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("artifact directory: %v", err)
	}
	return dir
}

// do runs actions on the tab, failing the test on an error.
func (b *browser) do(t *testing.T, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

// navigate loads url and waits for it to load, failing unless it answers
// 200 (after any redirect).
func (b *browser) navigate(t *testing.T, url string) {
	t.Helper()
	resp, err := chromedp.Run(b.ctx, chromedp.NavigateResponse(url))
	if err != nil {
		t.Fatalf("navigate to %s: %v", url, err)
	}
	if resp.Status != http.StatusOK {
		t.Fatalf("navigate to %s: status %d, want 200", url, resp.Status)
	}
}

// location returns the URL of the page in the tab.
func (b *browser) location(t *testing.T) string {
	t.Helper()
	loc, err := chromedp.Run(b.ctx, chromedp.Location())
	if err != nil {
		t.Fatalf("browser location: %v", err)
	}
	return loc
}

// waitFor waits, up to waitTimeout, until the JavaScript expression cond
// is true in the page, failing the test with what and what the page shows
// when it does not become true.
func (b *browser) waitFor(t *testing.T, what, cond string) {
	t.Helper()
	start := time.Now()
	_, err := chromedp.Run(b.ctx, chromedp.Poll[chromedp.Void](cond,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(waitTimeout)))
	if err != nil {
		t.Fatalf("waited %v for %s: %v; the page shows: run head %q, results %q, events %q, errors %q (hidden %v)",
			time.Since(start).Round(time.Millisecond), what, err, b.text(t, "#run-head"), b.rowCells(t, "#results tbody tr"),
			b.text(t, "#run-events"), b.text(t, "#run-errors"), b.hidden(t, "#run-errors"))
	}
}

// waitPolls waits until the page has fetched its status n more times, and
// rendered the last answer: the page renders each answer before it asks
// again, so the answer to the n-1st is rendered once the nth is asked.
func (b *browser) waitPolls(t *testing.T, n int) {
	t.Helper()
	const count = `performance.getEntriesByType("resource").filter(e => e.name.endsWith("/api/scenarios/status")).length`
	before := evalJS[int](t, b, count)
	b.waitFor(t, fmt.Sprintf("%d more status polls", n+1), fmt.Sprintf("%s >= %d", count, before+n+1))
}

// text returns the text content of the first element matching the CSS
// selector, spaces collapsed; "" when none does.
func (b *browser) text(t *testing.T, selector string) string {
	t.Helper()
	return evalJS[string](t, b, fmt.Sprintf(`(document.querySelector(%q)?.textContent ?? "").trim().replace(/\s+/g, " ")`, selector))
}

// texts returns the text content of every element matching the CSS
// selector; none is an empty list.
func (b *browser) texts(t *testing.T, selector string) []string {
	t.Helper()
	js := fmt.Sprintf(`[...document.querySelectorAll(%q)].map(e => e.textContent.trim().replace(/\s+/g, " "))`, selector)
	return evalJS[[]string](t, b, js)
}

// attrs returns the attribute name of every element matching the CSS
// selector, as written in the page.
func (b *browser) attrs(t *testing.T, selector, name string) []string {
	t.Helper()
	js := fmt.Sprintf(`[...document.querySelectorAll(%q)].map(e => e.getAttribute(%q) ?? "")`, selector, name)
	return evalJS[[]string](t, b, js)
}

// values returns the current value of every input matching the CSS
// selector.
func (b *browser) values(t *testing.T, selector string) []string {
	t.Helper()
	return evalJS[[]string](t, b, fmt.Sprintf(`[...document.querySelectorAll(%q)].map(e => e.value)`, selector))
}

// hidden reports whether the first element matching the CSS selector has
// its hidden property set; an element that does not exist fails the test.
func (b *browser) hidden(t *testing.T, selector string) bool {
	t.Helper()
	return b.prop(t, selector, "hidden")
}

// disabled reports whether the first element matching the CSS selector
// is disabled.
func (b *browser) disabled(t *testing.T, selector string) bool {
	t.Helper()
	return b.prop(t, selector, "disabled")
}

func (b *browser) prop(t *testing.T, selector, name string) bool {
	t.Helper()
	v := evalJS[*bool](t, b, fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e ? e[%q] : null; })()`, selector, name))
	if v == nil {
		t.Fatalf("no element %s in the page", selector)
	}
	return *v
}

// rowCells returns the text of the cells of every table row matching the
// CSS selector.
func (b *browser) rowCells(t *testing.T, selector string) [][]string {
	t.Helper()
	js := fmt.Sprintf(`[...document.querySelectorAll(%q)].map(tr => [...tr.cells].map(td => td.textContent.trim().replace(/\s+/g, " ")))`, selector)
	return evalJS[[][]string](t, b, js)
}

// evalJS runs a JavaScript expression in the page and decodes its value.
func evalJS[T any](t *testing.T, b *browser, js string) T {
	t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// requests returns the URLs of every request the tab's pages made so far.
func (b *browser) requests() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.urls)
}

// screenshot writes a full-page PNG of the tab to the artifact directory
// and checks that it is a valid, non-blank image of a sensible size.
func (b *browser) screenshot(t *testing.T, name string) {
	t.Helper()
	buf, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	b.mu.Lock()
	b.shot++
	path := filepath.Join(b.dir, fmt.Sprintf("%02d-%s.png", b.shot, name))
	b.mu.Unlock()
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	t.Logf("screenshot %s", path)
	if err := checkPNG(buf); err != nil {
		t.Errorf("screenshot %s: %v", path, err)
	}
}

// checkPNG returns an error unless buf is a PNG between 800×300 and
// 4000×20000 pixels that shows at least three colours (not a blank page).
func checkPNG(buf []byte) error {
	img, err := png.Decode(bytes.NewReader(buf))
	if err != nil {
		return fmt.Errorf("not a PNG (%d bytes): %w", len(buf), err)
	}
	size := img.Bounds().Size()
	if size.X < 800 || size.Y < 300 || size.X > 4000 || size.Y > 20000 {
		return fmt.Errorf("PNG is %v pixels, want 800×300 to 4000×20000", size)
	}
	if distinctColours(img, 3) < 3 {
		return fmt.Errorf("PNG of %v pixels is blank: fewer than 3 colours", size)
	}
	return nil
}

// distinctColours counts the colours of a sample of img's pixels, up to
// limit.
func distinctColours(img image.Image, limit int) int {
	seen := make(map[[4]uint32]bool)
	r := img.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y += 7 {
		for x := r.Min.X; x < r.Max.X; x += 7 {
			cr, cg, cb, ca := img.At(x, y).RGBA()
			seen[[4]uint32{cr, cg, cb, ca}] = true
			if len(seen) >= limit {
				return len(seen)
			}
		}
	}
	return len(seen)
}
