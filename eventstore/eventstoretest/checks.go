package eventstoretest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/eventstore"
)

// checkRoundTrip appends events with every field set and reads them back
// from the stream and the global log.
func checkRoundTrip(t testing.TB, s eventstore.Store) {
	f := newFixture(t, s)
	st := f.stream("order")
	head := f.head()
	in := []eventstore.Event{
		{
			ID:            f.id("placed"),
			Type:          "order.placed",
			SchemaVersion: 3,
			Data:          []byte(`{"total": 12.5, "currency":"EUR",  "lines":[{"sku":"A1"}]}`),
			Metadata: eventstore.Metadata{
				CorrelationID: "corr-" + f.prefix,
				CausationID:   "cmd-" + f.prefix,
				TraceParent:   "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
				TraceState:    "vendor=x,other=y",
				Extra:         map[string]string{"tenant": "acme", "unicode": "héllo ✓ \"quoted\""},
			},
		},
		// No data, no metadata, schema version 0 (read back as 0 or 1).
		{ID: f.id("empty"), Type: "order.touched"},
		// Data that is not JSON, nor UTF-8: Data is bytes, kept exactly.
		{ID: f.id("binary"), Type: "order.blob", SchemaVersion: 1, Data: []byte{0, 1, 2, 0xff, 0xfe, '\n', 0}},
	}
	res := f.append(st, eventstore.NoStream, in...)
	if res.NextExpectedVersion != 3 {
		t.Errorf("Append(3 events to a new stream).NextExpectedVersion = %d, want 3", res.NextExpectedVersion)
	}
	if res.FirstPosition <= head || res.LastPosition <= res.FirstPosition {
		t.Errorf("Append() positions = [%d, %d] after head %d, want head < first < last", res.FirstPosition, res.LastPosition, head)
	}

	got := f.readStream(st)
	if len(got) != len(in) {
		t.Fatalf("ReadStream() returned %d events, want %d", len(got), len(in))
	}
	for i, e := range got {
		f.checkRecorded("ReadStream", e, st, int64(i+1), in[i])
		if i > 0 && e.Position <= got[i-1].Position {
			t.Errorf("ReadStream: version %d at position %d, not after version %d at %d", e.Version, e.Position, got[i-1].Version, got[i-1].Position)
		}
	}
	if got[0].Position != res.FirstPosition || got[2].Position != res.LastPosition {
		t.Errorf("positions read = [%d, %d], Append returned [%d, %d]", got[0].Position, got[2].Position, res.FirstPosition, res.LastPosition)
	}

	all := f.readAll(head, 100)
	if len(all) != len(in) {
		t.Fatalf("ReadAll() returned %d of the check's events, want %d", len(all), len(in))
	}
	for i, e := range all {
		f.checkRecorded("ReadAll", e, st, int64(i+1), in[i])
		if !e.RecordedAt.Equal(got[i].RecordedAt) || e.Position != got[i].Position {
			t.Errorf("event %s: ReadAll has position %d recorded at %v, ReadStream %d at %v", e.ID, e.Position, e.RecordedAt, got[i].Position, got[i].RecordedAt)
		}
	}
}

// checkVersions checks that versions start at 1 and are contiguous, per
// stream, and what Version returns.
func checkVersions(t testing.TB, s eventstore.Store) {
	f := newFixture(t, s)
	a, b := f.stream("a"), f.stream("b")
	if v := f.version(a); v != 0 {
		t.Errorf("Version(new stream) = %d, want 0", v)
	}
	for i, step := range []struct {
		expected eventstore.ExpectedVersion
		n        int
		want     int64
	}{
		{eventstore.Any, 1, 1},
		{eventstore.Any, 3, 4},
		{eventstore.Exact(4), 2, 6},
		{eventstore.StreamExists, 1, 7},
	} {
		res := f.append(a, step.expected, f.events(fmt.Sprintf("a%d", i), step.n)...)
		if res.NextExpectedVersion != step.want {
			t.Errorf("append %d: NextExpectedVersion = %d, want %d", i, res.NextExpectedVersion, step.want)
		}
		if v := f.version(a); v != step.want {
			t.Errorf("after append %d: Version() = %d, want %d", i, v, step.want)
		}
	}
	f.append(b, eventstore.NoStream, f.events("b", 2)...)

	for _, tc := range []struct {
		stream string
		want   int64
	}{{a, 7}, {b, 2}} {
		got := f.readStream(tc.stream)
		if int64(len(got)) != tc.want {
			t.Errorf("ReadStream(%s) returned %d events, want %d", tc.stream, len(got), tc.want)
			continue
		}
		for i, e := range got {
			if e.Version != int64(i+1) {
				t.Errorf("ReadStream(%s)[%d].Version = %d, want %d", tc.stream, i, e.Version, i+1)
			}
		}
		if v := f.version(tc.stream); v != tc.want {
			t.Errorf("Version(%s) = %d, want %d", tc.stream, v, tc.want)
		}
	}
}

// checkExpectedVersion runs every ExpectedVersion case against a new and
// an existing stream.
func checkExpectedVersion(t testing.TB, s eventstore.Store) {
	f := newFixture(t, s)
	tests := []struct {
		name     string
		existing int // events in the stream before
		expected eventstore.ExpectedVersion
		conflict bool
	}{
		{"Any on new", 0, eventstore.Any, false},
		{"Any on existing", 2, eventstore.Any, false},
		{"NoStream on new", 0, eventstore.NoStream, false},
		{"NoStream on existing", 2, eventstore.NoStream, true},
		{"StreamExists on new", 0, eventstore.StreamExists, true},
		{"StreamExists on existing", 2, eventstore.StreamExists, false},
		{"Exact right", 2, eventstore.Exact(2), false},
		{"Exact behind", 2, eventstore.Exact(1), true},
		{"Exact ahead", 2, eventstore.Exact(3), true},
		{"Exact on new", 0, eventstore.Exact(1), true},
	}
	for i, tc := range tests {
		st := f.stream(fmt.Sprintf("case%d", i))
		if tc.existing > 0 {
			f.append(st, eventstore.Any, f.events(fmt.Sprintf("seed%d", i), tc.existing)...)
		}
		res, err := s.Append(f.ctx, st, tc.expected, f.event(fmt.Sprintf("new%d", i)))
		if !tc.conflict {
			if err != nil {
				t.Errorf("%s: Append(%v) = %v, want success", tc.name, tc.expected, err)
			} else if want := int64(tc.existing + 1); res.NextExpectedVersion != want {
				t.Errorf("%s: Append(%v).NextExpectedVersion = %d, want %d", tc.name, tc.expected, res.NextExpectedVersion, want)
			}
			if v, want := f.version(st), int64(tc.existing+1); v != want {
				t.Errorf("%s: Version() after append = %d, want %d", tc.name, v, want)
			}
			continue
		}
		if !errors.Is(err, eventstore.ErrVersionConflict) {
			t.Errorf("%s: Append(%v) = %v, want an error matching %v", tc.name, tc.expected, err, eventstore.ErrVersionConflict)
			continue
		}
		var vc *eventstore.VersionConflictError
		if !errors.As(err, &vc) {
			t.Errorf("%s: Append(%v) = %T, want a *VersionConflictError", tc.name, tc.expected, err)
			continue
		}
		want := eventstore.VersionConflictError{Stream: st, Expected: tc.expected, Actual: int64(tc.existing)}
		if *vc != want {
			t.Errorf("%s: Append(%v) = %+v, want %+v", tc.name, tc.expected, *vc, want)
		}
		if v := f.version(st); v != int64(tc.existing) {
			t.Errorf("%s: Version() after a refused append = %d, want %d", tc.name, v, tc.existing)
		}
	}
	// An expected version that is none of the above is invalid, not a
	// conflict.
	st := f.stream("bad-expected")
	if _, err := s.Append(f.ctx, st, eventstore.ExpectedVersion(-5), f.event("bad-expected")); !errors.Is(err, eventstore.ErrInvalidEvent) {
		t.Errorf("Append(ExpectedVersion(-5)) = %v, want an error matching %v", err, eventstore.ErrInvalidEvent)
	}
}

// checkConcurrentWriters has many writers race to append to one stream
// with Exact versions: exactly one must win each version.
func checkConcurrentWriters(t testing.TB, s eventstore.Store) {
	const (
		writers = 16
		total   = 200
	)
	f := newFixture(t, s)
	st := f.stream("contended")
	head := f.head()
	errs := newErrList()

	type win struct {
		version int64
		id      string
		res     eventstore.AppendResult
	}
	wins := make(chan win, total*2)
	done := make(chan struct{})
	for w := range writers {
		go func() {
			defer func() { done <- struct{}{} }()
			for attempt := 0; ; attempt++ {
				v, err := s.Version(f.ctx, st)
				if err != nil {
					errs.add("writer %d: Version() = %v", w, err)
					return
				}
				if v >= total {
					return
				}
				id := f.id(fmt.Sprintf("w%d-%d", w, attempt))
				res, err := s.Append(f.ctx, st, eventstore.Exact(v), eventstore.Event{ID: id, Type: "test.raced", Data: []byte(`{}`)})
				if errors.Is(err, eventstore.ErrVersionConflict) {
					var vc *eventstore.VersionConflictError
					if !errors.As(err, &vc) {
						errs.add("writer %d: Append(Exact(%d)) = %T, want a *VersionConflictError", w, v, err)
						return
					}
					if vc.Actual <= v {
						errs.add("writer %d: Append(Exact(%d)) conflict reports Actual %d; the stream was at %d already", w, v, vc.Actual, v)
						return
					}
					continue
				}
				if err != nil {
					errs.add("writer %d: Append(Exact(%d)) = %v", w, v, err)
					return
				}
				if res.NextExpectedVersion != v+1 {
					errs.add("writer %d: Append(Exact(%d)).NextExpectedVersion = %d, want %d", w, v, res.NextExpectedVersion, v+1)
				}
				wins <- win{v + 1, id, res}
			}
		}()
	}
	for range writers {
		<-done
	}
	close(wins)
	errs.report(t)

	winner := make(map[int64]win)
	for w := range wins {
		if prev, ok := winner[w.version]; ok {
			t.Errorf("version %d: two appends with Exact(%d) succeeded: %s and %s", w.version, w.version-1, prev.id, w.id)
			continue
		}
		winner[w.version] = w
	}
	if len(winner) != total {
		t.Errorf("%d versions won, want %d", len(winner), total)
	}

	got := f.readStream(st)
	if len(got) != total {
		t.Fatalf("ReadStream() returned %d events, want %d", len(got), total)
	}
	positions := make(map[eventstore.Position]string)
	for i, e := range got {
		if e.Version != int64(i+1) {
			t.Errorf("ReadStream()[%d].Version = %d, want %d", i, e.Version, i+1)
		}
		if w, ok := winner[e.Version]; ok && (w.id != e.ID || w.res.FirstPosition != e.Position) {
			t.Errorf("version %d is %s at position %d; the winning append was %s at %d", e.Version, e.ID, e.Position, w.id, w.res.FirstPosition)
		}
		if prev, dup := positions[e.Position]; dup {
			t.Errorf("events %s and %s share position %d", prev, e.ID, e.Position)
		}
		positions[e.Position] = e.ID
		if i > 0 && e.Position <= got[i-1].Position {
			t.Errorf("version %d at position %d, not after version %d at %d", e.Version, e.Position, e.Version-1, got[i-1].Position)
		}
	}
	if all := f.readAll(head, 64); len(all) != total {
		t.Errorf("ReadAll() returned %d of the check's events, want %d", len(all), total)
	}
}

// checkIdempotence retries appends whose events are stored already.
func checkIdempotence(t testing.TB, s eventstore.Store) {
	f := newFixture(t, s)
	st := f.stream("retried")
	head := f.head()
	first := f.events("first", 2)
	r1 := f.append(st, eventstore.NoStream, first...)

	for _, expected := range []eventstore.ExpectedVersion{eventstore.NoStream, eventstore.Any, eventstore.StreamExists, eventstore.Exact(2)} {
		r, err := s.Append(f.ctx, st, expected, first...)
		if err != nil {
			t.Errorf("retry of the first append with %v = %v, want the original result", expected, err)
		} else if r != r1 {
			t.Errorf("retry of the first append with %v = %+v, want the original %+v", expected, r, r1)
		}
	}

	second := f.event("second")
	r2 := f.append(st, eventstore.Exact(2), second)
	// The retry of an append that was not the last one still succeeds.
	if r, err := s.Append(f.ctx, st, eventstore.Exact(2), second); err != nil || r != r2 {
		t.Errorf("retry of the second append = %+v, %v; want %+v, nil", r, err, r2)
	}
	if r, err := s.Append(f.ctx, st, eventstore.NoStream, first...); err != nil || r != r1 {
		t.Errorf("late retry of the first append = %+v, %v; want %+v, nil", r, err, r1)
	}

	if v := f.version(st); v != 3 {
		t.Errorf("Version() after retries = %d, want 3", v)
	}
	if got := f.readStream(st); len(got) != 3 {
		t.Errorf("ReadStream() after retries returned %d events, want 3", len(got))
	}
	if got := f.readAll(head, 100); len(got) != 3 {
		t.Errorf("ReadAll() after retries returned %d of the check's events, want 3", len(got))
	}
}

// checkDuplicateEvent reuses stored event IDs with other content or in
// another stream.
func checkDuplicateEvent(t testing.TB, s eventstore.Store) {
	f := newFixture(t, s)
	st, other := f.stream("a"), f.stream("b")
	head := f.head()
	orig := f.event("x")
	f.append(st, eventstore.NoStream, orig)

	otherData := orig
	otherData.Data = []byte(`{"name":"changed"}`)
	otherType := orig
	otherType.Type = "test.other"
	tests := []struct {
		name   string
		stream string
		events []eventstore.Event
	}{
		{"same ID, other data", st, []eventstore.Event{otherData}},
		{"same ID, other type", st, []eventstore.Event{otherType}},
		{"same ID, other stream", other, []eventstore.Event{orig}},
		{"same ID after a new event, other stream", other, []eventstore.Event{f.event("new"), orig}},
	}
	for _, tc := range tests {
		_, err := s.Append(f.ctx, tc.stream, eventstore.Any, tc.events...)
		if !errors.Is(err, eventstore.ErrDuplicateEvent) {
			t.Errorf("%s: Append() = %v, want an error matching %v", tc.name, err, eventstore.ErrDuplicateEvent)
		}
	}
	if v := f.version(st); v != 1 {
		t.Errorf("Version(%s) = %d, want 1", st, v)
	}
	if v := f.version(other); v != 0 {
		t.Errorf("Version(%s) = %d, want 0: nothing of a refused append is stored", other, v)
	}
	got := f.readAll(head, 100)
	if len(got) != 1 {
		t.Fatalf("ReadAll() returned %d of the check's events, want 1", len(got))
	}
	f.checkRecorded("ReadAll", got[0], st, 1, orig)
}

// checkInvalidEvent appends invalid events: each append fails with an
// *InvalidEventError and stores nothing, not even its valid events.
func checkInvalidEvent(t testing.TB, s eventstore.Store) {
	f := newFixture(t, s)
	st, fresh := f.stream("seeded"), f.stream("fresh")
	head := f.head()
	f.append(st, eventstore.NoStream, f.event("seed"))

	long := strings.Repeat("x", eventstore.MaxIDLength+1)
	// bad returns a valid event and an invalid one, changed by change.
	n := 0
	bad := func(change func(*eventstore.Event)) []eventstore.Event {
		n++
		e := f.event(fmt.Sprintf("bad%d", n))
		change(&e)
		return []eventstore.Event{f.event(fmt.Sprintf("good%d", n)), e}
	}
	tooMany := f.events("many", eventstore.MaxAppendEvents+1)
	tests := []struct {
		name   string
		stream string
		events []eventstore.Event
		index  int
		field  string
	}{
		{"empty stream ID", "", f.events("e1", 1), -1, "stream"},
		{"long stream ID", long, f.events("e2", 1), -1, "stream"},
		{"no events", st, nil, -1, "events"},
		{"too many events", st, tooMany, -1, "events"},
		{"empty ID", st, bad(func(e *eventstore.Event) { e.ID = "" }), 1, "ID"},
		{"long ID", st, bad(func(e *eventstore.Event) { e.ID = long }), 1, "ID"},
		{"empty type", st, bad(func(e *eventstore.Event) { e.Type = "" }), 1, "Type"},
		{"long type", st, bad(func(e *eventstore.Event) { e.Type = long }), 1, "Type"},
		{"negative schema version", st, bad(func(e *eventstore.Event) { e.SchemaVersion = -1 }), 1, "SchemaVersion"},
		{"oversized data", st, bad(func(e *eventstore.Event) { e.Data = make([]byte, eventstore.MaxEventSize+1) }), 1, "Data"},
		{"repeated ID", st, bad(func(e *eventstore.Event) { e.ID = f.id(fmt.Sprintf("good%d", n)) }), 1, "ID"},
		{"invalid on a new stream", fresh, bad(func(e *eventstore.Event) { e.Type = "" }), 1, "Type"},
	}
	for _, tc := range tests {
		_, err := s.Append(f.ctx, tc.stream, eventstore.Any, tc.events...)
		if !errors.Is(err, eventstore.ErrInvalidEvent) {
			t.Errorf("%s: Append() = %v, want an error matching %v", tc.name, err, eventstore.ErrInvalidEvent)
			continue
		}
		var ie *eventstore.InvalidEventError
		if !errors.As(err, &ie) {
			t.Errorf("%s: Append() = %T, want an *InvalidEventError", tc.name, err)
			continue
		}
		if ie.Index != tc.index || ie.Field != tc.field {
			t.Errorf("%s: Append() = {Index: %d, Field: %q}, want {Index: %d, Field: %q}", tc.name, ie.Index, ie.Field, tc.index, tc.field)
		}
	}
	if v := f.version(st); v != 1 {
		t.Errorf("Version(%s) after invalid appends = %d, want 1", st, v)
	}
	if v := f.version(fresh); v != 0 {
		t.Errorf("Version(%s) after an invalid append = %d, want 0", fresh, v)
	}
	if got := f.readAll(head, 100); len(got) != 1 {
		t.Errorf("ReadAll() after invalid appends returned %d of the check's events, want 1 (the seed)", len(got))
	}
}

// checkReadStream reads a stream of 10 events from various versions, in
// both directions, with limits.
func checkReadStream(t testing.TB, s eventstore.Store) {
	f := newFixture(t, s)
	st := f.stream("ten")
	f.append(st, eventstore.NoStream, f.events("a", 3)...)
	f.append(st, eventstore.Exact(3), f.events("b", 3)...)
	f.append(st, eventstore.Exact(6), f.events("c", 4)...)

	versions := func(from, to int64) []int64 {
		var out []int64
		step := int64(1)
		if from > to {
			step = -1
		}
		for v := from; v != to+step; v += step {
			out = append(out, v)
		}
		return out
	}
	tests := []struct {
		stream string
		from   int64
		dir    eventstore.Direction
		limit  int
		want   []int64
	}{
		{st, 1, eventstore.Forwards, 100, versions(1, 10)},
		{st, 0, eventstore.Forwards, 100, versions(1, 10)},
		{st, 1, eventstore.Forwards, 10, versions(1, 10)},
		{st, 1, eventstore.Forwards, 1, []int64{1}},
		{st, 4, eventstore.Forwards, 3, versions(4, 6)},
		{st, 8, eventstore.Forwards, 100, versions(8, 10)},
		{st, 10, eventstore.Forwards, 100, []int64{10}},
		{st, 11, eventstore.Forwards, 100, nil},
		{st, 0, eventstore.Backwards, 100, versions(10, 1)},
		{st, 0, eventstore.Backwards, 3, versions(10, 8)},
		{st, 10, eventstore.Backwards, 2, versions(10, 9)},
		{st, 5, eventstore.Backwards, 2, versions(5, 4)},
		{st, 5, eventstore.Backwards, 100, versions(5, 1)},
		{st, 1, eventstore.Backwards, 100, []int64{1}},
		{st, 20, eventstore.Backwards, 3, versions(10, 8)},
		{f.stream("empty"), 1, eventstore.Forwards, 100, nil},
		{f.stream("empty"), 0, eventstore.Backwards, 100, nil},
	}
	for _, tc := range tests {
		dir := "Forwards"
		if tc.dir == eventstore.Backwards {
			dir = "Backwards"
		}
		got, err := s.ReadStream(f.ctx, tc.stream, tc.from, tc.dir, tc.limit)
		if err != nil {
			t.Errorf("ReadStream(%s, %d, %s, %d) = %v", tc.stream, tc.from, dir, tc.limit, err)
			continue
		}
		var gotV []int64
		for _, e := range got {
			gotV = append(gotV, e.Version)
			if e.StreamID != tc.stream {
				t.Errorf("ReadStream(%s, ...) returned an event of stream %q", tc.stream, e.StreamID)
			}
		}
		if !slices.Equal(gotV, tc.want) {
			t.Errorf("ReadStream(%s, %d, %s, %d) versions = %v, want %v", tc.stream, tc.from, dir, tc.limit, gotV, tc.want)
		}
	}
}

// checkReadAll reads events of several streams, interleaved, from the
// global log, in one read and in pages.
func checkReadAll(t testing.TB, s eventstore.Store) {
	f := newFixture(t, s)
	head := f.head()
	a, b, c := f.stream("a"), f.stream("b"), f.stream("c")
	type step struct {
		stream string
		n      int
	}
	var want []string // IDs in append order
	var results []eventstore.AppendResult
	for i, st := range []step{{a, 1}, {b, 2}, {a, 1}, {c, 3}, {b, 1}, {a, 2}, {c, 1}} {
		evs := f.events(fmt.Sprintf("s%d", i), st.n)
		results = append(results, f.append(st.stream, eventstore.Any, evs...))
		for _, e := range evs {
			want = append(want, e.ID)
		}
	}

	whole := f.readAll(head, 1000)
	var gotIDs []string
	for _, e := range whole {
		gotIDs = append(gotIDs, e.ID)
	}
	if !slices.Equal(gotIDs, want) {
		t.Fatalf("ReadAll() IDs = %v, want the append order %v", gotIDs, want)
	}
	// Each append's events are contiguous in the log, at the positions
	// Append returned.
	i := 0
	for j, r := range results {
		n := []int{1, 2, 1, 3, 1, 2, 1}[j]
		if whole[i].Position != r.FirstPosition || whole[i+n-1].Position != r.LastPosition {
			t.Errorf("append %d: positions read [%d, %d], Append returned [%d, %d]", j, whole[i].Position, whole[i+n-1].Position, r.FirstPosition, r.LastPosition)
		}
		i += n
	}
	// The same events as the stream reads.
	byID := make(map[string]eventstore.RecordedEvent)
	for _, st := range []string{a, b, c} {
		for _, e := range f.readStream(st) {
			byID[e.ID] = e
		}
	}
	for _, e := range whole {
		f.checkRecorded("ReadAll", e, byID[e.ID].StreamID, byID[e.ID].Version, byID[e.ID].Event)
		if e.Position != byID[e.ID].Position {
			t.Errorf("event %s: ReadAll position %d, ReadStream %d", e.ID, e.Position, byID[e.ID].Position)
		}
	}

	for _, size := range []int{1, 2, 5} {
		paged := f.readAll(head, size)
		if len(paged) != len(whole) {
			t.Errorf("ReadAll in pages of %d returned %d events, want %d", size, len(paged), len(whole))
			continue
		}
		for k := range paged {
			if paged[k].ID != whole[k].ID || paged[k].Position != whole[k].Position {
				t.Errorf("ReadAll in pages of %d: event %d is %s at %d, want %s at %d", size, k, paged[k].ID, paged[k].Position, whole[k].ID, whole[k].Position)
				break
			}
		}
	}
	// From a position just below an event's: that event first.
	if got := f.readAll(whole[2].Position-1, 100); len(got) != len(whole)-2 || got[0].ID != whole[2].ID {
		t.Errorf("ReadAll(%d) did not start at event %s", whole[2].Position-1, whole[2].ID)
	}
	// After the last event: nothing.
	if got := f.readAll(whole[len(whole)-1].Position, 100); len(got) != 0 {
		t.Errorf("ReadAll(last position) returned %d events, want 0", len(got))
	}
}

// checkDeleteStream deletes a stream: its reads and appends fail with
// ErrStreamDeleted, its events stay in the global log, other streams are
// untouched.
func checkDeleteStream(t testing.TB, s eventstore.Store) {
	f := newFixture(t, s)
	head := f.head()
	gone, kept := f.stream("gone"), f.stream("kept")
	f.append(gone, eventstore.NoStream, f.events("g", 3)...)
	f.append(kept, eventstore.NoStream, f.events("k", 1)...)

	if err := s.DeleteStream(f.ctx, gone); err != nil {
		t.Fatalf("DeleteStream() = %v", err)
	}
	for _, dir := range []eventstore.Direction{eventstore.Forwards, eventstore.Backwards} {
		if got, err := s.ReadStream(f.ctx, gone, 0, dir, 100); !errors.Is(err, eventstore.ErrStreamDeleted) {
			t.Errorf("ReadStream(deleted, dir %d) = %d events, %v; want %v", dir, len(got), err, eventstore.ErrStreamDeleted)
		}
	}
	for _, expected := range []eventstore.ExpectedVersion{eventstore.Any, eventstore.NoStream, eventstore.Exact(3)} {
		if _, err := s.Append(f.ctx, gone, expected, f.event("after-"+expected.String())); !errors.Is(err, eventstore.ErrStreamDeleted) {
			t.Errorf("Append(deleted, %v) = %v, want %v", expected, err, eventstore.ErrStreamDeleted)
		}
	}
	if got := f.readStream(kept); len(got) != 1 {
		t.Errorf("ReadStream(another stream) returned %d events, want 1", len(got))
	}
	f.append(kept, eventstore.Exact(1), f.event("k-more"))

	// The deleted stream's events stay in the global log (the Store
	// contract, unless a backend documents otherwise).
	var gotGone int
	for _, e := range f.readAll(head, 100) {
		if e.StreamID == gone {
			gotGone++
		}
	}
	if gotGone != 3 {
		t.Errorf("ReadAll() after DeleteStream has %d of the deleted stream's events, want 3", gotGone)
	}
}
