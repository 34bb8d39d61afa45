package ratelimit

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestWaitSpanEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newTokenBucket(t, Config{Name: "api", Rate: 10, Burst: 2}) // T = 100ms
		ev := func(reason, retry string) []spanEvent {
			return []spanEvent{{RejectedEventName, map[string]string{
				"resilience.policy.name": "api", "resilience.reason": reason, "resilience.ratelimit.retry_after": retry}}}
		}
		tests := []struct {
			name string
			n    int
			ctx  func(context.Context) (context.Context, context.CancelFunc)
			want []spanEvent
		}{
			{"allowed", 2, nil, nil},
			{"exceeds burst", 3, nil, ev(ReasonExceedsBurst, "-1")},
			{"deadline too soon", 1, func(ctx context.Context) (context.Context, context.CancelFunc) {
				return context.WithTimeout(ctx, 50*time.Millisecond)
			}, ev(ReasonContext, "0.1")},
			{"canceled", 1, func(ctx context.Context) (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(ctx)
				cancel()
				return ctx, cancel
			}, ev(ReasonContext, "0")},
		}
		for _, tt := range tests {
			got := traced(t, func(ctx context.Context) {
				if tt.ctx != nil {
					var cancel context.CancelFunc
					ctx, cancel = tt.ctx(ctx)
					defer cancel()
				}
				_ = b.Wait(ctx, tt.n)
			})
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("%s: events mismatch (-want +got):\n%s", tt.name, diff)
			}
		}
	})
}
