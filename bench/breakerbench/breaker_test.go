package breakerbench

import (
	"context"
	"testing"

	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/cairnhq/cairn/resilience/circuitbreaker"
)

// variant is one breaker under test: run makes one successful call
// through it.
type variant struct {
	name string
	new  func(b *testing.B) func() error
}

var variants = []variant{
	{"gobreaker", func(*testing.B) func() error {
		cb := gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{Name: "bench"})
		fn := func() (struct{}, error) { return struct{}{}, nil }
		return func() error {
			_, err := cb.Execute(fn)
			return err
		}
	}},
	{"cairn", func(b *testing.B) func() error {
		cb, err := circuitbreaker.New(circuitbreaker.Config{Name: "bench", MeterProvider: noop.NewMeterProvider()})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		fn := func(context.Context) error { return nil }
		return func() error { return cb.Execute(ctx, fn) }
	}},
}

func BenchmarkBreakerExecute(b *testing.B) {
	for _, v := range variants {
		b.Run("variant="+v.name, func(b *testing.B) {
			run := v.new(b)
			b.ReportAllocs()
			for b.Loop() {
				if err := run(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkBreakerExecuteParallel(b *testing.B) {
	for _, v := range variants {
		b.Run("variant="+v.name, func(b *testing.B) {
			run := v.new(b)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := run(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
