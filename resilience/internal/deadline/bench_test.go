package deadline_test

import (
	"context"
	"testing"
	"time"

	"github.com/cairnhq/cairn/resilience/internal/deadline"
)

var sink error

//go:noinline
func ignore(ctx context.Context) error { return nil }

//go:noinline
func pollErr(ctx context.Context) error { return ctx.Err() }

//go:noinline
func selectDone(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	default:
		return nil
	}
}

// BenchmarkTimeout measures a timeout stage's context per call: make it,
// run a callee, cancel it, for callees that ignore the context, poll Err
// or select on Done, under a parent that cannot end (Background) and one
// that can (WithCancel, as a server request's context).
func BenchmarkTimeout(b *testing.B) {
	callees := []struct {
		name string
		f    func(context.Context) error
	}{
		{"ignore", ignore},
		{"err", pollErr},
		{"done", selectDone},
	}
	parents := []struct {
		name string
		make func() (context.Context, context.CancelFunc)
	}{
		{"background", func() (context.Context, context.CancelFunc) { return context.Background(), func() {} }},
		{"cancel", func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }},
	}
	for _, callee := range callees {
		for _, p := range parents {
			b.Run("callee="+callee.name+"/parent="+p.name, func(b *testing.B) {
				parent, cancelParent := p.make()
				defer cancelParent()
				b.Run("variant=stdlib", func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						ctx, cancel := context.WithTimeout(parent, time.Second)
						sink = callee.f(ctx)
						cancel()
					}
				})
				b.Run("variant=deadline", func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						c := deadline.New(parent, time.Second)
						sink = callee.f(c)
						c.Cancel()
					}
				})
			})
		}
	}
}
