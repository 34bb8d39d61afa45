package eventstoretest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/cairnhq/cairn/eventstore"
)

// fixture is what every check starts from: the store, the test, a context
// and a random prefix for the check's stream and event IDs.
type fixture struct {
	t      testing.TB
	s      eventstore.Store
	ctx    context.Context
	prefix string
}

func newFixture(t testing.TB, s eventstore.Store) *fixture {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return &fixture{t: t, s: s, ctx: t.Context(), prefix: "es" + hex.EncodeToString(b[:])}
}

// stream returns the check's stream called name.
func (f *fixture) stream(name string) string { return f.prefix + "-" + name }

// id returns the check's event ID called name.
func (f *fixture) id(name string) string { return f.prefix + "-" + name }

// ours reports whether e belongs to one of the check's streams.
func (f *fixture) ours(e eventstore.RecordedEvent) bool {
	return strings.HasPrefix(e.StreamID, f.prefix+"-")
}

// event returns an event with the ID called name and JSON data naming it.
func (f *fixture) event(name string) eventstore.Event {
	return eventstore.Event{
		ID:            f.id(name),
		Type:          "test.happened",
		SchemaVersion: 1,
		Data:          fmt.Appendf(nil, `{"name":%q}`, name),
		Metadata:      eventstore.Metadata{CorrelationID: f.prefix},
	}
}

// events returns n events named name-0, name-1...
func (f *fixture) events(name string, n int) []eventstore.Event {
	out := make([]eventstore.Event, n)
	for i := range out {
		out[i] = f.event(fmt.Sprintf("%s-%d", name, i))
	}
	return out
}

// append appends or fails the test.
func (f *fixture) append(stream string, expected eventstore.ExpectedVersion, events ...eventstore.Event) eventstore.AppendResult {
	f.t.Helper()
	res, err := f.s.Append(f.ctx, stream, expected, events...)
	if err != nil {
		f.t.Fatalf("Append(%s, %v, %d events) = %v, want success", stream, expected, len(events), err)
	}
	return res
}

// version returns stream's version or fails the test.
func (f *fixture) version(stream string) int64 {
	f.t.Helper()
	v, err := f.s.Version(f.ctx, stream)
	if err != nil {
		f.t.Fatalf("Version(%s) = %v", stream, err)
	}
	return v
}

// readStream reads stream forwards from version 1, all of it.
func (f *fixture) readStream(stream string) []eventstore.RecordedEvent {
	f.t.Helper()
	got, err := f.s.ReadStream(f.ctx, stream, 1, eventstore.Forwards, 1<<20)
	if err != nil {
		f.t.Fatalf("ReadStream(%s, 1, Forwards) = %v", stream, err)
	}
	return got
}

// head returns the position of the last event of the global log, or
// zero if it is empty.
func (f *fixture) head() eventstore.Position {
	f.t.Helper()
	var after eventstore.Position
	for {
		page, err := f.s.ReadAll(f.ctx, after, 1000)
		if err != nil {
			f.t.Fatalf("ReadAll(%d, 1000) = %v", after, err)
		}
		if len(page) == 0 {
			return after
		}
		after = page[len(page)-1].Position
	}
}

// readAll reads the global log after after, in pages of pageSize, until
// a page comes back empty, checking that every page respects the limit and
// that positions strictly increase. It returns the check's own events.
func (f *fixture) readAll(after eventstore.Position, pageSize int) []eventstore.RecordedEvent {
	f.t.Helper()
	var out []eventstore.RecordedEvent
	for {
		page, err := f.s.ReadAll(f.ctx, after, pageSize)
		if err != nil {
			f.t.Fatalf("ReadAll(%d, %d) = %v", after, pageSize, err)
		}
		if len(page) == 0 {
			return out
		}
		if len(page) > pageSize {
			f.t.Fatalf("ReadAll(%d, %d) returned %d events, more than the limit", after, pageSize, len(page))
		}
		for _, e := range page {
			if e.Position <= after {
				f.t.Fatalf("ReadAll: event %s at position %d follows position %d; want strictly increasing positions", e.ID, e.Position, after)
			}
			after = e.Position
			if f.ours(e) {
				out = append(out, e)
			}
		}
	}
}

// eventOpts compares events: nil and empty Data, Extra are equal, and
// SchemaVersion 0 means 1.
var eventOpts = cmp.Options{
	cmpopts.EquateEmpty(),
	cmp.Transformer("schemaVersion", func(e eventstore.Event) eventstore.Event {
		if e.SchemaVersion == 0 {
			e.SchemaVersion = 1
		}
		return e
	}),
}

// checkRecorded checks that got is want recorded in stream at version and
// position (position 0: any), with a sane RecordedAt.
func (f *fixture) checkRecorded(what string, got eventstore.RecordedEvent, stream string, version int64, want eventstore.Event) {
	f.t.Helper()
	if diff := cmp.Diff(want, got.Event, eventOpts); diff != "" {
		f.t.Errorf("%s: event %s mismatch (-appended +read):\n%s", what, want.ID, diff)
	}
	if got.StreamID != stream {
		f.t.Errorf("%s: event %s StreamID = %q, want %q", what, want.ID, got.StreamID, stream)
	}
	if got.Version != version {
		f.t.Errorf("%s: event %s Version = %d, want %d", what, want.ID, got.Version, version)
	}
	if got.Position <= 0 {
		f.t.Errorf("%s: event %s Position = %d, want > 0", what, want.ID, got.Position)
	}
	switch {
	case got.RecordedAt.IsZero():
		f.t.Errorf("%s: event %s RecordedAt is zero", what, want.ID)
	case got.RecordedAt.Location() != time.UTC:
		f.t.Errorf("%s: event %s RecordedAt = %v in %v, want UTC", what, want.ID, got.RecordedAt, got.RecordedAt.Location())
	case time.Until(got.RecordedAt).Abs() > time.Hour:
		f.t.Errorf("%s: event %s RecordedAt = %v, more than an hour from now", what, want.ID, got.RecordedAt)
	}
}

// errList collects errors from the goroutines of a check, which must not
// call t.Fatal.
type errList struct {
	ch chan error
}

func newErrList() *errList { return &errList{ch: make(chan error, 1024)} }

func (l *errList) add(format string, args ...any) {
	select {
	case l.ch <- fmt.Errorf(format, args...):
	default: // enough errors already
	}
}

// report reports the collected errors on t; call it after the goroutines
// have finished.
func (l *errList) report(t testing.TB) {
	t.Helper()
	close(l.ch)
	for err := range l.ch {
		t.Error(err)
	}
}
