package budget

import (
	"io"
	"testing"
	"time"

	"github.com/cairnhq/cairn/resilience/internal/metrictest"
	"go.opentelemetry.io/otel/metric"
)

// closingBudget is a Budget with gauges to unregister: a *GRPC or *Percent.
type closingBudget interface {
	Budget
	io.Closer
}

func TestCloseUnregistersGauges(t *testing.T) {
	metrictest.CloseTest[closingBudget]{
		Key:    PolicyNameKey,
		Gauges: []string{TokensMetricName},
		// "a" is a GRPC budget, the one Use exercises; "b" a Percent one.
		New: func(t *testing.T, name string, mp metric.MeterProvider) closingBudget {
			var (
				b   closingBudget
				err error
			)
			if name == "a" {
				b, err = NewGRPC(Config{Name: name, MaxTokens: 2, MeterProvider: mp})
			} else {
				b, err = NewPercent(Config{Name: name, MinPerSecond: 1, TTL: time.Second, MeterProvider: mp})
			}
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
		// The budget keeps working without its gauge.
		Use: func(t *testing.T, a closingBudget) {
			if !a.Withdraw() {
				t.Fatal("Withdraw() = false, want true")
			}
			a.OnFailure()
			a.OnFailure()
			if a.Withdraw() {
				t.Fatal("Withdraw() after two failures = true, want false")
			}
		},
	}.Run(t)
}
