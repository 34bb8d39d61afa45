package console

import (
	"strings"
	"testing"
	"time"
)

func TestRing(t *testing.T) {
	r := ring[int]{max: 100}
	for i := range 250 {
		old, evicted := r.push(i)
		if evicted != (i >= 100) || (evicted && old != i-100) {
			t.Fatalf("push(%d) = %d, %v", i, old, evicted)
		}
	}
	for i := range 10 {
		if v := r.popOldest(); v != 150+i {
			t.Fatalf("popOldest = %d, want %d", v, 150+i)
		}
	}
	if r.len() != 90 || r.at(0) != 160 || r.at(89) != 249 {
		t.Fatalf("after pops: len %d, oldest %d, newest %d", r.len(), r.at(0), r.at(89))
	}
	// Room again: pushes fill it without evicting.
	for i := range 10 {
		if _, evicted := r.push(1000 + i); evicted {
			t.Fatalf("push into a ring with room evicted")
		}
	}
	if r.len() != 100 || r.at(99) != 1009 {
		t.Fatalf("refilled: len %d, newest %d", r.len(), r.at(99))
	}
}

func TestStoreSpanByteBound(t *testing.T) {
	s := newStore(1000, 10, 10)
	big := strings.Repeat("x", 1000)
	mk := func(tr, id byte) *span {
		sp := mkSpan("a", tr, id, 0, time.Duration(tr)*time.Millisecond)
		sp.Attributes = attrs{{"payload", big}}
		return sp
	}
	one := spanSize(mk(1, 1))
	s.maxSpanBytes = 5*one + one/2 // room for five spans
	for tr := byte(1); tr <= 4; tr++ {
		s.addSpans([]*span{mk(tr, 1), mk(tr, 2)}, 0)
	}
	st := s.stats()
	// Four traces of two spans: the oldest two traces had to go.
	if st.Spans.Stored != 4 || st.Spans.Evicted != 4 || st.Spans.Bytes != 4*one || st.Traces != 2 {
		t.Errorf("stats = %+v, want 4 spans of %d bytes in 2 traces, 4 evicted", st.Spans, one)
	}
	if got := traceIDs(s); len(got) != 2 || got[0] != tid(4) || got[1] != tid(3) {
		t.Errorf("traces = %v, want the newest two", got)
	}
	checkInvariant(t, "spans", st.Spans)

	// One trace larger than the byte bound loses its oldest spans.
	s = newStore(1000, 10, 10)
	s.maxSpanBytes = 3 * one
	var spans []*span
	for id := byte(1); id <= 5; id++ {
		spans = append(spans, mk(9, id))
	}
	s.addSpans(spans, 0)
	tr, _ := s.trace(tid(9))
	if st := s.stats(); len(tr) != 3 || st.Spans.Bytes != 3*one || tr[0].SpanID != sid(3) {
		t.Errorf("oversized trace kept %d spans (%d bytes), first %v; want the newest 3", len(tr), st.Spans.Bytes, tr[0].SpanID)
	}
	// A retry of a stored span with a smaller body updates the size.
	small := mkSpan("a", 9, 5, 0, 9*time.Millisecond)
	s.addSpans([]*span{small}, 0)
	if st := s.stats(); st.Spans.Bytes != 2*one+spanSize(small) {
		t.Errorf("after a retry: %d bytes, want %d", st.Spans.Bytes, 2*one+spanSize(small))
	}
}

func TestStoreLogAndPointByteBounds(t *testing.T) {
	s := newStore(10, 1000, 1000)
	rec := func(i int) *logRecord { return mkLog("a", 0, strings.Repeat("y", 500)+string(rune('a'+i))) }
	one := logSize(rec(0))
	s.maxLogBytes = 3 * one
	for i := range 5 {
		s.addLogs([]*logRecord{rec(i)}, 0)
	}
	st := s.stats()
	if st.Logs.Stored != 3 || st.Logs.Evicted != 2 || st.Logs.Bytes != 3*one {
		t.Errorf("logs = %+v, want 3 stored of %d bytes, 2 evicted", st.Logs, one)
	}
	checkInvariant(t, "logs", st.Logs)
	if got := s.queryLogs(logQuery{}); len(got) != 3 || got[2] != s.logs.at(0) {
		t.Errorf("queryLogs after byte eviction = %d records", len(got))
	}

	p := metricPoint{Value: 1, Attributes: attrs{{"k", strings.Repeat("z", 300)}}}
	onePoint := pointSize(&p)
	s.maxPointBytes = 2 * onePoint
	for i := range 4 {
		p.Time = testEpoch.Add(time.Duration(i) * time.Second)
		s.addMetrics([]metricBatch{{Key: metricKey{"a", "m"}, Kind: kindGauge, Points: []metricPoint{p}}}, 0)
	}
	st = s.stats()
	if st.MetricPoints.Stored != 2 || st.MetricPoints.Evicted != 2 || st.MetricPoints.Bytes != 2*onePoint {
		t.Errorf("points = %+v, want 2 stored of %d bytes, 2 evicted", st.MetricPoints, onePoint)
	}
	checkInvariant(t, "points", st.MetricPoints)
}

func TestSizesGrowWithContent(t *testing.T) {
	sp := mkSpan("a", 1, 1, 0, 0)
	base := spanSize(sp)
	sp.Attributes = attrs{{"k", "0123456789"}, {"list", []any{"abc", int64(1)}}, {"map", attrs{{"x", "yz"}}}}
	sp.Events = []event{{Name: "ev", Attributes: attrs{{"e", "v"}}}}
	sp.Links = []link{{TraceState: "a=b"}}
	if got := spanSize(sp); got <= base+len("0123456789")+len("abc")+len("yz") {
		t.Errorf("spanSize with attributes, events and links = %d, base %d: content not counted", got, base)
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 12_900_000: "12.3 MiB", 5 << 30: "5 GiB"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
