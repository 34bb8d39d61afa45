package sagatest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cairnhq/cairn/saga"
)

// waitFor is the longest a check waits for a lease to expire.
const waitFor = 10 * time.Second

// shortLease is the lease of the checks that wait for one to expire.
const shortLease = 50 * time.Millisecond

// newInstance returns an instance of definition def to create.
func newInstance(id, def, owner string) saga.Instance {
	return saga.Instance{
		ID: id, Definition: def, Status: saga.StatusRunning, Owner: owner,
		Input: []byte(`{"amount":42,"note":"é\"x"}`), Data: []byte(`{"amount":42,"note":"é\"x"}`),
		Steps:       []saga.StepState{{Name: "reserve", Status: saga.StepPending}, {Name: "pay", Status: saga.StepPending}},
		TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", TraceState: "a=b",
	}
}

// mustCreate creates inst and fails t unless it was created.
func mustCreate(t testing.TB, s saga.Store, inst saga.Instance, lease time.Duration) saga.Instance {
	t.Helper()
	got, created, err := s.Create(t.Context(), inst, lease)
	if err != nil || !created {
		t.Fatalf("Create(%q) = created %v, %v; want created", inst.ID, created, err)
	}
	return got
}

// same compares the fields of an instance that a caller writes.
func same(t testing.TB, what string, got, want saga.Instance) {
	t.Helper()
	type fields struct {
		ID, Definition, Error, TraceParent, TraceState, Owner string
		Status                                                saga.Status
		Input, Data                                           string
		Steps                                                 []saga.StepState
	}
	f := func(i saga.Instance) fields {
		return fields{i.ID, i.Definition, i.Error, i.TraceParent, i.TraceState, i.Owner, i.Status, string(i.Input), string(i.Data), i.Steps}
	}
	if diff := cmp.Diff(f(want), f(got)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", what, diff)
	}
}

func checkCreateGet(t testing.TB, s saga.Store) {
	ctx := t.Context()
	p := prefix()
	in := newInstance(p+"1", p+"def", "owner-a")
	before := time.Now()
	got := mustCreate(t, s, in, time.Minute)
	same(t, "Create", got, in)
	if got.Version != 1 {
		t.Errorf("Create: Version = %d, want 1", got.Version)
	}
	if got.LeaseExpires.Before(before.Add(50*time.Second)) || got.LeaseExpires.After(time.Now().Add(70*time.Second)) {
		t.Errorf("Create: LeaseExpires = %v, want about a minute after %v", got.LeaseExpires, before)
	}
	if got.CreatedAt.IsZero() || got.UpdatedAt.IsZero() {
		t.Errorf("Create: CreatedAt = %v, UpdatedAt = %v, want both set", got.CreatedAt, got.UpdatedAt)
	}
	read, err := s.Get(ctx, in.ID)
	if err != nil {
		t.Fatalf("Get(%q): %v", in.ID, err)
	}
	same(t, "Get", read, in)
	if read.Version != 1 || !read.LeaseExpires.Equal(got.LeaseExpires) {
		t.Errorf("Get: Version %d, LeaseExpires %v; want 1, %v", read.Version, read.LeaseExpires, got.LeaseExpires)
	}
	if _, err := s.Get(ctx, p+"missing"); !errors.Is(err, saga.ErrNotFound) {
		t.Errorf("Get(missing) error = %v, want saga.ErrNotFound", err)
	}
}

func checkCreateIdempotent(t testing.TB, s saga.Store) {
	p := prefix()
	in := newInstance(p+"1", p+"def", "owner-a")
	mustCreate(t, s, in, time.Minute)
	again := newInstance(p+"1", p+"other", "owner-b")
	again.Input = []byte(`{"amount":1}`)
	got, created, err := s.Create(t.Context(), again, time.Minute)
	if err != nil || created {
		t.Fatalf("Create(existing) = created %v, %v; want not created, no error", created, err)
	}
	same(t, "Create(existing) returned", got, in)
	read, err := s.Get(t.Context(), in.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	same(t, "Get after Create(existing)", read, in)
}

func checkUpdateFencing(t testing.TB, s saga.Store) {
	ctx := t.Context()
	p := prefix()
	v1 := mustCreate(t, s, newInstance(p+"1", p+"def", "owner-a"), time.Minute)

	next := v1
	next.Status, next.Data, next.Error = saga.StatusCompensating, []byte(`{"amount":42,"payment":"p-1"}`), "step \"pay\": declined"
	next.Steps = []saga.StepState{{Name: "reserve", Status: saga.StepSucceeded, Attempts: 1}, {Name: "pay", Status: saga.StepFailed, Attempts: 2, Error: "declined"}}
	v2, err := s.Update(ctx, next, time.Minute)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	same(t, "Update returned", v2, next)
	if v2.Version != 2 {
		t.Errorf("Update: Version = %d, want 2", v2.Version)
	}

	stale := next
	stale.Status = saga.StatusCompleted
	if _, err := s.Update(ctx, stale, time.Minute); !errors.Is(err, saga.ErrLeaseLost) {
		t.Errorf("Update with stale version 1 error = %v, want saga.ErrLeaseLost", err)
	}
	other := v2
	other.Owner, other.Status = "owner-b", saga.StatusCompleted
	if _, err := s.Update(ctx, other, time.Minute); !errors.Is(err, saga.ErrLeaseLost) {
		t.Errorf("Update by another owner error = %v, want saga.ErrLeaseLost", err)
	}
	missing := newInstance(p+"missing", p+"def", "owner-a")
	missing.Version = 1
	if _, err := s.Update(ctx, missing, time.Minute); !errors.Is(err, saga.ErrLeaseLost) {
		t.Errorf("Update of a missing instance error = %v, want saga.ErrLeaseLost", err)
	}
	if err := s.Renew(ctx, v1.ID, "owner-b", time.Minute); !errors.Is(err, saga.ErrLeaseLost) {
		t.Errorf("Renew by another owner error = %v, want saga.ErrLeaseLost", err)
	}
	read, err := s.Get(ctx, v1.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	same(t, "Get after refused updates", read, v2)
	if read.Version != 2 {
		t.Errorf("Get after refused updates: Version = %d, want 2", read.Version)
	}
}

// waitClaim claims for owner until it gets an instance or waitFor passes.
func waitClaim(t testing.TB, s saga.Store, owner, def string, lease time.Duration) []saga.Instance {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		got, err := s.Claim(t.Context(), owner, []string{def}, lease, 10)
		if err != nil {
			t.Fatalf("Claim: %v", err)
		}
		if len(got) > 0 || time.Now().After(deadline) {
			return got
		}
		time.Sleep(5 * time.Millisecond) // polling an external clock, not synchronisation
	}
}

func checkLeaseExpiry(t testing.TB, s saga.Store) {
	ctx := t.Context()
	p := prefix()
	def := p + "def"
	held := mustCreate(t, s, newInstance(p+"held", def, "owner-a"), time.Minute)
	if got, err := s.Claim(ctx, "owner-b", []string{def}, time.Minute, 10); err != nil || len(got) != 0 {
		t.Fatalf("Claim of a held lease = %d instances, %v; want none", len(got), err)
	}
	short := mustCreate(t, s, newInstance(p+"short", def, "owner-a"), shortLease)
	got := waitClaim(t, s, "owner-b", def, time.Minute)
	if len(got) != 1 || got[0].ID != short.ID {
		t.Fatalf("Claim after the lease expired = %v, want only %q", ids(got), short.ID)
	}
	if got[0].Owner != "owner-b" || got[0].Version != short.Version+1 || got[0].LeaseExpires.Before(time.Now().Add(50*time.Second)) {
		t.Errorf("claimed instance: owner %q version %d lease %v; want owner-b, version %d, a minute's lease", got[0].Owner, got[0].Version, got[0].LeaseExpires, short.Version+1)
	}
	if err := s.Renew(ctx, short.ID, "owner-a", time.Minute); !errors.Is(err, saga.ErrLeaseLost) {
		t.Errorf("Renew by the old owner error = %v, want saga.ErrLeaseLost", err)
	}
	if _, err := s.Update(ctx, short, time.Minute); !errors.Is(err, saga.ErrLeaseLost) {
		t.Errorf("Update by the old owner error = %v, want saga.ErrLeaseLost", err)
	}
	if _, err := s.Update(ctx, got[0], time.Minute); err != nil {
		t.Errorf("Update by the new owner: %v", err)
	}
	if err := s.Renew(ctx, held.ID, "owner-a", time.Minute); err != nil {
		t.Errorf("Renew by the holder: %v", err)
	}

	// A renewed lease outlives its first expiry: an instance created with
	// the same lease later is claimable first.
	def2 := p + "def2"
	renewed := mustCreate(t, s, newInstance(p+"renewed", def2, "owner-a"), time.Second)
	if err := s.Renew(ctx, renewed.ID, "owner-a", time.Minute); err != nil {
		t.Fatalf("Renew: %v", err)
	}
	probe := mustCreate(t, s, newInstance(p+"probe", def2, "owner-a"), time.Second)
	if got := waitClaim(t, s, "owner-b", def2, time.Minute); len(got) != 1 || got[0].ID != probe.ID {
		t.Errorf("Claim after the first lease expired = %v, want only %q (the renewed one must stay held)", ids(got), probe.ID)
	}

	// An expired lease cannot be renewed, even before anyone claims it.
	lapsed := mustCreate(t, s, newInstance(p+"lapsed", p+"def3", "owner-a"), shortLease)
	for time.Now().Before(lapsed.LeaseExpires.Add(20 * time.Millisecond)) {
		time.Sleep(5 * time.Millisecond) // waiting for an external clock
	}
	if err := s.Renew(ctx, lapsed.ID, "owner-a", time.Minute); !errors.Is(err, saga.ErrLeaseLost) {
		t.Errorf("Renew of an expired lease error = %v, want saga.ErrLeaseLost", err)
	}
	lapsed.Status = saga.StatusCompleted
	if _, err := s.Update(ctx, lapsed, time.Minute); !errors.Is(err, saga.ErrLeaseLost) {
		t.Errorf("Update under an expired lease error = %v, want saga.ErrLeaseLost", err)
	}
}

func mustGet(t testing.TB, s saga.Store, id string) saga.Instance {
	t.Helper()
	inst, err := s.Get(t.Context(), id)
	if err != nil {
		t.Fatalf("Get(%q): %v", id, err)
	}
	return inst
}

func ids(insts []saga.Instance) []string {
	var out []string
	for _, i := range insts {
		out = append(out, i.ID)
	}
	return out
}

func checkClaimFilters(t testing.TB, s saga.Store) {
	ctx := t.Context()
	p := prefix()
	def, other := p+"def", p+"other"
	var want []string
	statuses := []saga.Status{saga.StatusRunning, saga.StatusCompensating, saga.StatusStuck, saga.StatusCompleted, saga.StatusCompensated}
	for i, status := range statuses {
		// A long lease, for the update, then a short one, to be claimed.
		inst := mustCreate(t, s, newInstance(fmt.Sprintf("%s%d", p, i), def, "owner-a"), time.Minute)
		inst.Status = status
		if _, err := s.Update(ctx, inst, shortLease); err != nil {
			t.Fatalf("Update: %v", err)
		}
		if !status.Final() { // final instances are never claimed
			want = append(want, inst.ID)
		}
	}
	mustCreate(t, s, newInstance(p+"x", other, "owner-a"), shortLease)
	time.Sleep(2 * shortLease) // let the leases lapse; the claims below poll anyway
	var got []string
	deadline := time.Now().Add(waitFor)
	for len(got) < len(want) && time.Now().Before(deadline) {
		batch, err := s.Claim(ctx, "owner-b", []string{def, p + "nothing"}, time.Minute, 2)
		if err != nil {
			t.Fatalf("Claim: %v", err)
		}
		if len(batch) > 2 {
			t.Fatalf("Claim with limit 2 returned %d instances", len(batch))
		}
		got = append(got, ids(batch)...)
		if len(batch) == 0 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	if diff := cmp.Diff(sorted(want), sorted(got)); diff != "" {
		t.Errorf("claimed instances (-want +got):\n%s", diff)
	}
	if left, err := s.Claim(ctx, "owner-c", []string{def}, time.Minute, 10); err != nil || len(left) != 0 {
		t.Errorf("Claim after all were claimed = %v, %v; want none", ids(left), err)
	}
	if x, err := s.Claim(ctx, "owner-c", []string{other}, time.Minute, 10); err != nil || len(x) != 1 {
		t.Errorf("Claim of the other definition = %v, %v; want %sx", ids(x), err, p)
	}
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

func checkConcurrentClaims(t testing.TB, s saga.Store) {
	ctx := t.Context()
	p := prefix()
	def := p + "def"
	const n, claimers = 40, 4
	for i := range n {
		mustCreate(t, s, newInstance(fmt.Sprintf("%s%02d", p, i), def, "owner-a"), shortLease)
	}
	time.Sleep(2 * shortLease) // let the leases lapse; the claims below poll anyway
	var mu sync.Mutex
	seen := make(map[string]string)
	var errs []error
	var wg sync.WaitGroup
	deadline := time.Now().Add(waitFor)
	for c := range claimers {
		owner := fmt.Sprintf("claimer-%d", c)
		wg.Go(func() {
			for time.Now().Before(deadline) {
				batch, err := s.Claim(ctx, owner, []string{def}, time.Minute, 3)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				}
				for _, inst := range batch {
					if prev, ok := seen[inst.ID]; ok {
						errs = append(errs, fmt.Errorf("instance %s claimed by %s and %s", inst.ID, prev, owner))
					}
					seen[inst.ID] = owner
					if inst.Owner != owner {
						errs = append(errs, fmt.Errorf("instance %s claimed by %s has owner %q", inst.ID, owner, inst.Owner))
					}
				}
				done := len(seen) == n || len(errs) > 0
				mu.Unlock()
				if done {
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	if len(seen) != n {
		t.Errorf("claimed %d instances, want %d", len(seen), n)
	}
	for id, owner := range seen {
		if got := mustGet(t, s, id); got.Owner != owner {
			t.Errorf("instance %s: stored owner %q, claimed by %q", id, got.Owner, owner)
		}
	}
}
