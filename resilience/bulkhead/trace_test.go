package bulkhead

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSpanEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBulkhead(t, Config{Name: "db", MaxConcurrent: 1, MaxQueue: 1, MaxWait: time.Second})
		held := acquire(t, b)

		// Queued, then admitted when the slot is released 250ms later.
		got := traced(t, func(ctx context.Context) {
			go func() {
				time.Sleep(250 * time.Millisecond)
				held.Release()
			}()
			p, err := b.Acquire(ctx)
			if err != nil {
				t.Fatalf("Acquire = %v", err)
			}
			held = p
		})
		want := []spanEvent{{QueuedEventName, map[string]string{"resilience.policy.name": "db", "resilience.bulkhead.wait_duration": "0.25"}}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("queued: events mismatch (-want +got):\n%s", diff)
		}

		// Queued until MaxWait.
		got = traced(t, func(ctx context.Context) { _, _ = b.Acquire(ctx) })
		want = []spanEvent{{RejectedEventName, map[string]string{"resilience.policy.name": "db", "resilience.reason": "max_wait", "resilience.bulkhead.wait_duration": "1"}}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("max wait: events mismatch (-want +got):\n%s", diff)
		}

		// Queue full: another caller is queued.
		queued := make(chan struct{})
		go func() {
			p, err := b.Acquire(context.Background())
			if err == nil {
				p.Release()
			}
			close(queued)
		}()
		synctest.Wait()
		got = traced(t, func(ctx context.Context) { _, _ = b.Acquire(ctx) })
		want = []spanEvent{{RejectedEventName, map[string]string{"resilience.policy.name": "db", "resilience.reason": "queue_full"}}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("queue full: events mismatch (-want +got):\n%s", diff)
		}
		held.Release()
		<-queued

		// The context ends while queued.
		held = acquire(t, b)
		got = traced(t, func(ctx context.Context) {
			ctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			defer cancel()
			_, _ = b.Acquire(ctx)
		})
		want = []spanEvent{{RejectedEventName, map[string]string{"resilience.policy.name": "db", "resilience.reason": "context", "resilience.bulkhead.wait_duration": "0.1"}}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("context: events mismatch (-want +got):\n%s", diff)
		}
		held.Release()

		// A free slot: no event.
		if got := traced(t, func(ctx context.Context) {
			p, _ := b.Acquire(ctx)
			p.Release()
		}); len(got) != 0 {
			t.Errorf("free slot: events = %v, want none", got)
		}
	})
}
