package eventstoretest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/eventstore/eventstoretest"
)

// lastWriteWinsStore stores every snapshot it is given: an older one
// replaces a newer.
type lastWriteWinsStore struct{ *memStore }

func (s lastWriteWinsStore) SaveSnapshot(ctx context.Context, snap eventstore.Snapshot) error {
	if err := s.memStore.SaveSnapshot(ctx, snap); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	snap.RecordedAt = time.Now().UTC()
	s.snaps[snap.StreamID] = snap // even if older than the stored one
	return nil
}

// keptSnapshotStore keeps a deleted stream's snapshot.
type keptSnapshotStore struct{ *memStore }

func (s keptSnapshotStore) DeleteStream(ctx context.Context, stream string) error {
	s.mu.Lock()
	snap, ok := s.snaps[stream]
	s.mu.Unlock()
	if err := s.memStore.DeleteStream(ctx, stream); err != nil {
		return err
	}
	if ok {
		s.mu.Lock()
		s.snaps[stream] = snap
		s.mu.Unlock()
	}
	return nil
}

func (s keptSnapshotStore) LoadSnapshot(_ context.Context, stream string) (eventstore.Snapshot, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap, ok := s.snaps[stream]
	return snap, ok, nil
}

// TestSnapshotsCheckFails proves that the Snapshots check fails stores
// with a snapshot bug, and skips a store without snapshots.
func TestSnapshotsCheckFails(t *testing.T) {
	mem := func(t *testing.T) *memStore { return newMemStore(t).(*memStore) }
	for _, tc := range []struct {
		name  string
		store func(t *testing.T) eventstore.Store
	}{
		{"LastWriteWins", func(t *testing.T) eventstore.Store { return lastWriteWinsStore{mem(t)} }},
		{"KeptSnapshot", func(t *testing.T) eventstore.Store { return keptSnapshotStore{mem(t)} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msgs := runCheck(t, "Snapshots", tc.store(t))
			if len(msgs) == 0 {
				t.Fatalf("check Snapshots passed against %s, want a failure", tc.name)
			}
			t.Logf("failed as expected: %s", strings.Join(msgs, "; "))
		})
	}

	var sub *testing.T
	t.Run("NoSnapshotStore", func(t *testing.T) {
		sub = t
		// skipStore embeds the Store interface only: no snapshots.
		runCheckOn(t, "Snapshots", skipStore{newMemStore(t)})
	})
	if !sub.Skipped() {
		t.Errorf("check Snapshots did not skip a store without snapshots")
	}
}

// runCheckOn runs the check called name against s on t itself.
func runCheckOn(t *testing.T, name string, s eventstore.Store) {
	t.Helper()
	for _, c := range eventstoretest.Checks() {
		if c.Name == name {
			c.Func(t, s)
			return
		}
	}
	t.Fatalf("no check called %q", name)
}
