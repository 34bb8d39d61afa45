package outbox

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/messaging"
)

// The headers of a message made from an event by [Message].
const (
	HeaderEventType     = "Cairn-Event-Type"
	HeaderStream        = "Cairn-Stream"
	HeaderVersion       = "Cairn-Stream-Version"
	HeaderPosition      = "Cairn-Position"
	HeaderSchemaVersion = "Cairn-Schema-Version"
	HeaderRecordedAt    = "Cairn-Recorded-At"
	HeaderCorrelationID = "Cairn-Correlation-Id"
	HeaderCausationID   = "Cairn-Causation-Id"
	// HeaderMetaPrefix prefixes the keys of the event's Metadata.Extra.
	HeaderMetaPrefix = "Cairn-Meta-"
)

// ErrNotAnEvent is wrapped by the error of [Event] for a message that does
// not carry an event: a header is missing or malformed.
var ErrNotAnEvent = errors.New("outbox: message is not an event")

// DefaultSubject is the subject of an event unless [Config.Subject] says
// otherwise: "events." and the event's type, with every character other
// than ASCII letters, digits, '.', '-' and '_' replaced by '_' so that it
// is a valid NATS subject and Kafka topic name.
func DefaultSubject(e eventstore.RecordedEvent) string {
	return "events." + sanitize(e.Type)
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
}

// Message returns the message that carries e to subject: its ID is the
// event's, its key the stream's (so a stream's events stay in order), its
// data the event's data, and its headers the rest of the event, the
// event's W3C trace context included, so that consumers continue the trace
// of the request that appended it.
func Message(e eventstore.RecordedEvent, subject string) messaging.Message {
	h := make(map[string]string, 10+len(e.Metadata.Extra))
	h[HeaderEventType] = e.Type
	h[HeaderStream] = e.StreamID
	h[HeaderVersion] = strconv.FormatInt(e.Version, 10)
	h[HeaderPosition] = strconv.FormatInt(int64(e.Position), 10)
	h[HeaderSchemaVersion] = strconv.Itoa(max(e.SchemaVersion, 1))
	h[HeaderRecordedAt] = e.RecordedAt.UTC().Format(time.RFC3339Nano)
	if v := e.Metadata.CorrelationID; v != "" {
		h[HeaderCorrelationID] = v
	}
	if v := e.Metadata.CausationID; v != "" {
		h[HeaderCausationID] = v
	}
	if v := e.Metadata.TraceParent; v != "" {
		h["traceparent"] = v
	}
	if v := e.Metadata.TraceState; v != "" {
		h["tracestate"] = v
	}
	for k, v := range e.Metadata.Extra {
		h[HeaderMetaPrefix+k] = v
	}
	return messaging.Message{ID: e.ID, Subject: subject, Key: e.StreamID, Header: h, Data: e.Data}
}

// Event decodes the event that [Message] put in m. A message without the
// event headers, or with a malformed one, gets an error wrapping
// [ErrNotAnEvent] that names the header; a consumer returns it wrapped
// with [messaging.Permanent], so the message goes to the dead-letter
// subject instead of being retried.
func Event(m messaging.Message) (eventstore.RecordedEvent, error) {
	var e eventstore.RecordedEvent
	bad := func(header, why string) (eventstore.RecordedEvent, error) {
		return eventstore.RecordedEvent{}, fmt.Errorf("%w: message %q: header %s %s", ErrNotAnEvent, m.ID, header, why)
	}
	if m.ID == "" {
		return bad("ID", "is empty")
	}
	e.ID, e.Data = m.ID, m.Data
	if e.Type = m.Header[HeaderEventType]; e.Type == "" {
		return bad(HeaderEventType, "is missing")
	}
	if e.StreamID = m.Header[HeaderStream]; e.StreamID == "" {
		return bad(HeaderStream, "is missing")
	}
	var err error
	if e.Version, err = strconv.ParseInt(m.Header[HeaderVersion], 10, 64); err != nil || e.Version < 1 {
		return bad(HeaderVersion, fmt.Sprintf("is %q, not a version", m.Header[HeaderVersion]))
	}
	pos, err := strconv.ParseInt(m.Header[HeaderPosition], 10, 64)
	if err != nil || pos < 1 {
		return bad(HeaderPosition, fmt.Sprintf("is %q, not a position", m.Header[HeaderPosition]))
	}
	e.Position = eventstore.Position(pos)
	if e.SchemaVersion, err = strconv.Atoi(m.Header[HeaderSchemaVersion]); err != nil || e.SchemaVersion < 1 {
		return bad(HeaderSchemaVersion, fmt.Sprintf("is %q, not a schema version", m.Header[HeaderSchemaVersion]))
	}
	if e.RecordedAt, err = time.Parse(time.RFC3339Nano, m.Header[HeaderRecordedAt]); err != nil {
		return bad(HeaderRecordedAt, fmt.Sprintf("is %q, not an RFC 3339 time", m.Header[HeaderRecordedAt]))
	}
	e.Metadata = eventstore.Metadata{
		CorrelationID: m.Header[HeaderCorrelationID],
		CausationID:   m.Header[HeaderCausationID],
		TraceParent:   m.Header["traceparent"],
		TraceState:    m.Header["tracestate"],
	}
	for k, v := range m.Header {
		if name, ok := strings.CutPrefix(k, HeaderMetaPrefix); ok {
			if e.Metadata.Extra == nil {
				e.Metadata.Extra = make(map[string]string)
			}
			e.Metadata.Extra[name] = v
		}
	}
	return e, nil
}
