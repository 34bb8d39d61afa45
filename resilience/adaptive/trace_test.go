package adaptive

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSpanEventOnRejection(t *testing.T) {
	l := newLimiter(t, Config{Name: "db", InitialLimit: 1})
	var p Permit
	if got := traced(t, func(ctx context.Context) {
		var ok bool
		if p, ok = l.AcquireContext(ctx); !ok {
			t.Fatal("AcquireContext rejected the first call")
		}
	}); len(got) != 0 {
		t.Errorf("admitted: events = %v, want none", got)
	}
	got := traced(t, func(ctx context.Context) {
		if _, ok := l.AcquireContext(ctx); ok {
			t.Fatal("AcquireContext admitted a call over the limit")
		}
	})
	want := []spanEvent{{RejectedEventName, map[string]string{"resilience.policy.name": "db", "resilience.adaptive.current_limit": "1"}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events mismatch (-want +got):\n%s", diff)
	}
	p.Done(nil)
}
