// Package eventstoretest is the conformance suite of [eventstore.Store]:
// every backend runs [Run] from its tests, against a fresh store per
// check, and passes it before it is used. The suite checks the contract
// written on eventstore's types: round trips, versions, optimistic
// concurrency under contention, idempotent appends, atomicity, stream and
// global-log reads, deletion, the no-skip guarantee of the global log with
// concurrent writers, [eventstore.Subscribe] over the store, size limits
// and context cancellation. A store that implements the optional
// [eventstore.SnapshotStore] is checked for it too; the Snapshots check
// skips (t.Skip) a store that does not.
//
// Each check is also available on its own through [Checks], as a function
// of a [testing.TB], so a backend can run a subset and the suite's own
// tests can prove that it fails against broken stores.
package eventstoretest

import (
	"testing"

	"github.com/cairnhq/cairn/eventstore"
)

// A Check is one conformance check of an [eventstore.Store].
type Check struct {
	// Name is the check's subtest name in [Run], such as "ReadAll".
	Name string
	// Func runs the check against s, reporting failures on t. It uses
	// t.Context() for its calls, calls t.FailNow (through t.Fatal) only
	// from the goroutine that called it, and returns with every goroutine
	// it started finished. It does not close s.
	Func func(t testing.TB, s eventstore.Store)
}

// Checks returns the conformance checks, in the order [Run] runs them.
// Each call returns a new slice.
func Checks() []Check {
	return []Check{
		{"AppendReadRoundTrip", checkRoundTrip},
		{"Version", checkVersions},
		{"ExpectedVersion", checkExpectedVersion},
		{"ConcurrentWriters", checkConcurrentWriters},
		{"Idempotence", checkIdempotence},
		{"DuplicateEvent", checkDuplicateEvent},
		{"InvalidEvent", checkInvalidEvent},
		{"ReadStream", checkReadStream},
		{"ReadAll", checkReadAll},
		{"DeleteStream", checkDeleteStream},
		{"GlobalLogNoSkip", checkGlobalLogNoSkip},
		{"Subscribe", checkSubscribe},
		{"LargeEvent", checkLargeEvent},
		{"MaxAppendEvents", checkMaxAppendEvents},
		{"ContextCancellation", checkContextCancellation},
		{"Snapshots", checkSnapshots},
		{"Upcasting", checkUpcasting},
		{"Checkpoints", checkCheckpoints},
		{"Shredding", checkShredding},
	}
}

// Run runs every check of [Checks] as a subtest of t, in order and not in
// parallel, each against a new store from newStore.
//
// newStore must return an empty, open store, and must clean it up itself
// (close it, drop its database or schema) with t.Cleanup on the subtest's
// t it is given; Run never calls Close. The checks prefix every stream and
// event ID with a random string and compare only their own events, but
// they assume that nothing else writes to the store while they run.
//
// The suite takes a few seconds against an embedded backend; it keeps its
// counts modest (at most 16 concurrent writers, a few hundred events, one
// append of [eventstore.MaxAppendEvents] events) so that a networked
// backend passes in reasonable time too.
func Run(t *testing.T, newStore func(t *testing.T) eventstore.Store) {
	t.Helper()
	for _, c := range Checks() {
		t.Run(c.Name, func(t *testing.T) {
			s := newStore(t)
			if s == nil {
				t.Fatal("newStore returned nil")
			}
			c.Func(t, s)
		})
	}
}
