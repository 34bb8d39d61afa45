package shed

import (
	"context"
	"testing"

	"github.com/cairnhq/cairn/resilience/internal/metrictest"
	"go.opentelemetry.io/otel/metric"
)

func TestCloseUnregistersGauges(t *testing.T) {
	metrictest.CloseTest[*Shedder]{
		Key:    PolicyNameKey,
		Gauges: []string{InFlightMetricName, MaxInFlightMetricName, CPUMetricName},
		New: func(t *testing.T, name string, mp metric.MeterProvider) *Shedder {
			s, err := New(Config{Name: name, CPU: &fakeCPU{}, MeterProvider: mp})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		// The shedder keeps working without its gauges.
		Use: func(t *testing.T, a *Shedder) {
			p, err := a.Allow(context.Background())
			if err != nil {
				t.Fatalf("Allow() = %v, want nil", err)
			}
			if got := a.InFlight(); got != 1 {
				t.Fatalf("InFlight() = %d, want 1", got)
			}
			p.Done()
		},
	}.Run(t)
}
