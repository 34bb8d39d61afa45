package console

import (
	"cmp"
	"math"
	"slices"
	"time"
)

// Critical-path tolerances. A child that ends up to pathSkewFraction of
// its parent's duration, and at least minPathSkew, after the walk's cursor
// still counts as ending before it.
const (
	pathSkewFraction = 100 // 1/100 = 1%
	minPathSkew      = 50 * time.Microsecond
)

// pathSegment is one stretch of a critical path: from Start to End the
// span SpanID was running on its own (not waiting on a child), and that
// time was on the path. SelfTime is End - Start.
type pathSegment struct {
	SpanID   spanID        `json:"span_id"`
	Name     string        `json:"name"`
	Service  string        `json:"service"`
	Start    time.Time     `json:"start"`
	End      time.Time     `json:"end"`
	SelfTime time.Duration `json:"self_time_on_path_ns"`
}

// criticalPath is the critical path of one trace. Segments are ordered by
// time and tile [root start, root end] without gaps or overlaps, so their
// SelfTimes sum to Total, the root's duration. SpanIDs is the set of spans
// on the path, in the order they first appear on it.
type criticalPath struct {
	TraceID  traceID       `json:"trace_id"`
	Segments []pathSegment `json:"segments"`
	SpanIDs  []spanID      `json:"span_ids"`
	Total    time.Duration `json:"total_ns"`
}

// criticalPathOf computes the critical path of the spans of one trace: the
// chain of work that determined the root's end-to-end latency. It returns
// an empty path (no segments) for no spans. The spans are not modified.
//
// The algorithm is the "last-finishing child" backward walk used by
// Jaeger's critical path view (jaeger-ui, TraceCriticalPath) and by Uber's
// CRISP (Zhang et al., "CRISP: Critical Path Analysis of Large-Scale
// Microservice Architectures", USENIX ATC 2022):
//
//   - The root is the span without a parent id; of several, the one that
//     ends last; when there is none (the root was never received), the
//     earliest span.
//   - A span's blocking children are its synchronous children, each
//     clamped to the parent's [start, end] to undo clock skew between
//     services. A child is asynchronous (follows-from, never blocking the
//     parent) when it is of kind consumer, when the parent is of kind
//     producer, or when it lies entirely outside the parent, including
//     starting at or after the parent's end.
//   - The walk keeps a cursor, starting at the span's end. It picks the
//     blocking child that finishes last at or before the cursor, with a
//     CRISP-style overlap allowance: a child ending up to max(1% of the
//     parent's duration, 50µs) after the cursor still qualifies (its end
//     is then cut at the cursor). The gap between the child's end and the
//     cursor is the parent's self time on the path; the walk recurses into
//     the child over [child start, child end], moves the cursor to the
//     child's start and repeats. Children that overlap the chosen one
//     (concurrent siblings that finished earlier) are thereby skipped.
//     When no child qualifies, the rest down to the span's start is self
//     time.
//
// Every step covers a disjoint interval, so the segments sum to the
// root's duration exactly. A parent cycle (corrupt input) is walked once.
func criticalPathOf(spans []*span) criticalPath {
	root := pathRoot(spans)
	if root == nil {
		return criticalPath{Segments: []pathSegment{}, SpanIDs: []spanID{}}
	}
	w := pathWalker{children: make(map[spanID][]*span), visited: make(map[spanID]bool)}
	for _, sp := range spans {
		if !sp.ParentSpanID.IsZero() && sp.ParentSpanID != sp.SpanID {
			w.children[sp.ParentSpanID] = append(w.children[sp.ParentSpanID], sp)
		}
	}
	end := root.End
	if end.Before(root.Start) {
		end = root.Start
	}
	w.walk(root, root.Start, end)
	slices.Reverse(w.segs)

	p := criticalPath{TraceID: root.TraceID, Segments: w.segs, SpanIDs: []spanID{}, Total: end.Sub(root.Start)}
	if p.Segments == nil {
		p.Segments = []pathSegment{}
	}
	seen := make(map[spanID]bool)
	for _, s := range p.Segments {
		if !seen[s.SpanID] {
			seen[s.SpanID] = true
			p.SpanIDs = append(p.SpanIDs, s.SpanID)
		}
	}
	return p
}

// pathRoot picks the span the critical path starts from; see
// criticalPathOf.
func pathRoot(spans []*span) *span {
	var root, earliest *span
	for _, sp := range spans {
		if earliest == nil || sp.Start.Before(earliest.Start) {
			earliest = sp
		}
		if sp.ParentSpanID.IsZero() && (root == nil || sp.End.After(root.End)) {
			root = sp
		}
	}
	if root == nil {
		return earliest
	}
	return root
}

// asyncChild reports whether child follows from parent rather than
// blocking it, judged by span kind alone.
func asyncChild(parent, child *span) bool {
	return child.Kind == "consumer" || parent.Kind == "producer"
}

// pathWalker holds the state of one critical-path walk. segs collects the
// segments latest first.
type pathWalker struct {
	children map[spanID][]*span
	visited  map[spanID]bool
	segs     []pathSegment
}

// pathCandidate is a blocking child clamped to its parent's interval.
type pathCandidate struct {
	sp         *span
	start, end time.Time
	used       bool
}

// walk appends the critical path of sp over [start, end] (sp's interval,
// already clamped by its ancestors) to w.segs, latest segment first.
func (w *pathWalker) walk(sp *span, start, end time.Time) {
	w.visited[sp.SpanID] = true
	var cands []pathCandidate
	for _, c := range w.children[sp.SpanID] {
		if w.visited[c.SpanID] || asyncChild(sp, c) {
			continue
		}
		cs, ce := c.Start, c.End
		if ce.Before(cs) {
			ce = cs
		}
		if !cs.Before(end) || !ce.After(start) {
			continue // entirely outside the parent: asynchronous
		}
		cands = append(cands, pathCandidate{sp: c, start: later(cs, start), end: earlier(ce, end)})
	}
	// A stable order makes ties (equal ends) deterministic.
	slices.SortFunc(cands, func(a, b pathCandidate) int {
		return cmp.Or(a.start.Compare(b.start), slices.Compare(a.sp.SpanID[:], b.sp.SpanID[:]))
	})
	tol := max(end.Sub(start)/pathSkewFraction, minPathSkew)

	cursor := end
	for {
		best := -1
		for i, c := range cands {
			if c.used || !c.start.Before(cursor) || c.end.After(cursor.Add(tol)) {
				continue
			}
			if best < 0 || c.end.After(cands[best].end) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		c := &cands[best]
		c.used = true
		ce := earlier(c.end, cursor)
		w.emit(sp, ce, cursor)
		w.walk(c.sp, c.start, ce)
		cursor = c.start
	}
	w.emit(sp, start, cursor)
}

// emit records [start, end] as self time of sp, unless it is empty.
func (w *pathWalker) emit(sp *span, start, end time.Time) {
	if !end.After(start) {
		return
	}
	w.segs = append(w.segs, pathSegment{
		SpanID: sp.SpanID, Name: sp.Name, Service: sp.Service,
		Start: start, End: end, SelfTime: end.Sub(start),
	})
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// pathContribution is the critical-path self time of one operation
// (service and span name) summed over many traces.
type pathContribution struct {
	Service  string        `json:"service"`
	Name     string        `json:"name"`
	SelfTime time.Duration `json:"self_time_on_path_ns"`
	Traces   int           `json:"traces"` // paths the operation appears on
}

// aggregateCriticalPaths sums the self time on the path per (service, span
// name) over paths, typically the critical paths of many traces of one
// root operation. It returns the operations by self time, largest first,
// ties by service then name.
func aggregateCriticalPaths(paths []criticalPath) []pathContribution {
	type key struct{ service, name string }
	sums := make(map[key]*pathContribution)
	for _, p := range paths {
		counted := make(map[key]bool)
		for _, s := range p.Segments {
			k := key{s.Service, s.Name}
			pc := sums[k]
			if pc == nil {
				pc = &pathContribution{Service: s.Service, Name: s.Name}
				sums[k] = pc
			}
			pc.SelfTime += s.SelfTime
			if !counted[k] {
				counted[k] = true
				pc.Traces++
			}
		}
	}
	out := make([]pathContribution, 0, len(sums))
	for _, pc := range sums {
		out = append(out, *pc)
	}
	slices.SortFunc(out, func(a, b pathContribution) int {
		return cmp.Or(cmp.Compare(b.SelfTime, a.SelfTime), cmp.Compare(a.Service, b.Service), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// endpointPath is the aggregate critical path of one endpoint: the traces
// whose root span is the operation Operation of Service.
type endpointPath struct {
	Service   string        `json:"service"`
	Operation string        `json:"operation"`
	Traces    int           `json:"traces"` // traces analysed
	P50       time.Duration `json:"p50_ns"` // of the root span's duration
	P99       time.Duration `json:"p99_ns"`
	// All sums the critical paths of every analysed trace; Slow those of
	// the traces at or above P99: the operations that dominate the tail.
	All  []pathContribution `json:"all"`
	Slow []pathContribution `json:"slow"`
	// SlowTraces lists up to 20 of the slowest traces, slowest first.
	SlowTraces []traceID `json:"slow_traces"`
}

// maxSlowTraces bounds endpointPath.SlowTraces.
const maxSlowTraces = 20

// endpointCriticalPath analyses up to limit of the most recently arrived
// traces rooted at the operation of service (see rootSpan).
func (s *store) endpointCriticalPath(service, operation string, limit int) endpointPath {
	type rooted struct {
		id    traceID
		spans []*span
		dur   time.Duration
	}
	var found []rooted
	s.mu.RLock()
	q := traceQuery{Service: service, Operation: operation}
	s.index.candidates(s, &q, func(t *trace) bool {
		if root := rootSpan(t.spans, t.index); root != nil && root.Service == service && root.Name == operation {
			found = append(found, rooted{id: t.id, spans: slices.Clone(t.spans), dur: root.Duration})
		}
		return len(found) < limit
	})
	s.mu.RUnlock()

	ep := endpointPath{Service: service, Operation: operation, Traces: len(found),
		All: []pathContribution{}, Slow: []pathContribution{}, SlowTraces: []traceID{}}
	if len(found) == 0 {
		return ep
	}
	slices.SortFunc(found, func(a, b rooted) int { return cmp.Compare(b.dur, a.dur) }) // slowest first
	rank := func(q float64) time.Duration {
		// The q-quantile by nearest rank over the durations, slowest first.
		i := len(found) - int(math.Ceil(q*float64(len(found))))
		return found[max(i, 0)].dur
	}
	ep.P50, ep.P99 = rank(0.50), rank(0.99)
	all := make([]criticalPath, len(found))
	var slow []criticalPath
	for i, r := range found {
		all[i] = criticalPathOf(r.spans)
		if r.dur >= ep.P99 {
			slow = append(slow, all[i])
			if len(ep.SlowTraces) < maxSlowTraces {
				ep.SlowTraces = append(ep.SlowTraces, r.id)
			}
		}
	}
	ep.All = aggregateCriticalPaths(all)
	ep.Slow = aggregateCriticalPaths(slow)
	return ep
}
