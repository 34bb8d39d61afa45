package ratelimit

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

func newTokenBucket(t *testing.T, cfg Config) *TokenBucket {
	t.Helper()
	l := mustNew(t, cfg)
	return l.(*TokenBucket)
}

func TestWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newTokenBucket(t, Config{Name: "api", Rate: 10, Burst: 2}) // T = 100ms
		ctx := context.Background()
		start := time.Now()
		for range 3 {
			if err := b.Wait(ctx, 1); err != nil {
				t.Fatalf("Wait(1) = %v, want nil", err)
			}
		}
		if got := time.Since(start); got != 100*time.Millisecond {
			t.Errorf("three Waits took %v, want 100ms", got)
		}
		if err := b.Wait(ctx, 0); err != nil {
			t.Errorf("Wait(0) = %v, want nil", err)
		}

		var le *LimitedError
		err := b.Wait(ctx, 3)
		if !errors.As(err, &le) || !errors.Is(err, ErrLimited) || le.RetryAfter != Never || le.Limit != "api" {
			t.Errorf("Wait(3) = %v, want a LimitedError with RetryAfter Never", err)
		}

		// A deadline before the token arrives fails at once and takes nothing.
		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		before := time.Now()
		err = b.Wait(short, 1)
		if !errors.Is(err, ErrLimited) || !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &le) || le.RetryAfter != 100*time.Millisecond {
			t.Errorf("Wait with a 50ms deadline = %v, want LimitedError{RetryAfter: 100ms} wrapping DeadlineExceeded", err)
		}
		if time.Since(before) != 0 {
			t.Errorf("Wait with a too short deadline waited %v", time.Since(before))
		}

		// Cancelled while waiting: the reserved token is given back.
		cctx, cancel2 := context.WithCancel(ctx)
		time.AfterFunc(30*time.Millisecond, cancel2)
		if err := b.Wait(cctx, 1); !errors.Is(err, context.Canceled) || !errors.Is(err, ErrLimited) {
			t.Errorf("cancelled Wait = %v, want LimitedError wrapping Canceled", err)
		}
		time.Sleep(70 * time.Millisecond)
		if !b.Allow() {
			t.Error("Allow() after a cancelled Wait = false, want the token back")
		}
		if err := b.Wait(cctx, 1); !errors.Is(err, context.Canceled) {
			t.Errorf("Wait on a done context = %v, want Canceled", err)
		}
	})
}
