package shed

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/google/go-cmp/cmp"
)

func TestSpanEventOnShed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, cpu := newTest(t, cfg100ms)
		if got := traced(t, func(ctx context.Context) {
			p, err := s.Allow(WithPriority(ctx, Sheddable))
			if err != nil {
				t.Fatalf("Allow at low CPU = %v", err)
			}
			p.Done()
		}); len(got) != 0 {
			t.Errorf("admitted: events = %v, want none", got)
		}
		cpu.Set(1)
		got := traced(t, func(ctx context.Context) {
			if _, err := s.Allow(WithPriority(ctx, Sheddable)); err == nil {
				t.Fatal("Allow of a sheddable request while overloaded = nil, want shed")
			}
		})
		want := []spanEvent{{RejectedEventName, map[string]string{
			"resilience.policy.name": "api", "resilience.shed.priority": "sheddable", "resilience.shed.retry_after": "0.1"}}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("events mismatch (-want +got):\n%s", diff)
		}
	})
}
