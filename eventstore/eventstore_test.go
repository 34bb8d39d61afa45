package eventstore_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/eventstore"
)

func events(n int) []eventstore.Event {
	out := make([]eventstore.Event, n)
	for i := range out {
		out[i] = eventstore.Event{ID: fmt.Sprintf("id-%d", i), Type: "order.placed", Data: []byte(`{}`)}
	}
	return out
}

// with returns events(n) with event i changed by f.
func with(n, i int, f func(*eventstore.Event)) []eventstore.Event {
	out := events(n)
	f(&out[i])
	return out
}

func TestValidate(t *testing.T) {
	long := strings.Repeat("x", eventstore.MaxIDLength+1)
	maxed := strings.Repeat("x", eventstore.MaxIDLength)
	tests := []struct {
		name      string
		stream    string
		events    []eventstore.Event
		wantIndex int    // ignored when wantField is ""
		wantField string // "" for a valid append
	}{
		{"valid", "order-1", events(3), 0, ""},
		{"valid at the limits", maxed, with(1, 0, func(e *eventstore.Event) {
			e.ID, e.Type, e.Data = maxed, maxed, make([]byte, eventstore.MaxEventSize)
		}), 0, ""},
		{"valid with no data and schema version 0", "s", with(1, 0, func(e *eventstore.Event) { e.Data, e.SchemaVersion = nil, 0 }), 0, ""},
		{"valid with MaxAppendEvents events", "s", events(eventstore.MaxAppendEvents), 0, ""},
		{"empty stream", "", events(1), -1, "stream"},
		{"long stream", long, events(1), -1, "stream"},
		{"no events", "s", nil, -1, "events"},
		{"too many events", "s", events(eventstore.MaxAppendEvents + 1), -1, "events"},
		{"empty ID", "s", with(3, 1, func(e *eventstore.Event) { e.ID = "" }), 1, "ID"},
		{"long ID", "s", with(3, 2, func(e *eventstore.Event) { e.ID = long }), 2, "ID"},
		{"empty type", "s", with(2, 0, func(e *eventstore.Event) { e.Type = "" }), 0, "Type"},
		{"long type", "s", with(2, 1, func(e *eventstore.Event) { e.Type = long }), 1, "Type"},
		{"negative schema version", "s", with(2, 1, func(e *eventstore.Event) { e.SchemaVersion = -1 }), 1, "SchemaVersion"},
		{"oversized data", "s", with(2, 1, func(e *eventstore.Event) { e.Data = make([]byte, eventstore.MaxEventSize+1) }), 1, "Data"},
		{"oversized metadata", "s", with(2, 1, func(e *eventstore.Event) {
			e.Metadata.Extra = map[string]string{"k": strings.Repeat("x", eventstore.MaxMetadataSize)}
		}), 1, "Metadata"},
		{"repeated ID", "s", with(3, 2, func(e *eventstore.Event) { e.ID = "id-0" }), 2, "ID"},
		{"first problem wins", "s", with(3, 1, func(e *eventstore.Event) { e.ID, e.Type = "", "" }), 1, "ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := eventstore.Validate(tt.stream, tt.events)
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, eventstore.ErrInvalidEvent) {
				t.Fatalf("Validate() = %v, want an error matching %v", err, eventstore.ErrInvalidEvent)
			}
			var ie *eventstore.InvalidEventError
			if !errors.As(err, &ie) {
				t.Fatalf("Validate() = %T, want *InvalidEventError", err)
			}
			if ie.Index != tt.wantIndex || ie.Field != tt.wantField {
				t.Errorf("Validate() = {Index: %d, Field: %q}, want {Index: %d, Field: %q}", ie.Index, ie.Field, tt.wantIndex, tt.wantField)
			}
			if ie.Reason == "" {
				t.Error("Validate() error has no Reason")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "eventstore: ") || !strings.Contains(msg, tt.wantField) {
				t.Errorf("Error() = %q, want the package prefix and the field %q", msg, tt.wantField)
			}
			if tt.wantIndex >= 0 && !strings.Contains(msg, fmt.Sprintf("event %d", tt.wantIndex)) {
				t.Errorf("Error() = %q, want it to name event %d", msg, tt.wantIndex)
			}
		})
	}
}

func TestExpectedVersionString(t *testing.T) {
	tests := []struct {
		e    eventstore.ExpectedVersion
		want string
	}{
		{eventstore.Any, "any"},
		{eventstore.NoStream, "no stream"},
		{eventstore.StreamExists, "stream exists"},
		{eventstore.Exact(0), "no stream"},
		{eventstore.Exact(1), "1"},
		{eventstore.Exact(42), "42"},
	}
	for _, tt := range tests {
		if got := tt.e.String(); got != tt.want {
			t.Errorf("ExpectedVersion(%d).String() = %q, want %q", int64(tt.e), got, tt.want)
		}
	}
}

func TestExact(t *testing.T) {
	if got := eventstore.Exact(0); got != eventstore.NoStream {
		t.Errorf("Exact(0) = %v, want NoStream", got)
	}
	if got := eventstore.Exact(7); int64(got) != 7 {
		t.Errorf("Exact(7) = %d, want 7", int64(got))
	}
}

func TestErrors(t *testing.T) {
	vc := &eventstore.VersionConflictError{Stream: "order-1", Expected: eventstore.Exact(3), Actual: 5}
	ie := &eventstore.InvalidEventError{Index: 2, Field: "Type", Reason: "is empty"}
	ies := &eventstore.InvalidEventError{Index: -1, Field: "stream", Reason: "is empty"}
	sentinels := []error{eventstore.ErrVersionConflict, eventstore.ErrInvalidEvent, eventstore.ErrStreamDeleted, eventstore.ErrDuplicateEvent}
	tests := []struct {
		name     string
		err      error
		is       error
		wantText string
	}{
		{"version conflict", vc, eventstore.ErrVersionConflict, `eventstore: version conflict on stream "order-1": expected 3, stream is at 5`},
		{"invalid event", ie, eventstore.ErrInvalidEvent, "eventstore: invalid event 2: Type is empty"},
		{"invalid stream", ies, eventstore.ErrInvalidEvent, "eventstore: invalid stream: is empty"},
		{"stream deleted", eventstore.ErrStreamDeleted, eventstore.ErrStreamDeleted, "eventstore: stream deleted"},
		{"duplicate event", eventstore.ErrDuplicateEvent, eventstore.ErrDuplicateEvent, "eventstore: duplicate event id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.wantText {
				t.Errorf("Error() = %q, want %q", got, tt.wantText)
			}
			wrapped := fmt.Errorf("append to order-1: %w", tt.err)
			for _, s := range sentinels {
				if got, want := errors.Is(wrapped, s), s == tt.is; got != want {
					t.Errorf("errors.Is(wrapped, %v) = %v, want %v", s, got, want)
				}
			}
		})
	}

	wrapped := fmt.Errorf("save: %w", vc)
	var gotVC *eventstore.VersionConflictError
	if !errors.As(wrapped, &gotVC) || *gotVC != *vc {
		t.Errorf("errors.As(*VersionConflictError) = %v, want %v", gotVC, vc)
	}
	var gotIE *eventstore.InvalidEventError
	if !errors.As(fmt.Errorf("save: %w", ie), &gotIE) || *gotIE != *ie {
		t.Errorf("errors.As(*InvalidEventError) = %v, want %v", gotIE, ie)
	}
	if errors.As(wrapped, &gotIE) {
		t.Error("errors.As(version conflict, *InvalidEventError) = true, want false")
	}
}
