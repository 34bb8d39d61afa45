package deadline

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// TestLazy checks that nothing is armed until Done is called, even after the
// deadline, and that Done arms a live context only.
func TestLazy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		parent, cancelParent := context.WithCancel(context.Background())
		defer cancelParent()
		c := New(parent, time.Second)
		if c.Err() != nil {
			t.Fatalf("Err() = %v, want nil", c.Err())
		}
		time.Sleep(time.Second)
		if got := c.Err(); got != context.DeadlineExceeded {
			t.Fatalf("Err() after deadline = %v, want %v", got, context.DeadlineExceeded)
		}
		if c.armed.Load() {
			t.Fatalf("armed without Done")
		}
		if d := c.Done(); d != closedchan {
			t.Errorf("Done() after the end = %v, want the closed channel", d)
		}
		if c.armed.Load() {
			t.Errorf("Done armed an ended context")
		}

		c = New(parent, time.Second)
		c.Cancel()
		if c.armed.Load() || c.Err() != context.Canceled {
			t.Errorf("Cancel: armed %v, Err() = %v, want unarmed, %v", c.armed.Load(), c.Err(), context.Canceled)
		}

		c = New(parent, time.Second)
		d := c.Done()
		if !c.armed.Load() || d != c.inner.Done() {
			t.Fatalf("Done did not arm")
		}
		if _, ok := c.inner.Deadline(); !ok {
			t.Errorf("inner context has no deadline")
		}
		c.Cancel()
		<-d
		if c.Err() != context.Canceled || c.inner.Err() != context.Canceled {
			t.Errorf("after Cancel: Err() = %v, inner %v, want %v", c.Err(), c.inner.Err(), context.Canceled)
		}
	})
}

func TestCancelCtxKeyFound(t *testing.T) {
	if cancelCtxKey == nil {
		t.Fatal("the probe found no key: context.Cause changed; see cancelCtxKey")
	}
}
