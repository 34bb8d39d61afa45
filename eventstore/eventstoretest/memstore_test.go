package eventstoretest_test

import (
	"bytes"
	"context"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/eventstore/eventstoretest"
)

// memStore is a simple, mutex-guarded eventstore.Store, to validate the
// conformance suite itself. Positions are the index in log plus one.
type memStore struct {
	mu      sync.Mutex
	log     []eventstore.RecordedEvent
	streams map[string]*memStream
	ids     map[string]stored // event ID -> where it is
	snaps   map[string]eventstore.Snapshot
}

type memStream struct {
	positions []eventstore.Position // of the stream's events, by version-1
	deleted   bool
}

type stored struct {
	pos    eventstore.Position
	result eventstore.AppendResult // of the append that stored it
}

var (
	_ eventstore.Store         = (*memStore)(nil)
	_ eventstore.SnapshotStore = (*memStore)(nil)
)

func newMemStore(t *testing.T) eventstore.Store {
	s := &memStore{streams: make(map[string]*memStream), ids: make(map[string]stored), snaps: make(map[string]eventstore.Snapshot)}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func clone(e eventstore.RecordedEvent) eventstore.RecordedEvent {
	e.Data = bytes.Clone(e.Data)
	e.Metadata.Extra = maps.Clone(e.Metadata.Extra)
	return e
}

func sameContent(a, b eventstore.Event) bool {
	return a.Type == b.Type && max(a.SchemaVersion, 1) == max(b.SchemaVersion, 1) && bytes.Equal(a.Data, b.Data)
}

func (s *memStore) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.Event) (eventstore.AppendResult, error) {
	if err := ctx.Err(); err != nil {
		return eventstore.AppendResult{}, err
	}
	if err := eventstore.Validate(stream, events); err != nil {
		return eventstore.AppendResult{}, err
	}
	if expected < eventstore.StreamExists {
		return eventstore.AppendResult{}, &eventstore.InvalidEventError{Index: -1, Field: "expected version", Reason: "not a version"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[stream]
	if st != nil && st.deleted {
		return eventstore.AppendResult{}, eventstore.ErrStreamDeleted
	}

	// Idempotence: all stored, in this stream, with the same content.
	found := 0
	for _, e := range events {
		prev, ok := s.ids[e.ID]
		if !ok {
			continue
		}
		old := s.log[prev.pos-1]
		if old.StreamID != stream || !sameContent(old.Event, e) {
			return eventstore.AppendResult{}, eventstore.ErrDuplicateEvent
		}
		found++
	}
	if found == len(events) {
		return s.ids[events[0].ID].result, nil
	}
	if found > 0 {
		return eventstore.AppendResult{}, eventstore.ErrDuplicateEvent
	}

	var version int64
	if st != nil {
		version = int64(len(st.positions))
	}
	switch {
	case expected == eventstore.Any:
	case expected == eventstore.StreamExists && version > 0:
	case expected >= 0 && int64(expected) == version:
	default:
		return eventstore.AppendResult{}, &eventstore.VersionConflictError{Stream: stream, Expected: expected, Actual: version}
	}
	if st == nil {
		st = &memStream{}
		s.streams[stream] = st
	}
	now := time.Now().UTC()
	res := eventstore.AppendResult{FirstPosition: eventstore.Position(len(s.log) + 1)}
	for _, e := range events {
		version++
		pos := eventstore.Position(len(s.log) + 1)
		s.log = append(s.log, clone(eventstore.RecordedEvent{Event: e, StreamID: stream, Version: version, Position: pos, RecordedAt: now}))
		st.positions = append(st.positions, pos)
	}
	res.NextExpectedVersion = version
	res.LastPosition = eventstore.Position(len(s.log))
	for i, e := range events {
		s.ids[e.ID] = stored{pos: res.FirstPosition + eventstore.Position(i), result: res}
	}
	return res, nil
}

func (s *memStore) ReadStream(ctx context.Context, stream string, from int64, dir eventstore.Direction, limit int) ([]eventstore.RecordedEvent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[stream]
	if st == nil {
		return []eventstore.RecordedEvent{}, nil
	}
	if st.deleted {
		return nil, eventstore.ErrStreamDeleted
	}
	out := []eventstore.RecordedEvent{}
	n := int64(len(st.positions))
	if dir == eventstore.Forwards {
		for v := max(from, 1); v <= n && len(out) < limit; v++ {
			out = append(out, clone(s.log[st.positions[v-1]-1]))
		}
		return out, nil
	}
	if from == 0 || from > n {
		from = n
	}
	for v := from; v >= 1 && len(out) < limit; v-- {
		out = append(out, clone(s.log[st.positions[v-1]-1]))
	}
	return out, nil
}

func (s *memStore) ReadAll(ctx context.Context, after eventstore.Position, limit int) ([]eventstore.RecordedEvent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []eventstore.RecordedEvent{}
	for i := max(int(after), 0); i < len(s.log) && len(out) < limit; i++ {
		out = append(out, clone(s.log[i]))
	}
	return out, nil
}

func (s *memStore) Version(ctx context.Context, stream string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.streams[stream]; st != nil {
		return int64(len(st.positions)), nil
	}
	return 0, nil
}

func (s *memStore) DeleteStream(ctx context.Context, stream string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[stream]
	if st == nil {
		st = &memStream{}
		s.streams[stream] = st
	}
	st.deleted = true
	delete(s.snaps, stream)
	return nil
}

func (s *memStore) SaveSnapshot(ctx context.Context, snap eventstore.Snapshot) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := eventstore.ValidateSnapshot(snap); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var current int64
	if st := s.streams[snap.StreamID]; st != nil {
		if st.deleted {
			return eventstore.ErrStreamDeleted
		}
		current = int64(len(st.positions))
	}
	if snap.Version > current {
		return &eventstore.SnapshotAheadError{Stream: snap.StreamID, Version: snap.Version, Current: current}
	}
	if old, ok := s.snaps[snap.StreamID]; ok && old.Version > snap.Version {
		return nil
	}
	snap.Data = bytes.Clone(snap.Data)
	if len(snap.Data) == 0 {
		snap.Data = nil
	}
	snap.RecordedAt = time.Now().UTC()
	s.snaps[snap.StreamID] = snap
	return nil
}

func (s *memStore) LoadSnapshot(ctx context.Context, stream string) (eventstore.Snapshot, bool, error) {
	if err := ctx.Err(); err != nil {
		return eventstore.Snapshot{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.streams[stream]; st != nil && st.deleted {
		return eventstore.Snapshot{}, false, eventstore.ErrStreamDeleted
	}
	snap, ok := s.snaps[stream]
	snap.Data = bytes.Clone(snap.Data)
	return snap, ok, nil
}

func (s *memStore) Close() error { return nil }

func TestMemStore(t *testing.T) {
	eventstoretest.Run(t, newMemStore)
}

func TestChecksNamesUnique(t *testing.T) {
	var names []string
	for _, c := range eventstoretest.Checks() {
		if c.Name == "" || c.Func == nil {
			t.Errorf("check %q is incomplete", c.Name)
		}
		names = append(names, c.Name)
	}
	slices.Sort(names)
	if c := slices.Compact(slices.Clone(names)); len(c) != len(names) {
		t.Errorf("check names repeat: %v", names)
	}
}
