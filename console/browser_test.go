package console

import (
	"bytes"
	"context"
	"encoding/json"
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

	"github.com/cairnhq/cairn/internal/testenv"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// browserTimeout bounds everything the browser test asks of Chromium,
// its start included. A run takes about 4 s (7 s under -race); the bound
// only keeps a hung browser from stalling the suite on a loaded machine.
const browserTimeout = 45 * time.Second

// The known telemetry the browser test feeds (see feedTelemetry): a
// checkout trace across four services, three small traces of two other
// services, log records and one metric. Ids are a byte repeated: 16 times
// for a trace id, 8 times for a span id.
const (
	checkoutTrace byte = 0x4c
	stockTraceA   byte = 0x21 // inventory, 12ms
	stockTraceB   byte = 0x22 // inventory, 9ms
	searchTrace   byte = 0x23 // search, 30ms

	// The checkout's spans, in ms after the trace starts.
	spanRoot    byte = 0x01 // frontend GET /checkout, 0-100
	spanReserve byte = 0x02 // order reserve stock, 10-40: concurrent with charge, ends first, off the path
	spanCharge  byte = 0x03 // payment charge card, 10-70: the sibling the root waits for
	spanBank    byte = 0x04 // payment POST /bank/charge, 20-60: an error, with events
	spanPublish byte = 0x05 // order publish OrderPlaced (producer), 70-75
	spanConsume byte = 0x06 // billing process OrderPlaced (consumer), 76-98: async, off the path; an event and a link
)

const (
	checkoutRootName  = "GET /checkout"
	inventoryService  = "inventory"
	logCharging       = "charging card ending 4242"
	logDeclined       = "bank declined the charge: insufficient funds"
	logConsumed       = "OrderPlaced consumed by billing"
	logUnrelated      = "stock level checked" // a record of another trace
	eventRetry        = "retry scheduled"
	eventException    = "402 Payment Required"
	eventReceived     = "message received"
	linkAttrValue     = "order-events"
	feedMetricName    = "orders.placed"
	feedMetricService = "order"
)

// TestBrowserConsole drives the console's pages in headless Chromium: it
// loads the trace list, clicks the checkout trace, and checks the
// waterfall, the critical path, the inline logs and a span's details the
// way a person sees them, then the pages beyond the trace view. Every page
// is screenshotted into an artifact directory (CAIRN_ARTIFACTS when set).
// It skips when Chromium is missing, except under CI=true.
func TestBrowserConsole(t *testing.T) {
	execPath := chromiumPath(t)
	c := New(Options{})
	ui := httptest.NewServer(c.UIHandler())
	t.Cleanup(ui.Close)
	otlp := httptest.NewServer(c.OTLPHandler())
	t.Cleanup(otlp.Close)
	feedTelemetry(t, otlp.URL)
	if st := c.Stats(); st.Spans.Stored != 10 || st.Logs.Stored != 4 || st.MetricPoints.Stored != 6 {
		t.Fatalf("after feeding: %d spans, %d logs, %d metric points stored, want 10, 4, 6",
			st.Spans.Stored, st.Logs.Stored, st.MetricPoints.Stored)
	}

	b := startBrowser(t, execPath)
	checkoutID := hexID(checkoutTrace, 16)

	if !t.Run("trace list to trace page", func(t *testing.T) {
		// The list reloads itself every few seconds; paused, a reload
		// cannot race the click.
		b.navigate(t, ui.URL+"/?refresh=0")
		b.screenshot(t, "trace-list")
		if n := b.count(t, "#trace-results tbody tr"); n != 4 {
			t.Errorf("the trace list shows %d traces, want all 4", n)
		}
		b.clickToPage(t, fmt.Sprintf(`#trace-results a[href="/traces/%s"]`, checkoutID))
		if loc := b.location(t); loc != ui.URL+"/traces/"+checkoutID {
			t.Fatalf("after the click the page is %s, want the trace page", loc)
		}
		b.do(t, chromedp.WaitVisible(chromedp.CSS("div.wf details.wf-row")))
		b.screenshot(t, "trace")

		rows := b.waterfallRows(t)
		var gotIDs, gotPath []string
		for _, r := range rows {
			gotIDs = append(gotIDs, r.ID)
			if r.Crit {
				gotPath = append(gotPath, r.ID)
				if r.Bars == 0 {
					t.Errorf("row %s (%s) is on the critical path but draws no wf-crit bar", r.ID, r.Name)
				}
			} else if r.Bars != 0 {
				t.Errorf("row %s (%s) is off the critical path but draws %d wf-crit bars", r.ID, r.Name, r.Bars)
			}
		}
		wantIDs := hexSpanIDs(spanRoot, spanReserve, spanCharge, spanBank, spanPublish, spanConsume)
		if diff := cmp.Diff(wantIDs, sortedStrings(gotIDs)); diff != "" {
			t.Errorf("waterfall rows: span ids (-want +got):\n%s", diff)
		}
		wantPath := hexSpanIDs(spanRoot, spanCharge, spanBank, spanPublish)
		if diff := cmp.Diff(wantPath, sortedStrings(gotPath)); diff != "" {
			t.Errorf("rows marked crit (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(sortedStrings(apiCriticalPath(t, ui.URL, checkoutID)), sortedStrings(gotPath)); diff != "" {
			t.Errorf("rows marked crit differ from GET /api/traces/%s/critical-path (-api +page):\n%s", checkoutID, diff)
		}
		if slices.Contains(gotPath, hexID(spanConsume, 8)) {
			t.Errorf("the async consumer row %s is marked on the critical path", hexID(spanConsume, 8))
		}

		bodies := b.texts(t, "table.logs td.body")
		for _, want := range []string{logCharging, logDeclined, logConsumed} {
			if !containsText(bodies, want) {
				t.Errorf("inline logs %q lack %q", bodies, want)
			}
		}
		if containsText(bodies, logUnrelated) {
			t.Errorf("inline logs show %q, a record of another trace", logUnrelated)
		}
	}) {
		t.FailNow() // the steps below need the trace page
	}

	t.Run("expand span", func(t *testing.T) {
		b.navigate(t, ui.URL+"/traces/"+checkoutID)
		bank := "#span-" + hexID(spanBank, 8)
		b.do(t,
			chromedp.Click(chromedp.CSS(bank+" > summary")),
			chromedp.WaitVisible(chromedp.CSS(bank+" ul.events")),
		)
		if events := b.texts(t, bank+" ul.events li"); !containsText(events, eventRetry) || !containsText(events, eventException) {
			t.Errorf("span %s events %q lack %q or %q", bank, events, eventRetry, eventException)
		}

		row := "#span-" + hexID(spanConsume, 8)
		if n := b.count(t, row+"[open]"); n != 0 {
			t.Fatalf("span %s is expanded before its summary is clicked", row)
		}
		b.do(t,
			chromedp.Click(chromedp.CSS(row+" > summary")),
			chromedp.WaitVisible(chromedp.CSS(row+" ul.events")),
		)
		events := b.texts(t, row+" ul.events li")
		if !containsText(events, eventReceived) {
			t.Errorf("span %s events %q lack %q", row, events, eventReceived)
		}
		links := b.texts(t, row+" ul.links li")
		want := hexID(checkoutTrace, 16) + " / " + hexID(spanPublish, 8)
		if !containsText(links, want) || !containsText(links, linkAttrValue) {
			t.Errorf("span %s links %q lack %q with its attribute %q", row, links, want, linkAttrValue)
		}
		b.screenshot(t, "trace-span-expanded")
	})

	t.Run("search traces", func(t *testing.T) {
		b.navigate(t, ui.URL+"/?refresh=0")
		b.do(t,
			chromedp.SetValue(chromedp.ID("f-service"), inventoryService),
			chromedp.SendKeys(chromedp.ID("f-min-duration"), "10ms"),
		)
		b.clickToPage(t, "#trace-search button[type=submit]")
		b.screenshot(t, "trace-search")
		got := b.attrs(t, "#trace-results tbody a[href^='/traces/']", "href")
		// Of the two inventory traces only the 12ms one lasts 10ms or more.
		if want := []string{"/traces/" + hexID(stockTraceA, 16)}; !cmp.Equal(got, want) {
			t.Errorf("traces of service %s lasting at least 10ms = %q, want %q", inventoryService, got, want)
		}
		if loc := b.location(t); !strings.Contains(loc, "service="+inventoryService) || !strings.Contains(loc, "min_duration=10ms") {
			t.Errorf("search submitted to %s, want service and min_duration in the query", loc)
		}
	})

	t.Run("service map", func(t *testing.T) {
		b.navigate(t, ui.URL+"/services")
		b.do(t, chromedp.WaitVisible(chromedp.CSS("svg#service-map g.node")))
		b.screenshot(t, "services")
		nodes := b.texts(t, "svg#service-map g.node text.name")
		want := []string{"billing", "frontend", inventoryService, "order", "payment", "search"}
		if diff := cmp.Diff(want, sortedStrings(nodes)); diff != "" {
			t.Errorf("service map nodes (-want +got):\n%s", diff)
		}
		edges := b.texts(t, "svg#service-map g.edge > title")
		for _, e := range []string{"frontend → order", "frontend → payment", "order → billing"} {
			if !slices.ContainsFunc(edges, func(s string) bool { return strings.HasPrefix(s, e+":") }) {
				t.Errorf("service map edges %q lack %s", edges, e)
			}
		}
		if red := b.texts(t, "#service-red tbody tr.red-row td:first-child"); !cmp.Equal(sortedStrings(red), want) {
			t.Errorf("RED table services = %q, want %q", sortedStrings(red), want)
		}

		// A node is a link to its service's page, which charts its RED
		// metrics: the frontend served one request, the checkout.
		b.clickToPage(t, `svg#service-map a[href="/services/frontend"] g.node`)
		if loc := b.location(t); loc != ui.URL+"/services/frontend" {
			t.Fatalf("clicking the frontend node led to %s", loc)
		}
		b.do(t, chromedp.WaitVisible(chromedp.CSS("#service-charts svg.chart")))
		b.screenshot(t, "service-frontend")
		for _, chart := range []string{"chart-rate", "chart-latency"} {
			if n := b.count(t, "#"+chart+" svg.chart g.series :is(polyline, circle)"); n == 0 {
				t.Errorf("#%s draws no series for the frontend's request", chart)
			}
		}
		if ops := b.texts(t, "#operation-red tbody td.op"); !cmp.Equal(ops, []string{checkoutRootName}) {
			t.Errorf("frontend operations = %q, want [%q]", ops, checkoutRootName)
		}
	})

	t.Run("search logs", func(t *testing.T) {
		b.navigate(t, ui.URL+"/logs")
		if n := b.count(t, "#log-results tbody tr"); n != 4 {
			t.Errorf("/logs shows %d records, want all 4", n)
		}
		const query = "declined"
		b.do(t, chromedp.SendKeys(chromedp.ID("f-text"), query))
		b.clickToPage(t, "#log-search button[type=submit]")
		b.screenshot(t, "logs-search")
		bodies := b.texts(t, "#log-results tbody td.body")
		if len(bodies) != 1 || !strings.Contains(bodies[0], logDeclined) {
			t.Errorf("logs with text %q = %q, want the one record %q", query, bodies, logDeclined)
		}
		links := b.attrs(t, "#log-results tbody a.trace-link", "href")
		if want := []string{"/traces/" + checkoutID + "#span-" + hexID(spanBank, 8)}; !cmp.Equal(links, want) {
			t.Errorf("log record trace links = %q, want %q", links, want)
		}
	})

	t.Run("aggregate critical path", func(t *testing.T) {
		b.navigate(t, ui.URL+"/services/frontend")
		b.clickToPage(t, "#operation-red a.op-critical-path")
		b.do(t, chromedp.WaitVisible(chromedp.ID("critical-path-all")))
		b.screenshot(t, "critical-path")
		var got []string
		for _, r := range b.rowCells(t, "#critical-path-all tr.cp-row") {
			got = append(got, r[0]+" "+r[1])
		}
		want := []string{"frontend " + checkoutRootName, "order publish OrderPlaced", "payment POST /bank/charge", "payment charge card"}
		if diff := cmp.Diff(want, sortedStrings(got)); diff != "" {
			t.Errorf("operations on the aggregate critical path of frontend %s (-want +got):\n%s", checkoutRootName, diff)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		b.navigate(t, ui.URL+"/metrics")
		b.screenshot(t, "metrics")
		links := b.attrs(t, "#metric-list a.metric-link", "href")
		want := "/metrics/" + feedMetricService + "/" + feedMetricName
		if !cmp.Equal(links, []string{want}) {
			t.Fatalf("/metrics links to %q, want [%q]", links, want)
		}
		b.clickToPage(t, "#metric-list a.metric-link")
		if loc := b.location(t); loc != ui.URL+want {
			t.Fatalf("the metric's link led to %s, want %s", loc, ui.URL+want)
		}
		b.do(t, chromedp.WaitVisible(chromedp.CSS("#metric-series svg.chart")))
		b.screenshot(t, "metric")
		// Six points of one series: a line, not a lone dot.
		if n := b.count(t, "#metric-series svg.chart g.series polyline"); n == 0 {
			t.Errorf("%s draws no line for its 6 points", want)
		}
	})

	t.Run("no external resources", func(t *testing.T) {
		// Every page the subtests above loaded, and the trace page again
		// in case they were filtered out.
		b.navigate(t, ui.URL+"/traces/"+checkoutID)
		urls := b.requests()
		if !slices.Contains(urls, ui.URL+"/static/console.css") {
			t.Fatalf("the pages' requests %q lack the stylesheet: are requests recorded?", urls)
		}
		for _, u := range urls {
			// data: URLs are inline (Chromium draws the date picker icon
			// with one); everything else must come from the console.
			if !strings.HasPrefix(u, ui.URL+"/") && !strings.HasPrefix(u, "data:") {
				t.Errorf("the console loaded %s, outside %s", u, ui.URL)
			}
		}
	})
}

// chromiumPath returns the Chromium to drive: $CAIRN_CHROMIUM when set,
// else /usr/bin/chromium or chromium on PATH. When there is none, the
// test is skipped, or fails under CI=true (see testenv.InCI), where a
// browser test must never pass by skipping.
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
	msg := fmt.Sprintf("console: no Chromium at %s: install it (apt-get install chromium) or set CAIRN_CHROMIUM to its path",
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
// 200.
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

// rowCells returns the text of the cells of every table row matching the
// CSS selector.
func (b *browser) rowCells(t *testing.T, selector string) [][]string {
	t.Helper()
	js := fmt.Sprintf(`[...document.querySelectorAll(%q)].map(tr => [...tr.cells].map(td => td.textContent.trim().replace(/\s+/g, " ")))`, selector)
	return evalJS[[][]string](t, b, js)
}

// count returns the number of elements matching the CSS selector.
func (b *browser) count(t *testing.T, selector string) int {
	t.Helper()
	return evalJS[int](t, b, fmt.Sprintf(`document.querySelectorAll(%q).length`, selector))
}

// clickToPage clicks the first element matching the CSS selector, as a
// person does with the mouse, and waits for the page it leads to, failing
// unless that page answers 200.
func (b *browser) clickToPage(t *testing.T, selector string) {
	t.Helper()
	resp, err := chromedp.RunResponse(b.ctx, chromedp.Click(chromedp.CSS(selector)))
	if err != nil {
		t.Fatalf("click %s: %v", selector, err)
	}
	if resp.Status != http.StatusOK {
		t.Fatalf("click %s: %s answered %d, want 200", selector, resp.URL, resp.Status)
	}
}

// wfRow is one waterfall row as the browser shows it.
type wfRow struct {
	ID   string `json:"id"`   // span id
	Name string `json:"name"` // service and span name
	Crit bool   `json:"crit"` // the row has class crit
	Bars int    `json:"bars"` // wf-crit stretches drawn in the row
}

// waterfallRows reads the waterfall's rows in page order.
func (b *browser) waterfallRows(t *testing.T) []wfRow {
	t.Helper()
	const js = `[...document.querySelectorAll("div.wf details.wf-row")].map(d => ({
		id: d.id.replace(/^span-/, ""),
		name: d.querySelector(".wf-name").textContent.trim().replace(/\s+/g, " "),
		crit: d.classList.contains("crit"),
		bars: d.querySelectorAll(".wf-crit").length,
	}))`
	return evalJS[[]wfRow](t, b, js)
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

// distinctColours counts the colours of img, sampled on a grid, up to
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

// apiCriticalPath fetches the span ids on the trace's critical path from
// the JSON API.
func apiCriticalPath(t *testing.T, base, id string) []string {
	t.Helper()
	url := base + "/api/traces/" + id + "/critical-path"
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	var p struct {
		SpanIDs []string `json:"span_ids"`
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d, want 200", url, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		t.Fatalf("GET %s: decode: %v", url, err)
	}
	return p.SpanIDs
}

// hexSpanIDs returns the hex span ids made of each byte in ids, sorted.
func hexSpanIDs(ids ...byte) []string {
	var out []string
	for _, id := range ids {
		out = append(out, hexID(id, 8))
	}
	return sortedStrings(out)
}

// sortedStrings returns a sorted copy of s.
func sortedStrings(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// containsText reports whether one of texts contains sub.
func containsText(texts []string, sub string) bool {
	return slices.ContainsFunc(texts, func(s string) bool { return strings.Contains(s, sub) })
}

// feedTelemetry posts the known traces, logs and metrics to the OTLP/HTTP
// receiver at base, as OTLP exporters do: protobuf over HTTP.
func feedTelemetry(t *testing.T, base string) {
	t.Helper()
	// Recent timestamps, so that pages which show a recent window see them.
	epoch := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	at := func(ms int) uint64 { return uint64(epoch.Add(time.Duration(ms) * time.Millisecond).UnixNano()) }

	type spanDef struct {
		service, name string
		trace, id     byte
		parent        byte
		kind          tracepb.Span_SpanKind
		start, end    int // ms after epoch
		err           bool
		events        []*tracepb.Span_Event
		links         []*tracepb.Span_Link
	}
	server, client := tracepb.Span_SPAN_KIND_SERVER, tracepb.Span_SPAN_KIND_CLIENT
	internal := tracepb.Span_SPAN_KIND_INTERNAL
	spans := []spanDef{
		{service: "frontend", name: checkoutRootName, trace: checkoutTrace, id: spanRoot, kind: server, start: 0, end: 100},
		{service: "order", name: "reserve stock", trace: checkoutTrace, id: spanReserve, parent: spanRoot, kind: client, start: 10, end: 40},
		{service: "payment", name: "charge card", trace: checkoutTrace, id: spanCharge, parent: spanRoot, kind: internal, start: 10, end: 70},
		{service: "payment", name: "POST /bank/charge", trace: checkoutTrace, id: spanBank, parent: spanCharge, kind: client, start: 20, end: 60, err: true,
			events: []*tracepb.Span_Event{
				{TimeUnixNano: at(40), Name: eventRetry, Attributes: []*commonpb.KeyValue{strAttr("retry.attempt", "1")}},
				{TimeUnixNano: at(59), Name: "exception", Attributes: []*commonpb.KeyValue{strAttr("exception.message", eventException)}},
			}},
		{service: "order", name: "publish OrderPlaced", trace: checkoutTrace, id: spanPublish, parent: spanRoot, kind: tracepb.Span_SPAN_KIND_PRODUCER, start: 70, end: 75},
		{service: "billing", name: "process OrderPlaced", trace: checkoutTrace, id: spanConsume, parent: spanPublish, kind: tracepb.Span_SPAN_KIND_CONSUMER, start: 76, end: 98,
			events: []*tracepb.Span_Event{{TimeUnixNano: at(77), Name: eventReceived, Attributes: []*commonpb.KeyValue{strAttr("messaging.message.id", "m-1")}}},
			links: []*tracepb.Span_Link{{
				TraceId: fill[[]byte](checkoutTrace, 16), SpanId: fill[[]byte](spanPublish, 8),
				Attributes: []*commonpb.KeyValue{strAttr("messaging.destination.name", linkAttrValue)},
			}}},
		{service: inventoryService, name: "GET /stock/{sku}", trace: stockTraceA, id: 0x31, kind: server, start: 200, end: 212},
		{service: inventoryService, name: "SELECT stock", trace: stockTraceA, id: 0x32, parent: 0x31, kind: client, start: 202, end: 210},
		{service: inventoryService, name: "GET /stock/{sku}", trace: stockTraceB, id: 0x33, kind: server, start: 300, end: 309},
		{service: "search", name: "GET /search", trace: searchTrace, id: 0x34, kind: server, start: 400, end: 430},
	}
	traces := &coltracepb.ExportTraceServiceRequest{}
	for _, s := range spans {
		ps := &tracepb.Span{
			TraceId: fill[[]byte](s.trace, 16), SpanId: fill[[]byte](s.id, 8),
			Name: s.name, Kind: s.kind,
			StartTimeUnixNano: at(s.start), EndTimeUnixNano: at(s.end),
			Events: s.events, Links: s.links,
		}
		if s.parent != 0 {
			ps.ParentSpanId = fill[[]byte](s.parent, 8)
		}
		if s.err {
			ps.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: "bank declined"}
		}
		traces.ResourceSpans = append(traces.ResourceSpans, &tracepb.ResourceSpans{
			Resource:   serviceResource(s.service),
			ScopeSpans: []*tracepb.ScopeSpans{{Scope: &commonpb.InstrumentationScope{Name: "browser-test"}, Spans: []*tracepb.Span{ps}}},
		})
	}
	postOTLP(t, base+"/v1/traces", traces)

	type logDef struct {
		service, body string
		sev           logspb.SeverityNumber
		trace, span   byte
		ms            int
	}
	logs := &collogspb.ExportLogsServiceRequest{}
	for _, l := range []logDef{
		{"payment", logCharging, logspb.SeverityNumber_SEVERITY_NUMBER_INFO, checkoutTrace, spanCharge, 12},
		{"payment", logDeclined, logspb.SeverityNumber_SEVERITY_NUMBER_ERROR, checkoutTrace, spanBank, 59},
		{"billing", logConsumed, logspb.SeverityNumber_SEVERITY_NUMBER_INFO, checkoutTrace, spanConsume, 90},
		{inventoryService, logUnrelated, logspb.SeverityNumber_SEVERITY_NUMBER_INFO, stockTraceA, 0x32, 205},
	} {
		logs.ResourceLogs = append(logs.ResourceLogs, &logspb.ResourceLogs{
			Resource: serviceResource(l.service),
			ScopeLogs: []*logspb.ScopeLogs{{LogRecords: []*logspb.LogRecord{{
				TimeUnixNano: at(l.ms), SeverityNumber: l.sev, SeverityText: strings.TrimPrefix(l.sev.String(), "SEVERITY_NUMBER_"),
				Body:    &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: l.body}},
				TraceId: fill[[]byte](l.trace, 16), SpanId: fill[[]byte](l.span, 8),
			}}}},
		})
	}
	postOTLP(t, base+"/v1/logs", logs)

	var points []*metricspb.NumberDataPoint
	for i := range 6 {
		points = append(points, &metricspb.NumberDataPoint{
			StartTimeUnixNano: at(0), TimeUnixNano: at(i * 10_000),
			Value: &metricspb.NumberDataPoint_AsInt{AsInt: int64(3 * i * i)},
		})
	}
	metrics := &colmetricspb.ExportMetricsServiceRequest{ResourceMetrics: []*metricspb.ResourceMetrics{{
		Resource: serviceResource(feedMetricService),
		ScopeMetrics: []*metricspb.ScopeMetrics{{Metrics: []*metricspb.Metric{{
			Name: feedMetricName, Unit: "{order}", Description: "Orders placed.",
			Data: &metricspb.Metric_Sum{Sum: &metricspb.Sum{
				IsMonotonic: true, AggregationTemporality: metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE,
				DataPoints: points,
			}},
		}}}},
	}}}
	postOTLP(t, base+"/v1/metrics", metrics)
}

// serviceResource returns an OTLP resource naming service.
func serviceResource(service string) *resourcepb.Resource {
	return &resourcepb.Resource{Attributes: []*commonpb.KeyValue{strAttr("service.name", service)}}
}

// postOTLP posts m as OTLP/HTTP protobuf to url, failing unless it is
// accepted whole.
func postOTLP(t *testing.T, url string, m proto.Message) {
	t.Helper()
	body, err := proto.Marshal(m)
	if err != nil {
		t.Fatalf("marshal %T: %v", m, err)
	}
	resp, err := http.Post(url, "application/x-protobuf", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s = %s, want 200", url, resp.Status)
	}
}
