package degrade

import (
	"context"
	"testing"
	"time"

	"github.com/cairnhq/cairn/resilience/internal/metrictest"
	"go.opentelemetry.io/otel/metric"
)

func TestCloseUnregistersGauges(t *testing.T) {
	sig := &fakeSignal{}
	metrictest.CloseTest[*Switch]{
		Key:    PolicyNameKey,
		Gauges: []string{LevelMetricName, PressureMetricName},
		New: func(t *testing.T, name string, mp metric.MeterProvider) *Switch {
			s, err := New(Config{Name: name, Levels: testLevels(), Features: testFeatures, Signal: sig, MeterProvider: mp})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		// The switch keeps working without its gauges.
		Use: func(t *testing.T, a *Switch) {
			sig.Set(0.95)
			if got := a.Update(context.Background(), time.Now()); got == 0 {
				t.Fatalf("Update at pressure 0.95 = %d, want a degraded level", got)
			}
		},
	}.Run(t)
}
