package telemetry

import (
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// promRenames maps Prometheus names that the OpenTelemetry translation
// produces but promlint rejects to the names Prometheus's own collectors
// use. go.goroutine.count is an up-down counter, so it becomes a gauge, and
// a gauge must not end in _count (the suffix belongs to histograms and
// summaries). Only the Prometheus exposition is renamed; OTLP keeps the
// semantic-convention names.
var promRenames = map[string]string{
	"go_goroutine_count": "go_goroutines",
}

// lintedGatherer renames the families in promRenames.
type lintedGatherer struct{ g prometheus.Gatherer }

var _ prometheus.Gatherer = lintedGatherer{}

// Gather gathers from g, renames, and keeps the families sorted by name as
// the exposition formats expect.
func (l lintedGatherer) Gather() ([]*dto.MetricFamily, error) {
	mfs, err := l.g.Gather()
	renamed := false
	for _, mf := range mfs {
		if to, ok := promRenames[mf.GetName()]; ok && mf.GetType() != dto.MetricType_HISTOGRAM && mf.GetType() != dto.MetricType_SUMMARY {
			mf.Name = &to
			renamed = true
		}
	}
	if renamed {
		slices.SortFunc(mfs, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	}
	return mfs, err
}
