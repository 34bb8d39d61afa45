package eventstore_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/eventstore"
)

func TestValidateSnapshot(t *testing.T) {
	ok := eventstore.Snapshot{StreamID: "order-1", Version: 3, Type: "order.state"}
	tests := []struct {
		name  string
		edit  func(*eventstore.Snapshot)
		field string // "" for valid
	}{
		{"valid", func(*eventstore.Snapshot) {}, ""},
		{"empty data", func(s *eventstore.Snapshot) { s.Data = nil }, ""},
		{"max data", func(s *eventstore.Snapshot) { s.Data = make([]byte, eventstore.MaxSnapshotSize) }, ""},
		{"no stream", func(s *eventstore.Snapshot) { s.StreamID = "" }, "snapshot stream"},
		{"long stream", func(s *eventstore.Snapshot) { s.StreamID = strings.Repeat("s", eventstore.MaxIDLength+1) }, "snapshot stream"},
		{"version 0", func(s *eventstore.Snapshot) { s.Version = 0 }, "snapshot Version"},
		{"no type", func(s *eventstore.Snapshot) { s.Type = "" }, "snapshot Type"},
		{"long type", func(s *eventstore.Snapshot) { s.Type = strings.Repeat("t", eventstore.MaxIDLength+1) }, "snapshot Type"},
		{"large data", func(s *eventstore.Snapshot) { s.Data = make([]byte, eventstore.MaxSnapshotSize+1) }, "snapshot Data"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := ok
			tc.edit(&s)
			err := eventstore.ValidateSnapshot(s)
			if tc.field == "" {
				if err != nil {
					t.Errorf("ValidateSnapshot() = %v, want nil", err)
				}
				return
			}
			var ie *eventstore.InvalidEventError
			if !errors.As(err, &ie) || !errors.Is(err, eventstore.ErrInvalidEvent) || ie.Field != tc.field || ie.Index != -1 {
				t.Errorf("ValidateSnapshot() = %v, want an *InvalidEventError for field %q", err, tc.field)
			}
		})
	}
}

func TestSnapshotAheadError(t *testing.T) {
	var err error = &eventstore.SnapshotAheadError{Stream: "order-1", Version: 6, Current: 5}
	if !errors.Is(err, eventstore.ErrSnapshotAhead) {
		t.Errorf("errors.Is(%v, ErrSnapshotAhead) = false, want true", err)
	}
	if errors.Is(err, eventstore.ErrVersionConflict) {
		t.Errorf("errors.Is(%v, ErrVersionConflict) = true, want false", err)
	}
	const want = `eventstore: snapshot of stream "order-1" at version 6 is ahead of the stream, at version 5`
	if got := err.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
