package console

import "unsafe"

// Approximate sizes of stored telemetry, for the byte bounds. They count
// the Go structures and the bytes of their strings, not the allocator's
// rounding or the store's indexes, and not a resource, which every item
// of an export shares. They are deterministic, so an item's size can be
// computed again when it is evicted.
const (
	spanOverhead   = int(unsafe.Sizeof(span{})) + 16 // plus the trace's pointer and index entry
	logOverhead    = int(unsafe.Sizeof(logRecord{})) + 8
	pointOverhead  = int(unsafe.Sizeof(metricPoint{})) + int(unsafe.Sizeof(metricKey{}))
	kvOverhead     = int(unsafe.Sizeof(keyValue{})) + 16 // the interface's boxed value
	eventOverhead  = int(unsafe.Sizeof(event{}))
	linkOverhead   = int(unsafe.Sizeof(link{}))
	exemplarOvhead = int(unsafe.Sizeof(exemplar{}))
)

// spanSize is the approximate size of sp in bytes.
func spanSize(sp *span) int {
	n := spanOverhead + len(sp.Service) + len(sp.Name) + len(sp.Kind) + len(sp.TraceState) +
		len(sp.Status.Message) + len(sp.Scope.Name) + len(sp.Scope.Version) + attrsSize(sp.Attributes)
	for i := range sp.Events {
		n += eventOverhead + len(sp.Events[i].Name) + attrsSize(sp.Events[i].Attributes)
	}
	for i := range sp.Links {
		n += linkOverhead + len(sp.Links[i].TraceState) + attrsSize(sp.Links[i].Attributes)
	}
	return n
}

// logSize is the approximate size of r in bytes.
func logSize(r *logRecord) int {
	return logOverhead + len(r.SeverityText) + len(r.EventName) + len(r.Service) +
		len(r.Scope.Name) + len(r.Scope.Version) + valueSize(r.Body) + attrsSize(r.Attributes)
}

// pointSize is the approximate size of p, a point of a series named name.
func pointSize(p *metricPoint) int {
	n := pointOverhead + attrsSize(p.Attributes) + 8*(len(p.Bounds)+len(p.BucketCounts)) + 16*len(p.Quantiles)
	for i := range p.Exemplars {
		n += exemplarOvhead + attrsSize(p.Exemplars[i].Attributes)
	}
	return n
}

func attrsSize(a attrs) int {
	n := 0
	for _, kv := range a {
		n += kvOverhead + len(kv.Key) + valueSize(kv.Value)
	}
	return n
}

// valueSize is the size of an attribute value beyond its interface header.
func valueSize(v any) int {
	switch v := v.(type) {
	case string:
		return len(v)
	case []any:
		n := 24
		for _, e := range v {
			n += 16 + valueSize(e)
		}
		return n
	case attrs:
		return 24 + attrsSize(v)
	}
	return 0
}
