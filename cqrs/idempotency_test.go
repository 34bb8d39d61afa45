package cqrs

import (
	"context"
	"errors"

	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type idemCommand struct{ ID string }

func (c idemCommand) CommandID() string { return c.ID }

// idempotencyStores returns every IdempotencyStore implementation, each
// with the lease given (for the SQL ones).
func idempotencyStores() []struct {
	name string
	new  func(t *testing.T, lease time.Duration) IdempotencyStore
} {
	sqlStore := func(b backend) func(t *testing.T, lease time.Duration) IdempotencyStore {
		return func(t *testing.T, lease time.Duration) IdempotencyStore {
			s, err := NewSQLIdempotencyStore(t.Context(), b.open(t), b.dialect, SQLIdempotencyOptions{Lease: lease})
			if err != nil {
				t.Fatalf("NewSQLIdempotencyStore: %v", err)
			}
			return s
		}
	}
	return []struct {
		name string
		new  func(t *testing.T, lease time.Duration) IdempotencyStore
	}{
		{"memory", func(*testing.T, time.Duration) IdempotencyStore { return &MemoryIdempotencyStore{} }},
		{"sqlite", sqlStore(backends[0])},
		{"postgres", sqlStore(backends[1])},
	}
}

func TestIdempotencyStore(t *testing.T) {
	for _, impl := range idempotencyStores() {
		t.Run(impl.name, func(t *testing.T) {
			s := impl.new(t, time.Hour)
			ctx := t.Context()
			steps := []struct {
				do   string
				want ClaimState
			}{
				{"claim", Claimed},
				{"claim", InProgress},
				{"release", 0},
				{"claim", Claimed},
				{"complete", 0},
				{"claim", Done},
				{"release", 0}, // a completed ID stays completed
				{"claim", Done},
			}
			for i, st := range steps {
				switch st.do {
				case "claim":
					got, err := s.Claim(ctx, "cmd-1")
					if got != st.want || err != nil {
						t.Fatalf("step %d: Claim() = %v, %v; want %v", i, got, err, st.want)
					}
				case "release":
					if err := s.Release(ctx, "cmd-1"); err != nil {
						t.Fatalf("step %d: Release() = %v", i, err)
					}
				case "complete":
					if err := s.Complete(ctx, "cmd-1"); err != nil {
						t.Fatalf("step %d: Complete() = %v", i, err)
					}
				}
			}
			if err := s.Complete(ctx, "never-claimed"); err == nil {
				t.Error("Complete(unclaimed) = nil, want an error")
			}
		})
	}
}

// TestIdempotencyConcurrentDuplicates dispatches one command from many
// goroutines at once: the handler runs once.
func TestIdempotencyConcurrentDuplicates(t *testing.T) {
	for _, impl := range idempotencyStores() {
		t.Run(impl.name, func(t *testing.T) {
			store := impl.new(t, time.Hour)
			bus := NewCommandBus(Idempotency(store))
			var runs atomic.Int64
			release := make(chan struct{})
			Handle(bus, func(context.Context, idemCommand) error {
				runs.Add(1)
				<-release
				return nil
			})
			const n = 8
			errs := make([]error, n)
			var wg sync.WaitGroup
			var answered sync.WaitGroup
			answered.Add(n - 1)
			for i := range n {
				wg.Go(func() {
					errs[i] = Dispatch(t.Context(), bus, idemCommand{ID: "same"})
					if errors.Is(errs[i], ErrCommandInProgress) {
						answered.Done()
					}
				})
			}
			answered.Wait() // every duplicate was refused while the first ran
			close(release)
			wg.Wait()
			if got := runs.Load(); got != 1 {
				t.Errorf("handler ran %d times, want 1", got)
			}
			ok := 0
			for _, err := range errs {
				if err == nil {
					ok++
				} else if !errors.Is(err, ErrCommandInProgress) {
					t.Errorf("Dispatch() = %v, want nil or ErrCommandInProgress", err)
				}
			}
			if ok != 1 {
				t.Errorf("%d dispatches succeeded, want 1", ok)
			}
			// Once done, a retry returns the stored success without running.
			if err := Dispatch(t.Context(), bus, idemCommand{ID: "same"}); err != nil || runs.Load() != 1 {
				t.Errorf("retry: Dispatch() = %v, handler runs %d; want nil, 1", err, runs.Load())
			}
		})
	}
}

func TestIdempotencyFailureIsRetried(t *testing.T) {
	bus := NewCommandBus(Idempotency(&MemoryIdempotencyStore{}))
	calls := 0
	Handle(bus, func(context.Context, idemCommand) error {
		calls++
		if calls == 1 {
			return errors.New("transient")
		}
		return nil
	})
	if err := Dispatch(t.Context(), bus, idemCommand{ID: "x"}); err == nil {
		t.Fatal("first Dispatch() = nil, want the handler's error")
	}
	if err := Dispatch(t.Context(), bus, idemCommand{ID: "x"}); err != nil || calls != 2 {
		t.Errorf("retry after failure: Dispatch() = %v, calls %d; want nil, 2", err, calls)
	}
	if err := Dispatch(t.Context(), bus, idemCommand{}); !errors.Is(err, ErrInvalidCommand) {
		t.Errorf("Dispatch(no ID) = %v, want ErrInvalidCommand", err)
	}
}

// TestSQLIdempotencyLease checks that an expired claim (of a process that
// died) is taken over, and a live one is not.
func TestSQLIdempotencyLease(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			db := b.open(t)
			short, err := NewSQLIdempotencyStore(t.Context(), db, b.dialect, SQLIdempotencyOptions{Table: "idem", Lease: time.Nanosecond})
			if err != nil {
				t.Fatal(err)
			}
			long, err := NewSQLIdempotencyStore(t.Context(), db, b.dialect, SQLIdempotencyOptions{Table: "idem"})
			if err != nil {
				t.Fatal(err)
			}
			for i, tc := range []struct {
				s    *SQLIdempotencyStore
				want ClaimState
			}{{long, Claimed}, {long, InProgress}, {short, Claimed}} {
				if got, err := tc.s.Claim(t.Context(), "dead"); got != tc.want || err != nil {
					t.Errorf("claim %d: Claim() = %v, %v; want %v", i, got, err, tc.want)
				}
				time.Sleep(time.Millisecond) // lets the 1ns lease expire
			}
			if _, err := NewSQLIdempotencyStore(t.Context(), db, b.dialect, SQLIdempotencyOptions{Table: "bad name"}); err == nil {
				t.Error("NewSQLIdempotencyStore(table \"bad name\") = nil error")
			}

		})
	}
}
