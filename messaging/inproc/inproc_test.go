package inproc_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cairnhq/cairn/messaging"
	"github.com/cairnhq/cairn/messaging/inproc"
)

// collect is a handler that keeps the deliveries it is given.
type collect struct {
	mu  sync.Mutex
	got []messaging.Delivery
}

func (c *collect) handle(_ context.Context, d messaging.Delivery) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, d)
	return nil
}

func (c *collect) ids() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := make([]string, len(c.got))
	for i, d := range c.got {
		ids[i] = d.ID
	}
	return ids
}

// waitLen waits until c holds n deliveries, failing after 10s.
func (c *collect) waitLen(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ids := c.ids()
		if len(ids) >= n {
			return ids
		}
		if time.Now().After(deadline) {
			t.Fatalf("got deliveries %v, want %d", ids, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func publish(t *testing.T, p messaging.Publisher, subject string, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if err := p.Publish(t.Context(), messaging.Message{ID: id, Subject: subject, Data: []byte(id)}); err != nil {
			t.Fatalf("Publish(%q) = %v, want nil", id, err)
		}
	}
}

func TestDuplicateWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := inproc.NewBroker(inproc.WithDuplicateWindow(time.Minute))
		p := inproc.NewPublisher(b, inproc.Options{})
		defer p.Close()
		publish(t, p, "orders", "a", "b", "a")
		publish(t, p, "other", "a") // the window is per subject
		if got := b.Stats("orders"); got.Messages != 2 || got.Duplicates != 1 {
			t.Errorf("Stats(orders) after a, b, a = %+v, want 2 messages and 1 duplicate", got)
		}
		if got := b.Stats("other"); got.Messages != 1 || got.Duplicates != 0 {
			t.Errorf("Stats(other) = %+v, want 1 message and no duplicate", got)
		}

		time.Sleep(59 * time.Second)
		publish(t, p, "orders", "a")
		if got := b.Stats("orders"); got.Messages != 2 || got.Duplicates != 2 {
			t.Errorf("Stats(orders) within the window = %+v, want 2 messages and 2 duplicates", got)
		}
		time.Sleep(time.Second)
		publish(t, p, "orders", "a")
		if got := b.Stats("orders"); got.Messages != 3 || got.Duplicates != 2 {
			t.Errorf("Stats(orders) after the window = %+v, want 3 messages and 2 duplicates", got)
		}
		// "a" is remembered again from its new publish.
		time.Sleep(30 * time.Second)
		publish(t, p, "orders", "a")
		if got := b.Stats("orders"); got.Messages != 3 || got.Duplicates != 3 {
			t.Errorf("Stats(orders) within the new window = %+v, want 3 messages and 3 duplicates", got)
		}
	})
}

func TestDuplicateWindowOff(t *testing.T) {
	b := inproc.NewBroker(inproc.WithDuplicateWindow(0))
	p := inproc.NewPublisher(b, inproc.Options{})
	defer p.Close()
	publish(t, p, "orders", "a", "a")
	if got := b.Stats("orders"); got.Messages != 2 || got.Duplicates != 0 {
		t.Errorf("Stats(orders) = %+v, want 2 messages and no duplicate", got)
	}
}

func TestTrimming(t *testing.T) {
	b := inproc.NewBroker(inproc.WithMaxMessages(3))
	p := inproc.NewPublisher(b, inproc.Options{})
	defer p.Close()
	s := inproc.NewSubscriber(b, inproc.Options{})
	defer s.Close()

	// A group that read the first message, then left.
	publish(t, p, "orders", "1")
	early := &collect{}
	sub, err := s.Subscribe(t.Context(), messaging.SubscribeConfig{Subject: "orders", Group: "early"}, early.handle)
	if err != nil {
		t.Fatalf("Subscribe = %v", err)
	}
	early.waitLen(t, 1)
	sub.Close()

	publish(t, p, "orders", "2", "3", "4", "5")
	want := inproc.Stats{Messages: 3, FirstSeq: 3, LastSeq: 5, Trimmed: 2}
	if got := b.Stats("orders"); got != want {
		t.Errorf("Stats(orders) = %+v, want %+v", got, want)
	}

	// The early group lost "2"; a new group starts at the oldest kept.
	if _, err := s.Subscribe(t.Context(), messaging.SubscribeConfig{Subject: "orders", Group: "early"}, early.handle); err != nil {
		t.Fatalf("Subscribe = %v", err)
	}
	late := &collect{}
	if _, err := s.Subscribe(t.Context(), messaging.SubscribeConfig{Subject: "orders", Group: "late"}, late.handle); err != nil {
		t.Fatalf("Subscribe = %v", err)
	}
	if got, want := strings.Join(early.waitLen(t, 4), ","), "1,3,4,5"; got != want {
		t.Errorf("group early got %s, want %s", got, want)
	}
	if got, want := strings.Join(late.waitLen(t, 3), ","), "3,4,5"; got != want {
		t.Errorf("group late got %s, want %s", got, want)
	}
}

func TestEmptyStats(t *testing.T) {
	b := inproc.NewBroker()
	want := inproc.Stats{FirstSeq: 1}
	if got := b.Stats("nothing"); got != want {
		t.Errorf("Stats(nothing) = %+v, want %+v", got, want)
	}
}

// TestGroupResumes checks that a group keeps its position when all its
// members have left.
func TestGroupResumes(t *testing.T) {
	b := inproc.NewBroker()
	p := inproc.NewPublisher(b, inproc.Options{})
	defer p.Close()
	s := inproc.NewSubscriber(b, inproc.Options{})
	defer s.Close()
	cfg := messaging.SubscribeConfig{Subject: "orders", Group: "billing"}

	publish(t, p, "orders", "1", "2")
	c := &collect{}
	sub, err := s.Subscribe(t.Context(), cfg, c.handle)
	if err != nil {
		t.Fatalf("Subscribe = %v", err)
	}
	c.waitLen(t, 2)
	sub.Close()
	publish(t, p, "orders", "3")
	if _, err := s.Subscribe(t.Context(), cfg, c.handle); err != nil {
		t.Fatalf("Subscribe = %v", err)
	}
	if got, want := strings.Join(c.waitLen(t, 3), ","), "1,2,3"; got != want {
		t.Errorf("deliveries = %s, want %s", got, want)
	}
}

// TestDeadLetterBeyondMaxSize checks that a dead letter is kept although
// its headers make it larger than publishers may send.
func TestDeadLetterBeyondMaxSize(t *testing.T) {
	b := inproc.NewBroker(inproc.WithMaxMessageSize(16))
	p := inproc.NewPublisher(b, inproc.Options{})
	defer p.Close()
	s := inproc.NewSubscriber(b, inproc.Options{})
	defer s.Close()

	if err := p.Publish(t.Context(), messaging.Message{ID: "big", Subject: "orders", Data: make([]byte, 17)}); !errors.Is(err, messaging.ErrInvalidMessage) {
		t.Errorf("Publish(17 bytes) = %v, want ErrInvalidMessage", err)
	}
	publish(t, p, "orders", "0123456789abcdef")
	if _, err := s.Subscribe(t.Context(), messaging.SubscribeConfig{Subject: "orders", Group: "g"},
		func(context.Context, messaging.Delivery) error { return messaging.Permanent(errors.New("bad")) }); err != nil {
		t.Fatalf("Subscribe = %v", err)
	}
	dlq := &collect{}
	if _, err := s.Subscribe(t.Context(), messaging.SubscribeConfig{Subject: messaging.DeadLetterSubject("orders", "g"), Group: "dlq"}, dlq.handle); err != nil {
		t.Fatalf("Subscribe = %v", err)
	}
	dlq.waitLen(t, 1)
	dlq.mu.Lock()
	d := dlq.got[0]
	dlq.mu.Unlock()
	if d.ID != "0123456789abcdef" || d.Header[messaging.HeaderDeadLetterReason] != "bad" {
		t.Errorf("dead letter = %q with headers %v, want the message with reason %q", d.ID, d.Header, "bad")
	}
}

// TestConcurrent publishes from several goroutines to many keys and
// consumes with several members of a group, and checks that every
// message is handled once, in order within its key.
func TestConcurrent(t *testing.T) {
	const publishers, perPublisher, keys, members = 4, 400, 16, 4
	b := inproc.NewBroker()
	var (
		mu    sync.Mutex
		last  = map[string]int{} // key -> last sequence handled
		seen  = map[string]bool{}
		errs  []string
		total int
	)
	handler := func(_ context.Context, d messaging.Delivery) error {
		var pub, n int
		fmt.Sscanf(string(d.Data), "%d %d", &pub, &n)
		mu.Lock()
		defer mu.Unlock()
		// Each key is written by one publisher, in order.
		if prev, ok := last[d.Key]; ok && n <= prev {
			errs = append(errs, fmt.Sprintf("key %s: %d (attempt %d) after %d", d.Key, n, d.Attempt, prev))
		}
		if n%50 == 7 && d.Attempt == 1 {
			// Fail some, to mix redeliveries in.
			return errors.New("retry")
		}
		if seen[d.ID] {
			errs = append(errs, "duplicate "+d.ID)
		}
		seen[d.ID] = true
		last[d.Key] = n
		total++
		return nil
	}
	for range members {
		s := inproc.NewSubscriber(b, inproc.Options{})
		defer s.Close()
		cfg := messaging.SubscribeConfig{Subject: "load", Group: "g", Backoff: func(int) time.Duration { return time.Millisecond }}
		if _, err := s.Subscribe(t.Context(), cfg, handler); err != nil {
			t.Fatalf("Subscribe = %v", err)
		}
	}
	var wg sync.WaitGroup
	for i := range publishers {
		wg.Go(func() {
			p := inproc.NewPublisher(b, inproc.Options{})
			defer p.Close()
			for n := range perPublisher {
				key := fmt.Sprintf("p%d-k%d", i, n%(keys/publishers))
				m := messaging.Message{ID: fmt.Sprintf("%d-%d", i, n), Subject: "load", Key: key, Data: fmt.Appendf(nil, "%d %d", i, n)}
				if err := p.Publish(t.Context(), m); err != nil {
					t.Errorf("Publish = %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := total
		mu.Unlock()
		if n >= publishers*perPublisher {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("handled %d messages, want %d", n, publishers*perPublisher)
		}
		time.Sleep(time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, e := range errs {
		t.Error(e)
	}
}
