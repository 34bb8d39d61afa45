package console

import (
	"io/fs"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"

	webconsole "github.com/cairnhq/cairn/web/console"
)

// evilService is a service name an attacker might send.
const evilService = `svc"><script>alert(1)</script>`

// recent moves the spans of req so the fixed epoch of traceRequest falls
// ago before now: RED only counts requests of the last minutes.
func recent(req *coltracepb.ExportTraceServiceRequest, ago time.Duration) *coltracepb.ExportTraceServiceRequest {
	const epoch = uint64(1_700_000_000_000_000_000)
	shift := uint64(time.Now().Add(-ago).UnixNano()) - epoch
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, sp := range ss.Spans {
				sp.StartTimeUnixNano += shift
				sp.EndTimeUnixNano += shift
			}
		}
	}
	return req
}

// seedPages posts recent traces of three services, one of them with a
// hostile name, and log records, to c.
func seedPages(t *testing.T, c *Console) {
	t.Helper()
	req := recent(traceRequest(
		testSpan{service: "gateway", trace: 0x01, id: 1, name: "GET /checkout", startMS: 0, durMS: 40, attrs: map[string]string{"http.route": "/checkout"}},
		testSpan{service: "order", trace: 0x01, id: 2, parent: 1, name: "PlaceOrder", startMS: 5, durMS: 30, err: true},
		testSpan{service: evilService, trace: 0x01, id: 3, parent: 2, name: "<img src=x onerror=alert(2)>", startMS: 10, durMS: 5},
		testSpan{service: "gateway", trace: 0x02, id: 4, name: "GET /health", startMS: 100, durMS: 1},
		testSpan{service: "gateway", trace: 0x03, id: 5, name: "GET /checkout", startMS: 200, durMS: 300, attrs: map[string]string{"http.route": "/checkout"}},
		testSpan{service: "order", trace: 0x03, id: 6, parent: 5, name: "PlaceOrder", startMS: 210, durMS: 280},
	), time.Minute)
	if rec := postProto(t, c, "/v1/traces", req); rec.Code != http.StatusOK {
		t.Fatalf("POST /v1/traces = %d", rec.Code)
	}
	now := uint64(time.Now().UnixNano())
	logs := &collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{strAttr("service.name", "order")}},
		ScopeLogs: []*logspb.ScopeLogs{{LogRecords: []*logspb.LogRecord{{
			TimeUnixNano:   now - uint64(time.Minute),
			SeverityNumber: logspb.SeverityNumber_SEVERITY_NUMBER_ERROR,
			Body:           strAttr("", "payment declined <b>hard</b>").Value,
			Attributes:     []*commonpb.KeyValue{strAttr("order.id", "o-42")},
			TraceId:        fill[[]byte](0x01, 16),
			SpanId:         fill[[]byte](2, 8),
		}, {
			TimeUnixNano:   now - uint64(30*time.Second),
			SeverityNumber: logspb.SeverityNumber_SEVERITY_NUMBER_INFO,
			Body:           strAttr("", "cache warmed").Value,
		}}}},
	}}}
	if rec := postProto(t, c, "/v1/logs", logs); rec.Code != http.StatusOK {
		t.Fatalf("POST /v1/logs = %d", rec.Code)
	}
}

// pageCase is a page request and what its answer must and must not hold.
type pageCase struct {
	target   string
	wantCode int
	want     []string // substrings of the body
	dontWant []string
}

func checkPages(t *testing.T, c *Console, tests []pageCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			rec := do(t, c.UIHandler(), http.MethodGet, tt.target, "", nil)
			body := rec.Body.String()
			if rec.Code != tt.wantCode {
				t.Fatalf("GET %s = %d, want %d\n%s", tt.target, rec.Code, tt.wantCode, body)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Errorf("GET %s: Content-Type %q, want text/html", tt.target, ct)
			}
			for _, s := range tt.want {
				if !strings.Contains(body, s) {
					t.Errorf("GET %s: body lacks %q", tt.target, s)
				}
			}
			for _, s := range append(tt.dontWant, "<script>alert", "<img src=x") {
				if strings.Contains(body, s) {
					t.Errorf("GET %s: body contains %q", tt.target, s)
				}
			}
		})
	}
}

func TestTraceSearchPage(t *testing.T) {
	c := New(Options{})
	seedPages(t, c)
	id1, id2, id3 := hexID(0x01, 16), hexID(0x02, 16), hexID(0x03, 16)
	link := func(id string) string { return `href="/traces/` + id + `"` }
	from := time.Now().Add(-2 * time.Minute).Local().Format("2006-01-02T15:04")
	checkPages(t, c, []pageCase{
		{"/", 200, []string{`id="trace-search"`, `id="trace-results"`, "3 traces, 3 scanned", link(id1), link(id2), link(id3), `http-equiv="refresh"`,
			`<option value="gateway">gateway</option>`, "svc&#34;&gt;&lt;script&gt;"}, nil},
		{"/?refresh=0", 200, []string{"Auto-refresh paused", link(id1)}, []string{`http-equiv="refresh"`}},
		{"/?service=gateway&operation=GET+%2Fcheckout", 200, []string{"2 traces", link(id1), link(id3), `value="gateway" selected`,
			`value="GET /checkout"`, `<datalist id="operations">`, "clear filters"}, []string{link(id2), `http-equiv="refresh"`}},
		{"/?status=error", 200, []string{"1 trace,", link(id1)}, []string{link(id3)}},
		{"/?min_duration=100ms", 200, []string{"1 trace,", link(id3)}, []string{link(id1), link(id2)}},
		{"/?max_duration=2ms&operation=GET+%2Fhealth", 200, []string{link(id2)}, []string{link(id1)}},
		{"/?attr=http.route%3D%2Fcheckout&attr=", 200, []string{"2 traces", `value="http.route=/checkout"`}, []string{link(id2)}},
		{"/?service=" + url.QueryEscape(evilService), 200, []string{link(id1), `svc&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" selected`}, []string{link(id3)}},
		{"/?from=" + url.QueryEscape(from) + "&to=" + url.QueryEscape(time.Now().Local().Format("2006-01-02T15:04:05")), 200, []string{"3 traces", `value="` + from + `:00"`}, nil},
		{"/?from=" + url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339)), 200, []string{"0 traces", "No stored trace matches"}, []string{link(id1)}},
		{"/?to=1700000000250", 200, []string{"0 traces", `value="` + time.UnixMilli(1700000000250).Local().Format("2006-01-02T15:04:05.000") + `"`}, []string{link(id1)}},
		{"/?limit=1", 200, []string{"1 trace,"}, nil},
		{"/?min_duration=abc", 400, []string{`id="form-error"`, "min_duration &#34;abc&#34;", `value="abc"`}, []string{`id="trace-results"`}},
		{"/?max_duration=1ms&min_duration=2ms", 400, []string{"max_duration 1ms is below min_duration"}, nil},
		{"/?status=bogus", 400, []string{"status &#34;bogus&#34;"}, nil},
		{"/?attr=novalue", 400, []string{"attr &#34;novalue&#34;: want key=value", `value="novalue"`}, nil},
		{"/?from=yesterday", 400, []string{"from &#34;yesterday&#34;"}, nil},
		{"/?from=2026-01-02T10:00&to=2026-01-01T10:00", 400, []string{"to 2026-01-01"}, nil},
		{"/?limit=0", 400, []string{"limit &#34;0&#34;"}, nil},
		{"/?attr=" + url.QueryEscape(`"><script>alert(1)</script>`), 400, []string{`&#34;&gt;&lt;script&gt;`}, nil},
	})
}

func TestLogsPage(t *testing.T) {
	c := New(Options{})
	seedPages(t, c)
	id1 := hexID(0x01, 16)
	checkPages(t, c, []pageCase{
		{"/logs", 200, []string{`id="log-search"`, `id="log-results"`, "2 records", "payment declined &lt;b&gt;hard&lt;/b&gt;", "cache warmed",
			`href="/traces/` + id1 + `#span-` + hexID(2, 8) + `"`, `class="log-row sev-error"`, `class="log-row sev-info"`, "order.id=o-42"}, nil},
		{"/logs?min_severity=error", 200, []string{"1 record,", "payment declined", `value="error" selected`}, []string{"cache warmed"}},
		{"/logs?text=WARMED", 200, []string{"cache warmed"}, []string{"payment declined"}},
		{"/logs?trace_id=" + id1, 200, []string{"payment declined"}, []string{"cache warmed"}},
		{"/logs?attr=order.id%3Do-42", 200, []string{"payment declined"}, []string{"cache warmed"}},
		{"/logs?service=gateway", 200, []string{"0 records", "No stored log record matches"}, []string{`id="log-results"`}},
		{"/logs?limit=1", 200, []string{"1 record,", "cache warmed"}, []string{"payment declined"}},
		{"/logs?trace_id=xyz", 400, []string{`id="form-error"`, "trace id &#34;xyz&#34;"}, []string{`id="log-results"`}},
		{"/logs?min_severity=loud", 400, []string{"min_severity &#34;loud&#34;"}, nil},
		{"/logs?to=soon", 400, []string{"to &#34;soon&#34;"}, nil},
		{"/logs?limit=5000", 400, []string{"limit &#34;5000&#34;"}, nil},
	})
}

func TestServicesPages(t *testing.T) {
	c := New(Options{})
	seedPages(t, c)
	evilPath := "/services/" + url.PathEscape(evilService)
	checkPages(t, c, []pageCase{
		{"/services", 200, []string{`id="service-map"`, `id="service-red"`, `href="/services/gateway"`, `href="/services/order"`,
			`href="/services/svc%22%3E%3Cscript%3Ealert%281%29%3C%2Fscript%3E"`, "<title>gateway → order: 2 calls, 1 errors",
			`class="edge err"`, `href="/?service=gateway&amp;status=error"`}, nil},
		{"/services/gateway", 200, []string{`id="service-charts"`, `class="chart"`, `id="operation-red"`, "GET /checkout", "GET /health",
			`href="/?service=gateway&amp;operation=GET%20%2fcheckout"`, `href="/critical-path?service=gateway&amp;operation=GET%20%2fcheckout"`,
			"<polyline", "<title>p99</title>"}, nil},
		{"/services/order", 200, []string{"PlaceOrder", `class="op-row err"`, "50%"}, nil},
		{evilPath, 200, []string{"&lt;img src=x onerror=alert(2)&gt;"}, nil},
		{"/services/nobody", 404, []string{"service &#34;nobody&#34; not found"}, nil},
	})

	var g serviceGraph
	getJSON(t, c, "/api/service-map", 200, &g)
	if len(g.Services) != 3 || len(g.Edges) != 2 || g.Edges[0].From != "gateway" || g.Edges[0].Calls != 2 || g.Edges[0].Errors != 1 {
		t.Errorf("/api/service-map = %+v, want 3 services and gateway → order with 2 calls, 1 error first", g)
	}
}

func TestStatsPage(t *testing.T) {
	c := New(Options{})
	seedPages(t, c)
	checkPages(t, c, []pageCase{
		{"/stats", 200, []string{`id="stats"`, "<td>Spans</td><td class=\"num\">6</td>", "Log records"}, nil},
	})
}

// TestNavigation: every page links to every section.
func TestNavigation(t *testing.T) {
	c := New(Options{})
	for _, target := range []string{"/", "/logs", "/services", "/stats", "/nope"} {
		body := do(t, c.UIHandler(), http.MethodGet, target, "", nil).Body.String()
		for _, href := range []string{`href="/"`, `href="/services"`, `href="/logs"`, `href="/metrics"`, `href="/stats"`} {
			if !strings.Contains(body, href) {
				t.Errorf("GET %s: navigation lacks %s", target, href)
			}
		}
	}
}

func TestFromDatetimeLocal(t *testing.T) {
	local := func(s string) string {
		tm, err := time.ParseInLocation("2006-01-02T15:04:05.999", s, time.Local)
		if err != nil {
			t.Fatal(err)
		}
		return tm.Format(time.RFC3339Nano)
	}
	tests := []struct{ in, want string }{
		{"2026-01-02T15:04", local("2026-01-02T15:04:00")},
		{"2026-01-02T15:04:05", local("2026-01-02T15:04:05")},
		{"2026-01-02T15:04:05.250", local("2026-01-02T15:04:05.250")},
		{"2026-01-02T15:04:05Z", "2026-01-02T15:04:05Z"},
		{"1700000000000", "1700000000000"},
		{"garbage", "garbage"},
	}
	for _, tt := range tests {
		if got := fromDatetimeLocal(tt.in); got != tt.want {
			t.Errorf("fromDatetimeLocal(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// seedMetrics posts a gauge, a cumulative monotonic sum and a cumulative
// histogram with an exemplar, each over three points and two attribute
// sets where it matters, plus a metric with a hostile name.
func seedMetrics(t *testing.T, c *Console) {
	t.Helper()
	now := uint64(time.Now().Add(-time.Minute).UnixNano())
	at := func(s int) uint64 { return now + uint64(s)*uint64(time.Second) }
	num := func(s int, v float64, attrs ...*commonpb.KeyValue) *metricspb.NumberDataPoint {
		return &metricspb.NumberDataPoint{StartTimeUnixNano: at(0), TimeUnixNano: at(s), Value: &metricspb.NumberDataPoint_AsDouble{AsDouble: v}, Attributes: attrs}
	}
	hist := func(s int, count uint64, buckets []uint64, ex ...*metricspb.Exemplar) *metricspb.HistogramDataPoint {
		return &metricspb.HistogramDataPoint{StartTimeUnixNano: at(0), TimeUnixNano: at(s), Count: count,
			ExplicitBounds: []float64{0.01, 0.1, 1}, BucketCounts: buckets, Exemplars: ex}
	}
	req := &colmetricspb.ExportMetricsServiceRequest{ResourceMetrics: []*metricspb.ResourceMetrics{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{strAttr("service.name", "order")}},
		ScopeMetrics: []*metricspb.ScopeMetrics{{Metrics: []*metricspb.Metric{
			{Name: "queue.depth", Unit: "{item}", Description: "items waiting", Data: &metricspb.Metric_Gauge{Gauge: &metricspb.Gauge{DataPoints: []*metricspb.NumberDataPoint{
				num(0, 3, strAttr("queue", "a")), num(10, 5, strAttr("queue", "a")), num(20, 4, strAttr("queue", "a")),
				num(0, 1, strAttr("queue", "b")), num(10, 2, strAttr("queue", "b")),
			}}}},
			{Name: "orders.placed", Data: &metricspb.Metric_Sum{Sum: &metricspb.Sum{
				AggregationTemporality: metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE, IsMonotonic: true,
				DataPoints: []*metricspb.NumberDataPoint{num(10, 10), num(20, 30), num(30, 60)},
			}}},
			{Name: "http.server.request.duration", Unit: "s", Data: &metricspb.Metric_Histogram{Histogram: &metricspb.Histogram{
				AggregationTemporality: metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE,
				DataPoints: []*metricspb.HistogramDataPoint{
					hist(10, 10, []uint64{5, 5, 0, 0}),
					hist(20, 30, []uint64{5, 15, 10, 0}, &metricspb.Exemplar{TimeUnixNano: at(15), Value: &metricspb.Exemplar_AsDouble{AsDouble: 0.5},
						TraceId: fill[[]byte](0x01, 16), SpanId: fill[[]byte](2, 8)}),
				},
			}}},
			{Name: `m"><script>alert(1)</script>/x`, Data: &metricspb.Metric_Gauge{Gauge: &metricspb.Gauge{DataPoints: []*metricspb.NumberDataPoint{
				num(0, 1, strAttr("k", "<img src=x onerror=alert(3)>")),
			}}}},
		}}},
	}}}
	if rec := postProto(t, c, "/v1/metrics", req); rec.Code != http.StatusOK {
		t.Fatalf("POST /v1/metrics = %d %s", rec.Code, rec.Body)
	}
}

func TestMetricsPages(t *testing.T) {
	c := New(Options{})
	seedMetrics(t, c)
	evil := "/metrics/order/" + url.PathEscape(`m"><script>alert(1)</script>/x`)
	checkPages(t, c, []pageCase{
		{"/metrics", 200, []string{`id="metric-list"`, "4 instruments", `href="/metrics/order/queue.depth"`, "items waiting", "{item}",
			"gauge", "sum · cumulative · monotonic", `href="/metrics/order/m%22%3E%3Cscript%3Ealert%281%29%3C%2Fscript%3E%2Fx"`,
			"<td class=\"num\">2</td>"}, nil},
		{"/metrics?service=gateway", 200, []string{"0 instruments", "No metrics stored for gateway"}, []string{`id="metric-list"`}},
		{"/metrics/order/queue.depth", 200, []string{`id="metric-series"`, "queue=a", "queue=b", `class="chart"`, "Value", "2 attribute sets, 5 points"}, []string{"Rate per second"}},
		{"/metrics/order/queue.depth?attr=queue%3Db", 200, []string{"queue=b", `value="queue=b"`}, []string{"queue=a"}},
		{"/metrics/order/queue.depth?attr=queue%3Dz", 200, []string{"No attribute set matches"}, nil},
		{"/metrics/order/orders.placed", 200, []string{"Rate per second", "<polyline"}, nil},
		{"/metrics/order/http.server.request.duration", 200, []string{"p50, p95, p99 (s)", "Observations per point", "<title>p99</title>",
			`href="/traces/` + hexID(0x01, 16) + `#span-` + hexID(2, 8) + `"`, "1 exemplar"}, nil},
		{evil, 200, []string{"k=&lt;img src=x onerror=alert(3)&gt;", "m&#34;&gt;&lt;script&gt;"}, nil},
		{"/metrics/order/nope", 404, []string{"metric &#34;nope&#34; of service &#34;order&#34; not found"}, nil},
		{"/metrics/order/queue.depth?attr=bad", 400, []string{`id="form-error"`, "attr &#34;bad&#34;: want key=value"}, []string{`id="metric-series"`}},
	})
}

func TestCriticalPathPage(t *testing.T) {
	c := New(Options{})
	seedPages(t, c)
	checkPages(t, c, []pageCase{
		{"/critical-path", 200, []string{`id="critical-path-form"`, `<option value="gateway">`}, []string{`id="critical-path-all"`}},
		{"/critical-path?service=gateway", 200, []string{`id="critical-path-operations"`, `href="/critical-path?service=gateway&amp;operation=GET%20%2fcheckout"`}, nil},
		{"/critical-path?service=gateway&operation=GET+%2Fcheckout", 200, []string{`id="critical-path-summary"`, `id="critical-path-all"`, `id="critical-path-slow"`,
			"<dt>Traces analysed</dt><dd>2</dd>", "p99 300ms", "PlaceOrder", `class="cp-bar"`, `href="/traces/` + hexID(0x03, 16) + `"`, "min_duration=300ms"}, nil},
		{"/critical-path?service=gateway&operation=nothing", 200, []string{`id="critical-path-empty"`}, []string{`id="critical-path-all"`}},
		{"/critical-path?service=gateway&operation=x&limit=-1", 400, []string{`id="form-error"`, "limit &#34;-1&#34;"}, nil},
	})
	// The slowest trace (300ms) spent 280ms in PlaceOrder: 93.3% of its path.
	body := do(t, c.UIHandler(), http.MethodGet, "/critical-path?service=gateway&operation=GET+%2Fcheckout", "", nil).Body.String()
	slow := body[strings.Index(body, `id="critical-path-slow"`):strings.Index(body, `id="critical-path-all"`)]
	if !strings.Contains(slow, `<td class="op">PlaceOrder</td>`) || !strings.Contains(slow, "<td class=\"num\">93.3</td>") || !strings.Contains(slow, "width: 93.333%") {
		t.Errorf("slow-trace bars lack PlaceOrder at 93.3%%:\n%s", slow)
	}
}

// TestRedChartsNoRequests: when no step of the window has a request, all
// three RED charts say so; one request gives every chart something to
// draw.
func TestRedChartsNoRequests(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	var points []redPoint
	for i := range 90 {
		points = append(points, redPoint{Time: now.Add(-time.Duration(90-i) * redPageStep)})
	}
	rate, errRatio, latency := redCharts(points, now)
	for _, ch := range []lineChart{rate, errRatio, latency} {
		if svg := string(ch.SVG()); !strings.Contains(svg, ">"+noRequests+"</text>") || strings.Contains(svg, "<polyline") {
			t.Errorf("%s chart without requests draws:\n%s", ch.Title, svg)
		}
	}

	points[45].Count, points[45].Rate, points[45].P50, points[45].P99 = 1, 0.1, time.Millisecond, time.Millisecond
	rate, errRatio, latency = redCharts(points, now)
	for _, ch := range []lineChart{rate, errRatio, latency} {
		if svg := string(ch.SVG()); strings.Contains(svg, noRequests) {
			t.Errorf("%s chart with a request says %q:\n%s", ch.Title, noRequests, svg)
		}
	}
}

// TestTickStyleScoped: the waterfall's .tick rules apply only inside its
// header, and charts draw no element of class tick, so the waterfall's
// absolutely positioned labels never restyle a chart's tick lines.
func TestTickStyleScoped(t *testing.T) {
	css, err := fs.ReadFile(webconsole.FS, "static/console.css")
	if err != nil {
		t.Fatal(err)
	}
	rules := regexp.MustCompile(`(?s)/\*.*?\*/`).ReplaceAllString(string(css), "")
	tick := regexp.MustCompile(`\.tick\b`)
	for _, rule := range strings.Split(rules, "}") {
		selectors, _, _ := strings.Cut(rule, "{")
		for _, sel := range strings.Split(selectors, ",") {
			if sel = strings.TrimSpace(sel); tick.MatchString(sel) && !strings.HasPrefix(sel, ".wf-head ") {
				t.Errorf("console.css selector %q matches .tick outside .wf-head", sel)
			}
		}
	}
	t0 := time.Unix(1_700_000_000, 0)
	ch := lineChart{Series: []chartSeries{{Name: "v", Points: []chartPoint{{t0, 1}, {t0.Add(time.Minute), 2}}}}}
	for _, name := range []string{"line", "text", "g"} {
		for _, el := range svgElements(t, string(ch.SVG()), name) {
			if slices.Contains(strings.Fields(el["class"]), "tick") {
				t.Errorf("chart draws a <%s> of class %q", name, el["class"])
			}
		}
	}
}

// TestMetricPanelSharedAxis: the charts of a panel share one time axis,
// from the first point (or earlier exemplar) to the last, even when one
// chart has no value at the first points.
func TestMetricPanelSharedAxis(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	nan := math.NaN()
	ser := attrSeries{Points: []seriesPoint{
		{Time: t0, P50: nan, P95: nan, P99: nan},
		{Time: t0.Add(10 * time.Second), P50: nan, P95: nan, P99: nan},
		{Time: t0.Add(20 * time.Second), Count: 2, P50: 1, P95: 2, P99: 2,
			Exemplars: []exemplar{{Time: t0.Add(-5 * time.Second), Value: 1}}},
		{Time: t0.Add(30 * time.Second), Count: 1, P50: 1, P95: 1, P99: 1},
	}}
	panel := metricPanelOf(instrument{Kind: kindHistogram, Unit: "s"}, ser)
	if len(panel.Charts) != 2 {
		t.Fatalf("histogram panel has %d charts, want 2", len(panel.Charts))
	}
	for _, c := range panel.Charts {
		if from, to := c.Chart.From, c.Chart.To; !from.Equal(t0.Add(-5*time.Second)) || !to.Equal(t0.Add(30*time.Second)) {
			t.Errorf("chart %q spans %v to %v, want %v to %v", c.Heading, from, to, t0.Add(-5*time.Second), t0.Add(30*time.Second))
		}
	}
}
