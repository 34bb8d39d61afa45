package hedge

import (
	"context"
	"testing"
	"time"

	"github.com/cairnhq/cairn/resilience/internal/metrictest"
	"go.opentelemetry.io/otel/metric"
)

func TestCloseUnregistersGauges(t *testing.T) {
	metrictest.CloseTest[*Hedger]{
		Key:    PolicyNameKey,
		Gauges: []string{DelayMetricName},
		New: func(t *testing.T, name string, mp metric.MeterProvider) *Hedger {
			return newHedger(t, Config{Name: name, Delay: time.Hour, MeterProvider: mp}, nil)
		},
		// The hedger keeps working without its gauge.
		Use: func(t *testing.T, a *Hedger) {
			got, err := Do(context.Background(), a, func(context.Context) (int, error) { return 1, nil })
			if got != 1 || err != nil {
				t.Fatalf("Do = %d, %v, want 1, nil", got, err)
			}
		},
	}.Run(t)
}
