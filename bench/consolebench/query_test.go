package consolebench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/console"
)

// data is the shared 1M-span data set, generated once per test binary.
var data struct {
	once   sync.Once
	bodies [][]byte
	ds     Dataset
	err    error
}

func loadData(b *testing.B) ([][]byte, Dataset) {
	b.Helper()
	data.once.Do(func() { data.bodies, data.ds, data.err = Bodies() })
	if data.err != nil {
		b.Fatal(data.err)
	}
	return data.bodies, data.ds
}

// cairnFixture is a console holding the data set.
var cairnFixture struct {
	once    sync.Once
	c       *console.Console
	srv     *httptest.Server
	heapMiB float64
	err     error
}

// loadedConsole returns a console holding the 1M spans, a loopback HTTP
// server for its UI handler, and the heap its store takes in MiB.
func loadedConsole(b *testing.B) (*console.Console, *httptest.Server, float64) {
	b.Helper()
	bodies, _ := loadData(b)
	f := &cairnFixture
	f.once.Do(func() {
		before := heapInUse()
		// Both bounds above the data set, so that nothing is evicted.
		f.c = console.New(console.Options{MaxSpans: 1_100_000, MaxSpanBytes: 8 << 30})
		start := time.Now()
		if f.err = LoadConsole(f.c, bodies); f.err != nil {
			return
		}
		took := time.Since(start)
		f.heapMiB = float64(heapInUse()-before) / (1 << 20)
		st := f.c.Stats()
		if st.Spans.Stored != TotalSpans {
			f.err = fmt.Errorf("console holds %d spans, want %d", st.Spans.Stored, TotalSpans)
			return
		}
		fmt.Printf("# cairn: loaded %d spans in %s through OTLPHandler (%.0f ns/span); store heap %.0f MiB\n",
			TotalSpans, took.Round(time.Millisecond), float64(took.Nanoseconds())/TotalSpans, f.heapMiB)
		f.srv = httptest.NewServer(f.c.UIHandler())
	})
	if f.err != nil {
		b.Fatal(f.err)
	}
	return f.c, f.srv, f.heapMiB
}

// heapInUse returns the heap in use after a garbage collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// query is one search, in cairn's and (where it can say it) Jaeger's API.
type query struct {
	name   string
	cairn  string // path and query on cairn's UI handler
	jaeger string // path and query on Jaeger's query service; "" if it cannot ask
	// want checks a cairn answer; nil accepts any 200.
	want func(body []byte) error
	// jaegerWant checks a Jaeger answer: jaegerN traces, the first being
	// jaegerTrace unless it is empty.
	jaegerN     int
	jaegerTrace string
}

// queries returns the benchmarked searches over ds.
func queries(ds Dataset) []query {
	tags := func(k, v string) string {
		j, _ := json.Marshal(map[string]string{k: v})
		return url.QueryEscape(string(j))
	}
	return []query{
		{name: "service",
			cairn:  "/api/traces?service=checkout&limit=20",
			jaeger: "/api/traces?service=checkout&limit=20",
			want:   wantTraces(20, ""), jaegerN: 20},
		{name: "service+operation+min_duration",
			cairn:  "/api/traces?service=orders&operation=" + url.QueryEscape("process order.created") + "&min_duration=100ms&limit=20",
			jaeger: "/api/traces?service=orders&operation=" + url.QueryEscape("process order.created") + "&minDuration=100ms&limit=20",
			want:   wantTraces(20, ""), jaegerN: 20},
		// Jaeger needs a service for every search; cairn is asked without.
		{name: "attr",
			cairn:  "/api/traces?attr=" + url.QueryEscape("order.id="+ds.OrderID) + "&limit=20",
			jaeger: "/api/traces?service=" + ds.Service + "&tags=" + tags("order.id", ds.OrderID) + "&limit=20",
			want:   wantTraces(1, ds.TraceID), jaegerN: 1, jaegerTrace: ds.TraceID},
		{name: "attr-miss",
			cairn:  "/api/traces?attr=" + url.QueryEscape("order.id=none") + "&limit=20",
			jaeger: "/api/traces?service=" + ds.Service + "&tags=" + tags("order.id", "none") + "&limit=20",
			want:   wantTraces(0, ""), jaegerN: 0},
		// Not asked of Jaeger: its memory store (v1.76.0,
		// internal/storage/v2/memory/tenant.go validSpan) reads the "error"
		// tag with pcommon.Value.Bool, which is false for the string "true"
		// that the HTTP API passes, so tags={"error":"true"} finds nothing.
		{name: "status=error",
			cairn: "/api/traces?status=error&limit=20",
			want:  wantTraces(20, "")},
		{name: "none",
			cairn: "/api/traces?limit=20",
			want:  wantTraces(20, "")},
		{name: "trace",
			cairn:  "/api/traces/" + ds.TraceID,
			jaeger: "/api/traces/" + ds.TraceID, jaegerN: 1, jaegerTrace: ds.TraceID,
			want: func(body []byte) error {
				var r struct {
					Spans []json.RawMessage `json:"spans"`
				}
				if err := json.Unmarshal(body, &r); err != nil {
					return err
				}
				if len(r.Spans) != SpansPerTrace {
					return fmt.Errorf("trace %s has %d spans, want %d", ds.TraceID, len(r.Spans), SpansPerTrace)
				}
				return nil
			}},
	}
}

// wantTraces checks a cairn search answer: n traces, the first being
// traceID unless it is empty.
func wantTraces(n int, traceID string) func([]byte) error {
	return func(body []byte) error {
		var r struct {
			Traces []struct {
				TraceID string `json:"trace_id"`
			} `json:"traces"`
		}
		if err := json.Unmarshal(body, &r); err != nil {
			return err
		}
		if len(r.Traces) != n {
			return fmt.Errorf("%d traces, want %d", len(r.Traces), n)
		}
		if traceID != "" && r.Traces[0].TraceID != traceID {
			return fmt.Errorf("trace %s, want %s", r.Traces[0].TraceID, traceID)
		}
		return nil
	}
}

// wantJaeger checks a Jaeger query answer: n traces in "data", the first
// being traceID (with all its spans) unless it is empty.
func wantJaeger(n int, traceID string) func([]byte) error {
	return func(body []byte) error {
		var r struct {
			Data []struct {
				TraceID string            `json:"traceID"`
				Spans   []json.RawMessage `json:"spans"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &r); err != nil {
			return err
		}
		if len(r.Data) != n {
			return fmt.Errorf("%d traces, want %d", len(r.Data), n)
		}
		if traceID != "" && (r.Data[0].TraceID != traceID || len(r.Data[0].Spans) != SpansPerTrace) {
			return fmt.Errorf("trace %s with %d spans, want %s with %d", r.Data[0].TraceID, len(r.Data[0].Spans), traceID, SpansPerTrace)
		}
		return nil
	}
}

// BenchmarkQuery1MHandler measures cairn's searches over 1M spans served
// in process by the UI handler, without a network hop. Each sub-benchmark
// checks its answer once and reports the store's heap (heap-MiB).
func BenchmarkQuery1MHandler(b *testing.B) {
	_, ds := loadData(b)
	for _, q := range queries(ds) {
		b.Run("query="+q.name, func(b *testing.B) {
			c, _, heap := loadedConsole(b)
			h := c.UIHandler()
			get := func() *httptest.ResponseRecorder {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, q.cairn, nil))
				return rec
			}
			if rec := get(); rec.Code != http.StatusOK {
				b.Fatalf("GET %s = %d: %s", q.cairn, rec.Code, rec.Body)
			} else if err := q.want(rec.Body.Bytes()); err != nil {
				b.Fatalf("GET %s: %v", q.cairn, err)
			}
			for b.Loop() {
				get()
			}
			b.ReportMetric(heap, "heap-MiB")
		})
	}
}

// BenchmarkQuery1M runs the same searches over loopback HTTP against
// cairn (peer=cairn) and, when built, Jaeger v2's memory store holding the
// same spans (peer=jaeger), for benchstat -col /peer. Jaeger answers with
// whole traces where cairn answers with summaries, and needs a service in
// every search (see queries).
func BenchmarkQuery1M(b *testing.B) {
	_, ds := loadData(b)
	for _, q := range queries(ds) {
		b.Run("query="+q.name+"/peer=cairn", func(b *testing.B) {
			_, srv, heap := loadedConsole(b)
			benchGET(b, srv.URL+q.cairn, q.want)
			b.ReportMetric(heap, "heap-MiB")
		})
	}
	base, rssMiB := loadedJaeger(b)
	if base == "" {
		return
	}
	for _, q := range queries(ds) {
		if q.jaeger == "" {
			continue
		}
		b.Run("query="+q.name+"/peer=jaeger", func(b *testing.B) {
			benchGET(b, base+q.jaeger, wantJaeger(q.jaegerN, q.jaegerTrace))
			b.ReportMetric(rssMiB, "rss-MiB")
		})
	}
}

// benchGET measures GET u, after checking once that it answers 200 and,
// if want is set, what want expects.
func benchGET(b *testing.B, u string, want func([]byte) error) {
	b.Helper()
	body, err := get(u)
	if err != nil {
		b.Fatal(err)
	}
	if want != nil {
		if err := want(body); err != nil {
			b.Fatalf("GET %s: %v", u, err)
		}
	}
	for b.Loop() {
		if _, err := get(u); err != nil {
			b.Fatal(err)
		}
	}
}

// get returns the body of GET u, or an error unless it answered 200.
func get(u string) ([]byte, error) {
	resp, err := http.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s = %s: %.300s", u, resp.Status, body)
	}
	return body, nil
}

// jaegerFixture is a Jaeger all-in-one process holding the data set.
var jaegerFixture struct {
	once   sync.Once
	base   string
	rssMiB float64
	err    error
}

// jaegerBinary returns the Jaeger binary built by bench/peers/build.sh, or
// "" if there is none.
func jaegerBinary() string {
	dir := os.Getenv("CAIRN_PEERS")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(home, ".cache", "cairn-peers")
	}
	bin := filepath.Join(dir, "jaeger", "jaeger")
	if _, err := os.Stat(bin); err != nil {
		return ""
	}
	return bin
}

// loadedJaeger starts Jaeger with the memory store, loads the data set
// into it over OTLP/HTTP, and returns its query base URL and resident set
// in MiB once the last export is searchable; "" if Jaeger is not built.
// The process is stopped when the benchmark binary's cleanup runs.
func loadedJaeger(b *testing.B) (string, float64) {
	b.Helper()
	bin := jaegerBinary()
	if bin == "" {
		b.Log("jaeger not built (bench/peers/build.sh jaeger); peer=jaeger skipped")
		return "", 0
	}
	bodies, ds := loadData(b)
	f := &jaegerFixture
	f.once.Do(func() {
		cmd := exec.Command(bin, "--config", "../peers/jaeger/config.yaml")
		cmd.Env = append(os.Environ(), "JAEGER_MAX_TRACES=130000")
		logf, err := os.CreateTemp("", "consolebench-jaeger-*.log")
		if err != nil {
			f.err = err
			return
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		if f.err = cmd.Start(); f.err != nil {
			return
		}
		// Stopped when the test binary exits: b.Cleanup would stop it
		// after the first sub-benchmark that asked for it.
		stopJaeger = func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			logf.Close()
		}
		f.base = "http://127.0.0.1:16686"
		if f.err = waitListening("127.0.0.1:4318", 60*time.Second); f.err != nil {
			return
		}
		start := time.Now()
		for i, body := range bodies {
			resp, err := http.Post("http://127.0.0.1:4318/v1/traces", "application/x-protobuf", bytes.NewReader(body))
			if err != nil {
				f.err = fmt.Errorf("jaeger export %d: %w", i, err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				f.err = fmt.Errorf("jaeger export %d answered %s (log %s)", i, resp.Status, logf.Name())
				return
			}
		}
		// The batch processor stores asynchronously: wait for the last
		// export's trace to be searchable.
		last := f.base + "/api/traces?service=" + ds.Service + "&tags=" +
			url.QueryEscape(`{"order.id":"`+ds.LastOrderID+`"}`) + "&limit=1"
		deadline := time.Now().Add(60 * time.Second)
		for {
			body, err := get(last)
			if err == nil && !bytes.Contains(body, []byte(`"data":[]`)) && bytes.Contains(body, []byte(`"data":[`)) {
				break
			}
			if time.Now().After(deadline) {
				f.err = fmt.Errorf("jaeger: last export not searchable after 60s: %v %.200s", err, body)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		took := time.Since(start)
		f.rssMiB = rssMiB(cmd.Process.Pid)
		fmt.Printf("# jaeger: loaded %d spans in %s over OTLP/HTTP; RSS %.0f MiB\n", TotalSpans, took.Round(time.Millisecond), f.rssMiB)
	})
	if f.err != nil {
		b.Fatal(f.err)
	}
	return f.base, f.rssMiB
}

// stopJaeger stops the Jaeger process started by loadedJaeger, if any.
var stopJaeger = func() {}

func TestMain(m *testing.M) {
	code := m.Run()
	stopJaeger()
	os.Exit(code)
}

// waitListening polls addr until it accepts TCP connections.
func waitListening(addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return conn.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not listening after %s: %w", addr, limit, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rssMiB returns the resident set of pid in MiB, or zero.
func rssMiB(pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kib, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kib / 1024
		}
	}
	return 0
}
