package console

import (
	"math"
	"net/url"
	"strings"
	"testing"
	"time"

	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
)

// histogramRequest exports a cumulative latency histogram of service svc
// with bounds 10, 20, 50 (ms), one point per cumulative bucket-count list,
// 10 s apart, the last with an exemplar of trace 0xab.
func histogramRequest(svc string, cumulative ...[]uint64) *colmetricspb.ExportMetricsServiceRequest {
	const epoch = uint64(1_700_000_000_000_000_000)
	h := &metricspb.Histogram{AggregationTemporality: metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE}
	for i, counts := range cumulative {
		var n uint64
		for _, c := range counts {
			n += c
		}
		p := &metricspb.HistogramDataPoint{
			StartTimeUnixNano: epoch,
			TimeUnixNano:      epoch + uint64(i+1)*10e9,
			Count:             n,
			ExplicitBounds:    []float64{10, 20, 50},
			BucketCounts:      counts,
			Attributes:        []*commonpb.KeyValue{strAttr("route", "/orders")},
		}
		if i == len(cumulative)-1 {
			p.Exemplars = []*metricspb.Exemplar{{
				TimeUnixNano: p.TimeUnixNano, Value: &metricspb.Exemplar_AsDouble{AsDouble: 42},
				TraceId: fill[[]byte](0xab, 16), SpanId: fill[[]byte](0xcd, 8),
			}, {Value: &metricspb.Exemplar_AsDouble{AsDouble: math.NaN()}}}
		}
		h.DataPoints = append(h.DataPoints, p)
	}
	counter := &metricspb.Sum{
		AggregationTemporality: metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE, IsMonotonic: true,
		DataPoints: []*metricspb.NumberDataPoint{
			{StartTimeUnixNano: epoch, TimeUnixNano: epoch + 10e9, Value: &metricspb.NumberDataPoint_AsInt{AsInt: 100}},
			{StartTimeUnixNano: epoch, TimeUnixNano: epoch + 20e9, Value: &metricspb.NumberDataPoint_AsInt{AsInt: 300}},
			// A restart: the counter starts again at 30 s.
			{StartTimeUnixNano: epoch + 30e9, TimeUnixNano: epoch + 40e9, Value: &metricspb.NumberDataPoint_AsInt{AsInt: 50}},
		},
	}
	return &colmetricspb.ExportMetricsServiceRequest{ResourceMetrics: []*metricspb.ResourceMetrics{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{strAttr("service.name", svc)}},
		ScopeMetrics: []*metricspb.ScopeMetrics{{Metrics: []*metricspb.Metric{
			{Name: "http.server.request.duration", Unit: "ms", Data: &metricspb.Metric_Histogram{Histogram: h}},
			{Name: "orders.placed", Data: &metricspb.Metric_Sum{Sum: counter}},
		}}},
	}}}
}

func TestMetricSeries(t *testing.T) {
	c := New(Options{})
	// Cumulative: 10 observations in (10, 20]; then 100 more, all in (20, 50].
	if rec := postProto(t, c, "/v1/metrics", histogramRequest("orders", []uint64{0, 10, 0, 0}, []uint64{0, 10, 100, 0})); rec.Code != 200 {
		t.Fatalf("export = %d %s", rec.Code, rec.Body)
	}
	var list struct{ Metrics []instrument }
	getJSON(t, c, "/api/metrics?service=orders", 200, &list)
	if len(list.Metrics) != 2 || list.Metrics[0].Name != "http.server.request.duration" || list.Metrics[0].Series != 1 ||
		list.Metrics[0].Points != 2 || list.Metrics[1].Kind != kindSum {
		t.Fatalf("/api/metrics = %+v", list.Metrics)
	}

	in, series, ok := c.store.metricSeriesOf("orders", "http.server.request.duration", []attrFilter{{"route", "/orders"}})
	if !ok || len(series) != 1 || len(series[0].Points) != 2 || in.Kind != kindHistogram {
		t.Fatalf("metricSeriesOf = %+v %+v %v", in, series, ok)
	}
	p0, p1 := series[0].Points[0], series[0].Points[1]
	// First point: 10 observations in (10, 20]: the median interpolates to 15.
	if p0.Count != 10 || math.Abs(p0.P50-15) > 1e-9 {
		t.Errorf("first point: count %d p50 %v, want 10 and 15", p0.Count, p0.P50)
	}
	// Second point, as a delta: 100 observations in (20, 50]; p99 at rank 99
	// of 100 is 20 + 30 × 0.99.
	if p1.Count != 100 || math.Abs(p1.P50-35) > 1e-9 || math.Abs(p1.P99-(20+30*0.99)) > 1e-9 {
		t.Errorf("second point: count %d p50 %v p99 %v, want 100, 35, 49.7", p1.Count, p1.P50, p1.P99)
	}
	if len(p1.Exemplars) != 1 || p1.Exemplars[0].TraceID != tid(0xab) || p1.Exemplars[0].Value != 42 {
		t.Errorf("exemplars = %+v, want one of trace ab with value 42 (the NaN one dropped)", p1.Exemplars)
	}
	if _, s, _ := c.store.metricSeriesOf("orders", "http.server.request.duration", []attrFilter{{"route", "/other"}}); len(s) != 0 {
		t.Errorf("filter /other: %d series, want none", len(s))
	}

	_, sums, _ := c.store.metricSeriesOf("orders", "orders.placed", nil)
	rates := sums[0].Points
	if len(rates) != 3 || !math.IsNaN(rates[0].Rate) || rates[1].Rate != 20 || rates[2].Rate != 5 {
		t.Errorf("counter rates = %v %v %v, want NaN, 20/s, and 5/s after the reset", rates[0].Rate, rates[1].Rate, rates[2].Rate)
	}

	// The API serves the same, with NaN as a string.
	var got struct {
		Instrument instrument
		Series     []struct {
			Points []map[string]any
		}
	}
	getJSON(t, c, "/api/metrics/series?"+url.Values{"service": {"orders"}, "name": {"orders.placed"}}.Encode(), 200, &got)
	if len(got.Series) != 1 || got.Series[0].Points[0]["rate"] != "NaN" || got.Series[0].Points[1]["rate"] != 20.0 {
		t.Errorf("/api/metrics/series = %+v", got)
	}
	getJSON(t, c, "/api/metrics/series?service=orders&name=nope", 404, nil)
	getJSON(t, c, "/api/metrics/series?service=orders", 400, nil)
	getJSON(t, c, "/api/metrics/series?service=orders&name=x&attr=bad", 400, nil)
}

func TestBucketQuantile(t *testing.T) {
	f := func(v float) *float { return &v }
	p := metricPoint{Bounds: []float{10, 20}}
	for _, tc := range []struct {
		name   string
		p      metricPoint
		counts []uint64
		q      float64
		want   float64
	}{
		{"empty", p, []uint64{0, 0, 0}, 0.5, math.NaN()},
		{"first bucket from zero", p, []uint64{10, 0, 0}, 0.5, 5},
		{"first bucket from min", metricPoint{Bounds: p.Bounds, Min: f(6)}, []uint64{10, 0, 0}, 0.5, 8},
		{"overflow bucket without max", p, []uint64{0, 0, 4}, 0.99, 20},
		{"overflow bucket up to max", metricPoint{Bounds: p.Bounds, Max: f(60)}, []uint64{0, 0, 4}, 0.5, 40},
		{"wrong bucket count", p, []uint64{1, 2}, 0.5, math.NaN()},
	} {
		got := bucketQuantile(tc.p, tc.counts, tc.q)
		if (math.IsNaN(tc.want) != math.IsNaN(got)) || (!math.IsNaN(tc.want) && math.Abs(got-tc.want) > 1e-9) {
			t.Errorf("%s: bucketQuantile = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestEndpointCriticalPath(t *testing.T) {
	s := newStore(10_000, 10, 10)
	// 100 traces of edge "GET /orders": the root waits on db for i ms,
	// then on cache for 1 ms. The slowest trace is dominated by db.
	for i := range 100 {
		id := tid(0)
		id[0], id[15] = byte(i), 1
		root := searchSpan(id, 1, 0, "edge", "GET /orders", time.Duration(i+3)*time.Millisecond, "unset")
		db := searchSpan(id, 2, 1, "db", "SELECT", time.Duration(i+1)*time.Millisecond, "unset")
		cache := searchSpan(id, 3, 1, "cache", "GET", time.Millisecond, "unset")
		db.Start = root.Start.Add(time.Millisecond)
		db.End = db.Start.Add(db.Duration)
		cache.Start = db.End
		cache.End = cache.Start.Add(cache.Duration)
		s.addSpans([]*span{root, db, cache}, 0)
	}
	// A trace rooted elsewhere, with a span of the same name deeper down.
	other := tid(0xee)
	s.addSpans([]*span{searchSpan(other, 1, 0, "cron", "tick", time.Second, "unset"),
		searchSpan(other, 2, 1, "edge", "GET /orders", time.Second, "unset")}, 0)

	ep := s.endpointCriticalPath("edge", "GET /orders", 1000)
	if ep.Traces != 100 {
		t.Fatalf("analysed %d traces, want the 100 rooted at edge GET /orders", ep.Traces)
	}
	if ep.P99 != 101*time.Millisecond || ep.P50 != 52*time.Millisecond {
		t.Errorf("p50 %v p99 %v, want 52ms and 101ms", ep.P50, ep.P99)
	}
	if len(ep.Slow) == 0 || ep.Slow[0].Service != "db" || len(ep.SlowTraces) != 2 {
		t.Errorf("slow = %+v (traces %v), want db first over the 2 traces at or above p99", ep.Slow, ep.SlowTraces)
	}
	var total time.Duration
	for _, pc := range ep.All {
		total += pc.SelfTime
	}
	// The paths tile each root, so their sum is the sum of root durations.
	if want := time.Duration(100*3+99*100/2) * time.Millisecond; total != want {
		t.Errorf("critical path time sums to %v, want %v", total, want)
	}
	if got := s.endpointCriticalPath("edge", "GET /orders", 10); got.Traces != 10 {
		t.Errorf("limit 10 analysed %d traces", got.Traces)
	}
	if got := s.endpointCriticalPath("edge", "nope", 10); got.Traces != 0 || got.All == nil {
		t.Errorf("unknown endpoint = %+v, want zero traces and empty lists", got)
	}
}

func TestAPIRED(t *testing.T) {
	c := New(Options{})
	now := time.Now()
	sp := redSpan("orders", "place", "server", false, now, 5*time.Millisecond, false)
	sp.TraceID, sp.SpanID = tid(1), sid(1)
	c.store.addSpans([]*span{sp}, 0)

	var all struct{ Services []redStats }
	getJSON(t, c, "/api/red?window=1m", 200, &all)
	if len(all.Services) != 1 || all.Services[0].Count != 1 || all.Services[0].Service != "orders" {
		t.Errorf("/api/red = %+v", all)
	}
	var ops struct{ Operations []redStats }
	getJSON(t, c, "/api/red/orders", 200, &ops)
	if len(ops.Operations) != 1 || ops.Operations[0].Operation != "place" {
		t.Errorf("/api/red/orders = %+v", ops)
	}
	var series struct{ Points []redPoint }
	getJSON(t, c, "/api/red/orders/series?operation=place&window=1m&step=30s", 200, &series)
	if len(series.Points) != 2 || series.Points[1].Count != 1 {
		t.Errorf("/api/red/orders/series = %+v, want 2 points, the last with the request", series)
	}
	for target, want := range map[string]string{
		"/api/red?window=1h":                               "at most",
		"/api/red?window=soon":                             "window",
		"/api/red/orders/series?step=-1s":                  "step",
		"/api/critical-path?service=orders":                "required",
		"/api/critical-path?service=a&operation=b&limit=0": "limit",
	} {
		rec := do(t, c.UIHandler(), "GET", target, "", nil)
		if rec.Code != 400 || !strings.Contains(rec.Body.String(), want) {
			t.Errorf("GET %s = %d %s, want 400 naming %q", target, rec.Code, rec.Body, want)
		}
	}
	var ep endpointPath
	getJSON(t, c, "/api/critical-path?service=orders&operation=place", 200, &ep)
	if ep.Traces != 1 || len(ep.All) != 1 {
		t.Errorf("/api/critical-path = %+v", ep)
	}
}
