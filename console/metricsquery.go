package console

import (
	"cmp"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"time"
)

// instrument describes one stored metric of one service.
type instrument struct {
	Service     string     `json:"service"`
	Name        string     `json:"name"`
	Description string     `json:"description,omitempty"`
	Unit        string     `json:"unit,omitempty"`
	Kind        metricKind `json:"kind"`
	Temporality string     `json:"temporality,omitempty"`
	Monotonic   bool       `json:"monotonic,omitempty"`
	Series      int        `json:"series"` // distinct attribute sets
	Points      int        `json:"points"`
	Last        time.Time  `json:"last,omitzero"` // latest point
}

// instruments lists the stored metrics of service (every service when
// empty), sorted by service and name.
func (s *store) instruments(service string) []instrument {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []instrument{}
	for k, ser := range s.series {
		if service != "" && k.Service != service {
			continue
		}
		in := ser.instrument()
		sets := make(map[string]bool)
		for i := range ser.points {
			sets[attrSetKey(ser.points[i].Attributes)] = true
			in.Last = later(in.Last, ser.points[i].Time)
		}
		in.Series, in.Points = len(sets), len(ser.points)
		out = append(out, in)
	}
	slices.SortFunc(out, func(a, b instrument) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.Name, b.Name))
	})
	return out
}

func (ser *metricSeries) instrument() instrument {
	return instrument{
		Service: ser.key.Service, Name: ser.key.Name, Description: ser.description, Unit: ser.unit,
		Kind: ser.kind, Temporality: ser.temporality, Monotonic: ser.monotonic,
	}
}

// attrSetKey is a canonical text form of an attribute set: keys sorted,
// values as JSON, so the same set in another order has the same key.
func attrSetKey(a attrs) string {
	kvs := slices.Clone(a)
	slices.SortStableFunc(kvs, func(x, y keyValue) int { return cmp.Compare(x.Key, y.Key) })
	var b strings.Builder
	for _, kv := range kvs {
		b.WriteString(kv.Key)
		b.WriteByte('=')
		v, _ := json.Marshal(kv.Value)
		b.Write(v)
		b.WriteByte(0)
	}
	return b.String()
}

// seriesPoint is one point of a metric series prepared for charts.
type seriesPoint struct {
	Time time.Time
	// Value is the gauge or sum value as sent.
	Value float64
	// Rate is the per-second rate of a sum: for a cumulative monotonic
	// sum, the increase since the previous point (a decrease is a reset,
	// and the value itself is the increase since the reset); for a delta
	// sum, the value over the point's interval. NaN when unknown.
	Rate float64
	// Count is the number of observations of a histogram or summary in
	// this point's interval: cumulative input is turned into deltas.
	Count uint64
	// P50, P95 and P99 are quantiles of a histogram's interval, estimated
	// from its buckets by linear interpolation within the bucket that
	// holds the rank (as Prometheus's histogram_quantile does), or a
	// summary's reported quantiles. NaN when unknown.
	P50, P95, P99 float64
	Exemplars     []exemplar
}

// MarshalJSON writes NaN and infinite values as strings (see float).
func (p seriesPoint) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Time      time.Time  `json:"time"`
		Value     float      `json:"value"`
		Rate      float      `json:"rate"`
		Count     uint64     `json:"count,omitempty"`
		P50       float      `json:"p50"`
		P95       float      `json:"p95"`
		P99       float      `json:"p99"`
		Exemplars []exemplar `json:"exemplars,omitempty"`
	}{p.Time, float(p.Value), float(p.Rate), p.Count, float(p.P50), float(p.P95), float(p.P99), p.Exemplars})
}

// attrSeries is the points of one attribute set of a metric.
type attrSeries struct {
	Attributes attrs         `json:"attributes"`
	Points     []seriesPoint `json:"points"` // oldest first
}

// metricSeriesOf returns the metric name of service, split by attribute
// set (sets matching every filter, sorted by their canonical form), with
// rates and quantiles computed; false when no such metric is stored.
func (s *store) metricSeriesOf(service, name string, filters []attrFilter) (instrument, []attrSeries, bool) {
	s.mu.RLock()
	ser := s.series[metricKey{Service: service, Name: name}]
	if ser == nil {
		s.mu.RUnlock()
		return instrument{}, nil, false
	}
	in := ser.instrument()
	points := slices.Clone(ser.points) // points are immutable; the slice is not
	s.mu.RUnlock()

	groups := make(map[string][]metricPoint)
	for _, p := range points {
		if !matchAll(filters, p.Attributes) {
			continue
		}
		k := attrSetKey(p.Attributes)
		groups[k] = append(groups[k], p)
		in.Last = later(in.Last, p.Time)
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]attrSeries, 0, len(keys))
	for _, k := range keys {
		ps := groups[k]
		slices.SortStableFunc(ps, func(a, b metricPoint) int { return a.Time.Compare(b.Time) })
		out = append(out, attrSeries{Attributes: ps[0].Attributes, Points: preparePoints(in, ps)})
		in.Points += len(ps)
	}
	in.Series = len(out)
	return in, out, true
}

func matchAll(filters []attrFilter, a attrs) bool {
	for _, f := range filters {
		if !f.matches(a) {
			return false
		}
	}
	return true
}

// preparePoints computes the chart values of one attribute set's points,
// sorted by time.
func preparePoints(in instrument, ps []metricPoint) []seriesPoint {
	nan := math.NaN()
	out := make([]seriesPoint, len(ps))
	for i, p := range ps {
		sp := seriesPoint{Time: p.Time, Value: float64(p.Value), Rate: nan, P50: nan, P95: nan, P99: nan, Exemplars: p.Exemplars}
		var prev *metricPoint
		if i > 0 {
			prev = &ps[i-1]
		}
		switch in.Kind {
		case kindSum:
			sp.Rate = sumRate(in, p, prev)
		case kindHistogram:
			counts, n := p.BucketCounts, p.Count
			if in.Temporality == "cumulative" && prev != nil {
				counts, n = deltaBuckets(p, *prev)
			}
			sp.Count = n
			sp.P50, sp.P95, sp.P99 = bucketQuantile(p, counts, 0.5), bucketQuantile(p, counts, 0.95), bucketQuantile(p, counts, 0.99)
		case kindExpHistogram:
			sp.Count = p.Count
			if in.Temporality == "cumulative" && prev != nil && p.Count >= prev.Count {
				sp.Count = p.Count - prev.Count
			}
		case kindSummary:
			sp.Count = p.Count
			for _, q := range p.Quantiles {
				switch float64(q.Quantile) {
				case 0.5:
					sp.P50 = float64(q.Value)
				case 0.95:
					sp.P95 = float64(q.Value)
				case 0.99:
					sp.P99 = float64(q.Value)
				}
			}
		}
		out[i] = sp
	}
	return out
}

// sumRate is the per-second rate of a sum point (see seriesPoint.Rate).
func sumRate(in instrument, p metricPoint, prev *metricPoint) float64 {
	switch {
	case in.Temporality == "delta":
		if secs := p.Time.Sub(p.Start).Seconds(); !p.Start.IsZero() && secs > 0 {
			return float64(p.Value) / secs
		}
	case in.Monotonic && prev != nil:
		secs := p.Time.Sub(prev.Time).Seconds()
		if secs <= 0 {
			break
		}
		if p.Value >= prev.Value && !p.Start.After(prev.Time) {
			return float64(p.Value-prev.Value) / secs
		}
		// A reset: the series restarted at p.Start.
		if s := p.Time.Sub(p.Start).Seconds(); !p.Start.IsZero() && s > 0 {
			return float64(p.Value) / s
		}
	}
	return math.NaN()
}

// deltaBuckets turns a cumulative histogram point into the observations
// since prev. A reset (fewer observations, a later start) or changed
// bounds make p's own counts the delta.
func deltaBuckets(p, prev metricPoint) ([]uint64, uint64) {
	if p.Count < prev.Count || p.Start.After(prev.Time) || !slices.Equal(p.Bounds, prev.Bounds) || len(p.BucketCounts) != len(prev.BucketCounts) {
		return p.BucketCounts, p.Count
	}
	out := make([]uint64, len(p.BucketCounts))
	for i := range out {
		if p.BucketCounts[i] < prev.BucketCounts[i] {
			return p.BucketCounts, p.Count
		}
		out[i] = p.BucketCounts[i] - prev.BucketCounts[i]
	}
	return out, p.Count - prev.Count
}

// bucketQuantile estimates the q-quantile from explicit bucket counts.
// Bucket i covers (Bounds[i-1], Bounds[i]]; the first starts at the
// point's Min if set (else at 0 when the first bound is positive) and the
// last, unbounded one ends at Max if set (else at the last bound). NaN
// when there are no observations.
func bucketQuantile(p metricPoint, counts []uint64, q float64) float64 {
	var total uint64
	for _, c := range counts {
		total += c
	}
	if total == 0 || len(counts) != len(p.Bounds)+1 {
		return math.NaN()
	}
	rank := q * float64(total)
	var seen float64
	for i, c := range counts {
		if c == 0 || seen+float64(c) < rank {
			seen += float64(c)
			continue
		}
		lo, hi := bucketEdges(p, i)
		return lo + (hi-lo)*(rank-seen)/float64(c)
	}
	lo, hi := bucketEdges(p, len(counts)-1)
	return max(lo, hi)
}

func bucketEdges(p metricPoint, i int) (lo, hi float64) {
	n := len(p.Bounds)
	switch {
	case n == 0:
		lo, hi = 0, 0
	case i == 0:
		hi = float64(p.Bounds[0])
		lo = min(0, hi)
	case i == n:
		lo = float64(p.Bounds[n-1])
		hi = lo
	default:
		lo, hi = float64(p.Bounds[i-1]), float64(p.Bounds[i])
	}
	if p.Min != nil && float64(*p.Min) > lo && float64(*p.Min) <= hi {
		lo = float64(*p.Min)
	}
	if p.Max != nil && float64(*p.Max) < hi && float64(*p.Max) >= lo {
		hi = float64(*p.Max)
	}
	if i == n && p.Max != nil && float64(*p.Max) > lo {
		hi = float64(*p.Max)
	}
	return lo, hi
}
