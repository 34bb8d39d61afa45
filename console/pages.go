package console

import (
	"cmp"
	"math"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/cairnhq/cairn/problem"
)

// RED pages: the window their tables cover and the step of their charts.
const (
	redPageWindow = 15 * time.Minute
	redPageStep   = 10 * time.Second
)

// registerPages routes the pages beyond the trace list and trace view.
func (c *Console) registerPages(mux *http.ServeMux) {
	mux.Handle("GET /services", c.ui(c.servicesPage))
	mux.Handle("GET /services/{service}", c.ui(c.servicePage))
	mux.Handle("GET /logs", c.ui(c.logsPage))
	mux.Handle("GET /stats", c.ui(c.statsPage))
	mux.Handle("GET /metrics", c.ui(c.metricsPage))
	mux.Handle("GET /metrics/{service}/{name...}", c.ui(c.metricPage))
	mux.Handle("GET /critical-path", c.ui(c.criticalPathPage))
	mux.Handle("GET /api/service-map", c.ui(c.apiServiceMap))
}

// datetimeLocalLayouts are the forms an <input type="datetime-local">
// submits: no zone, seconds and fractions optional.
var datetimeLocalLayouts = []string{"2006-01-02T15:04:05.999999999", "2006-01-02T15:04"}

// formValues prepares a submitted filter form for the query parsers: it
// drops empty attr rows and blank fields, and turns datetime-local from
// and to values (which carry no zone) into RFC 3339 in the server's local
// zone, the zone the pages show times in. Other from and to values (RFC
// 3339, Unix milliseconds, garbage) pass through for the parser to judge.
func formValues(in url.Values) url.Values {
	v := make(url.Values, len(in))
	for key, vals := range in {
		for _, s := range vals {
			if s == "" {
				continue
			}
			if key == "from" || key == "to" {
				s = fromDatetimeLocal(s)
			}
			v.Add(key, s)
		}
	}
	return v
}

// fromDatetimeLocal converts a datetime-local value to RFC 3339 in the
// local zone; anything else is returned unchanged.
func fromDatetimeLocal(s string) string {
	for _, layout := range datetimeLocalLayouts {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t.Format(time.RFC3339Nano)
		}
	}
	return s
}

// toDatetimeLocal renders t for a datetime-local input, in the local
// zone, with milliseconds when it has a fraction of a second.
func toDatetimeLocal(t time.Time) string {
	switch {
	case t.IsZero():
		return ""
	case t.Nanosecond() != 0:
		return t.Local().Format("2006-01-02T15:04:05.000")
	}
	return t.Local().Format("2006-01-02T15:04:05")
}

// filterForm holds the values a filter form shows back to the user: what
// the request carried, with times in datetime-local form when they parsed.
type filterForm struct {
	Service, Operation, Status string
	MinDuration, MaxDuration   string
	MinSeverity, Text, TraceID string
	From, To, Limit            string
	Attrs                      []string // the filled attr rows, then one empty row
	Error                      string   // why the form was refused, naming the field
	Active                     bool     // some filter is set
	Operations                 []string // suggestions for the operation field
}

// newFilterForm copies the request's parameters into a form.
func newFilterForm(v url.Values) filterForm {
	f := filterForm{
		Service: v.Get("service"), Operation: v.Get("operation"), Status: v.Get("status"),
		MinDuration: v.Get("min_duration"), MaxDuration: v.Get("max_duration"),
		MinSeverity: v.Get("min_severity"), Text: v.Get("text"), TraceID: v.Get("trace_id"),
		From: v.Get("from"), To: v.Get("to"), Limit: v.Get("limit"),
	}
	for _, a := range v["attr"] {
		if a != "" {
			f.Attrs = append(f.Attrs, a)
		}
	}
	f.Active = f.Service != "" || f.Operation != "" || f.Status != "" || f.MinDuration != "" || f.MaxDuration != "" ||
		f.MinSeverity != "" || f.Text != "" || f.TraceID != "" || f.From != "" || f.To != "" || len(f.Attrs) > 0
	f.Attrs = append(f.Attrs, "")
	return f
}

// showTimes replaces the form's from and to with the parsed times in
// datetime-local form, so the inputs can show them.
func (f *filterForm) showTimes(from, to time.Time) {
	if !from.IsZero() {
		f.From = toDatetimeLocal(from)
	}
	if !to.IsZero() {
		f.To = toDatetimeLocal(to)
	}
}

// indexData feeds index.html, the trace search.
type indexData struct {
	Form     filterForm
	Services []string
	Result   searchResult
	Refresh  int // seconds; 0 disables
	Paused   bool
	Stats    Stats
}

// indexPage answers GET / with the trace search: a filter form (see
// parseTraceQuery) and the matching traces. A refused form is shown again
// with the reason, answered 400. The page reloads itself only while no
// filter is set and ?refresh=0 is absent.
func (c *Console) indexPage(w http.ResponseWriter, r *http.Request) error {
	raw := r.URL.Query()
	data := indexData{
		Form:     newFilterForm(raw),
		Services: c.store.serviceNames(),
		Paused:   raw.Get("refresh") == "0",
		Stats:    c.Stats(),
	}
	if data.Form.Service != "" {
		for _, op := range c.store.operationsRED(data.Form.Service, time.Now(), redPageWindow) {
			data.Form.Operations = append(data.Form.Operations, op.Operation)
		}
	}
	q, err := parseTraceQuery(formValues(raw))
	if err != nil {
		return c.formError(w, "index.html", &data, &data.Form, err)
	}
	data.Form.showTimes(q.From, q.To)
	data.Result = c.store.searchTraces(q)
	if !data.Form.Active && !data.Paused {
		data.Refresh = refreshSeconds
	}
	return c.render(w, "index.html", data)
}

// formError renders page with the form's error message, answered with the
// error's status (400 for a bad parameter). Errors that are not client
// errors are returned for the error page instead.
func (c *Console) formError(w http.ResponseWriter, page string, data any, form *filterForm, err error) error {
	he := problem.From(err)
	if he.Status != http.StatusBadRequest {
		return err
	}
	form.Error = he.Detail
	return c.renderStatus(w, http.StatusBadRequest, page, data)
}

// logsData feeds logs.html.
type logsData struct {
	Form       filterForm
	Services   []string
	Severities []string
	Logs       []*logRecord
}

// logsPage answers GET /logs with the log search: a filter form (see
// parseLogQuery) and the matching records, newest first.
func (c *Console) logsPage(w http.ResponseWriter, r *http.Request) error {
	raw := r.URL.Query()
	data := logsData{
		Form:       newFilterForm(raw),
		Services:   c.store.serviceNames(),
		Severities: []string{"trace", "debug", "info", "warn", "error", "fatal"},
	}
	q, err := parseLogQuery(formValues(raw))
	if err != nil {
		return c.formError(w, "logs.html", &data, &data.Form, err)
	}
	data.Form.showTimes(q.From, q.To)
	data.Logs = c.store.queryLogs(q)
	return c.render(w, "logs.html", data)
}

// servicesData feeds services.html.
type servicesData struct {
	Graph  serviceGraph
	RED    []redStats
	Window time.Duration
}

// servicesPage answers GET /services with the service map and the RED of
// every service over the last redPageWindow.
func (c *Console) servicesPage(w http.ResponseWriter, r *http.Request) error {
	data := servicesData{
		Graph:  c.store.serviceGraph(),
		RED:    c.store.servicesRED(time.Now(), redPageWindow),
		Window: redPageWindow,
	}
	// List services that sent spans but no requests in the window too.
	seen := make(map[string]bool, len(data.RED))
	for _, st := range data.RED {
		seen[st.Service] = true
	}
	for _, n := range data.Graph.Services {
		if !seen[n.Name] {
			data.RED = append(data.RED, redStats{Service: n.Name})
		}
	}
	slices.SortFunc(data.RED, func(a, b redStats) int { return cmp.Compare(a.Service, b.Service) })
	return c.render(w, "services.html", data)
}

// serviceData feeds service.html.
type serviceData struct {
	Service    string
	Window     time.Duration
	Step       time.Duration
	Stats      redStats
	Rate       lineChart
	ErrorRatio lineChart
	Latency    lineChart
	Operations []redStats
}

// servicePage answers GET /services/{service} with the service's RED over
// the last redPageWindow: charts per redPageStep and a table of its
// operations. A service with no stored telemetry and no RED is 404.
func (c *Console) servicePage(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("service")
	now := time.Now()
	data := serviceData{
		Service:    name,
		Window:     redPageWindow,
		Step:       redPageStep,
		Operations: c.store.operationsRED(name, now, redPageWindow),
		Stats:      redStats{Service: name},
	}
	if len(data.Operations) == 0 && !slices.Contains(c.store.serviceNames(), name) {
		return problem.Errorf(http.StatusNotFound, "console: service %q not found (no telemetry stored)", name)
	}
	for _, st := range c.store.servicesRED(now, redPageWindow) {
		if st.Service == name {
			data.Stats = st
		}
	}
	data.Rate, data.ErrorRatio, data.Latency = redCharts(c.store.redSeries(name, "", now, redPageWindow, redPageStep), now)
	return c.render(w, "service.html", data)
}

// noRequests is what the RED charts say when the window holds no request.
const noRequests = "no requests in this window"

// redCharts draws a RED series: request rate, error ratio, and p50 and
// p99 latency. Steps without requests have no error ratio or latency;
// when no step has a request, all three charts say so rather than the
// rate chart drawing a line at zero.
func redCharts(points []redPoint, now time.Time) (rate, errRatio, latency lineChart) {
	from := now.Add(-redPageWindow)
	rate = lineChart{Title: "Requests per second", From: from, To: now, Empty: noRequests}
	errRatio = lineChart{Title: "Error ratio", From: from, To: now, Format: formatPercent, Empty: noRequests}
	latency = lineChart{Title: "Latency", From: from, To: now, Format: formatNanos, Empty: noRequests}
	if !slices.ContainsFunc(points, func(p redPoint) bool { return p.Count > 0 }) {
		return rate, errRatio, latency
	}
	rs := chartSeries{Name: "requests/s"}
	es := chartSeries{Name: "error ratio"}
	p50 := chartSeries{Name: "p50"}
	p99 := chartSeries{Name: "p99"}
	for _, p := range points {
		rs.Points = append(rs.Points, chartPoint{p.Time, p.Rate})
		e, l50, l99 := math.NaN(), math.NaN(), math.NaN()
		if p.Count > 0 {
			e, l50, l99 = p.ErrorRatio, float64(p.P50), float64(p.P99)
		}
		es.Points = append(es.Points, chartPoint{p.Time, e})
		p50.Points = append(p50.Points, chartPoint{p.Time, l50})
		p99.Points = append(p99.Points, chartPoint{p.Time, l99})
	}
	rate.Series = []chartSeries{rs}
	errRatio.Series = []chartSeries{es}
	latency.Series = []chartSeries{p50, p99}
	return rate, errRatio, latency
}

// apiServiceMap answers GET /api/service-map with the service graph.
func (c *Console) apiServiceMap(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, c.store.serviceGraph())
}

// statsPage answers GET /stats with the console's counters.
func (c *Console) statsPage(w http.ResponseWriter, r *http.Request) error {
	st := c.Stats()
	return c.render(w, "stats.html", struct {
		Stats   Stats
		Signals []namedSignal
	}{st, []namedSignal{{"Spans", st.Spans}, {"Log records", st.Logs}, {"Metric points", st.MetricPoints}}})
}

// namedSignal labels a SignalStats row of the stats page.
type namedSignal struct {
	Name string
	SignalStats
}

// metricsData feeds metrics.html.
type metricsData struct {
	Form        filterForm
	Services    []string
	Instruments []instrument
}

// metricsPage answers GET /metrics?service= with the stored instruments.
func (c *Console) metricsPage(w http.ResponseWriter, r *http.Request) error {
	data := metricsData{Form: newFilterForm(r.URL.Query()), Services: c.store.serviceNames()}
	data.Instruments = c.store.instruments(data.Form.Service)
	return c.render(w, "metrics.html", data)
}

// maxMetricPanels bounds the attribute sets drawn on a metric's page.
const maxMetricPanels = 50

// metricData feeds metric.html.
type metricData struct {
	Form       filterForm
	Instrument instrument
	Panels     []metricPanel
	Hidden     int // attribute sets beyond maxMetricPanels
}

// metricPanel is the charts of one attribute set of a metric.
type metricPanel struct {
	Attributes attrs
	Charts     []titledChart
	Points     int
	Exemplars  int
}

// titledChart is a chart with the heading the page shows above it.
type titledChart struct {
	Heading string
	Chart   lineChart
}

// metricPage answers GET /metrics/{service}/{name} with a panel of charts
// per attribute set (filtered by ?attr=key=value): gauges and sums by
// value, with the per-second rate of a cumulative monotonic sum;
// histograms and summaries by p50, p95 and p99 and their count per
// point. Exemplars are dots linking to their traces. 404 when the metric
// is not stored, 400 for a malformed attr filter.
func (c *Console) metricPage(w http.ResponseWriter, r *http.Request) error {
	service, name := r.PathValue("service"), r.PathValue("name")
	data := metricData{Form: newFilterForm(r.URL.Query()), Instrument: instrument{Service: service, Name: name}}
	filters, err := parseAttrFilters(formValues(r.URL.Query())["attr"])
	if err != nil {
		return c.formError(w, "metric.html", &data, &data.Form, badRequest("%s", err.Error()))
	}
	in, series, ok := c.store.metricSeriesOf(service, name, filters)
	if !ok {
		return problem.Errorf(http.StatusNotFound, "console: metric %q of service %q not found (never received, or evicted)", name, service)
	}
	data.Instrument = in
	if len(series) > maxMetricPanels {
		data.Hidden = len(series) - maxMetricPanels
		series = series[:maxMetricPanels]
	}
	for _, ser := range series {
		data.Panels = append(data.Panels, metricPanelOf(in, ser))
	}
	return c.render(w, "metric.html", data)
}

// metricPanelOf draws the charts of one attribute set of in.
func metricPanelOf(in instrument, ser attrSeries) metricPanel {
	panel := metricPanel{Attributes: ser.Attributes, Points: len(ser.Points)}
	format := unitFormat(in.Unit)
	var dots []chartDot
	for _, p := range ser.Points {
		for _, e := range p.Exemplars {
			d := chartDot{Time: e.Time, Value: e.Value, Title: "exemplar " + format(e.Value)}
			if d.Time.IsZero() {
				d.Time = p.Time
			}
			if !e.TraceID.IsZero() {
				d.Href = "/traces/" + e.TraceID.String()
				if !e.SpanID.IsZero() {
					d.Href += "#span-" + e.SpanID.String()
				}
				d.Title += " · trace " + e.TraceID.String()
			}
			dots = append(dots, d)
		}
	}
	panel.Exemplars = len(dots)
	series := func(name string, value func(seriesPoint) float64) chartSeries {
		s := chartSeries{Name: name, Points: make([]chartPoint, len(ser.Points))}
		for i, p := range ser.Points {
			s.Points[i] = chartPoint{p.Time, value(p)}
		}
		return s
	}
	unit := ""
	if in.Unit != "" {
		unit = " (" + in.Unit + ")"
	}
	// All charts of the panel share the time axis of the attribute set's
	// points, even where one chart has no value (a quantile of an empty
	// histogram), so that charts side by side line up.
	var from, to time.Time
	if len(ser.Points) > 0 {
		from, to = ser.Points[0].Time, ser.Points[len(ser.Points)-1].Time
	}
	for _, d := range dots {
		from, to = minTime(from, d.Time), later(to, d.Time)
	}
	axis := func(ch lineChart) lineChart {
		if to.After(from) {
			ch.From, ch.To = from, to
		}
		return ch
	}
	switch in.Kind {
	case kindHistogram, kindExpHistogram, kindSummary:
		quantiles := lineChart{Title: "Quantiles" + unit, Format: format, Dots: dots, Series: []chartSeries{
			series("p50", func(p seriesPoint) float64 { return p.P50 }),
			series("p95", func(p seriesPoint) float64 { return p.P95 }),
			series("p99", func(p seriesPoint) float64 { return p.P99 }),
		}}
		if in.Kind != kindExpHistogram || hasFinite(quantiles.Series) {
			panel.Charts = append(panel.Charts, titledChart{"p50, p95, p99" + unit, axis(quantiles)})
		}
		count := lineChart{Title: "Observations per point", Series: []chartSeries{
			series("count", func(p seriesPoint) float64 { return float64(p.Count) }),
		}}
		panel.Charts = append(panel.Charts, titledChart{"Observations per point", axis(count)})
	default:
		value := lineChart{Title: "Value" + unit, Format: format, Dots: dots, Series: []chartSeries{
			series("value", func(p seriesPoint) float64 { return p.Value }),
		}}
		panel.Charts = append(panel.Charts, titledChart{"Value" + unit, axis(value)})
		if in.Kind == kindSum && in.Monotonic && in.Temporality == "cumulative" {
			rate := lineChart{Title: "Rate per second", Series: []chartSeries{
				series("rate/s", func(p seriesPoint) float64 { return p.Rate }),
			}}
			panel.Charts = append(panel.Charts, titledChart{"Rate per second", axis(rate)})
		}
	}
	return panel
}

// minTime returns the earlier of a and b, ignoring a zero a.
func minTime(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

// hasFinite reports whether any point of series has a finite value.
func hasFinite(series []chartSeries) bool {
	for _, s := range series {
		for _, p := range s.Points {
			if finite(p.Value) {
				return true
			}
		}
	}
	return false
}

// unitFormat returns the axis format for a UCUM unit: durations for
// time units, compact numbers otherwise.
func unitFormat(unit string) func(float64) string {
	scale := map[string]float64{"ns": 1, "us": 1e3, "µs": 1e3, "ms": 1e6, "s": 1e9, "min": 60e9, "h": 3600e9}
	if f, ok := scale[unit]; ok {
		return func(v float64) string {
			if v < 0 {
				return "-" + formatNanos(-v*f)
			}
			return formatNanos(v * f)
		}
	}
	return formatNumber
}

// Defaults of the aggregate critical path page.
const defaultPathTraces = 500

// critPathData feeds critical-path.html.
type critPathData struct {
	Form       filterForm
	Services   []string
	Operations []redStats // of Form.Service, when no operation is chosen
	Path       endpointPath
	Analysed   bool
	All, Slow  []pathBarRow
}

// pathBarRow is one operation's share of the critical path, for a bar.
type pathBarRow struct {
	pathContribution
	Percent float64       // of the summed critical paths
	PerPath time.Duration // mean self time per path it appears on
}

// criticalPathPage answers GET /critical-path?service=&operation=&limit=
// with the aggregate critical path of an endpoint (the traces whose root
// span is that operation of that service): which operations the root
// waited on over all analysed traces and over the slowest 1%. Without an
// operation it offers the service's operations to choose from.
func (c *Console) criticalPathPage(w http.ResponseWriter, r *http.Request) error {
	v := r.URL.Query()
	data := critPathData{Form: newFilterForm(v), Services: c.store.serviceNames()}
	limit, err := limitParam(r, defaultPathTraces)
	if err != nil {
		return c.formError(w, "critical-path.html", &data, &data.Form, err)
	}
	if data.Form.Service == "" || data.Form.Operation == "" {
		if data.Form.Service != "" {
			data.Operations = c.store.operationsRED(data.Form.Service, time.Now(), redPageWindow)
		}
		return c.render(w, "critical-path.html", data)
	}
	data.Analysed = true
	data.Path = c.store.endpointCriticalPath(data.Form.Service, data.Form.Operation, limit)
	data.All, data.Slow = pathBars(data.Path.All), pathBars(data.Path.Slow)
	return c.render(w, "critical-path.html", data)
}

// pathBars turns contributions into bar rows, each a percentage of their
// sum.
func pathBars(cs []pathContribution) []pathBarRow {
	var total time.Duration
	for _, pc := range cs {
		total += pc.SelfTime
	}
	rows := make([]pathBarRow, len(cs))
	for i, pc := range cs {
		rows[i] = pathBarRow{pathContribution: pc}
		if total > 0 {
			rows[i].Percent = float64(pc.SelfTime) / float64(total) * 100
		}
		if pc.Traces > 0 {
			rows[i].PerPath = pc.SelfTime / time.Duration(pc.Traces)
		}
	}
	return rows
}
