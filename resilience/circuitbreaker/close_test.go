package circuitbreaker

import (
	"testing"

	"github.com/cairnhq/cairn/resilience/internal/metrictest"
	"go.opentelemetry.io/otel/metric"
)

func TestCloseUnregistersGauges(t *testing.T) {
	metrictest.CloseTest[*Breaker]{
		Key:    PolicyNameKey,
		Gauges: []string{StateMetricName},
		New: func(t *testing.T, name string, mp metric.MeterProvider) *Breaker {
			return newBreaker(t, Config{Name: name, MeterProvider: mp})
		},
		// The breaker keeps working without its gauge.
		Use: func(t *testing.T, a *Breaker) {
			call(t, a, nil)
			a.ForceOpen()
			if _, err := a.Allow(); err == nil {
				t.Fatal("Allow() after ForceOpen = nil, want an error")
			}
		},
	}.Run(t)
}
