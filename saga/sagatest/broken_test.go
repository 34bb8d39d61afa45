package sagatest_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/saga"
	"github.com/cairnhq/cairn/saga/sagatest"
)

// recorder is a testing.TB that records failures instead of reporting
// them, so that a test can expect a check to fail.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	msgs []string
}

func (r *recorder) fail(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, msg)
}

func (r *recorder) Error(args ...any)                 { r.fail(fmt.Sprint(args...)) }
func (r *recorder) Errorf(format string, args ...any) { r.fail(fmt.Sprintf(format, args...)) }
func (r *recorder) Fatal(args ...any)                 { r.fail(fmt.Sprint(args...)); runtime.Goexit() }
func (r *recorder) Fatalf(format string, args ...any) {
	r.fail(fmt.Sprintf(format, args...))
	runtime.Goexit()
}
func (r *recorder) Fail()    { r.fail("Fail called") }
func (r *recorder) FailNow() { r.fail("FailNow called"); runtime.Goexit() }
func (r *recorder) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs) > 0
}

// runCheck runs the check called name against s on a recorder and returns
// its failure messages.
func runCheck(t *testing.T, name string, s saga.Store) []string {
	t.Helper()
	i := slices.IndexFunc(sagatest.Checks(), func(c sagatest.Check) bool { return c.Name == name })
	if i < 0 {
		t.Fatalf("no check called %q", name)
	}
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sagatest.Checks()[i].Func(r, s)
	}()
	<-done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.msgs
}

// unfenced's Update ignores the version and the owner of its argument.
type unfenced struct{ *sagatest.MemStore }

func (s unfenced) Update(ctx context.Context, inst saga.Instance, lease time.Duration) (saga.Instance, error) {
	cur, err := s.Get(ctx, inst.ID)
	if err != nil {
		return saga.Instance{}, saga.ErrLeaseLost
	}
	inst.Version, inst.Owner = cur.Version, cur.Owner
	return s.MemStore.Update(ctx, inst, lease)
}

// greedy's Claim ignores leases and owners: it returns every instance of
// the definitions that is not final, as it is.
type greedy struct {
	*sagatest.MemStore
	mu  sync.Mutex
	ids []string // created, in order: MemStore has no listing
}

func newGreedy() *greedy { return &greedy{MemStore: sagatest.NewMemStore()} }

func (s *greedy) Create(ctx context.Context, inst saga.Instance, lease time.Duration) (saga.Instance, bool, error) {
	s.mu.Lock()
	s.ids = append(s.ids, inst.ID)
	s.mu.Unlock()
	return s.MemStore.Create(ctx, inst, lease)
}

func (s *greedy) Claim(ctx context.Context, owner string, defs []string, lease time.Duration, limit int) ([]saga.Instance, error) {
	s.mu.Lock()
	ids := slices.Clone(s.ids)
	s.mu.Unlock()
	var out []saga.Instance
	for _, id := range ids {
		inst, err := s.Get(ctx, id)
		if err == nil && len(out) < limit && !inst.Status.Final() && slices.Contains(defs, inst.Definition) {
			out = append(out, inst)
		}
	}
	return out, nil
}

func TestBrokenStores(t *testing.T) {
	tests := []struct {
		name, check, want string
		store             saga.Store
	}{
		{"unfenced update", "UpdateFencing", "stale version", unfenced{sagatest.NewMemStore()}},
		{"claim ignores leases", "LeaseExpiry", "Claim of a held lease", newGreedy()},
		{"claim hands one instance to several owners", "ConcurrentClaims", "claimed by", newGreedy()},
		{"claim ignores leases and owners, so the takeover never finishes", "CrashTakeover", "", newGreedy()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs := runCheck(t, tt.check, tt.store)
			if len(msgs) == 0 {
				t.Fatalf("check %s passed against a broken store", tt.check)
			}
			if !slices.ContainsFunc(msgs, func(m string) bool { return strings.Contains(m, tt.want) }) {
				t.Errorf("check %s against a broken store: failures %q, want one containing %q", tt.check, msgs, tt.want)
			}
		})
	}
}

func TestMemStorePassesEachCheck(t *testing.T) {
	for _, c := range sagatest.Checks() {
		if c.Name == "CrashTakeover" {
			continue // TestMemStore runs it; it takes a second
		}
		if msgs := runCheck(t, c.Name, sagatest.NewMemStore()); len(msgs) > 0 {
			t.Errorf("check %s against MemStore failed: %q", c.Name, msgs)
		}
	}
}
