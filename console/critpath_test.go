package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/problem"
	"github.com/google/go-cmp/cmp"
)

// cpSpan returns a span of trace 0xc1 with span id id, parent parent (0
// for none) and the given kind, over [start, end] from testEpoch.
func cpSpan(id, parent byte, kind string, start, end time.Duration) *span {
	sp := &span{
		TraceID: tid(0xc1), SpanID: sid(id), Service: fmt.Sprintf("svc-%d", id), Name: fmt.Sprintf("op-%d", id),
		Kind: kind, Start: testEpoch.Add(start), End: testEpoch.Add(end), Duration: end - start,
	}
	if parent != 0 {
		sp.ParentSpanID = sid(parent)
	}
	return sp
}

// seg is an expected path segment: span id and interval from testEpoch.
type seg struct {
	id       byte
	from, to time.Duration
}

const ms = time.Millisecond

func TestCriticalPath(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spans []*span
		want  []seg
	}{{
		name: "chain",
		spans: []*span{
			cpSpan(1, 0, "server", 0, 100*ms),
			cpSpan(2, 1, "client", 10*ms, 90*ms),
			cpSpan(3, 2, "server", 20*ms, 80*ms),
		},
		want: []seg{{1, 0, 10 * ms}, {2, 10 * ms, 20 * ms}, {3, 20 * ms, 80 * ms}, {2, 80 * ms, 90 * ms}, {1, 90 * ms, 100 * ms}},
	}, {
		name: "sequential children",
		spans: []*span{
			cpSpan(1, 0, "server", 0, 100*ms),
			cpSpan(2, 1, "client", 10*ms, 40*ms),
			cpSpan(3, 1, "client", 50*ms, 90*ms),
		},
		want: []seg{{1, 0, 10 * ms}, {2, 10 * ms, 40 * ms}, {1, 40 * ms, 50 * ms}, {3, 50 * ms, 90 * ms}, {1, 90 * ms, 100 * ms}},
	}, {
		name: "concurrent siblings: only the last to finish blocks",
		spans: []*span{
			cpSpan(1, 0, "server", 0, 100*ms),
			cpSpan(2, 1, "client", 10*ms, 80*ms),
			cpSpan(3, 1, "client", 15*ms, 90*ms),
		},
		want: []seg{{1, 0, 15 * ms}, {3, 15 * ms, 90 * ms}, {1, 90 * ms, 100 * ms}},
	}, {
		name: "asynchronous consumers and producer children",
		spans: []*span{
			cpSpan(1, 0, "server", 0, 100*ms),
			cpSpan(2, 1, "producer", 10*ms, 20*ms),
			cpSpan(3, 2, "consumer", 30*ms, 150*ms), // consumer, outlives the root
			cpSpan(4, 2, "internal", 15*ms, 19*ms),  // child of a producer
			cpSpan(5, 1, "consumer", 50*ms, 95*ms),  // consumer within the root
		},
		want: []seg{{1, 0, 10 * ms}, {2, 10 * ms, 20 * ms}, {1, 20 * ms, 100 * ms}},
	}, {
		name: "clock skew: overflowing children clamped, outside child async",
		spans: []*span{
			cpSpan(1, 0, "server", 0, 100*ms),
			cpSpan(2, 1, "client", -5*ms, 40*ms),
			cpSpan(3, 1, "client", 60*ms, 110*ms),
			cpSpan(4, 1, "client", 120*ms, 130*ms),
		},
		want: []seg{{2, 0, 40 * ms}, {1, 40 * ms, 60 * ms}, {3, 60 * ms, 100 * ms}},
	}, {
		name: "child ending within the tolerance after the cursor",
		spans: []*span{
			cpSpan(1, 0, "server", 0, 100*ms),
			cpSpan(2, 1, "client", 10*ms, 60*ms+500*time.Microsecond), // tolerance is 1ms
			cpSpan(3, 1, "client", 60*ms, 90*ms),
		},
		want: []seg{{1, 0, 10 * ms}, {2, 10 * ms, 60 * ms}, {3, 60 * ms, 90 * ms}, {1, 90 * ms, 100 * ms}},
	}, {
		name: "child ending beyond the tolerance after the cursor",
		spans: []*span{
			cpSpan(1, 0, "server", 0, 100*ms),
			cpSpan(2, 1, "client", 10*ms, 62*ms),
			cpSpan(3, 1, "client", 60*ms, 90*ms),
		},
		want: []seg{{1, 0, 60 * ms}, {3, 60 * ms, 90 * ms}, {1, 90 * ms, 100 * ms}},
	}, {
		name: "minimum tolerance on a short parent",
		spans: []*span{
			cpSpan(1, 0, "server", 0, 1*ms), // 1% is 10µs; 50µs applies
			cpSpan(2, 1, "client", 100*time.Microsecond, 540*time.Microsecond),
			cpSpan(3, 1, "client", 500*time.Microsecond, 900*time.Microsecond),
		},
		want: []seg{
			{1, 0, 100 * time.Microsecond}, {2, 100 * time.Microsecond, 500 * time.Microsecond},
			{3, 500 * time.Microsecond, 900 * time.Microsecond}, {1, 900 * time.Microsecond, 1 * ms},
		},
	}, {
		name: "no root: earliest span",
		spans: []*span{
			cpSpan(2, 9, "server", 0, 100*ms),
			cpSpan(3, 2, "client", 10*ms, 50*ms),
			cpSpan(4, 9, "server", 20*ms, 200*ms),
		},
		want: []seg{{2, 0, 10 * ms}, {3, 10 * ms, 50 * ms}, {2, 50 * ms, 100 * ms}},
	}, {
		name: "several roots: the one that ends last",
		spans: []*span{
			cpSpan(1, 0, "server", 0, 50*ms),
			cpSpan(2, 0, "server", 10*ms, 120*ms),
		},
		want: []seg{{2, 10 * ms, 120 * ms}},
	}, {
		name: "parent cycle is walked once",
		spans: []*span{
			cpSpan(1, 2, "server", 0, 100*ms),
			cpSpan(2, 1, "client", 10*ms, 50*ms),
		},
		want: []seg{{1, 0, 10 * ms}, {2, 10 * ms, 50 * ms}, {1, 50 * ms, 100 * ms}},
	}, {
		name:  "empty trace",
		spans: nil,
		want:  nil,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			p := criticalPathOf(tc.spans)
			var got []seg
			for _, s := range p.Segments {
				got = append(got, seg{s.SpanID[0], s.Start.Sub(testEpoch), s.End.Sub(testEpoch)})
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(seg{})); diff != "" {
				t.Errorf("segments mismatch (-want +got):\n%s", diff)
			}
			checkTiling(t, tc.spans, p)

			// The set of span ids is exactly the spans with a segment.
			wantIDs := []spanID{}
			seen := map[byte]bool{}
			for _, s := range tc.want {
				if !seen[s.id] {
					seen[s.id] = true
					wantIDs = append(wantIDs, sid(s.id))
				}
			}
			if diff := cmp.Diff(wantIDs, p.SpanIDs); diff != "" {
				t.Errorf("span ids mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// checkTiling verifies that p's segments cover its root's interval
// back to back and sum to the root's duration.
func checkTiling(t *testing.T, spans []*span, p criticalPath) {
	t.Helper()
	root := pathRoot(spans)
	if root == nil {
		if len(p.Segments) != 0 || p.Total != 0 {
			t.Errorf("path of no spans = %+v, want empty", p)
		}
		return
	}
	if p.Total != root.End.Sub(root.Start) {
		t.Errorf("Total = %v, want root duration %v", p.Total, root.End.Sub(root.Start))
	}
	var sum time.Duration
	at := root.Start
	for i, s := range p.Segments {
		if !s.Start.Equal(at) || !s.End.After(s.Start) || s.SelfTime != s.End.Sub(s.Start) {
			t.Errorf("segment %d = %+v, want a non-empty segment starting at %v", i, s, at.Sub(testEpoch))
		}
		sum += s.SelfTime
		at = s.End
	}
	if !at.Equal(root.End) || sum != p.Total {
		t.Errorf("segments end at %v and sum to %v, want %v and %v", at.Sub(testEpoch), sum, root.End.Sub(testEpoch), p.Total)
	}
}

func TestAggregateCriticalPaths(t *testing.T) {
	p1 := criticalPathOf([]*span{
		cpSpan(1, 0, "server", 0, 100*ms),
		cpSpan(2, 1, "client", 10*ms, 40*ms),
		cpSpan(3, 1, "client", 50*ms, 90*ms),
	}) // 1: 30ms, 2: 30ms, 3: 40ms
	p2 := criticalPathOf([]*span{
		cpSpan(1, 0, "server", 0, 50*ms),
		cpSpan(3, 1, "client", 5*ms, 45*ms),
	}) // 1: 10ms, 3: 40ms
	got := aggregateCriticalPaths([]criticalPath{p1, p2})
	want := []pathContribution{
		{Service: "svc-3", Name: "op-3", SelfTime: 80 * ms, Traces: 2},
		{Service: "svc-1", Name: "op-1", SelfTime: 40 * ms, Traces: 2},
		{Service: "svc-2", Name: "op-2", SelfTime: 30 * ms, Traces: 1},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("aggregateCriticalPaths mismatch (-want +got):\n%s", diff)
	}
	if got := aggregateCriticalPaths(nil); len(got) != 0 {
		t.Errorf("aggregateCriticalPaths(nil) = %v, want empty", got)
	}
}

func TestAPICriticalPath(t *testing.T) {
	c := New(Options{})
	c.store.addSpans([]*span{
		cpSpan(1, 0, "server", 0, 100*ms),
		cpSpan(2, 1, "client", 10*ms, 80*ms),
		cpSpan(3, 1, "client", 15*ms, 90*ms),
	}, 0)
	// The route is mounted the way newUIHandler mounts the API, through
	// the same error adapter.
	mux := http.NewServeMux()
	mux.Handle("GET /api/traces/{traceID}/critical-path", c.ui(c.apiCriticalPath))

	id := tid(0xc1).String()
	target := "/api/traces/" + id + "/critical-path"
	rec := do(t, mux, http.MethodGet, target, "", nil)
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s = %d %q %s, want 200 JSON", target, rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	var got struct {
		TraceID  string `json:"trace_id"`
		TotalNS  int64  `json:"total_ns"`
		Segments []struct {
			SpanID   string    `json:"span_id"`
			Name     string    `json:"name"`
			Service  string    `json:"service"`
			Start    time.Time `json:"start"`
			End      time.Time `json:"end"`
			SelfTime int64     `json:"self_time_on_path_ns"`
		} `json:"segments"`
		SpanIDs []string `json:"span_ids"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("GET %s: decode %q: %v", target, rec.Body, err)
	}
	if got.TraceID != id || got.TotalNS != int64(100*ms) || len(got.Segments) != 3 {
		t.Fatalf("GET %s = %+v, want trace %s, total 100ms, 3 segments", target, got, id)
	}
	var sum int64
	for _, s := range got.Segments {
		sum += s.SelfTime
	}
	if s := got.Segments[1]; s.SpanID != sid(3).String() || s.Name != "op-3" || s.Service != "svc-3" ||
		!s.Start.Equal(testEpoch.Add(15*ms)) || !s.End.Equal(testEpoch.Add(90*ms)) || sum != got.TotalNS {
		t.Errorf("GET %s segments = %+v, want span 3 over [15ms, 90ms] in the middle, summing to total", target, got.Segments)
	}
	if want := []string{sid(1).String(), sid(3).String()}; !cmp.Equal(got.SpanIDs, want) {
		t.Errorf("GET %s span_ids = %v, want %v", target, got.SpanIDs, want)
	}

	for target, code := range map[string]int{
		"/api/traces/" + hexID(0xee, 16) + "/critical-path": http.StatusNotFound,
		"/api/traces/zz/critical-path":                      http.StatusBadRequest,
	} {
		rec := do(t, mux, http.MethodGet, target, "", nil)
		var p problem.Details
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
			t.Fatalf("GET %s: decode %q: %v", target, rec.Body, err)
		}
		if rec.Code != code || p.Status != code || !strings.HasPrefix(p.Detail, "console: ") {
			t.Errorf("GET %s = %d %+v, want %d and a console: problem", target, rec.Code, p, code)
		}
	}
}
