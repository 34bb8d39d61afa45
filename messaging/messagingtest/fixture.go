package messagingtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/messaging"
)

// fastBackoff keeps redeliveries quick in the checks.
func fastBackoff(int) time.Duration { return 10 * time.Millisecond }

// fixture holds what a check needs: its harness, a prefix that makes its
// IDs unique, and helpers that close what they open.
type fixture struct {
	t      *testing.T
	h      Harness
	prefix string
}

func newFixture(t *testing.T, h Harness) *fixture {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("rand.Read: %v", err)
	}
	return &fixture{t: t, h: h, prefix: hex.EncodeToString(b[:])}
}

// id returns an ID unique to the check.
func (f *fixture) id(format string, args ...any) string {
	return f.prefix + "-" + fmt.Sprintf(format, args...)
}

// group returns a group name unique to the check.
func (f *fixture) group(name string) string { return "g" + f.prefix + name }

func (f *fixture) subject() string {
	f.t.Helper()
	s := f.h.Subject(f.t)
	if s == "" {
		f.t.Fatal("Harness.Subject returned an empty subject")
	}
	return s
}

func (f *fixture) publisher() messaging.Publisher {
	f.t.Helper()
	p := f.h.NewPublisher(f.t)
	if p == nil {
		f.t.Fatal("Harness.NewPublisher returned nil")
	}
	f.t.Cleanup(func() { p.Close() })
	return p
}

func (f *fixture) subscriber() messaging.Subscriber {
	f.t.Helper()
	s := f.h.NewSubscriber(f.t)
	if s == nil {
		f.t.Fatal("Harness.NewSubscriber returned nil")
	}
	f.t.Cleanup(func() { closeWithin(f.t, "Subscriber.Close", s.Close) })
	return s
}

// publish publishes msgs and fails the check on error.
func (f *fixture) publish(p messaging.Publisher, msgs ...messaging.Message) {
	f.t.Helper()
	if err := p.Publish(f.t.Context(), msgs...); err != nil {
		f.t.Fatalf("Publish(%d messages) = %v, want nil", len(msgs), err)
	}
}

// subscribe subscribes s and fails the check on error. The subscription
// is closed when the check ends.
func (f *fixture) subscribe(s messaging.Subscriber, cfg messaging.SubscribeConfig, h messaging.Handler) messaging.Subscription {
	f.t.Helper()
	sub, err := s.Subscribe(f.t.Context(), cfg, h)
	if err != nil {
		f.t.Fatalf("Subscribe(%+v) = %v, want nil", cfg, err)
	}
	if sub == nil {
		f.t.Fatalf("Subscribe(%+v) returned a nil Subscription", cfg)
	}
	f.t.Cleanup(func() { closeWithin(f.t, "Subscription.Close", sub.Close) })
	return sub
}

// closeWithin calls close and fails t if it does not return within
// Timeout or returns an error.
func closeWithin(t *testing.T, what string, close func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("%s() = %v, want nil", what, err)
		}
	case <-time.After(Timeout):
		t.Errorf("%s() did not return within %v", what, Timeout)
	}
}

// waitFor polls cond until it holds, failing the check after Timeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", Timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// recorder is a handler that records every delivery it is given, and
// returns what its optional fn returns.
type recorder struct {
	mu   sync.Mutex
	got  []messaging.Delivery
	fn   func(ctx context.Context, d messaging.Delivery) error
	name string
}

func (r *recorder) handle(ctx context.Context, d messaging.Delivery) error {
	r.mu.Lock()
	r.got = append(r.got, d)
	fn := r.fn
	r.mu.Unlock()
	if fn != nil {
		return fn(ctx, d)
	}
	return nil
}

// deliveries returns a copy of the deliveries recorded so far.
func (r *recorder) deliveries() []messaging.Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]messaging.Delivery(nil), r.got...)
}

// ofID returns the deliveries of the message with ID id.
func (r *recorder) ofID(id string) []messaging.Delivery {
	var ds []messaging.Delivery
	for _, d := range r.deliveries() {
		if d.ID == id {
			ds = append(ds, d)
		}
	}
	return ds
}

// has reports whether a message with ID id was delivered.
func (r *recorder) has(id string) bool { return len(r.ofID(id)) > 0 }

// waitID waits for the message with ID id and returns its first delivery.
func (r *recorder) waitID(t *testing.T, id string) messaging.Delivery {
	t.Helper()
	waitFor(t, fmt.Sprintf("message %q to be delivered to %s", id, r.name), func() bool { return r.has(id) })
	return r.ofID(id)[0]
}
