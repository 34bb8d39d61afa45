package console

import (
	"math"
	"testing"
	"time"
)

func TestHistBuckets(t *testing.T) {
	prev := -1
	for _, d := range []time.Duration{0, time.Microsecond, 7 * time.Microsecond, 8 * time.Microsecond, 15 * time.Microsecond,
		16 * time.Microsecond, 100 * time.Microsecond, time.Millisecond, 37 * time.Millisecond, time.Second, time.Hour, 18 * time.Hour} {
		i := histIndex(d)
		if i <= prev || i >= redHist {
			t.Errorf("histIndex(%v) = %d after %d: want strictly increasing below %d", d, i, prev, redHist)
		}
		prev = i
		if d < time.Microsecond {
			continue
		}
		// The bucket's midpoint is within half a bucket, 1/16, of d.
		if got := histValue(i); math.Abs(float64(got-d))/float64(d) > 1.0/16+1e-9 && got-d > time.Microsecond {
			t.Errorf("histValue(histIndex(%v)) = %v: more than 1/16 away", d, got)
		}
	}
	if i := histIndex(100 * 24 * time.Hour); i != redHist-1 {
		t.Errorf("histIndex(100 days) = %d, want the last bucket %d", i, redHist-1)
	}
	if i := histIndex(-time.Second); i != 0 {
		t.Errorf("histIndex(-1s) = %d, want 0", i)
	}
}

// redSpan is a request span of service svc and name op ending at end.
func redSpan(svc, op, kind string, parent bool, end time.Time, d time.Duration, isErr bool) *span {
	sp := &span{Service: svc, Name: op, Kind: kind, Start: end.Add(-d), End: end, Duration: d, Status: status{Code: "unset"}}
	if parent {
		sp.ParentSpanID = sid(9)
	}
	if isErr {
		sp.Status.Code = "error"
	}
	return sp
}

func TestRED(t *testing.T) {
	a := newREDAggregator()
	// now is late in its step, so a one-minute window (six steps, the
	// current one included) covers the whole last minute.
	now := time.Unix(1_700_000_009, 500_000_000)
	// 100 requests over the last minute: durations 1..100ms, every tenth an error.
	for i := range 100 {
		end := now.Add(-time.Duration(i) * 600 * time.Millisecond)
		a.observe(redSpan("orders", "place", "server", true, end, time.Duration(i+1)*time.Millisecond, i%10 == 0))
	}
	// Not requests: an internal child and a client call.
	a.observe(redSpan("orders", "validate", "internal", true, now, time.Millisecond, false))
	a.observe(redSpan("orders", "GET stock", "client", true, now, time.Millisecond, false))
	// Requests: a root of any kind, and a consumer.
	a.observe(redSpan("edge", "tick", "internal", false, now, time.Millisecond, false))
	a.observe(redSpan("orders", "process events", "consumer", true, now, time.Millisecond, false))
	// Too old for the window: dropped from RED, whatever the store keeps.
	a.observe(redSpan("orders", "place", "server", true, now.Add(-2*redWindow), time.Millisecond, false))

	s := &store{red: a}
	svcs := s.servicesRED(now, time.Minute)
	if len(svcs) != 2 || svcs[0].Service != "edge" || svcs[1].Service != "orders" {
		t.Fatalf("servicesRED = %+v, want edge and orders", svcs)
	}
	o := svcs[1]
	if o.Count != 101 || o.Errors != 10 {
		t.Errorf("orders: count %d errors %d, want 101 and 10", o.Count, o.Errors)
	}
	near := func(got, want time.Duration) bool {
		return math.Abs(float64(got-want)) <= float64(want)/16+float64(time.Microsecond)
	}
	ops := s.operationsRED("orders", now, time.Minute)
	if len(ops) != 2 || ops[0].Operation != "place" || ops[1].Operation != "process events" {
		t.Fatalf("operationsRED = %+v, want place and process events", ops)
	}
	place := ops[0]
	if place.Count != 100 || place.ErrorRatio != 0.1 || !near(place.P50, 50*time.Millisecond) ||
		!near(place.P95, 95*time.Millisecond) || !near(place.P99, 99*time.Millisecond) {
		t.Errorf("place = %+v, want 100 requests, 10%% errors, p50 50ms, p95 95ms, p99 99ms (±1/16)", place)
	}
	// 100 requests over a one-minute window (six steps) is 100/60 per second.
	if math.Abs(place.Rate-100.0/60) > 1e-9 {
		t.Errorf("place rate = %v, want %v", place.Rate, 100.0/60)
	}

	series := s.redSeries("orders", "place", now, time.Minute, 20*time.Second)
	if len(series) != 3 {
		t.Fatalf("redSeries: %d points, want 3 of 20s", len(series))
	}
	var total uint64
	for i, p := range series {
		total += p.Count
		if i > 0 && p.Time.Sub(series[i-1].Time) != 20*time.Second {
			t.Errorf("point %d at %v, %v after the previous; want 20s", i, p.Time, p.Time.Sub(series[i-1].Time))
		}
	}
	if last := series[len(series)-1]; now.Before(last.Time) || !now.Before(last.Time.Add(20*time.Second)) {
		t.Errorf("last point starts %v: want the step holding now %v", last.Time, now)
	}
	if total != 100 {
		t.Errorf("series counts sum to %d, want 100", total)
	}
	if got := s.redSeries("orders", "", now, time.Minute, redStep); len(got) != 6 {
		t.Errorf("whole-service series: %d points, want 6", len(got))
	}
}

func TestREDBucketReuse(t *testing.T) {
	a := newREDAggregator()
	t0 := time.Unix(1_700_000_000, 0)
	a.observe(redSpan("s", "op", "server", false, t0, time.Millisecond, true))
	// One full ring later the same bucket is reused for the new step.
	a.observe(redSpan("s", "op", "server", false, t0.Add(redWindow), 2*time.Millisecond, false))
	// A span for the old step arriving now is dropped, not merged.
	a.observe(redSpan("s", "op", "server", false, t0, time.Millisecond, true))
	s := &store{red: a}
	got := s.operationsRED("s", t0.Add(redWindow), redWindow)
	if len(got) != 1 || got[0].Count != 1 || got[0].Errors != 0 {
		t.Errorf("after reuse = %+v, want 1 request without error", got)
	}
}

func TestREDOperationBound(t *testing.T) {
	a := newREDAggregator()
	now := time.Unix(1_700_000_000, 0)
	for i := range maxREDOperations + 10 {
		a.observe(redSpan("s", "GET /item/"+string(rune('a'+i%26))+time.Duration(i).String(), "server", false, now, time.Millisecond, false))
	}
	if len(a.ops) != maxREDOperations+1 {
		t.Errorf("%d operations tracked, want the bound %d plus %q", len(a.ops), maxREDOperations, otherOperation)
	}
	if agg := a.ops[redKey{"s", otherOperation}]; agg == nil {
		t.Errorf("no %q operation", otherOperation)
	}
}

func TestREDQuantilesWithinExtremes(t *testing.T) {
	a := newREDAggregator()
	now := time.Unix(1_700_000_005, 0)
	a.observe(redSpan("s", "op", "server", false, now, 100*time.Millisecond, false))
	s := &store{red: a}
	got := s.operationsRED("s", now, time.Minute)
	if len(got) != 1 || got[0].P50 != 100*time.Millisecond || got[0].P99 != 100*time.Millisecond {
		t.Errorf("one 100ms request: %+v, want every percentile exactly 100ms (its bucket's midpoint is 102.4ms)", got)
	}
}
