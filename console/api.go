package console

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/cairnhq/cairn/problem"
)

// Limits of the list endpoints.
const (
	defaultTraceLimit = 50
	defaultLogLimit   = 100
	maxListLimit      = 1000
)

func (c *Console) apiTraces(w http.ResponseWriter, r *http.Request) error {
	limit, err := limitParam(r, defaultTraceLimit)
	if err != nil {
		return err
	}
	traces := c.store.recentTraces(r.URL.Query().Get("service"), limit)
	return writeJSON(w, struct {
		Traces []traceSummary `json:"traces"`
	}{traces})
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
	limit, err := limitParam(r, defaultLogLimit)
	if err != nil {
		return err
	}
	q := logQuery{Service: r.URL.Query().Get("service"), Limit: limit}
	if s := r.URL.Query().Get("trace_id"); s != "" {
		if q.TraceID, err = parseTraceID(s); err != nil {
			return &problem.Error{Status: http.StatusBadRequest, Detail: err.Error()}
		}
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
	series := c.store.metrics(r.URL.Query().Get("service"))
	if series == nil {
		series = []metricSeriesView{}
	}
	return writeJSON(w, struct {
		Metrics []metricSeriesView `json:"metrics"`
	}{series})
}

func (c *Console) apiStats(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, c.Stats())
}

// limitParam parses the limit query parameter: absent means def, otherwise
// an integer in [1, maxListLimit].
func limitParam(r *http.Request, def int) (int, error) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxListLimit {
		return 0, problem.Errorf(http.StatusBadRequest, "console: limit %q: want an integer from 1 to %d", s, maxListLimit)
	}
	return n, nil
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
