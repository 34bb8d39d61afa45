package console

import (
	"cmp"
	"slices"
	"sync"
	"time"
)

// Stats counts the telemetry a Console has handled since it was created.
// For every signal Received = Rejected + Duplicates + Stored + Evicted.
type Stats struct {
	Spans        SignalStats `json:"spans"`
	Logs         SignalStats `json:"logs"`
	MetricPoints SignalStats `json:"metric_points"`
	Traces       int         `json:"traces"`        // traces currently stored
	MetricSeries int         `json:"metric_series"` // (service, metric name) series currently stored
	Services     int         `json:"services"`      // services with stored telemetry of any signal
	// Shed counts exports, OTLP/HTTP and OTLP/gRPC, refused unread because
	// Options.MaxInFlightExports were already in flight; their items are
	// not in any Received count.
	Shed uint64 `json:"shed"`
	// Persist counts the persistence work when Options.DataDir is set.
	Persist PersistStats `json:"persist,omitzero"`
}

// SignalStats counts the items of one signal: spans, log records or metric
// data points.
type SignalStats struct {
	// Received counts the items in every request that could be decoded,
	// including the ones then rejected.
	Received uint64 `json:"received"`
	// Rejected counts items refused as invalid (for example a span without
	// a valid trace id); the sender learns of them through partial_success.
	Rejected uint64 `json:"rejected"`
	// Duplicates counts spans that replaced a stored span with the same
	// trace and span id (an exporter retry). Always zero for other signals.
	Duplicates uint64 `json:"duplicates"`
	// Stored is the number of items held now.
	Stored int `json:"stored"`
	// Bytes is the approximate size of the items held now: their Go
	// structures and strings, not the indexes or the allocator's overhead.
	Bytes int `json:"bytes"`
	// Evicted counts items dropped, oldest first, to stay within the bound.
	Evicted uint64 `json:"evicted"`
}

// store is the console's in-memory telemetry store. It holds at most
// maxSpans spans, maxLogs log records and maxPoints metric points and
// evicts the oldest (by insertion) to stay within those bounds: whole
// traces for spans, in the order their first span arrived.
//
// A store is safe for concurrent use. Everything it returns (spans, log
// records) is immutable and may be kept by the caller; slices are fresh
// copies.
type store struct {
	maxSpans, maxLogs, maxPoints int
	// maxSpanBytes, maxLogBytes and maxPointBytes bound the approximate
	// bytes held per signal (see size.go); zero means no byte bound.
	maxSpanBytes, maxLogBytes, maxPointBytes int

	mu sync.RWMutex // guards everything below

	traces map[traceID]*trace
	order  []traceID // traces in first-arrival order; order[orderHead:] are live
	// orderHead indexes the oldest live entry of order.
	orderHead int
	// orderBase is the sequence number of order[0]: the trace at order[i]
	// has sequence number orderBase+i.
	orderBase uint64
	spanCount int
	// spanBytes, logBytes and pointBytes are the approximate sizes of the
	// stored items.
	spanBytes, logBytes, pointBytes int
	index                           traceIndex
	red                             redAggregator

	logs ring[*logRecord]

	series     map[metricKey]*metricSeries
	pointOrder ring[metricKey] // one entry per stored point, oldest first

	services map[string]int // stored items (spans, logs, points) per service

	spanStats, logStats, pointStats SignalStats
}

// trace is the store's record of one trace. The store's lock guards it.
type trace struct {
	id       traceID
	seq      uint64         // arrival order among traces; see traceIndex
	spans    []*span        // insertion order
	index    map[spanID]int // span id -> position in spans
	start    time.Time      // earliest span start
	end      time.Time      // latest span end
	errors   int            // spans with error status
	services map[string]int // spans per service
	bytes    int            // approximate size of the spans, see spanSize
}

// metricSeries holds the recent points of one (service, metric) series.
// The store's lock guards it.
type metricSeries struct {
	key         metricKey
	description string
	unit        string
	kind        metricKind
	temporality string
	monotonic   bool
	scope       scope
	resource    *resource
	points      []metricPoint // oldest first
}

// newStore returns an empty store with the given bounds, each of which
// must be positive.
func newStore(maxSpans, maxLogs, maxPoints int) *store {
	return &store{
		maxSpans:   maxSpans,
		maxLogs:    maxLogs,
		maxPoints:  maxPoints,
		traces:     make(map[traceID]*trace),
		index:      newTraceIndex(),
		red:        newREDAggregator(),
		logs:       ring[*logRecord]{max: maxLogs},
		series:     make(map[metricKey]*metricSeries),
		pointOrder: ring[metricKey]{max: maxPoints},
		services:   make(map[string]int),
	}
}

// addSpans stores spans, which must have non-zero trace and span ids.
// rejected is the number of spans of the same request that the decoder
// refused; they count as received and rejected.
func (s *store) addSpans(spans []*span, rejected int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.spanStats.Received += uint64(len(spans) + rejected)
	s.spanStats.Rejected += uint64(rejected)
	for _, sp := range spans {
		s.addSpan(sp)
	}
	s.evictSpans()
}

func (s *store) addSpan(sp *span) {
	t := s.traces[sp.TraceID]
	if t == nil {
		t = &trace{id: sp.TraceID, index: make(map[spanID]int), services: make(map[string]int)}
		t.seq = s.orderBase + uint64(len(s.order))
		s.traces[sp.TraceID] = t
		s.order = append(s.order, sp.TraceID)
	}
	s.index.add(t.seq, sp)
	if i, ok := t.index[sp.SpanID]; ok {
		old := t.spans[i]
		t.spans[i] = sp
		s.spanBytes += spanSize(sp) - spanSize(old)
		s.unref(old.Service)
		s.ref(sp.Service)
		s.spanStats.Duplicates++
		t.recompute()
		return
	}
	s.red.observe(sp)
	t.index[sp.SpanID] = len(t.spans)
	t.spans = append(t.spans, sp)
	before := t.bytes
	t.include(sp)
	s.ref(sp.Service)
	s.spanCount++
	s.spanBytes += t.bytes - before
}

// evictSpans drops whole traces, oldest first, until the span bounds
// (count and bytes) hold. When the oldest trace is the only one, its
// oldest spans go.
func (s *store) evictSpans() {
	for s.spanCount > s.maxSpans || (s.maxSpanBytes > 0 && s.spanBytes > s.maxSpanBytes) {
		id := s.order[s.orderHead]
		t := s.traces[id]
		n := len(t.spans) // spans to drop from t, oldest first
		if len(s.order)-s.orderHead == 1 {
			n = max(s.spanCount-s.maxSpans, 0)
			freed := 0
			for _, sp := range t.spans[:n] {
				freed += spanSize(sp)
			}
			for ; s.maxSpanBytes > 0 && s.spanBytes-freed > s.maxSpanBytes && n < len(t.spans); n++ {
				freed += spanSize(t.spans[n])
			}
		}
		if n == len(t.spans) {
			s.order[s.orderHead] = traceID{}
			s.orderHead++
			delete(s.traces, id)
			for _, sp := range t.spans {
				s.unref(sp.Service)
			}
			s.spanCount -= len(t.spans)
			s.spanBytes -= t.bytes
			s.spanStats.Evicted += uint64(len(t.spans))
			continue
		}
		for _, sp := range t.spans[:n] {
			s.unref(sp.Service)
		}
		t.spans = slices.Delete(t.spans, 0, n)
		before := t.bytes
		t.recompute()
		s.spanCount -= n
		s.spanBytes -= before - t.bytes
		s.spanStats.Evicted += uint64(n)
	}
	if s.orderHead > len(s.order)/2 && s.orderHead > 64 {
		s.order = slices.Clone(s.order[s.orderHead:])
		s.orderBase += uint64(s.orderHead)
		s.orderHead = 0
	}
	s.index.maybeSweep(s.minLiveSeq())
}

// minLiveSeq is the sequence number of the oldest live trace; every trace
// below it has been evicted. The caller holds s.mu.
func (s *store) minLiveSeq() uint64 { return s.orderBase + uint64(s.orderHead) }

// traceBySeq returns the live trace with sequence number seq, or nil.
// The caller holds s.mu.
func (s *store) traceBySeq(seq uint64) *trace {
	if seq < s.minLiveSeq() || seq >= s.orderBase+uint64(len(s.order)) {
		return nil
	}
	t := s.traces[s.order[seq-s.orderBase]]
	if t == nil || t.seq != seq {
		return nil
	}
	return t
}

// include folds sp into the trace's aggregates.
func (t *trace) include(sp *span) {
	if !sp.Start.IsZero() && (t.start.IsZero() || sp.Start.Before(t.start)) {
		t.start = sp.Start
	}
	if sp.End.After(t.end) {
		t.end = sp.End
	}
	if sp.isError() {
		t.errors++
	}
	t.services[sp.Service]++
	t.bytes += spanSize(sp)
}

// recompute rebuilds the trace's index and aggregates from its spans.
func (t *trace) recompute() {
	t.start, t.end, t.errors, t.bytes = time.Time{}, time.Time{}, 0, 0
	clear(t.index)
	clear(t.services)
	for i, sp := range t.spans {
		t.index[sp.SpanID] = i
		t.include(sp)
	}
}

// addLogs stores records; rejected counts refused records of the same
// request, as for addSpans.
func (s *store) addLogs(records []*logRecord, rejected int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.logStats.Received += uint64(len(records) + rejected)
	s.logStats.Rejected += uint64(rejected)
	for _, r := range records {
		s.ref(r.Service)
		s.logBytes += logSize(r)
		if old, evicted := s.logs.push(r); evicted {
			s.evictLog(old)
		}
		for s.maxLogBytes > 0 && s.logBytes > s.maxLogBytes {
			s.evictLog(s.logs.popOldest())
		}
	}
}

// addMetrics merges batches into their series; rejected counts refused
// points of the same request, as for addSpans.
func (s *store) addMetrics(batches []metricBatch, rejected int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pointStats.Received += uint64(rejected)
	s.pointStats.Rejected += uint64(rejected)
	for _, b := range batches {
		s.pointStats.Received += uint64(len(b.Points))
		if len(b.Points) == 0 {
			continue
		}
		ser := s.series[b.Key]
		if ser == nil {
			ser = &metricSeries{key: b.Key}
			s.series[b.Key] = ser
		}
		// The latest description wins: senders may change it between versions.
		ser.description, ser.unit, ser.kind = b.Description, b.Unit, b.Kind
		ser.temporality, ser.monotonic = b.Temporality, b.Monotonic
		ser.scope, ser.resource = b.Scope, b.Resource
		for _, p := range b.Points {
			ser.points = append(ser.points, p)
			s.ref(b.Key.Service)
			s.pointBytes += pointSize(&p)
			if old, evicted := s.pointOrder.push(b.Key); evicted {
				s.evictPoint(old)
			}
			for s.maxPointBytes > 0 && s.pointBytes > s.maxPointBytes {
				s.evictPoint(s.pointOrder.popOldest())
			}
		}
	}
}

// evictPoint drops the oldest point of the series key.
func (s *store) evictPoint(key metricKey) {
	ser := s.series[key]
	s.pointBytes -= pointSize(&ser.points[0])
	ser.points[0] = metricPoint{}
	ser.points = ser.points[1:]
	if len(ser.points) == 0 {
		delete(s.series, key)
	}
	s.unref(key.Service)
	s.pointStats.Evicted++
}

// evictLog accounts for a log record dropped from the ring.
func (s *store) evictLog(old *logRecord) {
	s.logBytes -= logSize(old)
	s.unref(old.Service)
	s.logStats.Evicted++
}

func (s *store) ref(service string) { s.services[service]++ }

func (s *store) unref(service string) {
	if s.services[service]--; s.services[service] <= 0 {
		delete(s.services, service)
	}
}

// stats returns the counters and current sizes.
func (s *store) stats() Stats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := Stats{
		Spans:        s.spanStats,
		Logs:         s.logStats,
		MetricPoints: s.pointStats,
		Traces:       len(s.traces),
		MetricSeries: len(s.series),
		Services:     len(s.services),
	}
	st.Spans.Stored = s.spanCount
	st.Logs.Stored = s.logs.len()
	st.MetricPoints.Stored = s.pointOrder.len()
	st.Spans.Bytes, st.Logs.Bytes, st.MetricPoints.Bytes = s.spanBytes, s.logBytes, s.pointBytes
	return st
}

// serviceNames returns the names of services with stored telemetry, sorted.
func (s *store) serviceNames() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	names := make([]string, 0, len(s.services))
	for name := range s.services {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// traceSummary describes one trace for the recent-traces list.
type traceSummary struct {
	TraceID     traceID       `json:"trace_id"`
	RootService string        `json:"root_service"`
	RootName    string        `json:"root_name"`
	SpanCount   int           `json:"span_count"`
	ErrorCount  int           `json:"error_count"`
	Start       time.Time     `json:"start,omitzero"`
	Duration    time.Duration `json:"duration_ns"`
	Services    []string      `json:"services"`
}

// recentTraces summarises up to limit traces, the latest to arrive, sorted
// by start time, latest first. With a non-empty service only traces with a
// span of that service qualify.
func (s *store) recentTraces(service string, limit int) []traceSummary {
	return s.searchTraces(traceQuery{Service: service, Limit: limit}).Traces
}

// summary describes t; the caller holds the store's lock.
func (t *trace) summary() traceSummary {
	sum := traceSummary{
		TraceID:    t.id,
		SpanCount:  len(t.spans),
		ErrorCount: t.errors,
		Start:      t.start,
		Services:   make([]string, 0, len(t.services)),
	}
	if !t.start.IsZero() && t.end.After(t.start) {
		sum.Duration = t.end.Sub(t.start)
	}
	for name := range t.services {
		sum.Services = append(sum.Services, name)
	}
	slices.Sort(sum.Services)
	if root := rootSpan(t.spans, t.index); root != nil {
		sum.RootService, sum.RootName = root.Service, root.Name
	}
	return sum
}

// rootSpan picks the span to name a trace by: the earliest span without a
// parent, else the earliest whose parent is missing, else the earliest.
func rootSpan(spans []*span, index map[spanID]int) *span {
	var root, orphan, first *span
	earlier := func(a, b *span) bool { return b == nil || a.Start.Before(b.Start) }
	for _, sp := range spans {
		switch _, hasParent := index[sp.ParentSpanID]; {
		case sp.ParentSpanID.IsZero():
			if earlier(sp, root) {
				root = sp
			}
		case !hasParent:
			if earlier(sp, orphan) {
				orphan = sp
			}
		}
		if earlier(sp, first) {
			first = sp
		}
	}
	return cmp.Or(root, orphan, first)
}

// trace returns the spans of the trace id sorted by start time, and
// whether the trace is stored.
func (s *store) trace(id traceID) ([]*span, bool) {
	s.mu.RLock()
	t := s.traces[id]
	if t == nil {
		s.mu.RUnlock()
		return nil, false
	}
	spans := slices.Clone(t.spans)
	s.mu.RUnlock()
	slices.SortStableFunc(spans, func(a, b *span) int { return a.Start.Compare(b.Start) })
	return spans, true
}

// queryLogs returns the stored records matching q, newest first by arrival.
func (s *store) queryLogs(q logQuery) []*logRecord {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*logRecord
	for i := s.logs.len() - 1; i >= 0; i-- {
		if q.Limit > 0 && len(out) >= q.Limit {
			break
		}
		if r := s.logs.at(i); q.match(r) {
			out = append(out, r)
		}
	}
	return out
}

// metricSeriesView is a copy of a stored series.
type metricSeriesView struct {
	Service     string        `json:"service"`
	Name        string        `json:"name"`
	Description string        `json:"description,omitempty"`
	Unit        string        `json:"unit,omitempty"`
	Kind        metricKind    `json:"kind"`
	Temporality string        `json:"temporality,omitempty"`
	Monotonic   bool          `json:"monotonic,omitempty"`
	Scope       scope         `json:"scope,omitzero"`
	Points      []metricPoint `json:"points"`
}

// metrics returns copies of the stored series of service (all services
// when empty), sorted by service and name.
func (s *store) metrics(service string) []metricSeriesView {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []metricSeriesView
	for k, ser := range s.series {
		if service != "" && k.Service != service {
			continue
		}
		out = append(out, metricSeriesView{
			Service: k.Service, Name: k.Name, Description: ser.description, Unit: ser.unit,
			Kind: ser.kind, Temporality: ser.temporality, Monotonic: ser.monotonic,
			Scope: ser.scope, Points: slices.Clone(ser.points),
		})
	}
	slices.SortFunc(out, func(a, b metricSeriesView) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// ring is a bounded FIFO that overwrites its oldest element when full. Its
// storage grows on demand up to max elements.
type ring[T any] struct {
	buf  []T
	head int // index of the oldest element
	n    int // elements held
	max  int
}

func (r *ring[T]) len() int { return r.n }

// push appends v, returning the element it displaced when full.
func (r *ring[T]) push(v T) (old T, evicted bool) {
	if r.n == r.max {
		old = r.buf[r.head]
		r.buf[r.head] = v
		r.head = (r.head + 1) % len(r.buf)
		return old, true
	}
	if r.n == len(r.buf) {
		grown := make([]T, min(r.max, max(2*len(r.buf), 64)))
		for i := range r.n {
			grown[i] = r.at(i)
		}
		r.buf, r.head = grown, 0
	}
	r.buf[(r.head+r.n)%len(r.buf)] = v
	r.n++
	return old, false
}

// popOldest removes and returns the oldest element; the ring must not be
// empty.
func (r *ring[T]) popOldest() T {
	var zero T
	v := r.buf[r.head]
	r.buf[r.head] = zero
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	return v
}

// at returns the i-th oldest element, 0 <= i < len.
func (r *ring[T]) at(i int) T { return r.buf[(r.head+i)%len(r.buf)] }
