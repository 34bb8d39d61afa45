package natsjs_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/cairnhq/cairn/internal/natstest"
	"github.com/cairnhq/cairn/messaging"
	"github.com/cairnhq/cairn/messaging/natsjs"
)

// backends runs f against an embedded server and against the machine's
// NATS server.
func backends(t *testing.T, f func(t *testing.T, js jetstream.JetStream)) {
	t.Run("embedded", func(t *testing.T) {
		_, js := embedded(t)
		f(t, js)
	})
	t.Run("machine", func(t *testing.T) { f(t, machine(t)) })
}

const wait = 20 * time.Second

func fast(int) time.Duration { return 10 * time.Millisecond }

func TestRoundTrip(t *testing.T) {
	backends(t, func(t *testing.T, js jetstream.JetStream) {
		subj := subject(t, js)
		sr := tracetest.NewSpanRecorder()
		o := testOpts
		o.TracerProvider = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
		p := natsjs.NewPublisher(js, o)
		defer p.Close()
		s := natsjs.NewSubscriber(js, o)
		defer s.Close()
		var r recorder
		mustSubscribe(t, s, messaging.SubscribeConfig{Subject: subj, Group: "g"}, r.handle)
		in := messaging.Message{ID: "id-1", Subject: subj, Key: "order-7", Header: map[string]string{"Content-Type": "application/json", "x-lower": "v", "Empty": ""}, Data: []byte(`{"a":1}`)}
		if err := p.Publish(t.Context(), in); err != nil {
			t.Fatalf("Publish = %v", err)
		}
		waitFor(t, wait, "delivery", func() bool { return r.count() > 0 })
		d := r.deliveries()[0]
		if d.Attempt != 1 || d.Group != "g" {
			t.Errorf("Attempt, Group = %d, %q, want 1, %q", d.Attempt, d.Group, "g")
		}
		if d.Header["traceparent"] == "" {
			t.Errorf("no traceparent header in %v", d.Header)
		}
		got := d.Message
		got.Header = maps.Clone(got.Header)
		delete(got.Header, "traceparent")
		delete(got.Header, "tracestate")
		if diff := cmp.Diff(in, got); diff != "" {
			t.Errorf("delivered message differs (-published +delivered):\n%s", diff)
		}
		var send, process sdktrace.ReadOnlySpan
		waitFor(t, wait, "the process span to end", func() bool {
			for _, sp := range sr.Ended() {
				switch sp.Name() {
				case "send " + subj:
					send = sp
				case "process " + subj:
					process = sp
				}
			}
			return send != nil && process != nil
		})
		if process.Parent().SpanID() != send.SpanContext().SpanID() || process.SpanContext().TraceID() != send.SpanContext().TraceID() {
			t.Errorf("process span's parent = %v, want the send span %v", process.Parent(), send.SpanContext())
		}
	})
}

func TestKeyOrderingAndRedelivery(t *testing.T) {
	backends(t, func(t *testing.T, js jetstream.JetStream) {
		subj := subject(t, js)
		p := natsjs.NewPublisher(js, testOpts)
		defer p.Close()
		s := natsjs.NewSubscriber(js, testOpts)
		defer s.Close()
		const keys, per = 5, 20
		var msgs []messaging.Message
		for i := range per {
			for k := range keys {
				msgs = append(msgs, msg(subj, fmt.Sprint("k", k), i))
			}
		}
		// The first message of k0 fails twice: k0's second message must
		// wait for it.
		failing := msgs[0].ID
		r := recorder{fn: func(_ context.Context, d messaging.Delivery) error {
			if d.ID == failing && d.Attempt < 3 {
				return errors.New("transient")
			}
			return nil
		}}
		mustSubscribe(t, s, messaging.SubscribeConfig{Subject: subj, Group: "g", Backoff: fast}, r.handle)
		if err := p.Publish(t.Context(), msgs...); err != nil {
			t.Fatalf("Publish = %v", err)
		}
		waitFor(t, wait, "every message", func() bool { return r.count() >= len(msgs)+2 })
		seen := map[string][]int{}
		var attempts []int
		for _, d := range r.deliveries() {
			if d.ID == failing {
				attempts = append(attempts, d.Attempt)
			}
			if d.ID == failing && d.Attempt < 3 {
				continue
			}
			var i int
			fmt.Sscan(string(d.Data), &i)
			seen[d.Key] = append(seen[d.Key], i)
		}
		if want := []int{1, 2, 3}; !slices.Equal(attempts, want) {
			t.Errorf("attempts of %s = %v, want %v", failing, attempts, want)
		}
		for k := range keys {
			key := fmt.Sprint("k", k)
			want := make([]int, per)
			for i := range want {
				want[i] = i
			}
			if !slices.Equal(seen[key], want) {
				t.Errorf("key %s delivered %v, want %v", key, seen[key], want)
			}
		}
	})
}

func TestDeadLetter(t *testing.T) {
	backends(t, func(t *testing.T, js jetstream.JetStream) {
		subj := subject(t, js)
		p := natsjs.NewPublisher(js, testOpts)
		defer p.Close()
		s := natsjs.NewSubscriber(js, testOpts)
		defer s.Close()
		r := recorder{fn: func(_ context.Context, d messaging.Delivery) error {
			if d.Key == "permanent" {
				return messaging.Permanent(errors.New("cannot decode"))
			}
			return errors.New("always fails")
		}}
		// Two groups dead-letter the same message into one stream: both
		// dead letters must be stored.
		var dlq recorder
		for _, g := range []string{"g1", "g2"} {
			mustSubscribe(t, s, messaging.SubscribeConfig{Subject: subj, Group: g, MaxDeliveries: 3, Backoff: fast}, r.handle)
			mustSubscribe(t, s, messaging.SubscribeConfig{Subject: messaging.DeadLetterSubject(subj, g), Group: "dlq-reader"}, dlq.handle)
		}
		if err := p.Publish(t.Context(), msg(subj, "retry", 1), msg(subj, "permanent", 1)); err != nil {
			t.Fatalf("Publish = %v", err)
		}
		waitFor(t, wait, "4 dead letters", func() bool { return dlq.count() >= 4 })
		byID := map[string]int{}
		for _, d := range dlq.deliveries() {
			byID[d.ID+"/"+d.Header[messaging.HeaderGroup]]++
			wantN := "3"
			if d.Key == "permanent" {
				wantN = "1"
			}
			if d.Header[messaging.HeaderDeliveries] != wantN || d.Header[messaging.HeaderOriginalSubject] != subj || d.Header[messaging.HeaderDeadLetterReason] == "" {
				t.Errorf("dead letter %s headers = %v, want %s deliveries from %s with a reason", d.ID, d.Header, wantN, subj)
			}
		}
		want := map[string]int{
			subj + "-retry-1/g1": 1, subj + "-retry-1/g2": 1,
			subj + "-permanent-1/g1": 1, subj + "-permanent-1/g2": 1,
		}
		if diff := cmp.Diff(want, byID); diff != "" {
			t.Errorf("dead letters (-want +got):\n%s", diff)
		}
	})
}

// TestCloseHandsBack: closing a subscription whose handler is canceled
// hands the message back at once, well before AckWait.
func TestCloseHandsBack(t *testing.T) {
	backends(t, func(t *testing.T, js jetstream.JetStream) {
		subj := subject(t, js)
		o := testOpts
		o.AckWait = time.Minute
		p := natsjs.NewPublisher(js, o)
		defer p.Close()
		s1, s2 := natsjs.NewSubscriber(js, o), natsjs.NewSubscriber(js, o)
		defer s2.Close()
		started := make(chan struct{})
		sub1, err := s1.Subscribe(t.Context(), messaging.SubscribeConfig{Subject: subj, Group: "g"}, func(ctx context.Context, d messaging.Delivery) error {
			close(started)
			<-ctx.Done()
			return ctx.Err()
		})
		if err != nil {
			t.Fatalf("Subscribe = %v", err)
		}
		if err := p.Publish(t.Context(), msg(subj, "k", 1)); err != nil {
			t.Fatalf("Publish = %v", err)
		}
		<-started
		if err := sub1.Close(); err != nil {
			t.Fatalf("Subscription.Close = %v", err)
		}
		_ = s1.Close()
		var r recorder
		mustSubscribe(t, s2, messaging.SubscribeConfig{Subject: subj, Group: "g"}, r.handle)
		waitFor(t, 10*time.Second, "redelivery to the second subscriber", func() bool { return r.count() > 0 })
		if d := r.deliveries()[0]; d.Attempt != 2 {
			t.Errorf("Attempt = %d, want 2", d.Attempt)
		}
	})
}

// TestCrashRedeliversAfterAckWait: a consumer whose connection dies
// mid-handler cannot hand the message back; the broker delivers it again
// after AckWait.
func TestCrashRedeliversAfterAckWait(t *testing.T) {
	srv, js := embedded(t)
	subj := subject(t, js)
	p := natsjs.NewPublisher(js, testOpts)
	defer p.Close()

	o := testOpts
	o.AckWait = crashAckWait
	crashJS, err := jetstream.New(natstest.Connect(t, srv.URL()))
	if err != nil {
		t.Fatal(err)
	}
	crashed := natsjs.NewSubscriber(crashJS, o)
	started := make(chan struct{})
	sub, err := crashed.Subscribe(t.Context(), messaging.SubscribeConfig{Subject: subj, Group: "g"}, func(ctx context.Context, d messaging.Delivery) error {
		close(started)
		<-ctx.Done()
		return ctx.Err()
	})
	if err != nil {
		t.Fatalf("Subscribe = %v", err)
	}
	if err := p.Publish(t.Context(), msg(subj, "k", 1)); err != nil {
		t.Fatalf("Publish = %v", err)
	}
	<-started
	crashJS.Conn().Close() // the process dies: no Nak reaches the broker
	_ = sub.Close()

	s := natsjs.NewSubscriber(js, o)
	defer s.Close()
	var r recorder
	mustSubscribe(t, s, messaging.SubscribeConfig{Subject: subj, Group: "g"}, r.handle)
	waitFor(t, wait, "redelivery after AckWait", func() bool { return r.count() > 0 })
	if d := r.deliveries()[0]; d.Attempt != 2 {
		t.Errorf("Attempt = %d, want 2", d.Attempt)
	}
}

// TestLongHandler: a handler running past AckWait is not redelivered,
// thanks to progress heartbeats.
func TestLongHandler(t *testing.T) {
	_, js := embedded(t)
	subj := subject(t, js)
	o := testOpts
	o.AckWait = time.Second
	p := natsjs.NewPublisher(js, o)
	defer p.Close()
	s := natsjs.NewSubscriber(js, o)
	defer s.Close()
	done := make(chan struct{})
	r := recorder{fn: func(ctx context.Context, d messaging.Delivery) error {
		if d.Data[0] == '1' {
			time.Sleep(3 * o.AckWait) // work longer than AckWait
		}
		if d.Data[0] == '2' {
			close(done)
		}
		return nil
	}}
	mustSubscribe(t, s, messaging.SubscribeConfig{Subject: subj, Group: "g"}, r.handle)
	if err := p.Publish(t.Context(), msg(subj, "k", 1), msg(subj, "k", 2)); err != nil {
		t.Fatalf("Publish = %v", err)
	}
	<-done
	var ids []string
	for _, d := range r.deliveries() {
		ids = append(ids, fmt.Sprintf("%s@%d", d.Data, d.Attempt))
	}
	if want := []string{"1@1", "2@1"}; !slices.Equal(ids, want) {
		t.Errorf("deliveries = %v, want %v", ids, want)
	}
}

// TestMessageWithoutID: a message published without Nats-Msg-Id is
// delivered with the ID "<stream>:<sequence>".
func TestMessageWithoutID(t *testing.T) {
	backends(t, func(t *testing.T, js jetstream.JetStream) {
		subj := subject(t, js)
		ack, err := js.Publish(t.Context(), subj, []byte("raw"))
		if err != nil {
			t.Fatalf("raw publish: %v", err)
		}
		s := natsjs.NewSubscriber(js, testOpts)
		defer s.Close()
		var r recorder
		mustSubscribe(t, s, messaging.SubscribeConfig{Subject: subj, Group: "g"}, r.handle)
		waitFor(t, wait, "the raw message", func() bool { return r.count() > 0 })
		if got, want := r.deliveries()[0].ID, fmt.Sprintf("%s:%d", ack.Stream, ack.Sequence); got != want {
			t.Errorf("ID = %q, want %q", got, want)
		}
	})
}

func TestGroups(t *testing.T) {
	backends(t, func(t *testing.T, js jetstream.JetStream) {
		subj := subject(t, js)
		p := natsjs.NewPublisher(js, testOpts)
		defer p.Close()
		var a1, a2, b recorder
		for _, x := range []struct {
			r     *recorder
			group string
		}{{&a1, "a team"}, {&a2, "a team"}, {&b, "b.*>"}} {
			s := natsjs.NewSubscriber(js, testOpts)
			defer s.Close()
			mustSubscribe(t, s, messaging.SubscribeConfig{Subject: subj, Group: x.group, DeadLetterSubject: "dlq.x." + subj}, x.r.handle)
		}
		var msgs []messaging.Message
		for i := range 30 {
			msgs = append(msgs, msg(subj, fmt.Sprint(i%3), i))
		}
		if err := p.Publish(t.Context(), msgs...); err != nil {
			t.Fatalf("Publish = %v", err)
		}
		ids := func(rs ...*recorder) map[string]bool {
			m := map[string]bool{}
			for _, r := range rs {
				for _, d := range r.deliveries() {
					m[d.ID] = true
				}
			}
			return m
		}
		waitFor(t, wait, "both groups to get all", func() bool { return len(ids(&a1, &a2)) == 30 && len(ids(&b)) == 30 })
		firsts := map[string]int{}
		for _, d := range append(a1.deliveries(), a2.deliveries()...) {
			if d.Attempt == 1 {
				firsts[d.ID]++
			}
		}
		for id, n := range firsts {
			if n != 1 {
				t.Errorf("message %s delivered first to %d members of group a, want 1", id, n)
			}
		}
	})
}

func TestInvalid(t *testing.T) {
	_, js := embedded(t)
	subj := subject(t, js)
	p := natsjs.NewPublisher(js, testOpts)
	s := natsjs.NewSubscriber(js, testOpts)
	big := make([]byte, p.MaxMessageSize()+1)
	for _, m := range []messaging.Message{
		{Subject: subj},
		{ID: "x"},
		{ID: "x", Subject: "a.*"},
		{ID: "x", Subject: "a b"},
		{ID: "x", Subject: subj, Data: big},
		{ID: strings.Repeat("x", 600), Subject: subj},
	} {
		if err := p.Publish(t.Context(), msg(subj, "k", 1), m); !errors.Is(err, messaging.ErrInvalidMessage) {
			t.Errorf("Publish(%.40q, %q) = %v, want ErrInvalidMessage", m.ID, m.Subject, err)
		}
	}
	if info, err := js.Stream(t.Context(), "T_"+strings.TrimPrefix(subj, "t.")); err != nil || info.CachedInfo().State.Msgs != 0 {
		t.Errorf("stream after refused publishes: %v messages, err %v; want 0", info.CachedInfo().State.Msgs, err)
	}
	h := func(context.Context, messaging.Delivery) error { return nil }
	for _, tc := range []struct {
		cfg  messaging.SubscribeConfig
		name string // what the error must name
	}{
		{messaging.SubscribeConfig{Group: "g"}, "subject"},
		{messaging.SubscribeConfig{Subject: subj}, "group"},
		{messaging.SubscribeConfig{Subject: "nostream.here", Group: "g"}, `"nostream.here"`},
		{messaging.SubscribeConfig{Subject: subj, Group: "g", DeadLetterSubject: "nowhere.dlq"}, `"nowhere.dlq"`},
		{messaging.SubscribeConfig{Subject: subj, Group: "g", DeadLetterSubject: "dlq.*"}, `"dlq.*"`},
	} {
		_, err := s.Subscribe(t.Context(), tc.cfg, h)
		if !errors.Is(err, messaging.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.name) {
			t.Errorf("Subscribe(%+v) = %v, want ErrInvalidConfig naming %s", tc.cfg, err, tc.name)
		}
	}
	_ = p.Close()
	_ = s.Close()
	if err := p.Publish(t.Context(), msg(subj, "k", 1)); !errors.Is(err, messaging.ErrClosed) {
		t.Errorf("Publish after Close = %v, want ErrClosed", err)
	}
	if _, err := s.Subscribe(t.Context(), messaging.SubscribeConfig{Subject: subj, Group: "g"}, h); !errors.Is(err, messaging.ErrClosed) {
		t.Errorf("Subscribe after Close = %v, want ErrClosed", err)
	}
}

func TestDurableName(t *testing.T) {
	valid := regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	seen := map[string]string{}
	for _, tc := range [][2]string{
		{"orders", "orders.created"},
		{"orders", "orders_created"},
		{"my group", "a.*"},
		{"my group", "a.>"},
		{"x/y\\z", "a.b"},
		{strings.Repeat("long", 50), strings.Repeat("s.", 100) + "x"},
	} {
		n := natsjs.DurableName(tc[0], tc[1])
		if !valid.MatchString(n) || len(n) > 100 {
			t.Errorf("DurableName(%q, %q) = %q: not a valid short durable name", tc[0], tc[1], n)
		}
		if n != natsjs.DurableName(tc[0], tc[1]) {
			t.Errorf("DurableName(%q, %q) is not deterministic", tc[0], tc[1])
		}
		if prev, ok := seen[n]; ok {
			t.Errorf("DurableName(%q, %q) = %q, same as for %s", tc[0], tc[1], n, prev)
		}
		seen[n] = tc[0] + "/" + tc[1]
	}
}
