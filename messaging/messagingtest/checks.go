package messagingtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/cairnhq/cairn/messaging"
)

// checkSame reports the differences between the message delivered and the
// message sent: ID, subject, key and data must be equal, and every header
// sent must be there with its value (transports add headers).
func checkSame(t *testing.T, what string, got messaging.Message, want messaging.Message) {
	t.Helper()
	if got.ID != want.ID {
		t.Errorf("%s: ID = %q, want %q", what, got.ID, want.ID)
	}
	if got.Subject != want.Subject {
		t.Errorf("%s: Subject = %q, want %q", what, got.Subject, want.Subject)
	}
	if got.Key != want.Key {
		t.Errorf("%s: Key = %q, want %q", what, got.Key, want.Key)
	}
	if !bytes.Equal(got.Data, want.Data) {
		t.Errorf("%s: Data = %q, want %q", what, got.Data, want.Data)
	}
	for k, v := range want.Header {
		if g, ok := got.Header[k]; !ok || g != v {
			t.Errorf("%s: Header[%q] = %q (present %v), want %q", what, k, g, ok, v)
		}
	}
}

// checkRoundTrip publishes messages with every field set, and with none,
// and checks that they arrive intact, on their first attempt, in their
// group.
func checkRoundTrip(t *testing.T, h Harness) {
	f := newFixture(t, h)
	subject := f.subject()
	group := f.group("rt")
	in := []messaging.Message{
		{
			ID:      f.id("full"),
			Subject: subject,
			Key:     "order-42",
			Header:  map[string]string{"X-Tenant": "acme", "X-Unicode": "héllo ✓ \"quoted\""},
			Data:    []byte(`{"total":12.5,"currency":"EUR"}`),
		},
		{ID: f.id("bare"), Subject: subject},
		{ID: f.id("binary"), Subject: subject, Key: "blob", Data: []byte{0, 1, 2, 0xff, 0xfe, '\n', 0}},
	}
	sent := make([]messaging.Message, len(in))
	for i, m := range in {
		sent[i] = m
		sent[i].Header = maps.Clone(m.Header)
	}
	f.publish(f.publisher(), in...)
	for i, m := range in {
		if !maps.Equal(m.Header, sent[i].Header) {
			t.Errorf("Publish changed the caller's headers of %q: %v, were %v", m.ID, m.Header, sent[i].Header)
		}
	}

	rec := &recorder{name: "the subscriber"}
	f.subscribe(f.subscriber(), messaging.SubscribeConfig{Subject: subject, Group: group, Backoff: fastBackoff}, rec.handle)
	for _, m := range sent {
		d := rec.waitID(t, m.ID)
		checkSame(t, fmt.Sprintf("delivery of %q", m.ID), d.Message, m)
		if d.Attempt != 1 {
			t.Errorf("delivery of %q: Attempt = %d, want 1", m.ID, d.Attempt)
		}
		if d.Group != group {
			t.Errorf("delivery of %q: Group = %q, want %q", m.ID, d.Group, group)
		}
	}
}

// checkTraceContext checks that the consumer's span is a child of the
// publisher's, in the trace of the publishing context, and that the
// handler's context carries the consumer's span.
func checkTraceContext(t *testing.T, h Harness) {
	if h.NewPublisherWithTracer == nil || h.NewSubscriberWithTracer == nil {
		t.Skip("Harness.NewPublisherWithTracer or NewSubscriberWithTracer is nil")
	}
	f := newFixture(t, h)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

	pub := h.NewPublisherWithTracer(t, tp)
	t.Cleanup(func() { pub.Close() })
	sub := h.NewSubscriberWithTracer(t, tp)
	t.Cleanup(func() { closeWithin(t, "Subscriber.Close", sub.Close) })

	subject := f.subject()
	id := f.id("traced")
	var handlerSpan atomic.Value // trace.SpanContext
	r := &recorder{name: "the subscriber", fn: func(ctx context.Context, d messaging.Delivery) error {
		handlerSpan.Store(trace.SpanContextFromContext(ctx))
		return nil
	}}
	f.subscribe(sub, messaging.SubscribeConfig{Subject: subject, Group: f.group("trace"), Backoff: fastBackoff}, r.handle)

	ctx, parent := tp.Tracer("messagingtest").Start(t.Context(), "parent")
	f.publishCtx(ctx, pub, messaging.Message{ID: id, Subject: subject, Data: []byte("x")})
	parent.End()
	traceID := parent.SpanContext().TraceID()

	d := r.waitID(t, id)
	if d.Header["traceparent"] == "" {
		t.Errorf("delivery: Header has no traceparent: %v", d.Header)
	}
	var producer, consumer sdktrace.ReadOnlySpan
	waitFor(t, "the producer and consumer spans to end", func() bool {
		producer, consumer = nil, nil
		for _, s := range rec.Ended() {
			if s.SpanContext().TraceID() != traceID {
				continue
			}
			switch s.SpanKind() {
			case trace.SpanKindProducer:
				producer = s
			case trace.SpanKindConsumer:
				consumer = s
			}
		}
		return producer != nil && consumer != nil
	})
	if producer.Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Errorf("producer span %q: parent = %v, want the publishing context's span %v", producer.Name(), producer.Parent().SpanID(), parent.SpanContext().SpanID())
	}
	if consumer.Parent().SpanID() != producer.SpanContext().SpanID() {
		t.Errorf("consumer span %q: parent = %v, want the producer span %v", consumer.Name(), consumer.Parent().SpanID(), producer.SpanContext().SpanID())
	}
	hs, _ := handlerSpan.Load().(trace.SpanContext)
	if hs.TraceID() != traceID || hs.SpanID() != consumer.SpanContext().SpanID() {
		t.Errorf("handler's context span = %v/%v, want the consumer span %v/%v", hs.TraceID(), hs.SpanID(), traceID, consumer.SpanContext().SpanID())
	}
}

func (f *fixture) publishCtx(ctx context.Context, p messaging.Publisher, msgs ...messaging.Message) {
	f.t.Helper()
	if err := p.Publish(ctx, msgs...); err != nil {
		f.t.Fatalf("Publish(%d messages) = %v, want nil", len(msgs), err)
	}
}

// checkKeyOrdering publishes interleaved messages of many keys, in
// batches and one by one, and checks that one subscriber gets each key's
// messages in publish order.
func checkKeyOrdering(t *testing.T, h Harness) {
	const keys, perKey = 16, 24
	f := newFixture(t, h)
	subject := f.subject()
	pub := f.publisher()
	var all []messaging.Message
	for n := range perKey {
		for k := range keys {
			all = append(all, messaging.Message{
				ID: f.id("k%d-%d", k, n), Subject: subject, Key: fmt.Sprintf("key-%d", k),
				Data: fmt.Appendf(nil, "%d", n),
			})
		}
	}
	// Half in batches of 8, half one by one.
	half := len(all) / 2
	for i := 0; i < half; i += 8 {
		f.publish(pub, all[i:min(i+8, half)]...)
	}
	for _, m := range all[half:] {
		f.publish(pub, m)
	}

	rec := &recorder{name: "the subscriber"}
	f.subscribe(f.subscriber(), messaging.SubscribeConfig{Subject: subject, Group: f.group("order"), Backoff: fastBackoff}, rec.handle)
	waitFor(t, fmt.Sprintf("%d messages", len(all)), func() bool { return distinct(rec.deliveries()) >= len(all) })

	// First deliveries of each key, in the order handled.
	seen := map[string]bool{}
	order := map[string][]string{}
	for _, d := range rec.deliveries() {
		if seen[d.ID] {
			continue
		}
		seen[d.ID] = true
		order[d.Key] = append(order[d.Key], string(d.Data))
	}
	for k := range keys {
		key := fmt.Sprintf("key-%d", k)
		want := make([]string, perKey)
		for n := range want {
			want[n] = fmt.Sprint(n)
		}
		if !slices.Equal(order[key], want) {
			t.Errorf("messages of %q handled in order %v, want %v", key, order[key], want)
		}
	}
}

// distinct counts the distinct IDs of ds.
func distinct(ds []messaging.Delivery) int {
	ids := map[string]bool{}
	for _, d := range ds {
		ids[d.ID] = true
	}
	return len(ids)
}

// checkOrderingAcrossRedelivery checks that a key's next message is not
// handled before the one before it is acknowledged or dead-lettered, when
// handlers fail, are redelivered, and are dead-lettered.
func checkOrderingAcrossRedelivery(t *testing.T, h Harness) {
	f := newFixture(t, h)
	subject := f.subject()
	group := f.group("redeliver")
	const n = 6
	// Message 1 fails twice and then succeeds; 3 fails permanently; 4
	// always fails and is dead-lettered after MaxDeliveries (3).
	wantAttempts := [n][]int{{1}, {1, 2, 3}, {1}, {1}, {1, 2, 3}, {1}}
	msgs := make([]messaging.Message, n)
	for i := range msgs {
		msgs[i] = messaging.Message{ID: f.id("m%d", i), Subject: subject, Key: "k", Data: fmt.Appendf(nil, "%d", i)}
	}

	type event struct{ seq, attempt int }
	var (
		mu       sync.Mutex
		events   []event
		running  atomic.Int32
		overlaps atomic.Int32
	)
	rec := &recorder{name: "the subscriber", fn: func(ctx context.Context, d messaging.Delivery) error {
		if running.Add(1) > 1 {
			overlaps.Add(1)
		}
		defer running.Add(-1)
		var seq int
		fmt.Sscan(string(d.Data), &seq)
		mu.Lock()
		events = append(events, event{seq, d.Attempt})
		mu.Unlock()
		switch {
		case seq == 1 && d.Attempt < 3:
			return errors.New("fails before the third attempt")
		case seq == 3:
			return messaging.Permanent(errors.New("cannot be handled"))
		case seq == 4:
			return errors.New("always fails")
		}
		return nil
	}}
	f.subscribe(f.subscriber(), messaging.SubscribeConfig{Subject: subject, Group: group, MaxDeliveries: 3, Backoff: fastBackoff}, rec.handle)
	f.publish(f.publisher(), msgs...)
	rec.waitID(t, msgs[n-1].ID)

	mu.Lock()
	got := append([]event(nil), events...)
	mu.Unlock()
	if overlaps.Load() > 0 {
		t.Errorf("handlers of key %q ran concurrently %d times, want one at a time", "k", overlaps.Load())
	}
	var attempts [n][]int
	for i, e := range got {
		if i > 0 && e.seq < got[i-1].seq {
			t.Errorf("message %d (attempt %d) handled after message %d: deliveries %v", e.seq, e.attempt, got[i-1].seq, got)
		}
		attempts[e.seq] = append(attempts[e.seq], e.attempt)
	}
	for i := range n {
		if !slices.Equal(attempts[i], wantAttempts[i]) {
			t.Errorf("message %d delivered with attempts %v, want %v", i, attempts[i], wantAttempts[i])
		}
	}

	dlq := &recorder{name: "the dead-letter subscriber"}
	f.subscribe(f.subscriber(), messaging.SubscribeConfig{Subject: messaging.DeadLetterSubject(subject, group), Group: f.group("dlq"), Backoff: fastBackoff}, dlq.handle)
	dlq.waitID(t, msgs[3].ID)
	dlq.waitID(t, msgs[4].ID)
	for _, d := range dlq.deliveries() {
		if d.ID != msgs[3].ID && d.ID != msgs[4].ID {
			t.Errorf("dead letter %q (data %q), want only messages 3 and 4", d.ID, d.Data)
		}
	}
}

// checkAtLeastOnceAfterCrash closes a subscriber while its handler holds a
// message it has not acknowledged, and checks that Close waited for the
// handler and that a new subscriber in the group gets the message.
func checkAtLeastOnceAfterCrash(t *testing.T, h Harness) {
	f := newFixture(t, h)
	subject := f.subject()
	group := f.group("crash")
	m := messaging.Message{ID: f.id("crash"), Subject: subject, Key: "k", Header: map[string]string{"X-A": "1"}, Data: []byte("payload")}

	started := make(chan struct{})
	var once sync.Once
	var returned atomic.Bool
	first := f.h.NewSubscriber(t)
	if first == nil {
		t.Fatal("Harness.NewSubscriber returned nil")
	}
	_, err := first.Subscribe(t.Context(), messaging.SubscribeConfig{Subject: subject, Group: group, Backoff: fastBackoff},
		func(ctx context.Context, d messaging.Delivery) error {
			defer returned.Store(true)
			once.Do(func() { close(started) })
			<-ctx.Done()
			return ctx.Err()
		})
	if err != nil {
		first.Close()
		t.Fatalf("Subscribe = %v, want nil", err)
	}
	f.publish(f.publisher(), m)
	select {
	case <-started:
	case <-time.After(Timeout):
		closeWithin(t, "Subscriber.Close", first.Close)
		t.Fatalf("the first subscriber's handler was not called within %v", Timeout)
	}
	closeWithin(t, "Subscriber.Close", first.Close)
	if !returned.Load() {
		t.Errorf("Subscriber.Close returned before the running handler returned")
	}

	rec := &recorder{name: "the second subscriber"}
	f.subscribe(f.subscriber(), messaging.SubscribeConfig{Subject: subject, Group: group, Backoff: fastBackoff}, rec.handle)
	d := rec.waitID(t, m.ID)
	checkSame(t, "redelivery after the crash", d.Message, m)
	if d.Attempt < 1 {
		t.Errorf("redelivery after the crash: Attempt = %d, want >= 1", d.Attempt)
	}
}

// checkGroups checks that two members of a group share its messages, and
// that another group gets every message.
func checkGroups(t *testing.T, h Harness) {
	const n = 64
	f := newFixture(t, h)
	subject := f.subject()
	shared := f.group("shared")
	a := &recorder{name: "member A"}
	b := &recorder{name: "member B"}
	other := &recorder{name: "the other group"}
	cfg := messaging.SubscribeConfig{Subject: subject, Group: shared, Backoff: fastBackoff}
	f.subscribe(f.subscriber(), cfg, a.handle)
	f.subscribe(f.subscriber(), cfg, b.handle)
	f.subscribe(f.subscriber(), messaging.SubscribeConfig{Subject: subject, Group: f.group("other"), Backoff: fastBackoff}, other.handle)

	msgs := make([]messaging.Message, n)
	for i := range msgs {
		msgs[i] = messaging.Message{ID: f.id("g%d", i), Subject: subject, Key: fmt.Sprintf("key-%d", i%8), Data: fmt.Appendf(nil, "%d", i)}
	}
	f.publish(f.publisher(), msgs...)

	waitFor(t, "every message in the shared group", func() bool {
		return distinct(append(a.deliveries(), b.deliveries()...)) >= n
	})
	waitFor(t, "every message in the other group", func() bool { return distinct(other.deliveries()) >= n })
	both := 0
	for _, m := range msgs {
		if a.has(m.ID) && b.has(m.ID) {
			both++
		}
	}
	// Redelivery after a rebalance may give a few messages to both; a
	// transport that gives every message to every member fails.
	if both > n/4 {
		t.Errorf("%d of %d messages were delivered to both members of group %q, want each to one member", both, n, shared)
	}
	t.Logf("member A handled %d messages, member B %d, %d both", distinct(a.deliveries()), distinct(b.deliveries()), both)
}

// checkRedelivery checks that a failed message is delivered again, intact,
// with Attempt counting up, and not after it succeeded.
func checkRedelivery(t *testing.T, h Harness) {
	f := newFixture(t, h)
	subject := f.subject()
	m := messaging.Message{ID: f.id("retry"), Subject: subject, Key: "k", Header: map[string]string{"X-A": "1"}, Data: []byte("payload")}
	after := messaging.Message{ID: f.id("after"), Subject: subject, Key: "k", Data: []byte("after")}
	rec := &recorder{name: "the subscriber", fn: func(ctx context.Context, d messaging.Delivery) error {
		if d.ID == m.ID && d.Attempt < 3 {
			return fmt.Errorf("attempt %d fails", d.Attempt)
		}
		return nil
	}}
	f.subscribe(f.subscriber(), messaging.SubscribeConfig{Subject: subject, Group: f.group("retry"), MaxDeliveries: 5, Backoff: fastBackoff}, rec.handle)
	f.publish(f.publisher(), m, after)
	rec.waitID(t, after.ID)

	var attempts []int
	for _, d := range rec.ofID(m.ID) {
		checkSame(t, fmt.Sprintf("attempt %d", d.Attempt), d.Message, m)
		attempts = append(attempts, d.Attempt)
	}
	if want := []int{1, 2, 3}; !slices.Equal(attempts, want) {
		t.Errorf("message delivered with attempts %v, want %v", attempts, want)
	}
}

// checkDeadLetter checks a dead letter against the message it came from.
func checkDeadLetter(t *testing.T, dl messaging.Delivery, orig messaging.Message, deadLetterSubject, group string, deliveries int, reason string) {
	t.Helper()
	want := orig
	want.Subject = deadLetterSubject
	checkSame(t, "dead letter", dl.Message, want)
	for k, v := range map[string]string{
		messaging.HeaderOriginalSubject: orig.Subject,
		messaging.HeaderDeliveries:      fmt.Sprint(deliveries),
		messaging.HeaderGroup:           group,
	} {
		if dl.Header[k] != v {
			t.Errorf("dead letter: Header[%q] = %q, want %q", k, dl.Header[k], v)
		}
	}
	if r := dl.Header[messaging.HeaderDeadLetterReason]; !strings.Contains(r, reason) {
		t.Errorf("dead letter: Header[%q] = %q, want it to contain %q", messaging.HeaderDeadLetterReason, r, reason)
	}
}

// checkDeadLetterAfterMax checks that a message that always fails is
// delivered MaxDeliveries times and then dead-lettered to the default
// dead-letter subject.
func checkDeadLetterAfterMax(t *testing.T, h Harness) {
	f := newFixture(t, h)
	subject := f.subject()
	group := f.group("dl")
	m := messaging.Message{ID: f.id("poison"), Subject: subject, Key: "k", Header: map[string]string{"X-A": "1"}, Data: []byte("poison")}
	rec := &recorder{name: "the subscriber", fn: func(ctx context.Context, d messaging.Delivery) error {
		return fmt.Errorf("boom on attempt %d", d.Attempt)
	}}
	f.subscribe(f.subscriber(), messaging.SubscribeConfig{Subject: subject, Group: group, MaxDeliveries: 3, Backoff: fastBackoff}, rec.handle)
	dlq := &recorder{name: "the dead-letter subscriber"}
	dlSubject := messaging.DeadLetterSubject(subject, group)
	f.subscribe(f.subscriber(), messaging.SubscribeConfig{Subject: dlSubject, Group: f.group("dlq"), Backoff: fastBackoff}, dlq.handle)
	f.publish(f.publisher(), m)

	dl := dlq.waitID(t, m.ID)
	checkDeadLetter(t, dl, m, dlSubject, group, 3, "boom on attempt 3")
	var attempts []int
	for _, d := range rec.ofID(m.ID) {
		attempts = append(attempts, d.Attempt)
	}
	if want := []int{1, 2, 3}; !slices.Equal(attempts, want) {
		t.Errorf("message delivered with attempts %v before it was dead-lettered, want %v", attempts, want)
	}
}

// checkDeadLetterPermanent checks that a message whose handler returns a
// permanent error goes at once to the configured dead-letter subject.
func checkDeadLetterPermanent(t *testing.T, h Harness) {
	f := newFixture(t, h)
	subject := f.subject()
	dlSubject := f.subject()
	group := f.group("perm")
	m := messaging.Message{ID: f.id("undecodable"), Subject: subject, Data: []byte("{not json")}
	rec := &recorder{name: "the subscriber", fn: func(ctx context.Context, d messaging.Delivery) error {
		return messaging.Permanent(errors.New("cannot decode"))
	}}
	f.subscribe(f.subscriber(), messaging.SubscribeConfig{Subject: subject, Group: group, DeadLetterSubject: dlSubject, Backoff: fastBackoff}, rec.handle)
	dlq := &recorder{name: "the dead-letter subscriber"}
	f.subscribe(f.subscriber(), messaging.SubscribeConfig{Subject: dlSubject, Group: f.group("dlq"), Backoff: fastBackoff}, dlq.handle)
	f.publish(f.publisher(), m)

	dl := dlq.waitID(t, m.ID)
	checkDeadLetter(t, dl, m, dlSubject, group, 1, "cannot decode")
	if got := len(rec.ofID(m.ID)); got != 1 {
		t.Errorf("message delivered %d times before it was dead-lettered, want 1", got)
	}
}

// checkInvalidMessage checks that Publish refuses a call with an invalid
// message before it sends anything.
func checkInvalidMessage(t *testing.T, h Harness) {
	f := newFixture(t, h)
	subject := f.subject()
	pub := f.publisher()
	type tc struct {
		name string
		m    messaging.Message
	}
	cases := []tc{
		{"NoID", messaging.Message{Subject: subject, Data: []byte("x")}},
		{"NoSubject", messaging.Message{ID: f.id("nosubject"), Data: []byte("x")}},
	}
	if h.MaxMessageSize > 0 {
		cases = append(cases, tc{"Oversized", messaging.Message{ID: f.id("big"), Subject: subject, Data: make([]byte, h.MaxMessageSize+1)}})
	}
	var refused []string
	for _, c := range cases {
		before := messaging.Message{ID: f.id("before-%s", c.name), Subject: subject, Data: []byte("must not be sent")}
		refused = append(refused, before.ID)
		err := pub.Publish(t.Context(), before, c.m)
		if !errors.Is(err, messaging.ErrInvalidMessage) {
			t.Errorf("Publish(valid, %s) = %v, want an error wrapping ErrInvalidMessage", c.name, err)
		}
	}
	// Messages without a key are ordered: when the sentinel arrives, a
	// message of a refused call would have arrived before it.
	sentinel := messaging.Message{ID: f.id("sentinel"), Subject: subject, Data: []byte("sentinel")}
	f.publish(pub, sentinel)
	rec := &recorder{name: "the subscriber"}
	f.subscribe(f.subscriber(), messaging.SubscribeConfig{Subject: subject, Group: f.group("inv"), Backoff: fastBackoff}, rec.handle)
	rec.waitID(t, sentinel.ID)
	for _, id := range refused {
		if rec.has(id) {
			t.Errorf("message %q of a refused Publish call was delivered", id)
		}
	}
}

// checkInvalidConfig checks that Subscribe refuses wrong configurations.
func checkInvalidConfig(t *testing.T, h Harness) {
	f := newFixture(t, h)
	subject := f.subject()
	sub := f.subscriber()
	for _, c := range []struct {
		name string
		cfg  messaging.SubscribeConfig
	}{
		{"Empty", messaging.SubscribeConfig{}},
		{"NoSubject", messaging.SubscribeConfig{Group: "g"}},
		{"NoGroup", messaging.SubscribeConfig{Subject: subject}},
		{"NegativeMaxDeliveries", messaging.SubscribeConfig{Subject: subject, Group: "g", MaxDeliveries: -1}},
		{"DeadLetterToItself", messaging.SubscribeConfig{Subject: subject, Group: "g", DeadLetterSubject: subject}},
	} {
		s, err := sub.Subscribe(t.Context(), c.cfg, func(context.Context, messaging.Delivery) error { return nil })
		if !errors.Is(err, messaging.ErrInvalidConfig) {
			t.Errorf("Subscribe(%s) = %v, want an error wrapping ErrInvalidConfig", c.name, err)
		}
		if s != nil {
			t.Errorf("Subscribe(%s) returned a Subscription with its error", c.name)
			s.Close()
		}
	}
}

// checkClosed checks that a closed publisher or subscriber says
// ErrClosed, and that a subscriber's Close closes its subscriptions.
func checkClosed(t *testing.T, h Harness) {
	f := newFixture(t, h)
	subject := f.subject()
	pub := f.publisher()
	if err := pub.Close(); err != nil {
		t.Errorf("Publisher.Close() = %v, want nil", err)
	}
	err := pub.Publish(t.Context(), messaging.Message{ID: f.id("late"), Subject: subject})
	if !errors.Is(err, messaging.ErrClosed) {
		t.Errorf("Publish after Close = %v, want an error wrapping ErrClosed", err)
	}

	sub := f.subscriber()
	_, err = sub.Subscribe(t.Context(), messaging.SubscribeConfig{Subject: subject, Group: f.group("open"), Backoff: fastBackoff},
		func(context.Context, messaging.Delivery) error { return nil })
	if err != nil {
		t.Fatalf("Subscribe = %v, want nil", err)
	}
	closeWithin(t, "Subscriber.Close", sub.Close)
	s, err := sub.Subscribe(t.Context(), messaging.SubscribeConfig{Subject: subject, Group: f.group("late"), Backoff: fastBackoff},
		func(context.Context, messaging.Delivery) error { return nil })
	if !errors.Is(err, messaging.ErrClosed) {
		t.Errorf("Subscribe after Close = %v, want an error wrapping ErrClosed", err)
	}
	if s != nil {
		s.Close()
	}
}

// checkNoGoroutineLeak publishes and consumes, ends subscriptions every
// way there is (Subscription.Close, the end of Subscribe's context,
// Subscriber.Close), closes everything, and checks that no goroutine
// started meanwhile is left.
func checkNoGoroutineLeak(t *testing.T, h Harness) {
	ignore := goleak.IgnoreCurrent()
	t.Run("Work", func(t *testing.T) {
		f := newFixture(t, h)
		subject := f.subject()
		pub := f.publisher()
		s := f.h.NewSubscriber(t)
		if s == nil {
			t.Fatal("Harness.NewSubscriber returned nil")
		}
		defer closeWithin(t, "Subscriber.Close", s.Close)
		rec := &recorder{name: "the subscribers", fn: func(ctx context.Context, d messaging.Delivery) error {
			if d.Attempt == 1 && strings.HasSuffix(d.ID, "-1") {
				return errors.New("fails once")
			}
			return nil
		}}
		cfg := messaging.SubscribeConfig{Subject: subject, Group: f.group("a"), Backoff: fastBackoff}
		closed, err := s.Subscribe(t.Context(), cfg, rec.handle)
		if err != nil {
			t.Fatalf("Subscribe = %v, want nil", err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		if _, err := s.Subscribe(ctx, messaging.SubscribeConfig{Subject: subject, Group: f.group("b"), Backoff: fastBackoff}, rec.handle); err != nil {
			t.Fatalf("Subscribe = %v, want nil", err)
		}
		if _, err := s.Subscribe(t.Context(), messaging.SubscribeConfig{Subject: subject, Group: f.group("c"), Backoff: fastBackoff}, rec.handle); err != nil {
			t.Fatalf("Subscribe = %v, want nil", err)
		}
		for i := range 4 {
			f.publish(pub, messaging.Message{ID: f.id("%d", i), Subject: subject, Key: "k"})
		}
		waitFor(t, "12 messages handled", func() bool {
			n := 0
			for _, d := range rec.deliveries() {
				if d.Attempt > 1 || !strings.HasSuffix(d.ID, "-1") {
					n++
				}
			}
			return n >= 12
		})
		closeWithin(t, "Subscription.Close", closed.Close)
		cancel()
	})
	if t.Failed() {
		return
	}
	goleak.VerifyNone(t, ignore)
}
