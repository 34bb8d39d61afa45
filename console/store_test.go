package console

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func tid(b byte) (id traceID) {
	for i := range id {
		id[i] = b
	}
	return id
}

func sid(b byte) (id spanID) {
	for i := range id {
		id[i] = b
	}
	return id
}

var testEpoch = time.Unix(1_700_000_000, 0).UTC()

// mkSpan returns a 1ms span of trace t with span id s, starting at the
// given offset from testEpoch.
func mkSpan(service string, t, s, parent byte, start time.Duration) *span {
	sp := &span{
		TraceID: tid(t), SpanID: sid(s), Service: service,
		Name:  fmt.Sprintf("span-%d-%d", t, s),
		Start: testEpoch.Add(start), End: testEpoch.Add(start + time.Millisecond),
		Duration: time.Millisecond, Status: status{Code: "unset"},
	}
	if parent != 0 {
		sp.ParentSpanID = sid(parent)
	}
	return sp
}

func mkLog(service string, t byte, body string) *logRecord {
	r := &logRecord{Service: service, Body: body, Time: testEpoch}
	if t != 0 {
		r.TraceID = tid(t)
	}
	return r
}

// checkInvariant verifies Received = Rejected + Duplicates + Stored + Evicted.
func checkInvariant(t *testing.T, name string, s SignalStats) {
	t.Helper()
	if got := s.Rejected + s.Duplicates + uint64(s.Stored) + s.Evicted; got != s.Received {
		t.Errorf("%s: rejected+duplicates+stored+evicted = %d, want received %d (%+v)", name, got, s.Received, s)
	}
}

func traceIDs(s *store) []traceID {
	var ids []traceID
	for _, sum := range s.recentTraces("", 1000) {
		ids = append(ids, sum.TraceID)
	}
	return ids
}

func TestStoreEvictsOldestTraces(t *testing.T) {
	s := newStore(4, 10, 10)
	// Trace 1 arrives first but its spans start last: eviction follows
	// arrival, not timestamps.
	s.addSpans([]*span{mkSpan("a", 1, 1, 0, time.Hour), mkSpan("a", 1, 2, 1, time.Hour)}, 0)
	s.addSpans([]*span{mkSpan("b", 2, 3, 0, 0), mkSpan("b", 2, 4, 3, 0)}, 0)
	if got := s.stats().Spans; got.Stored != 4 || got.Evicted != 0 {
		t.Fatalf("after 4 spans: %+v, want 4 stored, none evicted", got)
	}
	s.addSpans([]*span{mkSpan("c", 3, 5, 0, time.Minute)}, 0)

	st := s.stats()
	if st.Spans.Stored != 3 || st.Spans.Evicted != 2 || st.Traces != 2 {
		t.Errorf("after eviction: %+v, want 3 stored, 2 evicted, 2 traces", st)
	}
	if _, ok := s.trace(tid(1)); ok {
		t.Errorf("trace(1) still stored, want evicted as the oldest")
	}
	if diff := cmp.Diff([]traceID{tid(3), tid(2)}, traceIDs(s)); diff != "" {
		t.Errorf("recentTraces (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"b", "c"}, s.serviceNames()); diff != "" {
		t.Errorf("serviceNames (-want +got):\n%s", diff)
	}
	checkInvariant(t, "spans", st.Spans)
}

func TestStoreLateSpanJoinsTrace(t *testing.T) {
	s := newStore(10, 10, 10)
	s.addSpans([]*span{mkSpan("a", 1, 1, 0, 0)}, 0)
	s.addSpans([]*span{mkSpan("b", 2, 2, 0, 0)}, 0)
	s.addSpans([]*span{mkSpan("c", 1, 3, 1, time.Millisecond)}, 0)
	spans, ok := s.trace(tid(1))
	if !ok || len(spans) != 2 {
		t.Fatalf("trace(1) = %d spans, %v; want 2, true", len(spans), ok)
	}
	sum := s.recentTraces("c", 10)
	if len(sum) != 1 || sum[0].RootService != "a" || sum[0].SpanCount != 2 || sum[0].Duration != 2*time.Millisecond {
		t.Errorf("recentTraces(c) = %+v, want trace 1 rooted at a with 2 spans over 2ms", sum)
	}
	if diff := cmp.Diff([]string{"a", "c"}, sum[0].Services); diff != "" {
		t.Errorf("Services (-want +got):\n%s", diff)
	}
}

func TestStoreTrimsOversizedTrace(t *testing.T) {
	s := newStore(3, 10, 10)
	var spans []*span
	for i := byte(1); i <= 5; i++ {
		spans = append(spans, mkSpan("a", 1, i, 0, time.Duration(i)*time.Millisecond))
	}
	s.addSpans(spans, 0)
	got, _ := s.trace(tid(1))
	var ids []spanID
	for _, sp := range got {
		ids = append(ids, sp.SpanID)
	}
	if diff := cmp.Diff([]spanID{sid(3), sid(4), sid(5)}, ids); diff != "" {
		t.Errorf("kept spans (-want +got):\n%s", diff)
	}
	st := s.stats().Spans
	if st.Stored != 3 || st.Evicted != 2 {
		t.Errorf("stats %+v, want 3 stored, 2 evicted", st)
	}
	if sum := s.recentTraces("", 1); sum[0].Start != testEpoch.Add(3*time.Millisecond) {
		t.Errorf("trace start = %v, want the earliest kept span's start", sum[0].Start)
	}
}

func TestStoreDuplicateSpanReplaces(t *testing.T) {
	s := newStore(10, 10, 10)
	s.addSpans([]*span{mkSpan("a", 1, 1, 0, 0)}, 0)
	again := mkSpan("a", 1, 1, 0, 0)
	again.Status.Code = "error"
	s.addSpans([]*span{again}, 1)
	st := s.stats()
	want := SignalStats{Received: 3, Rejected: 1, Duplicates: 1, Stored: 1, Bytes: spanSize(again)}
	if st.Spans != want {
		t.Errorf("span stats = %+v, want %+v", st.Spans, want)
	}
	if sum := s.recentTraces("", 1); sum[0].ErrorCount != 1 || sum[0].SpanCount != 1 {
		t.Errorf("summary = %+v, want the replacement's error counted once", sum[0])
	}
}

func TestStoreLogsBound(t *testing.T) {
	s := newStore(10, 3, 10)
	var logs []*logRecord
	for i := range 5 {
		logs = append(logs, mkLog(fmt.Sprintf("svc%d", i), byte(i%2+1), fmt.Sprintf("log %d", i)))
	}
	s.addLogs(logs[:2], 0)
	s.addLogs(logs[2:], 2)
	st := s.stats().Logs
	want := SignalStats{Received: 7, Rejected: 2, Stored: 3, Evicted: 2,
		Bytes: logSize(logs[2]) + logSize(logs[3]) + logSize(logs[4])}
	if st != want {
		t.Errorf("log stats = %+v, want %+v", st, want)
	}
	checkInvariant(t, "logs", st)
	var bodies []any
	for _, r := range s.queryLogs(logQuery{}) {
		bodies = append(bodies, r.Body)
	}
	if diff := cmp.Diff([]any{"log 4", "log 3", "log 2"}, bodies); diff != "" {
		t.Errorf("queryLogs newest first (-want +got):\n%s", diff)
	}
	tests := []struct {
		q    logQuery
		want int
	}{
		{logQuery{TraceID: tid(1)}, 2},
		{logQuery{TraceID: tid(2)}, 1},
		{logQuery{Service: "svc3"}, 1},
		{logQuery{Service: "svc0"}, 0},
		{logQuery{Limit: 2}, 2},
	}
	for _, tt := range tests {
		if got := len(s.queryLogs(tt.q)); got != tt.want {
			t.Errorf("queryLogs(%+v) = %d records, want %d", tt.q, got, tt.want)
		}
	}
	if diff := cmp.Diff([]string{"svc2", "svc3", "svc4"}, s.serviceNames()); diff != "" {
		t.Errorf("serviceNames after eviction (-want +got):\n%s", diff)
	}
}

func TestStorePointsBound(t *testing.T) {
	s := newStore(10, 10, 3)
	batch := func(service, name string, values ...float64) metricBatch {
		b := metricBatch{Key: metricKey{service, name}, Kind: kindGauge}
		for _, v := range values {
			b.Points = append(b.Points, metricPoint{Value: float(v)})
		}
		return b
	}
	s.addMetrics([]metricBatch{batch("a", "x", 1, 2), batch("b", "y", 3)}, 0)
	s.addMetrics([]metricBatch{batch("a", "z", 4, 5)}, 0)
	st := s.stats()
	if st.MetricPoints.Stored != 3 || st.MetricPoints.Evicted != 2 || st.MetricSeries != 2 {
		t.Errorf("stats = %+v, want 3 points in 2 series, 2 evicted", st)
	}
	checkInvariant(t, "points", st.MetricPoints)
	got := map[string][]float{}
	for _, ser := range s.metrics("") {
		for _, p := range ser.Points {
			got[ser.Service+"/"+ser.Name] = append(got[ser.Service+"/"+ser.Name], p.Value)
		}
	}
	if diff := cmp.Diff(map[string][]float{"b/y": {3}, "a/z": {4, 5}}, got); diff != "" {
		t.Errorf("stored points (-want +got):\n%s", diff)
	}
}

func TestRootSpan(t *testing.T) {
	tests := []struct {
		name  string
		spans []*span
		want  spanID
	}{
		{"parentless wins", []*span{mkSpan("a", 1, 2, 1, 0), mkSpan("a", 1, 1, 0, time.Second)}, sid(1)},
		{"earliest orphan when root missing", []*span{mkSpan("a", 1, 4, 2, 0), mkSpan("a", 1, 3, 8, time.Second), mkSpan("a", 1, 2, 9, 2*time.Second)}, sid(3)},
		{"earliest in a cycle", []*span{mkSpan("a", 1, 1, 2, time.Second), mkSpan("a", 1, 2, 1, 0)}, sid(2)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := &trace{spans: tt.spans, index: map[spanID]int{}, services: map[string]int{}}
			tr.recompute()
			if got := rootSpan(tr.spans, tr.index); got.SpanID != tt.want {
				t.Errorf("rootSpan = %s, want %s", got.SpanID, tt.want)
			}
		})
	}
}

func TestStoreConcurrent(t *testing.T) {
	s := newStore(50, 50, 50)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				b := byte(g*31 + i%7 + 1)
				s.addSpans([]*span{mkSpan("a", b, byte(i%250+1), 0, 0)}, 0)
				s.addLogs([]*logRecord{mkLog("a", b, "x")}, 0)
				s.addMetrics([]metricBatch{{Key: metricKey{"a", "m"}, Points: []metricPoint{{Value: 1}}}}, 0)
				_ = s.recentTraces("a", 10)
				_ = s.queryLogs(logQuery{TraceID: tid(b), Limit: 5})
				_, _ = s.trace(tid(b))
				_ = s.stats()
			}
		})
	}
	wg.Wait()
	st := s.stats()
	if st.Spans.Stored > 50 || st.Logs.Stored != 50 || st.MetricPoints.Stored != 50 {
		t.Errorf("stats = %+v, want every signal within its bound of 50", st)
	}
	checkInvariant(t, "spans", st.Spans)
	checkInvariant(t, "logs", st.Logs)
	checkInvariant(t, "points", st.MetricPoints)
}
