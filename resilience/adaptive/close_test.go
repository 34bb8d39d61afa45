package adaptive

import (
	"testing"

	"github.com/cairnhq/cairn/resilience/internal/metrictest"
	"go.opentelemetry.io/otel/metric"
)

func TestCloseUnregistersGauges(t *testing.T) {
	metrictest.CloseTest[*Limiter]{
		Key:    PolicyNameKey,
		Gauges: []string{LimitMetricName, InFlightMetricName},
		New: func(t *testing.T, name string, mp metric.MeterProvider) *Limiter {
			return newLimiter(t, Config{Name: name, InitialLimit: 1, MeterProvider: mp})
		},
		// The limiter keeps working without its gauges.
		Use: func(t *testing.T, a *Limiter) {
			p, ok := a.Acquire()
			if !ok {
				t.Fatal("Acquire() = false, want true")
			}
			if _, ok := a.Acquire(); ok {
				t.Fatal("second Acquire() = true, want false")
			}
			p.Done(nil)
			if got := a.InFlight(); got != 0 {
				t.Fatalf("InFlight() = %d, want 0", got)
			}
		},
	}.Run(t)
}
