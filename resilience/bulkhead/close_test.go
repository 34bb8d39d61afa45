package bulkhead

import (
	"testing"

	"github.com/cairnhq/cairn/resilience/internal/metrictest"
	"go.opentelemetry.io/otel/metric"
)

func TestCloseUnregistersGauges(t *testing.T) {
	metrictest.CloseTest[*Bulkhead]{
		Key:    PolicyNameKey,
		Gauges: []string{InFlightMetricName, QueueMetricName},
		New: func(t *testing.T, name string, mp metric.MeterProvider) *Bulkhead {
			return newBulkhead(t, Config{Name: name, MaxConcurrent: 1, MeterProvider: mp})
		},
		// The bulkhead keeps working without its gauges.
		Use: func(t *testing.T, a *Bulkhead) {
			p, ok := a.TryAcquire()
			if !ok {
				t.Fatal("TryAcquire() = false, want true")
			}
			if _, ok := a.TryAcquire(); ok {
				t.Fatal("second TryAcquire() = true, want false")
			}
			p.Release()
			if got := a.InFlight(); got != 0 {
				t.Fatalf("InFlight() = %d, want 0", got)
			}
		},
	}.Run(t)
}
