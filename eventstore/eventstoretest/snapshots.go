package eventstoretest

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/eventstore"
)

// checkSnapshots checks [eventstore.SnapshotStore]: save and load, the
// newest snapshot wins whatever the order of the saves, a snapshot ahead
// of its stream is refused, and deleting a stream deletes its snapshot. It
// skips (t.Skip) a store that does not implement the interface.
func checkSnapshots(t testing.TB, s eventstore.Store) {
	ss, ok := s.(eventstore.SnapshotStore)
	if !ok {
		t.Skipf("%T does not implement eventstore.SnapshotStore", s)
	}
	f := newFixture(t, s)
	ctx := f.ctx
	a, b := f.stream("a"), f.stream("b")

	load := func(stream string) (eventstore.Snapshot, bool) {
		t.Helper()
		snap, found, err := ss.LoadSnapshot(ctx, stream)
		if err != nil {
			t.Fatalf("LoadSnapshot(%s) = %v", stream, err)
		}
		return snap, found
	}
	save := func(snap eventstore.Snapshot) {
		t.Helper()
		if err := ss.SaveSnapshot(ctx, snap); err != nil {
			t.Fatalf("SaveSnapshot(%s at %d) = %v, want success", snap.StreamID, snap.Version, err)
		}
	}
	snapAt := func(stream string, v int64) eventstore.Snapshot {
		return eventstore.Snapshot{StreamID: stream, Version: v, Type: "test.state", Data: []byte(`{"at":` + strconv.FormatInt(v, 10) + `}`)}
	}
	expect := func(what, stream string, want eventstore.Snapshot) {
		t.Helper()
		got, found := load(stream)
		if !found {
			t.Fatalf("%s: LoadSnapshot(%s) found none, want version %d", what, stream, want.Version)
		}
		if got.StreamID != want.StreamID || got.Version != want.Version || got.Type != want.Type || !bytes.Equal(got.Data, want.Data) {
			t.Errorf("%s: LoadSnapshot(%s) = {%s %d %s %q}, want {%s %d %s %q}", what, stream,
				got.StreamID, got.Version, got.Type, got.Data, want.StreamID, want.Version, want.Type, want.Data)
		}
		if got.RecordedAt.IsZero() || got.RecordedAt.Location() != time.UTC {
			t.Errorf("%s: LoadSnapshot(%s).RecordedAt = %v, want a time in UTC", what, stream, got.RecordedAt)
		}
	}

	if _, found := load(a); found {
		t.Errorf("LoadSnapshot(new stream) found a snapshot, want none")
	}
	// A stream with no events has no version a snapshot may be of.
	if err := ss.SaveSnapshot(ctx, snapAt(a, 1)); !errors.Is(err, eventstore.ErrSnapshotAhead) {
		t.Errorf("SaveSnapshot(new stream, version 1) = %v, want ErrSnapshotAhead", err)
	}

	f.append(a, eventstore.NoStream, f.events("a", 5)...)
	f.append(b, eventstore.NoStream, f.events("b", 2)...)

	// Round trip, binary data included.
	first := snapAt(a, 3)
	first.Data = []byte{0, 1, 2, 0xff, 0xfe, '\n', 0}
	first.RecordedAt = time.Date(2001, 1, 1, 0, 0, 0, 0, time.Local) // ignored
	save(first)
	first.RecordedAt = time.Time{}
	expect("save", a, first)
	if got, _ := load(a); got.RecordedAt.Year() == 2001 {
		t.Errorf("LoadSnapshot().RecordedAt = %v, the caller's, want the store's time", got.RecordedAt)
	}

	// Newer wins; older is ignored, without error; the same version
	// replaces.
	save(snapAt(a, 5))
	expect("newer", a, snapAt(a, 5))
	save(snapAt(a, 4))
	expect("older after newer", a, snapAt(a, 5))
	same := snapAt(a, 5)
	same.Type, same.Data = "test.state.v2", nil
	save(same)
	expect("same version", a, same)

	// Ahead of the stream: refused, naming both versions; nothing changes.
	err := ss.SaveSnapshot(ctx, snapAt(a, 6))
	var ahead *eventstore.SnapshotAheadError
	switch {
	case !errors.As(err, &ahead) || !errors.Is(err, eventstore.ErrSnapshotAhead):
		t.Errorf("SaveSnapshot(version 6 of a stream at 5) = %v, want a *SnapshotAheadError", err)
	case ahead.Stream != a || ahead.Version != 6 || ahead.Current != 5:
		t.Errorf("SaveSnapshot(version 6 of a stream at 5) = %+v, want stream %s, version 6, current 5", *ahead, a)
	case !strings.Contains(err.Error(), "6") || !strings.Contains(err.Error(), "5"):
		t.Errorf("SaveSnapshot() error %q does not name both versions", err)
	}
	expect("after refused save", a, same)

	// Invalid snapshots.
	for _, bad := range []eventstore.Snapshot{
		{StreamID: "", Version: 1, Type: "test.state"},
		{StreamID: a, Version: 0, Type: "test.state"},
		{StreamID: a, Version: -1, Type: "test.state"},
		{StreamID: a, Version: 1, Type: ""},
		{StreamID: a, Version: 1, Type: strings.Repeat("t", eventstore.MaxIDLength+1)},
	} {
		if err := ss.SaveSnapshot(ctx, bad); !errors.Is(err, eventstore.ErrInvalidEvent) {
			t.Errorf("SaveSnapshot(stream %q, version %d, type of %d bytes) = %v, want ErrInvalidEvent", bad.StreamID, bad.Version, len(bad.Type), err)
		}
	}
	expect("after invalid saves", a, same)

	// Streams are independent; deleting one deletes its snapshot only.
	save(snapAt(b, 2))
	expect("other stream", b, snapAt(b, 2))
	if err := s.DeleteStream(ctx, a); err != nil {
		t.Fatalf("DeleteStream(%s) = %v", a, err)
	}
	if _, found, err := ss.LoadSnapshot(ctx, a); !errors.Is(err, eventstore.ErrStreamDeleted) || found {
		t.Errorf("LoadSnapshot(deleted stream) = %v, %v, want ErrStreamDeleted", found, err)
	}
	if err := ss.SaveSnapshot(ctx, snapAt(a, 5)); !errors.Is(err, eventstore.ErrStreamDeleted) {
		t.Errorf("SaveSnapshot(deleted stream) = %v, want ErrStreamDeleted", err)
	}
	expect("after deleting another stream", b, snapAt(b, 2))
}
