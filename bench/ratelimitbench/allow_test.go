package ratelimitbench

import (
	"testing"

	"go.opentelemetry.io/otel/metric/noop"
	"golang.org/x/time/rate"

	"github.com/cairnhq/cairn/resilience/ratelimit"
)

// perSecond and burst are high enough that every Allow is admitted, so the
// benchmarks measure the decision itself.
const (
	perSecond = 1e9
	burst     = 1e9
)

// allowFunc is one limiter's Allow.
type allowFunc func() bool

// variants returns the limiters to compare, the baseline first.
func variants(b *testing.B) []struct {
	name  string
	allow allowFunc
} {
	cairn, err := ratelimit.NewTokenBucket(ratelimit.Config{
		Name: "bench", Rate: perSecond, Burst: burst, MeterProvider: noop.NewMeterProvider(),
	})
	if err != nil {
		b.Fatal(err)
	}
	return []struct {
		name  string
		allow allowFunc
	}{
		{"xrate", rate.NewLimiter(rate.Limit(perSecond), burst).Allow},
		{"cairn", cairn.Allow},
	}
}

func BenchmarkAllow(b *testing.B) {
	for _, v := range variants(b) {
		b.Run("variant="+v.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !v.allow() {
					b.Fatal("Allow() = false, want true")
				}
			}
		})
	}
}

func BenchmarkAllowParallel(b *testing.B) {
	for _, v := range variants(b) {
		b.Run("variant="+v.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if !v.allow() {
						b.Error("Allow() = false, want true")
						return
					}
				}
			})
		})
	}
}
