package otlpload

import (
	"context"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/console"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// spansOf returns the spans of every resource of the request last built
// by g, with the service.name of each.
func spansOf(g *Generator) (spans []*tracepb.Span, services []string) {
	for _, rs := range g.req.ResourceSpans {
		svc := rs.Resource.Attributes[0].Value.GetStringValue()
		for _, ss := range rs.ScopeSpans {
			for _, sp := range ss.Spans {
				spans = append(spans, sp)
				services = append(services, svc)
			}
		}
	}
	return spans, services
}

func TestGeneratorFreshIDs(t *testing.T) {
	g := NewGenerator(3, 512, 8)
	if g.Spans() != 512 {
		t.Fatalf("Spans() = %d, want 512", g.Spans())
	}
	seenTrace := map[string]bool{}
	seenSpan := map[string]bool{}
	seenOrder := map[string]string{} // order.id -> trace id
	errs, total := 0, 0
	for range 100 {
		g.Next(time.Now())
		spans, _ := spansOf(g)
		if len(spans) != 512 {
			t.Fatalf("request holds %d spans, want 512", len(spans))
		}
		thisTrace := map[string]map[string]bool{} // trace -> span ids
		for _, sp := range spans {
			tid, sid := string(sp.TraceId), string(sp.SpanId)
			if thisTrace[tid] == nil {
				if seenTrace[tid] {
					t.Fatalf("trace id %x reused across exports", sp.TraceId)
				}
				thisTrace[tid] = map[string]bool{}
			}
			if seenSpan[sid] {
				t.Fatalf("span id %x reused", sp.SpanId)
			}
			seenSpan[sid] = true
			thisTrace[tid][sid] = true
			if len(sp.Attributes) != 8 {
				t.Errorf("span %q has %d attributes, want 8", sp.Name, len(sp.Attributes))
			}
			for _, kv := range sp.Attributes {
				if kv.Key == "order.id" {
					o := kv.Value.GetStringValue()
					if prev, ok := seenOrder[o]; ok && prev != tid {
						t.Fatalf("order.id %s on two traces", o)
					}
					seenOrder[o] = tid
				}
			}
			if sp.EndTimeUnixNano < sp.StartTimeUnixNano {
				t.Errorf("span %q ends before it starts", sp.Name)
			}
			if sp.Status.Code == tracepb.Status_STATUS_CODE_ERROR {
				errs++
			}
			total++
		}
		for _, sp := range spans {
			if len(sp.ParentSpanId) > 0 && !thisTrace[string(sp.TraceId)][string(sp.ParentSpanId)] {
				t.Fatalf("span %q has a parent outside its trace", sp.Name)
			}
		}
		for tid, ids := range thisTrace {
			seenTrace[tid] = true
			if len(ids) != 8 {
				t.Fatalf("trace %x has %d spans, want 8", tid, len(ids))
			}
		}
	}
	if errs != total/100 {
		t.Errorf("%d error spans of %d, want %d", errs, total, total/100)
	}
	if len(seenOrder) != 100*64 {
		t.Errorf("%d distinct order ids, want %d", len(seenOrder), 100*64)
	}
}

// serve starts c's OTLP receivers on loopback and returns their gRPC and
// HTTP addresses; they stop when the test ends.
func serve(t *testing.T, c *console.Console) (grpcAddr, httpAddr string) {
	t.Helper()
	hs := httptest.NewServer(c.OTLPHandler())
	t.Cleanup(hs.Close)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := c.NewGRPCServer()
	go func() { _ = gs.Serve(l) }()
	t.Cleanup(gs.Stop)
	return l.Addr().String(), strings.TrimPrefix(hs.URL, "http://")
}

func TestRun(t *testing.T) {
	tests := []struct {
		protocol    string
		maxInFlight int
		senders     int
		wantRefused bool
	}{
		{"grpc", 64, 2, false},
		{"http", 64, 2, false},
		{"grpc", 1, 8, true},
		{"http", 1, 8, true},
	}
	for _, tt := range tests {
		c := console.New(console.Options{MaxSpans: 1_000_000, MaxInFlightExports: tt.maxInFlight})
		grpcAddr, httpAddr := serve(t, c)
		target := grpcAddr
		if tt.protocol == "http" {
			target = httpAddr
		}
		res, err := Run(context.Background(), Config{
			Target: target, Protocol: tt.protocol, Senders: tt.senders, Batch: 64,
			Duration: time.Second, Warmup: 200 * time.Millisecond,
		})
		if err != nil {
			t.Fatalf("%s: Run: %v", tt.protocol, err)
		}
		t.Logf("%s in flight %d: %s", tt.protocol, tt.maxInFlight, res.Summary())
		received := c.Stats().Spans.Received
		if res.Spans <= 0 || uint64(res.Spans) > received {
			t.Errorf("%s: Run accepted %d spans, console received %d; want 0 < accepted <= received", tt.protocol, res.Spans, received)
		}
		if res.Failed != 0 {
			t.Errorf("%s: %d failed exports: %v", tt.protocol, res.Failed, res.FirstErr)
		}
		if got := res.Refused > 0; got != tt.wantRefused {
			t.Errorf("%s with %d in flight: refused %d, want refusals %v", tt.protocol, tt.maxInFlight, res.Refused, tt.wantRefused)
		}
		if res.Hinted != res.Refused {
			t.Errorf("%s: %d of %d refusals carried a retry hint, want all", tt.protocol, res.Hinted, res.Refused)
		}
		if line := res.BenchLine("BenchmarkIngest/x"); !strings.Contains(line, " spans/s ") {
			t.Errorf("BenchLine = %q, want a spans/s metric", line)
		}
	}
}

func TestNewClientUnknownProtocol(t *testing.T) {
	if _, err := NewClient("udp", "127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), `"udp"`) {
		t.Errorf("NewClient(udp) error = %v, want one naming the protocol", err)
	}
}

// TestWireMatchesGenerator decodes successive Wire exports and checks that
// they hold what Generator.Next would: fresh ids, parents within the trace,
// one unique order.id per trace, timestamps ending near now.
func TestWireMatchesGenerator(t *testing.T) {
	w, err := NewWire(7, 512, 8)
	if err != nil {
		t.Fatal(err)
	}
	seenSpan := map[string]bool{}
	seenOrder := map[string]bool{}
	for n := range 20 {
		now := time.Now()
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(w.Next(now), &req); err != nil {
			t.Fatalf("export %d: %v", n, err)
		}
		spans := map[string]*tracepb.Span{}
		orders := map[string]map[string]bool{} // trace -> order ids
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, sp := range ss.Spans {
					if seenSpan[string(sp.SpanId)] {
						t.Fatalf("export %d: span id %x reused", n, sp.SpanId)
					}
					seenSpan[string(sp.SpanId)] = true
					spans[string(sp.SpanId)] = sp
					if orders[string(sp.TraceId)] == nil {
						orders[string(sp.TraceId)] = map[string]bool{}
					}
					for _, kv := range sp.Attributes {
						if kv.Key == "order.id" {
							orders[string(sp.TraceId)][kv.Value.GetStringValue()] = true
						}
					}
					if end := int64(sp.EndTimeUnixNano); end > now.UnixNano() || end < now.Add(-time.Second).UnixNano() || sp.EndTimeUnixNano < sp.StartTimeUnixNano {
						t.Fatalf("export %d: span %q from %d to %d, want within the second before %d", n, sp.Name, sp.StartTimeUnixNano, sp.EndTimeUnixNano, now.UnixNano())
					}
				}
			}
		}
		if len(spans) != w.Spans() || len(orders) != 64 {
			t.Fatalf("export %d: %d spans in %d traces, want %d in 64", n, len(spans), len(orders), w.Spans())
		}
		for _, sp := range spans {
			if len(sp.ParentSpanId) == 0 {
				continue
			}
			if p := spans[string(sp.ParentSpanId)]; p == nil || string(p.TraceId) != string(sp.TraceId) {
				t.Fatalf("export %d: span %q has no parent in its trace", n, sp.Name)
			}
		}
		for tid, ids := range orders {
			if len(ids) != 1 {
				t.Fatalf("export %d: trace %x has order ids %v, want one", n, tid, ids)
			}
			for id := range ids {
				if seenOrder[id] {
					t.Fatalf("export %d: order.id %s reused", n, id)
				}
				seenOrder[id] = true
			}
		}
	}
}
