package shed

import (
	"context"
	"net/http"
	"strconv"
	"strings"
)

// Priority is the criticality of a request, following the criticality
// levels of Google's RPC stack (CRITICAL_PLUS, CRITICAL, SHEDDABLE_PLUS,
// SHEDDABLE). Higher values are more important; the zero value is
// [Critical], the default. When the server is overloaded, lower
// priorities are shed first; see [Shedder.Allow] for the exact rules.
type Priority int

// The priorities, most important first.
const (
	// CriticalPlus is for the most important requests, shed only when
	// twice the estimated capacity is in flight.
	CriticalPlus Priority = 1
	// Critical is the default priority, shed when the estimated capacity
	// is in flight.
	Critical Priority = 0
	// SheddablePlus is for requests that can be retried later, shed when
	// half the estimated capacity is in flight.
	SheddablePlus Priority = -1
	// Sheddable is for requests that may fail without harm, such as
	// batch or prefetch traffic, shed whenever the server is overloaded.
	Sheddable Priority = -2
)

// DefaultPriority is the priority of a request that carries none.
const DefaultPriority = Critical

// numPriorities is the number of valid priorities.
const numPriorities = 4

// index maps a valid priority to 0..numPriorities-1.
func (p Priority) index() int { return int(CriticalPlus - p) }

// Valid reports whether p is one of the defined priorities.
func (p Priority) Valid() bool { return p >= Sheddable && p <= CriticalPlus }

var priorityNames = [numPriorities]string{"critical_plus", "critical", "sheddable_plus", "sheddable"}

// String returns the name of p as used in headers, metadata and metrics:
// "critical_plus", "critical", "sheddable_plus" or "sheddable", or
// "Priority(n)" for an undefined value.
func (p Priority) String() string {
	if !p.Valid() {
		return "Priority(" + strconv.Itoa(int(p)) + ")"
	}
	return priorityNames[p.index()]
}

// ParsePriority parses a priority name as returned by [Priority.String],
// ignoring case and surrounding space, so the gRPC spelling
// "CRITICAL_PLUS" works too. For anything else it returns
// [DefaultPriority] and false.
func ParsePriority(s string) (Priority, bool) {
	s = strings.TrimSpace(s)
	for i, n := range priorityNames {
		if strings.EqualFold(s, n) {
			return CriticalPlus - Priority(i), true
		}
	}
	return DefaultPriority, false
}

// HeaderName is the HTTP header that carries a request's priority, and
// MetadataKey the gRPC metadata key; both hold [Priority.String] values.
const (
	HeaderName  = "X-Cairn-Priority"
	MetadataKey = "cairn-priority"
)

// FromHeader returns the priority in h's [HeaderName] header and true, or
// [DefaultPriority] and false if the header is missing or unknown.
func FromHeader(h http.Header) (Priority, bool) {
	v := h.Get(HeaderName)
	if v == "" {
		return DefaultPriority, false
	}
	return ParsePriority(v)
}

// SetHeader sets h's [HeaderName] header to p.
func SetHeader(h http.Header, p Priority) {
	h.Set(HeaderName, p.String())
}

type priorityKey struct{}

// WithPriority returns a copy of ctx carrying p, read by [PriorityFrom]
// and [Shedder.Allow].
func WithPriority(ctx context.Context, p Priority) context.Context {
	return context.WithValue(ctx, priorityKey{}, p)
}

// PriorityFrom returns the priority ctx carries, or [DefaultPriority].
// An undefined priority is reported as [DefaultPriority] too.
func PriorityFrom(ctx context.Context) Priority {
	if p, ok := ctx.Value(priorityKey{}).(Priority); ok && p.Valid() {
		return p
	}
	return DefaultPriority
}
