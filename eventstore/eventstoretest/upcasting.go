package eventstoretest

import (
	"bytes"
	"errors"
	"testing"

	"github.com/cairnhq/cairn/eventstore"
)

// checkUpcasting stores events of schema versions 1, 2 and 3 of one type
// in the store, and reads them through [eventstore.Upcasting] with a chain
// 1 -> 2 -> 3: ReadStream (both directions) and ReadAll return every
// event at version 3 with its data lifted, in order, and the stored
// events are unchanged underneath. An event the chain cannot lift fails
// the read with an [*eventstore.UpcastError] naming it, rather than being
// skipped.
func checkUpcasting(t testing.TB, s eventstore.Store) {
	f := newFixture(t, s)
	ctx := f.ctx
	const typ = "test.upcast"
	ups, err := eventstore.NewUpcasters(
		eventstore.Upcaster{Type: typ, From: 1, Up: func(d []byte, _ eventstore.Metadata) ([]byte, error) {
			if bytes.Equal(d, []byte("poison")) {
				return nil, errors.New("cannot lift poison")
			}
			return append(d, "+2"...), nil
		}},
		eventstore.Upcaster{Type: typ, From: 2, Up: func(d []byte, _ eventstore.Metadata) ([]byte, error) { return append(d, "+3"...), nil }},
	)
	if err != nil {
		t.Fatalf("NewUpcasters = %v", err)
	}
	stream := f.stream("upcast")
	events := []eventstore.Event{
		{ID: f.id("u1"), Type: typ, SchemaVersion: 1, Data: []byte("a")},
		{ID: f.id("u2"), Type: typ, SchemaVersion: 2, Data: []byte("b+2")},
		{ID: f.id("u3"), Type: typ, SchemaVersion: 3, Data: []byte("c+2+3")},
		{ID: f.id("other"), Type: "test.other", SchemaVersion: 1, Data: []byte("o")},
	}
	if _, err := s.Append(ctx, stream, eventstore.NoStream, events...); err != nil {
		t.Fatalf("Append = %v", err)
	}
	want := []struct {
		sv   int
		data string
	}{{3, "a+2+3"}, {3, "b+2+3"}, {3, "c+2+3"}, {1, "o"}}
	check := func(what string, got []eventstore.RecordedEvent) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %d events, want %d", what, len(got), len(want))
		}
		for i, e := range got {
			if e.SchemaVersion != want[i].sv || string(e.Data) != want[i].data {
				t.Errorf("%s: event %d = schema %d %q, want schema %d %q", what, i, e.SchemaVersion, e.Data, want[i].sv, want[i].data)
			}
		}
	}
	r := eventstore.Upcasting(s, ups)
	fwd, err := r.ReadStream(ctx, stream, 0, eventstore.Forwards, 10)
	if err != nil {
		t.Fatalf("upcasting ReadStream = %v", err)
	}
	check("ReadStream forwards", fwd)
	bwd, err := r.ReadStream(ctx, stream, 0, eventstore.Backwards, 10)
	if err != nil {
		t.Fatalf("upcasting ReadStream backwards = %v", err)
	}
	for i, j := 0, len(bwd)-1; i < j; i, j = i+1, j-1 {
		bwd[i], bwd[j] = bwd[j], bwd[i]
	}
	check("ReadStream backwards (reversed)", bwd)
	var ours []eventstore.RecordedEvent
	for after := eventstore.Position(0); ; {
		page, err := r.ReadAll(ctx, after, 2)
		if err != nil {
			t.Fatalf("upcasting ReadAll(%d) = %v", after, err)
		}
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			if e.StreamID == stream {
				ours = append(ours, e)
			}
			after = e.Position
		}
	}
	check("ReadAll", ours)
	stored, err := s.ReadStream(ctx, stream, 0, eventstore.Forwards, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 4 || stored[0].SchemaVersion != 1 || string(stored[0].Data) != "a" {
		t.Errorf("the store itself returns %+v first, want the stored schema 1 %q", stored[0].Event, "a")
	}

	poisoned := f.stream("poison")
	if _, err := s.Append(ctx, poisoned, eventstore.NoStream, eventstore.Event{ID: f.id("p1"), Type: typ, SchemaVersion: 1, Data: []byte("poison")}); err != nil {
		t.Fatal(err)
	}
	_, err = r.ReadStream(ctx, poisoned, 0, eventstore.Forwards, 10)
	var ue *eventstore.UpcastError
	if !errors.As(err, &ue) || ue.EventID != f.id("p1") || !errors.Is(err, eventstore.ErrUpcast) {
		t.Errorf("reading an event the chain cannot lift = %v, want an *UpcastError naming %s", err, f.id("p1"))
	}
}
