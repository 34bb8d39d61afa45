package console

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// traceID is a W3C trace id. Its text form is 32 lowercase hex digits; the
// zero value means "no trace".
type traceID [16]byte

// spanID is a W3C span id. Its text form is 16 lowercase hex digits; the
// zero value means "no span".
type spanID [8]byte

func (id traceID) String() string { return hex.EncodeToString(id[:]) }
func (id spanID) String() string  { return hex.EncodeToString(id[:]) }

func (id traceID) IsZero() bool { return id == traceID{} }
func (id spanID) IsZero() bool  { return id == spanID{} }

// MarshalText encodes the id as lowercase hex, so it appears as a string
// in JSON.
func (id traceID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// MarshalText encodes the id as lowercase hex, so it appears as a string
// in JSON.
func (id spanID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText parses 32 hex digits, the form MarshalText writes.
func (id *traceID) UnmarshalText(b []byte) error {
	v, err := parseTraceID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// UnmarshalText parses 16 hex digits, the form MarshalText writes.
func (id *spanID) UnmarshalText(b []byte) error {
	if len(b) != 2*len(id) {
		return fmt.Errorf("console: span id %q: want %d hex digits", b, 2*len(id))
	}
	if _, err := hex.Decode(id[:], b); err != nil {
		return fmt.Errorf("console: span id %q: not hex", b)
	}
	return nil
}

// parseTraceID parses 32 hex digits (either case) into a non-zero trace id.
func parseTraceID(s string) (traceID, error) {
	var id traceID
	if len(s) != 2*len(id) {
		return id, fmt.Errorf("console: trace id %q: want %d hex digits", s, 2*len(id))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("console: trace id %q: not hex", s)
	}
	if id.IsZero() {
		return id, fmt.Errorf("console: trace id %q: all zeros is not a valid trace id", s)
	}
	return id, nil
}

// traceIDFromBytes converts an OTLP trace id field. Empty input yields the
// zero id and ok; any length other than 0 or 16 is not ok.
func traceIDFromBytes(b []byte) (id traceID, ok bool) {
	if len(b) == 0 {
		return id, true
	}
	if len(b) != len(id) {
		return id, false
	}
	copy(id[:], b)
	return id, true
}

// spanIDFromBytes converts an OTLP span id field with the same rules as
// traceIDFromBytes.
func spanIDFromBytes(b []byte) (id spanID, ok bool) {
	if len(b) == 0 {
		return id, true
	}
	if len(b) != len(id) {
		return id, false
	}
	copy(id[:], b)
	return id, true
}

// keyValue is one attribute. Value is one of string, bool, int64, float64,
// []any, attrs (a nested key/value list) or nil; bytes are kept as their
// base64 text (the form OTLP/JSON uses), non-finite doubles as strings.
type keyValue struct {
	Key   string
	Value any
}

// attrs is an ordered attribute list. It marshals to a JSON object in the
// order it was received.
type attrs []keyValue

// MarshalJSON encodes the list as a JSON object.
func (a attrs) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, kv := range a {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(kv.Key)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(kv.Value)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// get returns the value of the first attribute named key.
func (a attrs) get(key string) (any, bool) {
	for _, kv := range a {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return nil, false
}

// valueString renders an attribute value or log body for display: strings
// as they are, everything else as JSON.
func valueString(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case bool:
		return strconv.FormatBool(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// float is a float64 that survives JSON: non-finite values, which
// encoding/json refuses, are written as the strings "NaN", "+Inf", "-Inf".
type float float64

// MarshalJSON encodes f as a JSON number, or as a string when not finite.
func (f float) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return json.Marshal(strconv.FormatFloat(v, 'g', -1, 64))
	}
	return json.Marshal(v)
}

// resource is the producer of a batch of telemetry. It is shared by every
// span, log record or metric series decoded from the same OTLP resource
// entry, and never modified after decoding.
type resource struct {
	Service    string `json:"service"`
	Attributes attrs  `json:"attributes,omitempty"`
}

// scope is the instrumentation scope (library) that produced an item.
type scope struct {
	Name    string `json:"name,omitempty"`
	Version string `json:"version,omitempty"`
}

// status is a span status. Code is "unset", "ok" or "error".
type status struct {
	Code    string `json:"code"`
	Message string `json:"message,omitempty"`
}

// event is a timestamped annotation on a span.
type event struct {
	Time       time.Time `json:"time,omitzero"`
	Name       string    `json:"name"`
	Attributes attrs     `json:"attributes,omitempty"`
}

// link points from a span to another span, possibly in another trace.
type link struct {
	TraceID    traceID `json:"trace_id"`
	SpanID     spanID  `json:"span_id"`
	TraceState string  `json:"trace_state,omitempty"`
	Attributes attrs   `json:"attributes,omitempty"`
}

// span is one stored span. Spans are immutable once stored; the store
// hands out pointers that readers may keep.
type span struct {
	TraceID      traceID       `json:"trace_id"`
	SpanID       spanID        `json:"span_id"`
	ParentSpanID spanID        `json:"parent_span_id,omitzero"`
	TraceState   string        `json:"trace_state,omitempty"`
	Service      string        `json:"service"`
	Name         string        `json:"name"`
	Kind         string        `json:"kind"`
	Start        time.Time     `json:"start,omitzero"`
	End          time.Time     `json:"end,omitzero"`
	Duration     time.Duration `json:"duration_ns"`
	Status       status        `json:"status"`
	Attributes   attrs         `json:"attributes,omitempty"`
	Events       []event       `json:"events,omitempty"`
	Links        []link        `json:"links,omitempty"`
	Scope        scope         `json:"scope,omitzero"`
	Resource     *resource     `json:"resource,omitempty"`
}

func (s *span) isError() bool { return s.Status.Code == "error" }

// logRecord is one stored log record. Time is the event time, or the
// observed time when the sender set none. Log records are immutable once
// stored.
type logRecord struct {
	Time           time.Time `json:"time,omitzero"`
	ObservedTime   time.Time `json:"observed_time,omitzero"`
	SeverityNumber int32     `json:"severity_number,omitempty"`
	SeverityText   string    `json:"severity_text,omitempty"`
	EventName      string    `json:"event_name,omitempty"`
	Body           any       `json:"body,omitempty"`
	Attributes     attrs     `json:"attributes,omitempty"`
	TraceID        traceID   `json:"trace_id,omitzero"`
	SpanID         spanID    `json:"span_id,omitzero"`
	Service        string    `json:"service"`
	Scope          scope     `json:"scope,omitzero"`
	Resource       *resource `json:"resource,omitempty"`
}

// severity returns the severity text, or a name derived from the severity
// number when the sender set no text.
func (l *logRecord) severity() string {
	if l.SeverityText != "" {
		return l.SeverityText
	}
	n := l.SeverityNumber
	names := [...]string{"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"}
	if n < 1 || n > 24 {
		return ""
	}
	name := names[(n-1)/4]
	if (n-1)%4 != 0 {
		name += strconv.Itoa(int((n-1)%4 + 1))
	}
	return name
}

// metricKind names the OTLP metric data types.
type metricKind string

const (
	kindGauge        metricKind = "gauge"
	kindSum          metricKind = "sum"
	kindHistogram    metricKind = "histogram"
	kindExpHistogram metricKind = "exponential_histogram"
	kindSummary      metricKind = "summary"
)

// quantile is one quantile of a summary point.
type quantile struct {
	Quantile float `json:"quantile"`
	Value    float `json:"value"`
}

// metricPoint is one data point. Value holds gauge and sum values; Count,
// Sum, Min and Max hold the aggregates of histogram, exponential histogram
// and summary points; Bounds and BucketCounts the explicit buckets of a
// histogram; Quantiles those of a summary.
type metricPoint struct {
	Start        time.Time  `json:"start,omitzero"`
	Time         time.Time  `json:"time,omitzero"`
	Attributes   attrs      `json:"attributes,omitempty"`
	Value        float      `json:"value"`
	Count        uint64     `json:"count,omitempty"`
	Sum          float      `json:"sum,omitempty"`
	Min          *float     `json:"min,omitempty"`
	Max          *float     `json:"max,omitempty"`
	Bounds       []float    `json:"bounds,omitempty"`
	BucketCounts []uint64   `json:"bucket_counts,omitempty"`
	Quantiles    []quantile `json:"quantiles,omitempty"`
	Exemplars    []exemplar `json:"exemplars,omitempty"`
}

// exemplar is a sample measurement recorded with a metric point, usually
// with the trace and span that were active, so a chart can link to them.
// Non-finite values are dropped when decoding.
type exemplar struct {
	Time       time.Time `json:"time,omitzero"`
	Value      float64   `json:"value"`
	TraceID    traceID   `json:"trace_id,omitzero"`
	SpanID     spanID    `json:"span_id,omitzero"`
	Attributes attrs     `json:"filtered_attributes,omitempty"`
}

// metricKey identifies a metric series: the same metric name reported by
// the same service.
type metricKey struct {
	Service string
	Name    string
}

// metricBatch is the decoded content of one OTLP metric: its description
// and the points it carried. The store merges batches into series.
type metricBatch struct {
	Key         metricKey
	Description string
	Unit        string
	Kind        metricKind
	Temporality string // "delta", "cumulative" or "" for gauges and summaries
	Monotonic   bool
	Scope       scope
	Resource    *resource
	Points      []metricPoint
}
