package console

import (
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// searchSpan returns a span for the search tests: service svc, name op,
// duration d, the given attributes, in trace t.
func searchSpan(t traceID, s byte, parent byte, svc, op string, d time.Duration, code string, kv ...string) *span {
	sp := &span{
		TraceID: t, SpanID: sid(s), Service: svc, Name: op,
		Start: testEpoch, End: testEpoch.Add(d), Duration: d,
		Status: status{Code: code},
	}
	if parent != 0 {
		sp.ParentSpanID = sid(parent)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		sp.Attributes = append(sp.Attributes, keyValue{kv[i], kv[i+1]})
	}
	return sp
}

func ids(sums []traceSummary) []traceID {
	out := make([]traceID, len(sums))
	for i, s := range sums {
		out[i] = s.TraceID
	}
	slices.SortFunc(out, func(a, b traceID) int { return slices.Compare(a[:], b[:]) })
	return out
}

func TestSearchTraces(t *testing.T) {
	s := newStore(1000, 10, 10)
	t1, t2, t3 := tid(1), tid(2), tid(3)
	s.addSpans([]*span{
		searchSpan(t1, 1, 0, "edge", "GET /orders", 30*time.Millisecond, "unset", "http.response.status_code", "200"),
		searchSpan(t1, 2, 1, "orders", "place", 20*time.Millisecond, "error", "order.id", "o-1"),
		searchSpan(t2, 1, 0, "edge", "GET /orders", 5*time.Millisecond, "unset", "http.response.status_code", "200"),
		searchSpan(t2, 2, 1, "orders", "place", 2*time.Millisecond, "ok", "order.id", "o-2"),
		searchSpan(t3, 1, 0, "edge", "GET /health", time.Millisecond, "unset"),
	}, 0)
	// An integer attribute matches its text form.
	s.addSpans([]*span{{TraceID: t3, SpanID: sid(2), ParentSpanID: sid(1), Service: "db", Name: "query",
		Start: testEpoch, End: testEpoch.Add(time.Millisecond), Duration: time.Millisecond,
		Attributes: attrs{{"rows", int64(42)}}, Status: status{Code: "unset"}}}, 0)

	for _, tc := range []struct {
		name string
		q    traceQuery
		want []traceID
	}{
		{"all", traceQuery{}, []traceID{t1, t2, t3}},
		{"service", traceQuery{Service: "orders"}, []traceID{t1, t2}},
		{"operation any service", traceQuery{Operation: "GET /orders"}, []traceID{t1, t2}},
		{"service and operation", traceQuery{Service: "edge", Operation: "GET /health"}, []traceID{t3}},
		{"status error", traceQuery{Status: "error"}, []traceID{t1}},
		{"status ok", traceQuery{Status: "ok"}, []traceID{t2}},
		{"min duration", traceQuery{MinDuration: 10 * time.Millisecond}, []traceID{t1}},
		{"max duration", traceQuery{Service: "orders", MaxDuration: 10 * time.Millisecond}, []traceID{t2}},
		{"attribute", traceQuery{Attrs: []attrFilter{{"order.id", "o-2"}}}, []traceID{t2}},
		{"integer attribute", traceQuery{Attrs: []attrFilter{{"rows", "42"}}}, []traceID{t3}},
		// The filters hold for one span: the error span is not the edge span.
		{"one span meets all", traceQuery{Service: "edge", Status: "error"}, nil},
		{"attribute and service", traceQuery{Service: "edge", Attrs: []attrFilter{{"order.id", "o-1"}}}, nil},
		{"unknown service", traceQuery{Service: "nope"}, nil},
		{"time range excludes", traceQuery{From: testEpoch.Add(time.Second)}, nil},
		{"time range includes", traceQuery{From: testEpoch, To: testEpoch}, []traceID{t1, t2, t3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := s.searchTraces(tc.q)
			if got := ids(res.Traces); !slices.Equal(got, tc.want) {
				t.Errorf("searchTraces(%+v) = %v, want %v", tc.q, got, tc.want)
			}
		})
	}
	if res := s.searchTraces(traceQuery{Attrs: []attrFilter{{"order.id", "o-2"}}}); !res.Indexed || res.Scanned != 1 {
		t.Errorf("attribute search: indexed %v scanned %d, want the index to pick 1 trace", res.Indexed, res.Scanned)
	}
	if res := s.searchTraces(traceQuery{Limit: 2}); len(res.Traces) != 2 || res.Scanned != 2 {
		t.Errorf("limit 2: %d traces, %d scanned; want 2 and 2 (newest first, stop at the limit)", len(res.Traces), res.Scanned)
	}
}

// TestSearchIndexMatchesScan checks, on random traces with evictions, late
// spans and retries, that every indexed search returns exactly what a
// plain scan of the stored traces finds.
func TestSearchIndexMatchesScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	s := newStore(1500, 10, 10)
	s.index.sweepAt = 500 // sweep often
	services := []string{"edge", "orders", "payments", "stock"}
	ops := []string{"a", "b", "c"}
	var live []traceID
	for n := range 2000 {
		var id traceID
		if len(live) > 0 && rng.IntN(4) == 0 {
			id = live[rng.IntN(len(live))] // a late span of an older trace
		} else {
			id[0], id[1], id[15] = byte(n>>8), byte(n), 1
			live = append(live, id)
		}
		var batch []*span
		for range 1 + rng.IntN(4) {
			code := "unset"
			if rng.IntN(10) == 0 {
				code = "error"
			}
			sp := searchSpan(id, byte(1+rng.IntN(12)), 0, services[rng.IntN(len(services))], ops[rng.IntN(len(ops))],
				time.Duration(1+rng.IntN(100))*time.Millisecond, code, "k", fmt.Sprint(rng.IntN(20)))
			batch = append(batch, sp)
		}
		s.addSpans(batch, 0)
	}
	if s.spanStats.Evicted == 0 {
		t.Fatal("no evictions: the test does not exercise the index's dead entries")
	}
	queries := []traceQuery{{}}
	for _, svc := range services {
		queries = append(queries, traceQuery{Service: svc}, traceQuery{Service: svc, Status: "error"})
		for _, op := range ops {
			queries = append(queries, traceQuery{Service: svc, Operation: op, MinDuration: 50 * time.Millisecond})
		}
	}
	for k := range 20 {
		queries = append(queries, traceQuery{Attrs: []attrFilter{{"k", fmt.Sprint(k)}}},
			traceQuery{Operation: ops[k%3], Attrs: []attrFilter{{"k", fmt.Sprint(k)}}})
	}
	for _, q := range queries {
		q.Limit = maxListLimit
		got := ids(s.searchTraces(q).Traces)
		var want []traceID
		for _, tr := range s.traces {
			if q.matchTrace(tr) {
				want = append(want, tr.id)
			}
		}
		slices.SortFunc(want, func(a, b traceID) int { return slices.Compare(a[:], b[:]) })
		if len(want) > maxListLimit {
			t.Fatalf("query %+v matches %d traces, over the limit; shrink the test", q, len(want))
		}
		if !slices.Equal(got, want) {
			t.Errorf("query %+v: index found %d traces, a scan %d", q, len(got), len(want))
		}
	}
	// Sweeps keep the index proportional to what is stored.
	if s.index.entries > 20*s.spanCount {
		t.Errorf("index holds %d entries for %d spans: dead entries are not swept", s.index.entries, s.spanCount)
	}
}

func TestParseTraceQuery(t *testing.T) {
	q, err := parseTraceQuery(url.Values{
		"service": {"orders"}, "operation": {"place"}, "status": {"error"},
		"min_duration": {"250ms"}, "max_duration": {"2s"}, "attr": {"order.id=o=1", "k=v"},
		"from": {"2026-01-02T15:04:05Z"}, "to": {"1767366245000"}, "limit": {"7"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if q.Service != "orders" || q.Operation != "place" || q.Status != "error" || q.MinDuration != 250*time.Millisecond ||
		q.MaxDuration != 2*time.Second || q.Limit != 7 || len(q.Attrs) != 2 || q.Attrs[0] != (attrFilter{"order.id", "o=1"}) ||
		!q.From.Equal(time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)) || q.To.UnixMilli() != 1767366245000 {
		t.Errorf("parseTraceQuery = %+v", q)
	}
	for _, tc := range []struct {
		v    url.Values
		want string
	}{
		{url.Values{"status": {"bad"}}, `status "bad"`},
		{url.Values{"min_duration": {"fast"}}, `min_duration "fast"`},
		{url.Values{"max_duration": {"-1s"}}, `max_duration "-1s"`},
		{url.Values{"min_duration": {"2s"}, "max_duration": {"1s"}}, "below min_duration"},
		{url.Values{"attr": {"novalue"}}, `attr "novalue"`},
		{url.Values{"attr": {"=v"}}, `attr "=v"`},
		{url.Values{"from": {"yesterday"}}, `from "yesterday"`},
		{url.Values{"from": {"2000"}, "to": {"1000"}}, "before from"},
		{url.Values{"limit": {"0"}}, `limit "0"`},
	} {
		if _, err := parseTraceQuery(tc.v); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseTraceQuery(%v) error = %v, want one naming %q", tc.v, err, tc.want)
		}
	}
}

func TestQueryLogs(t *testing.T) {
	s := newStore(10, 100, 10)
	at := func(d time.Duration, r *logRecord) *logRecord { r.Time = testEpoch.Add(d); return r }
	info := at(0, &logRecord{Service: "orders", SeverityNumber: 9, Body: "order placed", Attributes: attrs{{"order.id", "o-1"}}, TraceID: tid(1)})
	warn := at(time.Second, &logRecord{Service: "orders", SeverityNumber: 13, SeverityText: "WARN", Body: "Stock LOW"})
	errRec := at(2*time.Second, &logRecord{Service: "payments", SeverityNumber: 17, Body: map[string]any{"msg": "card declined"}, EventName: "payment.failed"})
	s.addLogs([]*logRecord{info, warn, errRec}, 0)
	for _, tc := range []struct {
		v    url.Values
		want []*logRecord
	}{
		{url.Values{}, []*logRecord{errRec, warn, info}},
		{url.Values{"service": {"orders"}}, []*logRecord{warn, info}},
		{url.Values{"min_severity": {"warn"}}, []*logRecord{errRec, warn}},
		{url.Values{"min_severity": {"17"}}, []*logRecord{errRec}},
		{url.Values{"text": {"stock low"}}, []*logRecord{warn}},
		{url.Values{"text": {"DECLINED"}}, []*logRecord{errRec}},
		{url.Values{"text": {"payment.failed"}}, []*logRecord{errRec}},
		{url.Values{"attr": {"order.id=o-1"}}, []*logRecord{info}},
		{url.Values{"trace_id": {tid(1).String()}}, []*logRecord{info}},
		{url.Values{"from": {testEpoch.Add(time.Second).Format(time.RFC3339Nano)}}, []*logRecord{errRec, warn}},
		{url.Values{"to": {testEpoch.Format(time.RFC3339Nano)}}, []*logRecord{info}},
		{url.Values{"limit": {"1"}}, []*logRecord{errRec}},
	} {
		q, err := parseLogQuery(tc.v)
		if err != nil {
			t.Fatalf("parseLogQuery(%v): %v", tc.v, err)
		}
		if got := s.queryLogs(q); !slices.Equal(got, tc.want) {
			t.Errorf("queryLogs(%v) = %d records, want %d", tc.v, len(got), len(tc.want))
		}
	}
	for _, bad := range []url.Values{{"min_severity": {"loud"}}, {"min_severity": {"25"}}, {"trace_id": {"xyz"}}, {"attr": {"x"}}} {
		if _, err := parseLogQuery(bad); err == nil {
			t.Errorf("parseLogQuery(%v) accepted bad input", bad)
		}
	}
}
