package console

import (
	"slices"
)

// Bounds on what the trace index records. Longer attribute keys or values
// are not indexed; a search on them falls back to scanning.
const (
	maxIndexedKey   = 128
	maxIndexedValue = 256
)

// Term namespaces of the trace index. Each term is a prefix byte, then
// fields separated by 0x00.
const (
	termService   = 's' // service
	termOperation = 'o' // service 0 span name
	termName      = 'n' // span name, any service
	termError     = 'e' // a span with error status
	termAttr      = 'a' // key 0 value text, span or resource attribute
)

// traceIndex maps search terms to the traces that hold a span with them.
// A trace is known by its sequence number, the order in which its first
// span arrived; eviction drops traces in that order, so the live traces
// are exactly those with a sequence number at or above the store's
// minimum live sequence, and dead entries are cut from the front of each
// posting list lazily.
//
// Postings are a superset: a span replaced by a retry or evicted from a
// live trace leaves its terms behind. Every candidate is checked against
// the full query, so a stale entry costs time, never a wrong answer.
//
// The store's lock guards the index.
type traceIndex struct {
	postings map[string]*posting // term -> ascending trace sequence numbers, no duplicates
	buf      []byte              // scratch for building terms without allocating
	// lastSeq and lastResource are the trace and resource whose service
	// and resource attributes add indexed last.
	lastSeq      uint64
	lastResource *resource
	// entries counts posting entries, and sweepAt is the count at which
	// the next sweep drops dead ones.
	entries, sweepAt int
}

func newTraceIndex() traceIndex {
	return traceIndex{postings: make(map[string]*posting), sweepAt: 1 << 16}
}

// posting is the ascending list of the traces that hold one term. It is
// held by pointer so that updating it does not store the map key again.
type posting struct{ seqs []uint64 }

// add indexes sp as part of the trace with sequence number seq.
func (x *traceIndex) add(seq uint64, sp *span) {
	x.term(seq, termOperation, sp.Service, sp.Name)
	x.term(seq, termName, sp.Name)
	if sp.isError() {
		x.term(seq, termError)
	}
	x.attrs(seq, sp.Attributes)
	// The spans of one export share their resource, and a trace's spans
	// usually arrive together: index the service and the resource's
	// attributes once per run of spans with the same trace and resource.
	if seq == x.lastSeq && sp.Resource == x.lastResource && sp.Resource != nil {
		return
	}
	x.lastSeq, x.lastResource = seq, sp.Resource
	x.term(seq, termService, sp.Service)
	if sp.Resource != nil {
		x.attrs(seq, sp.Resource.Attributes)
	}
}

func (x *traceIndex) attrs(seq uint64, a attrs) {
	for _, kv := range a {
		if len(kv.Key) > maxIndexedKey {
			continue
		}
		var v string
		switch val := kv.Value.(type) {
		case string, bool, int64, float64:
			v = valueString(val)
		default:
			continue // arrays, maps and empty values are matched by scanning
		}
		if len(v) <= maxIndexedValue {
			x.term(seq, termAttr, kv.Key, v)
		}
	}
}

// term records that the trace seq holds the term built from kind and
// fields.
func (x *traceIndex) term(seq uint64, kind byte, fields ...string) {
	x.buf = appendTerm(x.buf[:0], kind, fields...)
	p := x.postings[string(x.buf)] // the lookup does not allocate
	if p == nil {
		p = &posting{}
		x.postings[string(x.buf)] = p
	}
	n := len(p.seqs)
	switch {
	case n > 0 && p.seqs[n-1] == seq:
		return // the common case: another span of the latest trace
	case n == 0 || p.seqs[n-1] < seq:
		p.seqs = append(p.seqs, seq)
	default:
		// A span of an older trace arrived after newer traces started.
		i, found := slices.BinarySearch(p.seqs, seq)
		if found {
			return
		}
		p.seqs = slices.Insert(p.seqs, i, seq)
	}
	x.entries++
}

func appendTerm(b []byte, kind byte, fields ...string) []byte {
	b = append(b, kind)
	for i, f := range fields {
		if i > 0 {
			b = append(b, 0)
		}
		b = append(b, f...)
	}
	return b
}

// lookup returns the posting list of a term, which callers must not
// modify.
// Unlike add, it may run concurrently with other lookups.
func (x *traceIndex) lookup(kind byte, fields ...string) []uint64 {
	if p := x.postings[string(appendTerm(nil, kind, fields...))]; p != nil {
		return p.seqs
	}
	return nil
}

// maybeSweep drops dead entries, those below minLive, once enough entries
// accumulated since the last sweep; it keeps the index's size
// proportional to the live traces.
func (x *traceIndex) maybeSweep(minLive uint64) {
	if x.entries < x.sweepAt {
		return
	}
	for term, p := range x.postings {
		i, _ := slices.BinarySearch(p.seqs, minLive)
		if i == 0 {
			continue
		}
		x.entries -= i
		if i == len(p.seqs) {
			delete(x.postings, term)
			continue
		}
		p.seqs = slices.Clone(p.seqs[i:])
	}
	x.sweepAt = max(2*x.entries, 1<<16)
}

// candidates calls visit with the traces that may match q, most recently
// arrived first, until visit returns false. When q names indexed terms
// (service, operation, status error, attributes) the shortest of their
// posting lists drives the walk and the others are checked by binary
// search; otherwise every trace is a candidate. It reports whether an
// index drove the walk. The caller holds s.mu.
func (x *traceIndex) candidates(s *store, q *traceQuery, visit func(*trace) bool) bool {
	var lists [][]uint64
	if q.Service != "" && q.Operation != "" {
		lists = append(lists, x.lookup(termOperation, q.Service, q.Operation))
	} else if q.Service != "" {
		lists = append(lists, x.lookup(termService, q.Service))
	} else if q.Operation != "" {
		lists = append(lists, x.lookup(termName, q.Operation))
	}
	if q.Status == "error" {
		lists = append(lists, x.lookup(termError))
	}
	for _, f := range q.Attrs {
		if len(f.Key) <= maxIndexedKey && len(f.Value) <= maxIndexedValue {
			lists = append(lists, x.lookup(termAttr, f.Key, f.Value))
		}
	}
	minLive := s.minLiveSeq()
	if len(lists) == 0 {
		for i := len(s.order) - 1; i >= s.orderHead; i-- {
			if t := s.traces[s.order[i]]; t != nil && !visit(t) {
				break
			}
		}
		return false
	}
	slices.SortFunc(lists, func(a, b []uint64) int { return len(a) - len(b) })
	driver, others := lists[0], lists[1:]
	for i := len(driver) - 1; i >= 0; i-- {
		seq := driver[i]
		if seq < minLive {
			break
		}
		if !allContain(others, seq) {
			continue
		}
		if t := s.traceBySeq(seq); t != nil && !visit(t) {
			break
		}
	}
	return true
}

func allContain(lists [][]uint64, seq uint64) bool {
	for _, l := range lists {
		if _, ok := slices.BinarySearch(l, seq); !ok {
			return false
		}
	}
	return true
}
