package bulkheadbench

import (
	"context"
	"runtime"
	"testing"

	"go.opentelemetry.io/otel/metric/noop"

	"github.com/cairnhq/cairn/resilience/bulkhead"
)

// variant is one concurrency limiter under test: run makes one call
// through it.
type variant struct {
	name string
	new  func(b *testing.B, limit int) func() error
}

var variants = []variant{
	{"chan", func(_ *testing.B, limit int) func() error {
		sem := make(chan struct{}, limit)
		ctx := context.Background()
		fn := func(context.Context) error { return nil }
		return func() error {
			sem <- struct{}{}
			err := fn(ctx)
			<-sem
			return err
		}
	}},
	{"cairn", func(b *testing.B, limit int) func() error {
		bh, err := bulkhead.New(bulkhead.Config{
			Name:          "bench",
			MaxConcurrent: limit,
			MaxQueue:      1 << 16,
			MeterProvider: noop.NewMeterProvider(),
		})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		fn := func(context.Context) error { return nil }
		return func() error { return bh.Execute(ctx, fn) }
	}},
}

func BenchmarkBulkheadExecute(b *testing.B) {
	for _, v := range variants {
		b.Run("variant="+v.name, func(b *testing.B) {
			run := v.new(b, 10)
			b.ReportAllocs()
			for b.Loop() {
				if err := run(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBulkheadExecuteParallel runs GOMAXPROCS goroutines through a
// bulkhead of 10 slots: the free-slot path under contention.
func BenchmarkBulkheadExecuteParallel(b *testing.B) { benchParallel(b, 10) }

// BenchmarkBulkheadExecuteContended runs GOMAXPROCS goroutines through a
// bulkhead of half as many slots, so that callers queue and slots are
// handed over.
func BenchmarkBulkheadExecuteContended(b *testing.B) {
	benchParallel(b, max(runtime.GOMAXPROCS(0)/2, 1))
}

func benchParallel(b *testing.B, limit int) {
	for _, v := range variants {
		b.Run("variant="+v.name, func(b *testing.B) {
			run := v.new(b, limit)
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
