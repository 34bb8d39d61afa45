package messaging_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/messaging"
)

func TestNormalize(t *testing.T) {
	backoff := func(int) time.Duration { return time.Second }
	for _, tc := range []struct {
		name    string
		in      messaging.SubscribeConfig
		wantErr string // empty: no error
		wantMax int
		wantDLQ string
	}{
		{name: "Defaults", in: messaging.SubscribeConfig{Subject: "orders", Group: "billing"}, wantMax: messaging.DefaultMaxDeliveries, wantDLQ: "dlq.billing.orders"},
		{name: "Set", in: messaging.SubscribeConfig{Subject: "orders", Group: "billing", MaxDeliveries: 2, DeadLetterSubject: "dead", Backoff: backoff}, wantMax: 2, wantDLQ: "dead"},
		{name: "NoSubject", in: messaging.SubscribeConfig{Group: "billing"}, wantErr: "subject is empty"},
		{name: "NoGroup", in: messaging.SubscribeConfig{Subject: "orders"}, wantErr: "group is empty"},
		{name: "NegativeMax", in: messaging.SubscribeConfig{Subject: "orders", Group: "g", MaxDeliveries: -1}, wantErr: "max deliveries -1 is negative"},
		{name: "DLQIsSubject", in: messaging.SubscribeConfig{Subject: "orders", Group: "g", DeadLetterSubject: "orders"}, wantErr: "dead-letter subject is the subject itself"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.in.Normalize()
			if tc.wantErr != "" {
				if !errors.Is(err, messaging.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Normalize() error = %v, want ErrInvalidConfig saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Normalize() error = %v, want nil", err)
			}
			if got.MaxDeliveries != tc.wantMax || got.DeadLetterSubject != tc.wantDLQ || got.Backoff == nil {
				t.Errorf("Normalize() = MaxDeliveries %d, DeadLetterSubject %q, Backoff set %v; want %d, %q, true",
					got.MaxDeliveries, got.DeadLetterSubject, got.Backoff != nil, tc.wantMax, tc.wantDLQ)
			}
			if tc.in.Backoff != nil && got.Backoff(1) != time.Second {
				t.Errorf("Normalize() replaced the Backoff that was set")
			}
			if tc.in.Backoff == nil && got.Backoff(1) != messaging.DefaultBackoff(1) {
				t.Errorf("Normalize().Backoff(1) = %v, want DefaultBackoff's %v", got.Backoff(1), messaging.DefaultBackoff(1))
			}
		})
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		m       messaging.Message
		max     int
		wantErr string
	}{
		{name: "OK", m: messaging.Message{ID: "1", Subject: "s", Data: []byte("x")}},
		{name: "NoID", m: messaging.Message{Subject: "s"}, wantErr: `message to "s" has no ID`},
		{name: "NoSubject", m: messaging.Message{ID: "1"}, wantErr: `message "1" has no subject`},
		{name: "AtLimit", m: messaging.Message{ID: "1", Subject: "s", Header: map[string]string{"ab": "cd"}, Data: []byte("123456")}, max: 10},
		{name: "OverLimit", m: messaging.Message{ID: "1", Subject: "s", Header: map[string]string{"ab": "cd"}, Data: []byte("1234567")}, max: 10, wantErr: "is 11 bytes, more than the transport's limit of 10"},
		{name: "NoLimit", m: messaging.Message{ID: "1", Subject: "s", Data: make([]byte, 1<<20)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := messaging.Validate(tc.m, tc.max)
			if tc.wantErr == "" {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, messaging.ErrInvalidMessage) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Validate() = %v, want ErrInvalidMessage saying %q", err, tc.wantErr)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	cfg := messaging.SubscribeConfig{MaxDeliveries: 3}
	boom := errors.New("boom")
	for _, tc := range []struct {
		err     error
		attempt int
		want    messaging.Outcome
	}{
		{nil, 1, messaging.Ack},
		{nil, 3, messaging.Ack},
		{boom, 1, messaging.Redeliver},
		{boom, 2, messaging.Redeliver},
		{boom, 3, messaging.DeadLetterIt},
		{boom, 4, messaging.DeadLetterIt},
		{messaging.Permanent(boom), 1, messaging.DeadLetterIt},
		{fmt.Errorf("decode: %w", messaging.Permanent(boom)), 1, messaging.DeadLetterIt},
	} {
		if got := messaging.Decide(tc.err, tc.attempt, cfg); got != tc.want {
			t.Errorf("Decide(%v, %d, max 3) = %v, want %v", tc.err, tc.attempt, got, tc.want)
		}
	}
}

func TestOutcomeString(t *testing.T) {
	for o, want := range map[messaging.Outcome]string{
		messaging.Ack: "ack", messaging.Redeliver: "redeliver", messaging.DeadLetterIt: "dead_letter", 7: "Outcome(7)",
	} {
		if got := o.String(); got != want {
			t.Errorf("Outcome(%d).String() = %q, want %q", int(o), got, want)
		}
	}
}

func TestPermanent(t *testing.T) {
	if messaging.Permanent(nil) != nil {
		t.Errorf("Permanent(nil) != nil")
	}
	boom := errors.New("boom")
	p := messaging.Permanent(boom)
	if !errors.Is(p, boom) || p.Error() != "boom" {
		t.Errorf("Permanent(boom) = %v, want an error that is boom and says %q", p, "boom")
	}
	if !messaging.IsPermanent(fmt.Errorf("wrapped: %w", p)) {
		t.Errorf("IsPermanent(wrapped Permanent) = false, want true")
	}
	if messaging.IsPermanent(boom) || messaging.IsPermanent(nil) {
		t.Errorf("IsPermanent(plain error or nil) = true, want false")
	}
}

func TestDefaultBackoff(t *testing.T) {
	for attempt, want := range map[int]time.Duration{
		0: 100 * time.Millisecond, 1: 100 * time.Millisecond, 2: 200 * time.Millisecond,
		3: 400 * time.Millisecond, 6: 3200 * time.Millisecond, 7: 5 * time.Second, 100: 5 * time.Second,
	} {
		if got := messaging.DefaultBackoff(attempt); got != want {
			t.Errorf("DefaultBackoff(%d) = %v, want %v", attempt, got, want)
		}
	}
}

func TestDeadLetter(t *testing.T) {
	d := messaging.Delivery{
		Message: messaging.Message{ID: "m1", Subject: "orders", Key: "k", Header: map[string]string{"X-A": "1"}, Data: []byte("data")},
		Attempt: 3,
		Group:   "billing",
	}
	cfg, err := messaging.SubscribeConfig{Subject: "orders", Group: "billing"}.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	dl := messaging.DeadLetter(d, cfg, errors.New("boom"))
	if dl.ID != "m1" || dl.Subject != "dlq.billing.orders" || dl.Key != "k" || string(dl.Data) != "data" {
		t.Errorf("DeadLetter() = %+v, want m1 to dlq.billing.orders with key k and data", dl)
	}
	for k, want := range map[string]string{
		"X-A":                            "1",
		messaging.HeaderDeadLetterReason: "boom",
		messaging.HeaderOriginalSubject:  "orders",
		messaging.HeaderDeliveries:       "3",
		messaging.HeaderGroup:            "billing",
	} {
		if got := dl.Header[k]; got != want {
			t.Errorf("DeadLetter().Header[%q] = %q, want %q", k, got, want)
		}
	}
	if len(d.Header) != 1 {
		t.Errorf("DeadLetter changed the delivery's headers: %v", d.Header)
	}
	long := messaging.DeadLetter(d, cfg, errors.New(strings.Repeat("x", 5000)))
	if n := len(long.Header[messaging.HeaderDeadLetterReason]); n != 1024 {
		t.Errorf("reason of a 5000-byte error is %d bytes, want 1024", n)
	}
	if got := messaging.DeadLetter(d, cfg, nil).Header[messaging.HeaderDeadLetterReason]; got != "unknown" {
		t.Errorf("reason of a nil error = %q, want %q", got, "unknown")
	}
}

func TestTraceContextRoundTrip(t *testing.T) {
	traceID, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	spanID, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ts, _ := trace.ParseTraceState("vendor=x")
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled, TraceState: ts})
	member, _ := baggage.NewMember("tenant", "acme")
	bag, _ := baggage.New(member)
	ctx := baggage.ContextWithBaggage(trace.ContextWithSpanContext(context.Background(), sc), bag)

	h := messaging.InjectTraceContext(ctx, nil)
	if want := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"; h["traceparent"] != want {
		t.Errorf("traceparent = %q, want %q", h["traceparent"], want)
	}
	if h["tracestate"] != "vendor=x" {
		t.Errorf("tracestate = %q, want %q", h["tracestate"], "vendor=x")
	}

	got := messaging.ExtractTraceContext(context.Background(), h)
	gsc := trace.SpanContextFromContext(got)
	if gsc.TraceID() != traceID || gsc.SpanID() != spanID || !gsc.IsSampled() || !gsc.IsRemote() || gsc.TraceState().String() != "vendor=x" {
		t.Errorf("extracted span context = %+v, want %+v, remote", gsc, sc)
	}
	if v := baggage.FromContext(got).Member("tenant").Value(); v != "acme" {
		t.Errorf("extracted baggage tenant = %q, want %q", v, "acme")
	}

	// An existing map is written to, and kept.
	h2 := map[string]string{"X-A": "1"}
	if out := messaging.InjectTraceContext(ctx, h2); out["X-A"] != "1" || h2["traceparent"] == "" {
		t.Errorf("InjectTraceContext(ctx, existing) = %v, want the existing map with traceparent added", out)
	}
	// No trace context: nothing extracted.
	if sc := trace.SpanContextFromContext(messaging.ExtractTraceContext(context.Background(), map[string]string{})); sc.IsValid() {
		t.Errorf("ExtractTraceContext(empty) = %v, want no span context", sc)
	}
}
