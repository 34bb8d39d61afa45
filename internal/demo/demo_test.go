package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// lumberjack v2.2.1 starts one mill goroutine per file logger that
		// never exits (natefinch/lumberjack#56); the demo opens two.
		goleak.IgnoreTopFunction("gopkg.in/natefinch/lumberjack%2ev2.(*Logger).millRun"),
	)
}

func loopbackConfig(out *bytes.Buffer) Config {
	return Config{
		ConsoleAddr:    "127.0.0.1:0",
		OTLPAddr:       "127.0.0.1:0",
		OrderAddr:      "127.0.0.1:0",
		AdminAddr:      "127.0.0.1:0",
		RPS:            40,
		Out:            out,
		ExportInterval: 100 * time.Millisecond,
	}
}

type apiSpan struct {
	TraceID      string `json:"trace_id"`
	SpanID       string `json:"span_id"`
	ParentSpanID string `json:"parent_span_id"`
	Service      string `json:"service"`
	Name         string `json:"name"`
	Kind         string `json:"kind"`
}

type apiLog struct {
	TraceID string `json:"trace_id"`
	SpanID  string `json:"span_id"`
	Service string `json:"service"`
	Body    any    `json:"body"`
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d", url, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: decode: %v", url, err)
	}
}

// findPlacedOrderTrace looks through the console's recent traces for one in
// which the load generator's client span is the parent of the order
// service's server span, which is the parent of the SQLite span, and which
// has the order service's log record. It returns a description of the
// chain, or "" when no trace has it yet.
func findPlacedOrderTrace(t *testing.T, consoleURL string) string {
	var list struct {
		Traces []struct {
			TraceID string `json:"trace_id"`
		} `json:"traces"`
	}
	getJSON(t, consoleURL+"/api/traces?service=order&limit=50", &list)
	for _, tr := range list.Traces {
		var got struct {
			Spans []apiSpan `json:"spans"`
			Logs  []apiLog  `json:"logs"`
		}
		getJSON(t, consoleURL+"/api/traces/"+tr.TraceID, &got)
		byID := map[string]apiSpan{}
		for _, s := range got.Spans {
			byID[s.SpanID] = s
		}
		for _, db := range got.Spans {
			if db.Service != "order" || !strings.HasPrefix(db.Name, "INSERT") {
				continue
			}
			server, ok := byID[db.ParentSpanID]
			if !ok || server.Service != "order" || server.Kind != "server" {
				continue
			}
			client, ok := byID[server.ParentSpanID]
			if !ok || client.Service != "loadgen" || client.Kind != "client" {
				continue
			}
			for _, l := range got.Logs {
				if l.Service == "order" && l.TraceID == tr.TraceID && l.SpanID == server.SpanID {
					return fmt.Sprintf("trace %s: %s %q -> %s %q -> %s %q; log %q",
						tr.TraceID, client.Service, client.Name, server.Service, server.Name, db.Service, db.Name, l.Body)
				}
			}
		}
	}
	return ""
}

// TestDemoTraceRunsThroughEveryComponent is the walking skeleton's
// acceptance test: with load running, the console receives over real OTLP a
// trace load generator client span -> order server span -> SQLite span, with
// the request's log record attached by trace id.
func TestDemoTraceRunsThroughEveryComponent(t *testing.T) {
	var out bytes.Buffer
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	d, err := Start(ctx, loopbackConfig(&out))
	if err != nil {
		t.Fatal(err)
	}
	consoleURL := "http://" + d.Addrs().Console

	var found string
	// Wait for the condition, not for a time: the bound only keeps a broken
	// build from hanging the suite.
	deadline := time.Now().Add(60 * time.Second)
	for found == "" && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		found = findPlacedOrderTrace(t, consoleURL)
	}
	if found == "" {
		t.Errorf("no trace loadgen client -> order server -> sqlite with its log reached the console; stats %+v", d.Console().Stats())
	} else {
		t.Log(found)
	}

	// The console page lists the traces too.
	resp, err := http.Get(consoleURL + "/")
	if err != nil {
		t.Fatal(err)
	}
	var page bytes.Buffer
	page.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(page.String(), "loadgen") {
		t.Errorf("GET / = %d, page mentions loadgen: %v", resp.StatusCode, strings.Contains(page.String(), "loadgen"))
	}

	// The admin listener serves the order service's metrics.
	resp, err = http.Get("http://" + d.Addrs().Admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var metrics bytes.Buffer
	metrics.ReadFrom(resp.Body)
	resp.Body.Close()
	if !strings.Contains(metrics.String(), "cairn_shop_orders_placed_total") {
		t.Errorf("/metrics lacks cairn_shop_orders_placed_total")
	}

	dataDir := d.DataDir()
	cancel()
	rep, err := d.Wait(ctx)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if rep.Load.Sent == 0 || rep.Load.Failed != 0 || rep.Load.Sent != rep.Load.Succeeded+rep.Load.Failed {
		t.Errorf("load stats = %+v, want requests sent and none failed", rep.Load)
	}
	if rep.FirstServed <= 0 {
		t.Errorf("FirstServed = %v, want > 0", rep.FirstServed)
	}
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Errorf("temporary data dir %s still exists after Wait (stat: %v)", dataDir, err)
	}
	for _, want := range []string{"console", "order API", "admin", "data"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("start report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestDemoNamesTakenPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var out bytes.Buffer
	cfg := loopbackConfig(&out)
	cfg.OTLPAddr = ln.Addr().String()
	d, err := Start(t.Context(), cfg)
	if err == nil {
		d.Wait(context.Background())
		t.Fatal("Start succeeded on a taken port")
	}
	for _, want := range []string{ln.Addr().String(), "--otlp-addr", "OTLP"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Start error %q does not name %q", err, want)
		}
	}
}

func TestDemoKeepsDataDir(t *testing.T) {
	var out bytes.Buffer
	cfg := loopbackConfig(&out)
	cfg.RPS = 0
	cfg.DataDir = t.TempDir()
	cfg.Duration = time.Millisecond
	d, err := Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"orders.db", "logs/order.log", "logs/loadgen.log", "logs/console.log"} {
		if _, err := os.Stat(cfg.DataDir + "/" + name); err != nil {
			t.Errorf("data dir lacks %s after the demo: %v", name, err)
		}
	}
}
