package outbox

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/messaging"
)

func sampleEvent() eventstore.RecordedEvent {
	return eventstore.RecordedEvent{
		Event: eventstore.Event{
			ID: "e-1", Type: "order.placed", SchemaVersion: 2, Data: []byte(`{"total":5}`),
			Metadata: eventstore.Metadata{
				CorrelationID: "corr", CausationID: "cmd-1",
				TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", TraceState: "a=b",
				Extra: map[string]string{"tenant": "acme"},
			},
		},
		StreamID: "order-42", Version: 3, Position: 1 << 20,
		RecordedAt: time.Date(2026, 11, 25, 12, 0, 0, 123456789, time.UTC),
	}
}

func TestMessageEventRoundTrip(t *testing.T) {
	e := sampleEvent()
	m := Message(e, DefaultSubject(e))
	if m.Subject != "events.order.placed" || m.Key != "order-42" || m.ID != "e-1" {
		t.Errorf("Message = subject %q, key %q, id %q", m.Subject, m.Key, m.ID)
	}
	if m.Header["traceparent"] != e.Metadata.TraceParent {
		t.Errorf("traceparent header = %q", m.Header["traceparent"])
	}
	got, err := Event(m)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(e, got); diff != "" {
		t.Errorf("Event(Message(e)) differs (-want +got):\n%s", diff)
	}
}

func TestEventRefusesMalformedMessages(t *testing.T) {
	good := Message(sampleEvent(), "s")
	for _, tc := range []struct {
		header, value, want string
	}{
		{HeaderEventType, "", HeaderEventType},
		{HeaderStream, "", HeaderStream},
		{HeaderVersion, "x", HeaderVersion},
		{HeaderVersion, "0", HeaderVersion},
		{HeaderPosition, "-4", HeaderPosition},
		{HeaderSchemaVersion, "", HeaderSchemaVersion},
		{HeaderRecordedAt, "yesterday", HeaderRecordedAt},
	} {
		m := good
		m.Header = make(map[string]string)
		for k, v := range good.Header {
			m.Header[k] = v
		}
		m.Header[tc.header] = tc.value
		_, err := Event(m)
		if !errors.Is(err, ErrNotAnEvent) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s=%q: Event = %v, want ErrNotAnEvent naming %s", tc.header, tc.value, err, tc.want)
		}
	}
	if _, err := Event(messaging.Message{Subject: "s"}); !errors.Is(err, ErrNotAnEvent) {
		t.Errorf("Event of a message without ID = %v", err)
	}
}

func TestDefaultSubjectSanitizes(t *testing.T) {
	e := sampleEvent()
	e.Type = "Order Placed/v2 *>"
	if got := DefaultSubject(e); got != "events.Order_Placed_v2___" {
		t.Errorf("DefaultSubject = %q", got)
	}
}

// FuzzEvent: Event never panics, and what it accepts survives a second
// round trip unchanged.
func FuzzEvent(f *testing.F) {
	g := Message(sampleEvent(), "s")
	f.Add(g.ID, g.Header[HeaderEventType], g.Header[HeaderStream], g.Header[HeaderVersion], g.Header[HeaderPosition], g.Header[HeaderSchemaVersion], g.Header[HeaderRecordedAt], []byte("{}"))
	f.Add("", "", "", "", "", "", "", []byte(nil))
	f.Add("x", "t", "s", "99999999999999999999", "1", "1", "2026-01-01T00:00:00Z", []byte("x"))
	f.Fuzz(func(t *testing.T, id, typ, stream, version, pos, sv, at string, data []byte) {
		m := messaging.Message{ID: id, Subject: "s", Data: data, Header: map[string]string{
			HeaderEventType: typ, HeaderStream: stream, HeaderVersion: version, HeaderPosition: pos,
			HeaderSchemaVersion: sv, HeaderRecordedAt: at,
		}}
		e, err := Event(m)
		if err != nil {
			if !errors.Is(err, ErrNotAnEvent) {
				t.Fatalf("error %v does not wrap ErrNotAnEvent", err)
			}
			return
		}
		again, err := Event(Message(e, "s"))
		if err != nil {
			t.Fatalf("re-encoded event refused: %v", err)
		}
		if !again.RecordedAt.Equal(e.RecordedAt) {
			t.Fatalf("RecordedAt %v became %v", e.RecordedAt, again.RecordedAt)
		}
		again.RecordedAt = e.RecordedAt
		if diff := cmp.Diff(e, again); diff != "" {
			t.Fatalf("second round trip differs:\n%s", diff)
		}
	})
}
