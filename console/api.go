package console

import (
	"cmp"
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/cairnhq/cairn/problem"
)

// Limits of the list endpoints.
const (
	defaultTraceLimit = 50
	defaultLogLimit   = 100
	maxListLimit      = 1000
)

func (c *Console) apiTraces(w http.ResponseWriter, r *http.Request) error {
	q, err := parseTraceQuery(r.URL.Query())
	if err != nil {
		return err
	}
	return writeJSON(w, c.store.searchTraces(q))
}

func (c *Console) apiTrace(w http.ResponseWriter, r *http.Request) error {
	id, err := traceIDParam(r)
	if err != nil {
		return err
	}
	spans, logs, err := c.lookupTrace(id)
	if err != nil {
		return err
	}
	return writeJSON(w, struct {
		TraceID traceID      `json:"trace_id"`
		Spans   []*span      `json:"spans"`
		Logs    []*logRecord `json:"logs"`
	}{id, spans, logs})
}

// apiCriticalPath answers GET /api/traces/{traceID}/critical-path with
// the trace's critical path (see criticalPathOf), or 404 when no span of
// the trace is stored.
func (c *Console) apiCriticalPath(w http.ResponseWriter, r *http.Request) error {
	id, err := traceIDParam(r)
	if err != nil {
		return err
	}
	spans, _ := c.store.trace(id)
	if len(spans) == 0 {
		return problem.Errorf(http.StatusNotFound, "console: trace %s not found (never received, or evicted)", id)
	}
	return writeJSON(w, criticalPathOf(spans))
}

// lookupTrace returns the spans of trace id ordered by start and its log
// records ordered by time, or a 404 error when neither is stored.
func (c *Console) lookupTrace(id traceID) ([]*span, []*logRecord, error) {
	spans, _ := c.store.trace(id)
	logs := c.store.queryLogs(logQuery{TraceID: id})
	if len(spans) == 0 && len(logs) == 0 {
		return nil, nil, problem.Errorf(http.StatusNotFound, "console: trace %s not found (never received, or evicted)", id)
	}
	sortLogsByTime(logs)
	if spans == nil {
		spans = []*span{}
	}
	if logs == nil {
		logs = []*logRecord{}
	}
	return spans, logs, nil
}

func (c *Console) apiServices(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, struct {
		Services []string `json:"services"`
	}{c.store.serviceNames()})
}

func (c *Console) apiLogs(w http.ResponseWriter, r *http.Request) error {
	q, err := parseLogQuery(r.URL.Query())
	if err != nil {
		return err
	}
	logs := c.store.queryLogs(q)
	if logs == nil {
		logs = []*logRecord{}
	}
	return writeJSON(w, struct {
		Logs []*logRecord `json:"logs"`
	}{logs})
}

func (c *Console) apiMetrics(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, struct {
		Metrics []instrument `json:"metrics"`
	}{c.store.instruments(r.URL.Query().Get("service"))})
}

// apiMetricSeries answers GET /api/metrics/series?service=&name=&attr=
// with one metric's points per attribute set, with rates and quantiles.
func (c *Console) apiMetricSeries(w http.ResponseWriter, r *http.Request) error {
	v := r.URL.Query()
	service, name := v.Get("service"), v.Get("name")
	if name == "" {
		return badRequest("console: name: missing; want the metric's name")
	}
	filters, err := parseAttrFilters(v["attr"])
	if err != nil {
		return &problem.Error{Status: http.StatusBadRequest, Detail: err.Error()}
	}
	in, series, ok := c.store.metricSeriesOf(service, name, filters)
	if !ok {
		return problem.Errorf(http.StatusNotFound, "console: metric %q of service %q not found (never received, or evicted)", name, service)
	}
	return writeJSON(w, struct {
		Instrument instrument   `json:"instrument"`
		Series     []attrSeries `json:"series"`
	}{in, series})
}

// Defaults of the RED endpoints.
const (
	defaultREDWindow = redWindow
	defaultREDStep   = redStep
)

// redWindowParam parses the window parameter: a duration up to redWindow.
func redWindowParam(v url.Values) (time.Duration, error) {
	d, err := durationParam(v, "window")
	if err != nil {
		return 0, err
	}
	if d > redWindow {
		return 0, badRequest("console: window %s: RED is kept for %s at most", d, redWindow)
	}
	return cmp.Or(d, defaultREDWindow), nil
}

// apiRED answers GET /api/red?window= with the RED of every service.
func (c *Console) apiRED(w http.ResponseWriter, r *http.Request) error {
	window, err := redWindowParam(r.URL.Query())
	if err != nil {
		return err
	}
	return writeJSON(w, struct {
		Window   time.Duration `json:"window_ns"`
		Services []redStats    `json:"services"`
	}{window, c.store.servicesRED(time.Now(), window)})
}

// apiREDOperations answers GET /api/red/{service}?window= with the RED of
// each of the service's operations.
func (c *Console) apiREDOperations(w http.ResponseWriter, r *http.Request) error {
	window, err := redWindowParam(r.URL.Query())
	if err != nil {
		return err
	}
	ops := c.store.operationsRED(r.PathValue("service"), time.Now(), window)
	if ops == nil {
		ops = []redStats{}
	}
	return writeJSON(w, struct {
		Service    string        `json:"service"`
		Window     time.Duration `json:"window_ns"`
		Operations []redStats    `json:"operations"`
	}{r.PathValue("service"), window, ops})
}

// apiREDSeries answers GET /api/red/{service}/series?operation=&window=&step=
// with the RED of the service, or one operation, per step.
func (c *Console) apiREDSeries(w http.ResponseWriter, r *http.Request) error {
	v := r.URL.Query()
	window, err := redWindowParam(v)
	if err != nil {
		return err
	}
	step, err := durationParam(v, "step")
	if err != nil {
		return err
	}
	step = cmp.Or(step, defaultREDStep)
	return writeJSON(w, struct {
		Points []redPoint `json:"points"`
	}{c.store.redSeries(r.PathValue("service"), v.Get("operation"), time.Now(), window, step)})
}

// apiEndpointCriticalPath answers GET /api/critical-path?service=&operation=&limit=
// with the aggregate critical path of the endpoint.
func (c *Console) apiEndpointCriticalPath(w http.ResponseWriter, r *http.Request) error {
	v := r.URL.Query()
	service, operation := v.Get("service"), v.Get("operation")
	if service == "" || operation == "" {
		return badRequest("console: service and operation are required: the endpoint is the root span's service and name")
	}
	limit, err := limitValue(v, maxListLimit)
	if err != nil {
		return err
	}
	return writeJSON(w, c.store.endpointCriticalPath(service, operation, limit))
}

// registerAPI routes the query endpoints beyond the original list.
func (c *Console) registerAPI(mux *http.ServeMux) {
	mux.Handle("GET /api/metrics/series", c.ui(c.apiMetricSeries))
	mux.Handle("GET /api/red", c.ui(c.apiRED))
	mux.Handle("GET /api/red/{service}", c.ui(c.apiREDOperations))
	mux.Handle("GET /api/red/{service}/series", c.ui(c.apiREDSeries))
	mux.Handle("GET /api/critical-path", c.ui(c.apiEndpointCriticalPath))
}

func (c *Console) apiStats(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, c.Stats())
}

// limitParam parses the limit query parameter: absent means def, otherwise
// an integer in [1, maxListLimit].
func limitParam(r *http.Request, def int) (int, error) {
	return limitValue(r.URL.Query(), def)
}

// traceIDParam parses the {traceID} path value.
func traceIDParam(r *http.Request) (traceID, error) {
	id, err := parseTraceID(r.PathValue("traceID"))
	if err != nil {
		return id, &problem.Error{Status: http.StatusBadRequest, Detail: err.Error()}
	}
	return id, nil
}

// writeJSON answers 200 with v as JSON. It encodes before writing, so a
// failure leaves the response untouched for the error adapter.
func writeJSON(w http.ResponseWriter, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(append(body, '\n'))
	return nil
}
