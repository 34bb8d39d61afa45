package hedge

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cairnhq/cairn/resilience/budget"
)

func TestSpanEventsWithBudget(t *testing.T) {
	t.Run("fake", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := newHedger(t, Config{Name: "db", Delay: 10 * time.Millisecond, MaxHedges: 3}, &fakeBudget{grants: 1})
			long := step{d: 50 * time.Millisecond}
			s := newScript(long, long, long, long)
			got := traced(t, func(ctx context.Context) { _, _ = Do(ctx, h, s.fn) })
			synctest.Wait()
			want := []spanEvent{
				{SentEventName, map[string]string{"resilience.policy.name": "db", "resilience.hedge.attempt": "2"}},
				{budget.DeniedEventName, map[string]string{"resilience.policy.name": "db", "resilience.hedge.attempt": "3"}},
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("events mismatch (-want +got):\n%s", diff)
			}
		})
	})
	t.Run("named", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b, err := budget.NewGRPC(budget.Config{Name: "shared", MaxTokens: 2})
			if err != nil {
				t.Fatal(err)
			}
			b.OnFailure() // 1 token left of 2: no more than half, so denied
			h := newHedger(t, Config{Name: "db", Delay: 10 * time.Millisecond, MaxHedges: 1}, b)
			s := newScript(step{d: 50 * time.Millisecond})
			got := traced(t, func(ctx context.Context) { _, _ = Do(ctx, h, s.fn) })
			synctest.Wait()
			want := []spanEvent{
				{budget.DeniedEventName, map[string]string{"resilience.policy.name": "db", "resilience.hedge.attempt": "2", "resilience.budget.name": "shared"}},
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("events mismatch (-want +got):\n%s", diff)
			}
		})
	})
}
