// Package sagatest is the conformance suite of [saga.Store]: every backend
// runs [Run] from its tests, against a fresh store per check. The checks
// cover the contract written on saga.Store (round trips, idempotent
// creation, fencing of updates by version, owner and lease, lease expiry
// and renewal, claims that filter and never hand one instance to two
// owners) and, end to end, two orchestrators on one store, one of which
// crashes in the middle of its steps while the other takes over.
//
// Each check is also available on its own through [Checks], so that the
// suite's own tests can prove that it fails against broken stores.
// [MemStore] is an in-memory store that passes the suite.
package sagatest

import (
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/cairnhq/cairn/saga"
)

// A Check is one conformance check of a [saga.Store].
type Check struct {
	// Name is the check's subtest name in [Run].
	Name string
	// Func runs the check against s, reporting failures on t. It uses
	// t.Context(), calls t.Fatal only from the goroutine that called it,
	// and returns with every goroutine it started finished.
	Func func(t testing.TB, s saga.Store)
}

// Checks returns the conformance checks, in the order [Run] runs them.
func Checks() []Check {
	return []Check{
		{"CreateGet", checkCreateGet},
		{"CreateIdempotent", checkCreateIdempotent},
		{"UpdateFencing", checkUpdateFencing},
		{"LeaseExpiry", checkLeaseExpiry},
		{"ClaimFilters", checkClaimFilters},
		{"ConcurrentClaims", checkConcurrentClaims},
		{"CrashTakeover", checkCrashTakeover},
	}
}

// Run runs every check of [Checks] as a subtest of t, in order, each
// against a new store from newStore. newStore must return an empty store
// and clean it up with t.Cleanup on the t it is given. The checks take a
// few seconds: they wait for real leases of tens of milliseconds to
// expire, and the crash check for one of two seconds.
func Run(t *testing.T, newStore func(t *testing.T) saga.Store) {
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

// prefix returns a random prefix for the IDs and definition names of a
// check.
func prefix() string {
	var b [4]byte
	rand.Read(b[:])
	return "t" + hex.EncodeToString(b[:]) + "-"
}
