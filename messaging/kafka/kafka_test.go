package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/cairnhq/cairn/messaging"
	"github.com/cairnhq/cairn/messaging/kafka"
)

func TestRoundTripAndTraceContext(t *testing.T) {
	seeds := cluster(t, 2)
	rec := tracetest.NewSpanRecorder()
	tp := trace.NewTracerProvider(trace.WithSpanProcessor(rec))
	opts := kafka.Options{TracerProvider: tp}
	p := newPublisher(t, seeds, opts)
	s := newSubscriber(t, seeds, opts)
	subj := subject(t)
	want := messaging.Message{ID: "m1", Subject: subj, Key: "k1", Header: map[string]string{"a": "1", "b": "2"}, Data: []byte("hello")}
	publish(t, p, want)
	r := newRecorder()
	subscribe(t, s, messaging.SubscribeConfig{Subject: subj, Group: "g"}, func(_ context.Context, d messaging.Delivery) error {
		r.add(d)
		return nil
	})
	got := r.wait(t, "one delivery", atLeast(1))[0]
	if got.Attempt != 1 || got.Group != "g" {
		t.Errorf("Attempt, Group = %d, %q, want 1, %q", got.Attempt, got.Group, "g")
	}
	if got.Header["traceparent"] == "" {
		t.Errorf("delivered headers %v have no traceparent", got.Header)
	}
	delete(got.Header, "traceparent")
	delete(got.Header, "tracestate")
	if diff := cmp.Diff(want, got.Message); diff != "" {
		t.Errorf("delivered message differs (-want +got):\n%s", diff)
	}
	// The subscription may still be ending the consumer span.
	_ = s.Close()
	var pub, proc trace.ReadOnlySpan
	for _, sp := range rec.Ended() {
		switch sp.Name() {
		case "send " + subj:
			pub = sp
		case "process " + subj:
			proc = sp
		}
	}
	if pub == nil || proc == nil {
		t.Fatalf("spans: send %v, process %v; want both", pub != nil, proc != nil)
	}
	if proc.Parent().SpanID() != pub.SpanContext().SpanID() || proc.Parent().TraceID() != pub.SpanContext().TraceID() {
		t.Errorf("process span's parent = %v, want the send span %v", proc.Parent().SpanID(), pub.SpanContext().SpanID())
	}
}

func TestOrderPerKey(t *testing.T) {
	seeds := cluster(t, 4)
	p := newPublisher(t, seeds, kafka.Options{})
	s := newSubscriber(t, seeds, kafka.Options{})
	subj := subject(t)
	const keys, per = 8, 15
	var msgs []messaging.Message
	for i := range per {
		for k := range keys {
			msgs = append(msgs, messaging.Message{ID: fmt.Sprintf("k%d-%d", k, i), Subject: subj, Key: fmt.Sprintf("k%d", k), Data: []byte(fmt.Sprint(i))})
		}
	}
	publish(t, p, msgs...)
	r := newRecorder()
	failed := map[string]bool{}
	var mu sync.Mutex
	subscribe(t, s, messaging.SubscribeConfig{Subject: subj, Group: "g", Backoff: fastBackoff}, func(_ context.Context, d messaging.Delivery) error {
		r.add(d)
		mu.Lock()
		defer mu.Unlock()
		// Every fifth message fails twice before it succeeds.
		if strings.HasSuffix(d.ID, "5") && d.Attempt < 3 {
			failed[d.ID] = true
			return errors.New("transient")
		}
		return nil
	})
	all := r.wait(t, "every message acknowledged", func(ds []messaging.Delivery) bool {
		return len(ds) >= keys*per+2*len(failedIDs(msgs))
	})
	next := map[string]int{}     // key -> next index expected
	attempts := map[string]int{} // id -> last attempt seen
	for _, d := range all {
		var k, i int
		fmt.Sscanf(d.ID, "k%d-%d", &k, &i)
		key := fmt.Sprintf("k%d", k)
		if a := attempts[d.ID]; a > 0 {
			if d.Attempt != a+1 || i != next[key]-1 {
				t.Errorf("redelivery of %s: attempt %d after %d, key at %d", d.ID, d.Attempt, a, next[key])
			}
		} else if i != next[key] {
			t.Errorf("got %s (attempt %d), want %s-%d next", d.ID, d.Attempt, key, next[key])
		} else {
			next[key]++
		}
		attempts[d.ID] = d.Attempt
	}
	for k := range keys {
		if next[fmt.Sprintf("k%d", k)] != per {
			t.Errorf("key k%d: %d messages handled, want %d", k, next[fmt.Sprintf("k%d", k)], per)
		}
	}
}

func failedIDs(msgs []messaging.Message) []string {
	var ids []string
	for _, m := range msgs {
		if strings.HasSuffix(m.ID, "5") {
			ids = append(ids, m.ID)
		}
	}
	return ids
}

func TestDeadLetter(t *testing.T) {
	seeds := cluster(t, 1)
	p := newPublisher(t, seeds, kafka.Options{})
	s := newSubscriber(t, seeds, kafka.Options{})
	subj := subject(t)
	publish(t, p,
		messaging.Message{ID: "retried", Subject: subj, Key: "k", Data: []byte("a")},
		messaging.Message{ID: "permanent", Subject: subj, Key: "k", Data: []byte("b")},
		messaging.Message{ID: "fine", Subject: subj, Key: "k", Data: []byte("c")},
	)
	cfg := messaging.SubscribeConfig{Subject: subj, Group: "g/1", MaxDeliveries: 3, Backoff: fastBackoff}
	r := newRecorder()
	subscribe(t, s, cfg, func(_ context.Context, d messaging.Delivery) error {
		r.add(d)
		switch d.ID {
		case "retried":
			return errors.New("always fails")
		case "permanent":
			return messaging.Permanent(errors.New("cannot decode"))
		}
		return nil
	})
	dead := newRecorder()
	subscribe(t, s, messaging.SubscribeConfig{Subject: messaging.DeadLetterSubject(subj, cfg.Group), Group: "dlq"}, func(_ context.Context, d messaging.Delivery) error {
		dead.add(d)
		return nil
	})
	got := dead.wait(t, "two dead letters", atLeast(2))
	want := []struct{ id, reason, deliveries string }{
		{"retried", "always fails", "3"},
		{"permanent", "cannot decode", "1"},
	}
	for i, w := range want {
		d := got[i]
		if d.ID != w.id || d.Header[messaging.HeaderDeadLetterReason] != w.reason ||
			d.Header[messaging.HeaderDeliveries] != w.deliveries || d.Header[messaging.HeaderOriginalSubject] != subj ||
			d.Header[messaging.HeaderGroup] != cfg.Group {
			t.Errorf("dead letter %d = %s %v, want %s with reason %q after %s deliveries from %q", i, d.ID, d.Header, w.id, w.reason, w.deliveries, subj)
		}
	}
	ds := r.wait(t, "the last message", func(ds []messaging.Delivery) bool { return len(ds) > 0 && ds[len(ds)-1].ID == "fine" })
	if len(ds) != 5 {
		t.Errorf("%d deliveries, want 5 (3 retried, 1 permanent, 1 fine)", len(ds))
	}
}

func TestCrashRedelivers(t *testing.T) {
	seeds := cluster(t, 1)
	p := newPublisher(t, seeds, kafka.Options{})
	subj := subject(t)
	publish(t, p, messaging.Message{ID: "a", Subject: subj, Key: "k"}, messaging.Message{ID: "b", Subject: subj, Key: "k"})
	cfg := messaging.SubscribeConfig{Subject: subj, Group: "g"}

	s1 := newSubscriber(t, seeds, kafka.Options{})
	r1 := newRecorder()
	sub1 := subscribe(t, s1, cfg, func(ctx context.Context, d messaging.Delivery) error {
		r1.add(d)
		if d.ID == "b" {
			<-ctx.Done() // crash mid-handler
			return ctx.Err()
		}
		return nil
	})
	r1.wait(t, "b delivered to the first subscriber", atLeast(2))
	if err := sub1.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s2 := newSubscriber(t, seeds, kafka.Options{})
	r2 := newRecorder()
	subscribe(t, s2, cfg, func(_ context.Context, d messaging.Delivery) error {
		r2.add(d)
		return nil
	})
	got := r2.wait(t, "b redelivered", atLeast(1))
	if got[0].ID != "b" {
		t.Errorf("second subscriber got %s first, want b (a was acknowledged and committed)", got[0].ID)
	}
}

func TestGroups(t *testing.T) {
	seeds := cluster(t, 4)
	p := newPublisher(t, seeds, kafka.Options{})
	subj := subject(t)
	const n = 40
	var msgs []messaging.Message
	for i := range n {
		msgs = append(msgs, messaging.Message{ID: fmt.Sprint(i), Subject: subj, Key: fmt.Sprint(i)})
	}
	// Record which clients of the shared group have partitions.
	var amu sync.Mutex
	assigned := map[*kgo.Client]bool{}
	members := make(chan struct{})
	s := newSubscriber(t, seeds, kafka.Options{ClientOptions: []kgo.Opt{
		kgo.OnPartitionsAssigned(func(_ context.Context, cl *kgo.Client, ps map[string][]int32) {
			amu.Lock()
			defer amu.Unlock()
			if len(ps) > 0 && !assigned[cl] {
				assigned[cl] = true
				if len(assigned) == 2 {
					close(members)
				}
			}
		}),
	}})
	so := newSubscriber(t, seeds, kafka.Options{})
	shared, other := newRecorder(), newRecorder()
	var perSub [2]int
	var mu sync.Mutex
	for i := range 2 {
		subscribe(t, s, messaging.SubscribeConfig{Subject: subj, Group: "shared"}, func(_ context.Context, d messaging.Delivery) error {
			mu.Lock()
			perSub[i]++
			mu.Unlock()
			shared.add(d)
			return nil
		})
	}
	select {
	case <-members:
	case <-time.After(30 * time.Second):
		t.Fatal("timed out waiting for both members of the shared group to have partitions")
	}
	subscribe(t, so, messaging.SubscribeConfig{Subject: subj, Group: "other"}, func(_ context.Context, d messaging.Delivery) error {
		other.add(d)
		return nil
	})
	publish(t, p, msgs...)
	distinct := func(ds []messaging.Delivery) bool {
		ids := map[string]bool{}
		for _, d := range ds {
			ids[d.ID] = true
		}
		return len(ids) == n
	}
	shared.wait(t, "every message in the shared group", distinct)
	other.wait(t, "every message in the other group", distinct)
	_ = s.Close()
	mu.Lock()
	defer mu.Unlock()
	if perSub[0] == 0 || perSub[1] == 0 {
		t.Errorf("shared group: %v deliveries per member, want both to have some", perSub)
	}
}

func TestInvalid(t *testing.T) {
	seeds := cluster(t, 1)
	p := newPublisher(t, seeds, kafka.Options{MaxMessageSize: 100})
	s := newSubscriber(t, seeds, kafka.Options{})
	ctx := context.Background()
	for name, m := range map[string]messaging.Message{
		"no ID":      {Subject: "s"},
		"no subject": {ID: "1"},
		"oversized":  {ID: "1", Subject: "s", Data: make([]byte, 101)},
	} {
		if err := p.Publish(ctx, m); !errors.Is(err, messaging.ErrInvalidMessage) {
			t.Errorf("Publish(%s) = %v, want ErrInvalidMessage", name, err)
		}
	}
	h := func(context.Context, messaging.Delivery) error { return nil }
	for name, cfg := range map[string]messaging.SubscribeConfig{
		"no subject":       {Group: "g"},
		"no group":         {Subject: "s"},
		"negative max":     {Subject: "s", Group: "g", MaxDeliveries: -1},
		"dead letter self": {Subject: "s", Group: "g", DeadLetterSubject: "s"},
	} {
		if _, err := s.Subscribe(ctx, cfg, h); !errors.Is(err, messaging.ErrInvalidConfig) {
			t.Errorf("Subscribe(%s) = %v, want ErrInvalidConfig", name, err)
		}
	}
	_ = p.Close()
	_ = s.Close()
	if err := p.Publish(ctx, messaging.Message{ID: "1", Subject: "s"}); !errors.Is(err, messaging.ErrClosed) {
		t.Errorf("Publish after Close = %v, want ErrClosed", err)
	}
	if _, err := s.Subscribe(ctx, messaging.SubscribeConfig{Subject: "s", Group: "g"}, h); !errors.Is(err, messaging.ErrClosed) {
		t.Errorf("Subscribe after Close = %v, want ErrClosed", err)
	}
}
