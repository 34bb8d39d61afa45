package natsjs_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairnhq/cairn/internal/natstest"
	"github.com/cairnhq/cairn/internal/testenv"
	"github.com/cairnhq/cairn/messaging"
	"github.com/cairnhq/cairn/messaging/natsjs"
)

// testOpts are short waits, so that broker restarts take seconds in
// tests. AckWait stays long enough that a loaded machine does not cause
// redeliveries; the tests of crashes shorten it (crashAckWait).
var testOpts = natsjs.Options{AckWait: 10 * time.Second, PollWait: time.Second, RetryWait: 50 * time.Millisecond}

// crashAckWait is the AckWait of tests that wait for it to expire.
const crashAckWait = 2 * time.Second

// embedded returns JetStream on a new embedded server.
func embedded(t *testing.T) (*natstest.Server, jetstream.JetStream) {
	t.Helper()
	srv := natstest.Start(t)
	return srv, natstest.JetStream(t, srv.URL())
}

// machine returns JetStream on the machine's NATS server.
func machine(t *testing.T) jetstream.JetStream {
	t.Helper()
	return natstest.JetStream(t, testenv.Require(t, testenv.NATS))
}

func randHex(t *testing.T) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("rand.Read: %v", err)
	}
	return hex.EncodeToString(b[:])
}

// subject returns a fresh subject "t.<random>", with a stream of its own
// for it and one for its default dead-letter subjects (and theirs), all
// deleted when t ends.
func subject(t *testing.T, js jetstream.JetStream) string {
	t.Helper()
	r := randHex(t)
	subj := "t." + r
	ensure(t, js, jetstream.StreamConfig{Name: "T_" + r, Subjects: []string{subj}, Storage: jetstream.FileStorage})
	dlq := jetstream.StreamConfig{Name: "TDLQ_" + r, Subjects: []string{"dlq.*." + subj, "dlq.*.dlq.*." + subj}, Storage: jetstream.FileStorage}
	if err := tryEnsure(t, js, dlq); err != nil {
		// A stream such as EnsureDeadLetterStream's "dlq.>" may already
		// store these subjects on a shared server.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, serr := js.StreamNameBySubject(ctx, "dlq.g.dlq.g."+subj); serr != nil {
			t.Fatalf("EnsureStream(%s): %v, and no stream stores its subjects: %v", dlq.Name, err, serr)
		}
	}
	return subj
}

func ensure(t *testing.T, js jetstream.JetStream, cfg jetstream.StreamConfig) {
	t.Helper()
	if err := tryEnsure(t, js, cfg); err != nil {
		t.Fatalf("EnsureStream(%s): %v", cfg.Name, err)
	}
}

func tryEnsure(t *testing.T, js jetstream.JetStream, cfg jetstream.StreamConfig) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := natsjs.EnsureStream(ctx, js, cfg); err != nil {
		return err
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = js.DeleteStream(ctx, cfg.Name)
	})
	return nil
}

// recorder records deliveries; its handler returns what fn returns.
type recorder struct {
	mu  sync.Mutex
	got []messaging.Delivery
	fn  func(ctx context.Context, d messaging.Delivery) error
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

func (r *recorder) deliveries() []messaging.Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]messaging.Delivery(nil), r.got...)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// waitFor polls cond every 5ms until it holds, failing t after within.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func mustSubscribe(t *testing.T, s messaging.Subscriber, cfg messaging.SubscribeConfig, h messaging.Handler) messaging.Subscription {
	t.Helper()
	sub, err := s.Subscribe(t.Context(), cfg, h)
	if err != nil {
		t.Fatalf("Subscribe(%+v) = %v, want nil", cfg, err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return sub
}

func msg(subj, key string, i int) messaging.Message {
	return messaging.Message{ID: fmt.Sprintf("%s-%s-%d", subj, key, i), Subject: subj, Key: key, Data: fmt.Appendf(nil, "%d", i)}
}
