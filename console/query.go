package console

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cairnhq/cairn/problem"
)

// attrFilter matches an attribute by key and by the text form of its value
// (see valueString): "http.response.status_code=500" matches the integer
// 500 and the string "500" alike.
type attrFilter struct {
	Key, Value string
}

func (f attrFilter) String() string { return f.Key + "=" + f.Value }

// matches reports whether a holds an attribute f.Key whose text is f.Value.
func (f attrFilter) matches(a attrs) bool {
	for _, kv := range a {
		if kv.Key == f.Key && valueString(kv.Value) == f.Value {
			return true
		}
	}
	return false
}

// parseAttrFilters parses the repeated "attr" query parameter: each value
// is key=value, split at the first '='; the key must not be empty.
func parseAttrFilters(values []string) ([]attrFilter, error) {
	out := make([]attrFilter, 0, len(values))
	for _, v := range values {
		k, val, ok := strings.Cut(v, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("console: attr %q: want key=value", v)
		}
		out = append(out, attrFilter{Key: k, Value: val})
	}
	return out, nil
}

// traceQuery selects traces. A trace matches when its start lies in
// [From, To] and one of its spans satisfies every span filter at once:
// Service, Operation (span name), Status, MinDuration, MaxDuration and
// Attrs (each checked against the span's attributes, then its resource's).
// Zero fields match everything.
type traceQuery struct {
	Service     string
	Operation   string
	Status      string // "", "unset", "ok" or "error"
	MinDuration time.Duration
	MaxDuration time.Duration // zero: no upper bound
	Attrs       []attrFilter
	From, To    time.Time
	Limit       int // at most this many traces; zero means defaultTraceLimit
}

// spanFilters reports whether q has filters that a single span must meet.
func (q *traceQuery) spanFilters() bool {
	return q.Service != "" || q.Operation != "" || q.Status != "" ||
		q.MinDuration > 0 || q.MaxDuration > 0 || len(q.Attrs) > 0
}

// matchSpan reports whether sp meets every span filter of q.
func (q *traceQuery) matchSpan(sp *span) bool {
	if q.Service != "" && sp.Service != q.Service {
		return false
	}
	if q.Operation != "" && sp.Name != q.Operation {
		return false
	}
	if q.Status != "" && sp.Status.Code != q.Status {
		return false
	}
	if sp.Duration < q.MinDuration || (q.MaxDuration > 0 && sp.Duration > q.MaxDuration) {
		return false
	}
	for _, f := range q.Attrs {
		if !f.matches(sp.Attributes) && (sp.Resource == nil || !f.matches(sp.Resource.Attributes)) {
			return false
		}
	}
	return true
}

// matchTrace reports whether t meets q; the caller holds the store's lock.
func (q *traceQuery) matchTrace(t *trace) bool {
	if !q.From.IsZero() && t.start.Before(q.From) {
		return false
	}
	if !q.To.IsZero() && t.start.After(q.To) {
		return false
	}
	if !q.spanFilters() {
		return true
	}
	if q.Service != "" && t.services[q.Service] == 0 {
		return false
	}
	if q.Status == "error" && t.errors == 0 {
		return false
	}
	return slices.ContainsFunc(t.spans, q.matchSpan)
}

// parseTraceQuery reads a traceQuery from URL parameters: service,
// operation, status, min_duration and max_duration (Go durations such as
// 250ms), attr (repeatable key=value), from and to (RFC 3339 or Unix
// milliseconds) and limit. Every error names the parameter.
func parseTraceQuery(v url.Values) (traceQuery, error) {
	q := traceQuery{
		Service:   v.Get("service"),
		Operation: v.Get("operation"),
		Status:    v.Get("status"),
	}
	var err error
	switch q.Status {
	case "", "unset", "ok", "error":
	default:
		return q, badRequest("console: status %q: want unset, ok or error", q.Status)
	}
	if q.MinDuration, err = durationParam(v, "min_duration"); err != nil {
		return q, err
	}
	if q.MaxDuration, err = durationParam(v, "max_duration"); err != nil {
		return q, err
	}
	if q.MaxDuration > 0 && q.MaxDuration < q.MinDuration {
		return q, badRequest("console: max_duration %s is below min_duration %s", q.MaxDuration, q.MinDuration)
	}
	if q.Attrs, err = parseAttrFilters(v["attr"]); err != nil {
		return q, &problem.Error{Status: http.StatusBadRequest, Detail: err.Error()}
	}
	if q.From, q.To, err = timeRangeParams(v); err != nil {
		return q, err
	}
	if q.Limit, err = limitValue(v, defaultTraceLimit); err != nil {
		return q, err
	}
	return q, nil
}

// durationParam parses a non-negative Go duration; absent is zero.
func durationParam(v url.Values, name string) (time.Duration, error) {
	s := v.Get(name)
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, badRequest("console: %s %q: want a non-negative duration such as 250ms or 1.5s", name, s)
	}
	return d, nil
}

// timeRangeParams parses from and to, each RFC 3339 or Unix milliseconds.
func timeRangeParams(v url.Values) (from, to time.Time, err error) {
	if from, err = timeParam(v, "from"); err != nil {
		return
	}
	if to, err = timeParam(v, "to"); err != nil {
		return
	}
	if !from.IsZero() && !to.IsZero() && to.Before(from) {
		err = badRequest("console: to %s is before from %s", to.Format(time.RFC3339Nano), from.Format(time.RFC3339Nano))
	}
	return
}

func timeParam(v url.Values, name string) (time.Time, error) {
	s := v.Get(name)
	if s == "" {
		return time.Time{}, nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, badRequest("console: %s %q: want RFC 3339 (2026-01-02T15:04:05Z) or Unix milliseconds", name, s)
	}
	return t, nil
}

// limitValue parses the limit parameter: absent means def, otherwise an
// integer in [1, maxListLimit].
func limitValue(v url.Values, def int) (int, error) {
	s := v.Get("limit")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxListLimit {
		return 0, badRequest("console: limit %q: want an integer from 1 to %d", s, maxListLimit)
	}
	return n, nil
}

func badRequest(format string, args ...any) error {
	return problem.Errorf(http.StatusBadRequest, format, args...)
}

// searchResult is a page of trace summaries and how the search went.
type searchResult struct {
	Traces []traceSummary `json:"traces"`
	// Scanned counts the traces examined; Indexed tells whether an index
	// chose them (otherwise every stored trace was a candidate).
	Scanned int  `json:"scanned"`
	Indexed bool `json:"indexed"`
}

// searchTraces returns up to q.Limit traces matching q, most recently
// arrived first, then sorted by start time, latest first.
func (s *store) searchTraces(q traceQuery) searchResult {
	if q.Limit <= 0 {
		q.Limit = defaultTraceLimit
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var res searchResult
	var found []*trace
	visit := func(t *trace) bool {
		res.Scanned++
		if q.matchTrace(t) {
			found = append(found, t)
		}
		return len(found) < q.Limit
	}
	res.Indexed = s.index.candidates(s, &q, visit)
	slices.SortFunc(found, func(a, b *trace) int {
		if c := b.start.Compare(a.start); c != 0 {
			return c
		}
		return slices.Compare(a.id[:], b.id[:])
	})
	res.Traces = make([]traceSummary, len(found))
	for i, t := range found {
		res.Traces[i] = t.summary()
	}
	return res
}

// logQuery selects log records. A record matches when it meets every
// non-zero field: TraceID, Service, a severity number of at least
// MinSeverity, Text found (case-insensitively) in its body, event name or
// severity text, every Attrs filter (record attributes, then resource
// attributes), and a time in [From, To].
type logQuery struct {
	TraceID     traceID
	Service     string
	MinSeverity int32
	Text        string // lowercased by parseLogQuery
	Attrs       []attrFilter
	From, To    time.Time
	Limit       int // at most this many records; zero means no limit
}

func (q *logQuery) match(r *logRecord) bool {
	if (!q.TraceID.IsZero() && r.TraceID != q.TraceID) || (q.Service != "" && r.Service != q.Service) {
		return false
	}
	if r.SeverityNumber < q.MinSeverity {
		return false
	}
	if (!q.From.IsZero() && r.Time.Before(q.From)) || (!q.To.IsZero() && r.Time.After(q.To)) {
		return false
	}
	for _, f := range q.Attrs {
		if !f.matches(r.Attributes) && (r.Resource == nil || !f.matches(r.Resource.Attributes)) {
			return false
		}
	}
	if q.Text != "" && !containsFold(valueString(r.Body), q.Text) &&
		!containsFold(r.EventName, q.Text) && !containsFold(r.SeverityText, q.Text) {
		return false
	}
	return true
}

// containsFold reports whether lowered, already lower case, occurs in s
// ignoring case.
func containsFold(s, lowered string) bool {
	return strings.Contains(strings.ToLower(s), lowered)
}

// severityNames maps the severity names accepted by min_severity to the
// lowest OTLP severity number of their range.
var severityNames = map[string]int32{"trace": 1, "debug": 5, "info": 9, "warn": 13, "error": 17, "fatal": 21}

// parseLogQuery reads a logQuery from URL parameters: trace_id, service,
// min_severity (a number 1-24 or trace, debug, info, warn, error, fatal),
// text, attr (repeatable key=value), from, to and limit.
func parseLogQuery(v url.Values) (logQuery, error) {
	q := logQuery{Service: v.Get("service"), Text: strings.ToLower(v.Get("text"))}
	var err error
	if s := v.Get("trace_id"); s != "" {
		if q.TraceID, err = parseTraceID(s); err != nil {
			return q, &problem.Error{Status: http.StatusBadRequest, Detail: err.Error()}
		}
	}
	if s := v.Get("min_severity"); s != "" {
		n, ok := severityNames[strings.ToLower(s)]
		if !ok {
			i, err := strconv.Atoi(s)
			if err != nil || i < 1 || i > 24 {
				return q, badRequest("console: min_severity %q: want 1 to 24 or trace, debug, info, warn, error, fatal", s)
			}
			n = int32(i)
		}
		q.MinSeverity = n
	}
	if q.Attrs, err = parseAttrFilters(v["attr"]); err != nil {
		return q, &problem.Error{Status: http.StatusBadRequest, Detail: err.Error()}
	}
	if q.From, q.To, err = timeRangeParams(v); err != nil {
		return q, err
	}
	if q.Limit, err = limitValue(v, defaultLogLimit); err != nil {
		return q, err
	}
	return q, nil
}
