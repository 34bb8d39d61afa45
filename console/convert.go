package console

import (
	"encoding/base64"
	"fmt"
	"math"
	"strconv"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// unknownService is the service name of telemetry whose resource carries
// no service.name, as the OpenTelemetry SDKs name it.
const unknownService = "unknown_service"

// maxValueDepth bounds the nesting of attribute values the console keeps;
// deeper values are replaced by a placeholder string.
const maxValueDepth = 16

// rejections counts the items of one request refused as invalid and keeps
// the first reason to tell the sender.
type rejections struct {
	n     int
	first string
}

// add counts n rejected items for the reason given by format and args.
func (r *rejections) add(n int, format string, args ...any) {
	if n <= 0 {
		return
	}
	if r.n == 0 {
		r.first = fmt.Sprintf(format, args...)
	}
	r.n += n
}

// message is the partial_success error message, empty if nothing was
// rejected.
func (r *rejections) message(what string) string {
	if r.n == 0 {
		return ""
	}
	return fmt.Sprintf("console: rejected %d %s; first: %s", r.n, what, r.first)
}

// convertTraces turns an export request into spans. Spans without a valid
// trace or span id, or with a malformed parent id, are rejected.
func convertTraces(req *coltracepb.ExportTraceServiceRequest) ([]*span, rejections) {
	var (
		out []*span
		rej rejections
	)
	for _, rs := range req.GetResourceSpans() {
		res := convertResource(rs.GetResource())
		for _, ss := range rs.GetScopeSpans() {
			sc := convertScope(ss.GetScope())
			for _, ps := range ss.GetSpans() {
				sp, err := convertSpan(ps, res, sc)
				if err != "" {
					rej.add(1, "span %q: %s", ps.GetName(), err)
					continue
				}
				out = append(out, sp)
			}
		}
	}
	return out, rej
}

func convertSpan(ps *tracepb.Span, res *resource, sc scope) (*span, string) {
	tid, ok := traceIDFromBytes(ps.GetTraceId())
	if !ok || tid.IsZero() {
		return nil, "invalid trace_id: want 16 bytes, not all zero"
	}
	sid, ok := spanIDFromBytes(ps.GetSpanId())
	if !ok || sid.IsZero() {
		return nil, "invalid span_id: want 8 bytes, not all zero"
	}
	parent, ok := spanIDFromBytes(ps.GetParentSpanId())
	if !ok {
		return nil, "invalid parent_span_id: want 8 bytes or none"
	}
	sp := &span{
		TraceID:      tid,
		SpanID:       sid,
		ParentSpanID: parent,
		TraceState:   ps.GetTraceState(),
		Service:      res.Service,
		Name:         ps.GetName(),
		Kind:         spanKind(ps.GetKind()),
		Start:        unixNano(ps.GetStartTimeUnixNano()),
		End:          unixNano(ps.GetEndTimeUnixNano()),
		Status:       status{Code: statusCode(ps.GetStatus().GetCode()), Message: ps.GetStatus().GetMessage()},
		Attributes:   convertAttrs(ps.GetAttributes(), 0),
		Scope:        sc,
		Resource:     res,
	}
	if !sp.Start.IsZero() && sp.End.After(sp.Start) {
		sp.Duration = sp.End.Sub(sp.Start)
	}
	for _, e := range ps.GetEvents() {
		sp.Events = append(sp.Events, event{
			Time:       unixNano(e.GetTimeUnixNano()),
			Name:       e.GetName(),
			Attributes: convertAttrs(e.GetAttributes(), 0),
		})
	}
	for _, l := range ps.GetLinks() {
		// A malformed link is dropped rather than failing its span.
		lt, ok1 := traceIDFromBytes(l.GetTraceId())
		ls, ok2 := spanIDFromBytes(l.GetSpanId())
		if !ok1 || !ok2 {
			continue
		}
		sp.Links = append(sp.Links, link{
			TraceID:    lt,
			SpanID:     ls,
			TraceState: l.GetTraceState(),
			Attributes: convertAttrs(l.GetAttributes(), 0),
		})
	}
	return sp, ""
}

func spanKind(k tracepb.Span_SpanKind) string {
	switch k {
	case tracepb.Span_SPAN_KIND_INTERNAL:
		return "internal"
	case tracepb.Span_SPAN_KIND_SERVER:
		return "server"
	case tracepb.Span_SPAN_KIND_CLIENT:
		return "client"
	case tracepb.Span_SPAN_KIND_PRODUCER:
		return "producer"
	case tracepb.Span_SPAN_KIND_CONSUMER:
		return "consumer"
	}
	return "unspecified"
}

func statusCode(c tracepb.Status_StatusCode) string {
	switch c {
	case tracepb.Status_STATUS_CODE_OK:
		return "ok"
	case tracepb.Status_STATUS_CODE_ERROR:
		return "error"
	}
	return "unset"
}

// convertLogs turns an export request into log records. Records with a
// malformed trace or span id are rejected; records without ids are kept.
func convertLogs(req *collogspb.ExportLogsServiceRequest) ([]*logRecord, rejections) {
	var (
		out []*logRecord
		rej rejections
	)
	for _, rl := range req.GetResourceLogs() {
		res := convertResource(rl.GetResource())
		for _, sl := range rl.GetScopeLogs() {
			sc := convertScope(sl.GetScope())
			for _, lr := range sl.GetLogRecords() {
				tid, ok1 := traceIDFromBytes(lr.GetTraceId())
				sid, ok2 := spanIDFromBytes(lr.GetSpanId())
				if !ok1 || !ok2 {
					rej.add(1, "log record: invalid trace_id or span_id length")
					continue
				}
				r := &logRecord{
					Time:           unixNano(lr.GetTimeUnixNano()),
					ObservedTime:   unixNano(lr.GetObservedTimeUnixNano()),
					SeverityNumber: int32(lr.GetSeverityNumber()),
					SeverityText:   lr.GetSeverityText(),
					EventName:      lr.GetEventName(),
					Attributes:     convertAttrs(lr.GetAttributes(), 0),
					TraceID:        tid,
					SpanID:         sid,
					Service:        res.Service,
					Scope:          sc,
					Resource:       res,
				}
				if lr.GetBody() != nil {
					r.Body = convertValue(lr.GetBody(), 0)
				}
				if r.Time.IsZero() {
					r.Time = r.ObservedTime
				}
				out = append(out, r)
			}
		}
	}
	return out, rej
}

// convertMetrics turns an export request into one batch per metric. The
// points of a metric without a name are rejected; a metric without data
// is skipped.
func convertMetrics(req *colmetricspb.ExportMetricsServiceRequest) ([]metricBatch, rejections) {
	var (
		out []metricBatch
		rej rejections
	)
	for _, rm := range req.GetResourceMetrics() {
		res := convertResource(rm.GetResource())
		for _, sm := range rm.GetScopeMetrics() {
			sc := convertScope(sm.GetScope())
			for _, m := range sm.GetMetrics() {
				b := metricBatch{
					Key:         metricKey{Service: res.Service, Name: m.GetName()},
					Description: m.GetDescription(),
					Unit:        m.GetUnit(),
					Scope:       sc,
					Resource:    res,
				}
				if !convertMetricData(m, &b) {
					continue // no data points: nothing to keep or reject
				}
				if b.Key.Name == "" {
					rej.add(len(b.Points), "metric without a name")
					continue
				}
				out = append(out, b)
			}
		}
	}
	return out, rej
}

// convertMetricData fills b's kind and points from m and reports whether m
// carried data.
func convertMetricData(m *metricspb.Metric, b *metricBatch) bool {
	switch d := m.GetData().(type) {
	case *metricspb.Metric_Gauge:
		b.Kind = kindGauge
		b.Points = numberPoints(d.Gauge.GetDataPoints())
	case *metricspb.Metric_Sum:
		b.Kind = kindSum
		b.Temporality = temporality(d.Sum.GetAggregationTemporality())
		b.Monotonic = d.Sum.GetIsMonotonic()
		b.Points = numberPoints(d.Sum.GetDataPoints())
	case *metricspb.Metric_Histogram:
		b.Kind = kindHistogram
		b.Temporality = temporality(d.Histogram.GetAggregationTemporality())
		for _, p := range d.Histogram.GetDataPoints() {
			mp := metricPoint{
				Start:        unixNano(p.GetStartTimeUnixNano()),
				Time:         unixNano(p.GetTimeUnixNano()),
				Attributes:   convertAttrs(p.GetAttributes(), 0),
				Count:        p.GetCount(),
				Sum:          float(p.GetSum()),
				Min:          optFloat(p.Min),
				Max:          optFloat(p.Max),
				BucketCounts: p.GetBucketCounts(),
				Exemplars:    convertExemplars(p.GetExemplars()),
			}
			for _, bound := range p.GetExplicitBounds() {
				mp.Bounds = append(mp.Bounds, float(bound))
			}
			b.Points = append(b.Points, mp)
		}
	case *metricspb.Metric_ExponentialHistogram:
		b.Kind = kindExpHistogram
		b.Temporality = temporality(d.ExponentialHistogram.GetAggregationTemporality())
		for _, p := range d.ExponentialHistogram.GetDataPoints() {
			b.Points = append(b.Points, metricPoint{
				Start:      unixNano(p.GetStartTimeUnixNano()),
				Time:       unixNano(p.GetTimeUnixNano()),
				Attributes: convertAttrs(p.GetAttributes(), 0),
				Count:      p.GetCount(),
				Sum:        float(p.GetSum()),
				Min:        optFloat(p.Min),
				Max:        optFloat(p.Max),
				Exemplars:  convertExemplars(p.GetExemplars()),
			})
		}
	case *metricspb.Metric_Summary:
		b.Kind = kindSummary
		for _, p := range d.Summary.GetDataPoints() {
			mp := metricPoint{
				Start:      unixNano(p.GetStartTimeUnixNano()),
				Time:       unixNano(p.GetTimeUnixNano()),
				Attributes: convertAttrs(p.GetAttributes(), 0),
				Count:      p.GetCount(),
				Sum:        float(p.GetSum()),
			}
			for _, q := range p.GetQuantileValues() {
				mp.Quantiles = append(mp.Quantiles, quantile{Quantile: float(q.GetQuantile()), Value: float(q.GetValue())})
			}
			b.Points = append(b.Points, mp)
		}
	default:
		return false
	}
	return true
}

func numberPoints(ps []*metricspb.NumberDataPoint) []metricPoint {
	out := make([]metricPoint, 0, len(ps))
	for _, p := range ps {
		mp := metricPoint{
			Start:      unixNano(p.GetStartTimeUnixNano()),
			Time:       unixNano(p.GetTimeUnixNano()),
			Attributes: convertAttrs(p.GetAttributes(), 0),
			Exemplars:  convertExemplars(p.GetExemplars()),
		}
		switch v := p.GetValue().(type) {
		case *metricspb.NumberDataPoint_AsDouble:
			mp.Value = float(v.AsDouble)
		case *metricspb.NumberDataPoint_AsInt:
			mp.Value = float(v.AsInt)
		}
		out = append(out, mp)
	}
	return out
}

// convertExemplars keeps the exemplars with a finite value. An exemplar
// whose trace or span id has the wrong length keeps its value without ids.
func convertExemplars(es []*metricspb.Exemplar) []exemplar {
	var out []exemplar
	for _, e := range es {
		ex := exemplar{Time: unixNano(e.GetTimeUnixNano()), Attributes: convertAttrs(e.GetFilteredAttributes(), 0)}
		switch v := e.GetValue().(type) {
		case *metricspb.Exemplar_AsDouble:
			ex.Value = v.AsDouble
		case *metricspb.Exemplar_AsInt:
			ex.Value = float64(v.AsInt)
		}
		if math.IsNaN(ex.Value) || math.IsInf(ex.Value, 0) {
			continue
		}
		tid, okT := traceIDFromBytes(e.GetTraceId())
		sid, okS := spanIDFromBytes(e.GetSpanId())
		if okT && okS {
			ex.TraceID, ex.SpanID = tid, sid
		}
		out = append(out, ex)
	}
	return out
}

func optFloat(p *float64) *float {
	if p == nil {
		return nil
	}
	f := float(*p)
	return &f
}

func temporality(t metricspb.AggregationTemporality) string {
	switch t {
	case metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA:
		return "delta"
	case metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE:
		return "cumulative"
	}
	return ""
}

// convertResource extracts the service name and attributes of r.
func convertResource(r *resourcepb.Resource) *resource {
	res := &resource{Attributes: convertAttrs(r.GetAttributes(), 0)}
	if v, ok := res.Attributes.get("service.name"); ok {
		if name, ok := v.(string); ok {
			res.Service = name
		}
	}
	if res.Service == "" {
		res.Service = unknownService
	}
	return res
}

func convertScope(s *commonpb.InstrumentationScope) scope {
	return scope{Name: s.GetName(), Version: s.GetVersion()}
}

func convertAttrs(kvs []*commonpb.KeyValue, depth int) attrs {
	if len(kvs) == 0 {
		return nil
	}
	out := make(attrs, 0, len(kvs))
	for _, kv := range kvs {
		out = append(out, keyValue{Key: kv.GetKey(), Value: convertValue(kv.GetValue(), depth)})
	}
	return out
}

// convertValue maps an OTLP AnyValue to the Go values documented on
// keyValue.
func convertValue(v *commonpb.AnyValue, depth int) any {
	if depth >= maxValueDepth {
		return "[nested too deep]"
	}
	switch v := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return v.StringValue
	case *commonpb.AnyValue_BoolValue:
		return v.BoolValue
	case *commonpb.AnyValue_IntValue:
		return v.IntValue
	case *commonpb.AnyValue_DoubleValue:
		if math.IsNaN(v.DoubleValue) || math.IsInf(v.DoubleValue, 0) {
			return strconv.FormatFloat(v.DoubleValue, 'g', -1, 64)
		}
		return v.DoubleValue
	case *commonpb.AnyValue_BytesValue:
		return base64.StdEncoding.EncodeToString(v.BytesValue)
	case *commonpb.AnyValue_ArrayValue:
		vals := v.ArrayValue.GetValues()
		out := make([]any, len(vals))
		for i, e := range vals {
			out[i] = convertValue(e, depth+1)
		}
		return out
	case *commonpb.AnyValue_KvlistValue:
		return convertAttrs(v.KvlistValue.GetValues(), depth+1)
	}
	return nil
}

// unixNano converts an OTLP timestamp; zero stays the zero time.
func unixNano(ns uint64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	if ns > math.MaxInt64 {
		ns = math.MaxInt64
	}
	return time.Unix(0, int64(ns)).UTC()
}
