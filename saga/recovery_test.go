package saga_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cairnhq/cairn/saga"
	"github.com/cairnhq/cairn/saga/sagatest"
)

// gated returns a step whose action (or compensation, with undo) signals
// entered and then waits for gate, or for its context to end.
func gated(j *journal, name string, undo bool, entered chan<- string, gate <-chan struct{}) saga.Step[order] {
	s := step(j, name, nil)
	wait := func(ctx context.Context, what string) error {
		j.add(what)
		entered <- what
		select {
		case <-gate:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if undo {
		s.Compensate = func(ctx context.Context, d *order) error { return wait(ctx, "undo "+name) }
	} else {
		s.Action = func(ctx context.Context, d *order) error { return wait(ctx, name) }
	}
	return s
}

// runRecovery runs o.Run until cleanup.
func runRecovery(t *testing.T, o *saga.Orchestrator[order]) {
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { o.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
}

func TestCrashRecoveryResumesRunningStep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := sagatest.NewMemStore()
		j := &journal{}
		entered, gate := make(chan string, 4), make(chan struct{})
		defs := []saga.Definition[order]{{Name: "checkout", Stages: []saga.Stage[order]{
			{step(j, "pay", nil)}, {gated(j, "ship", false, entered, gate)}, {step(j, "notify", nil)},
		}}}
		opts := []saga.Option{saga.WithLease(10 * time.Second), saga.WithPollInterval(time.Second)}
		a := newOrch(t, store, defs, append(opts, saga.WithOwner("a"))...)
		if _, err := a.Start(t.Context(), "checkout", "o1", order{ID: "o1"}); err != nil {
			t.Fatal(err)
		}
		<-entered
		a.Close() // the crash: the lease stays until it expires
		crashed := time.Now()
		left, err := store.Get(t.Context(), "o1")
		if err != nil {
			t.Fatal(err)
		}
		if left.Status != saga.StatusRunning || left.Steps[1].Status != saga.StepRunning || left.Owner != "a" {
			t.Fatalf("after the crash: status %s, ship %s, owner %s; want running, running, a", left.Status, left.Steps[1].Status, left.Owner)
		}
		close(gate)

		b := newOrch(t, store, defs, append(opts, saga.WithOwner("b"))...)
		runRecovery(t, b)
		inst, err := b.Wait(t.Context(), "o1")
		if err != nil {
			t.Fatal(err)
		}
		if inst.Status != saga.StatusCompleted || inst.Owner != "b" || inst.Steps[1].Attempts != 2 || inst.Steps[0].Attempts != 1 {
			t.Errorf("status %s owner %s, attempts pay %d ship %d; want completed by b, pay once, ship twice",
				inst.Status, inst.Owner, inst.Steps[0].Attempts, inst.Steps[1].Attempts)
		}
		if d := time.Since(crashed); d < 10*time.Second-time.Second || d > 11*time.Second {
			t.Errorf("recovered %v after the crash, want after the 10s lease, within a poll interval", d)
		}
		if diff := cmp.Diff([]string{"pay", "ship", "ship", "notify"}, j.get()); diff != "" {
			t.Errorf("calls (-want +got):\n%s", diff)
		}
	})
}

func TestCrashRecoveryResumesCompensation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := sagatest.NewMemStore()
		j := &journal{}
		entered, gate := make(chan string, 4), make(chan struct{})
		defs := []saga.Definition[order]{{Name: "checkout", Stages: []saga.Stage[order]{
			{gated(j, "reserve", true, entered, gate)}, {step(j, "pay", nil)},
			{step(j, "ship", func() error { return errors.New("no truck") })},
		}}}
		opts := []saga.Option{saga.WithLease(10 * time.Second), saga.WithPollInterval(time.Second)}
		a := newOrch(t, store, defs, append(opts, saga.WithOwner("a"))...)
		if _, err := a.Start(t.Context(), "checkout", "o1", order{}); err != nil {
			t.Fatal(err)
		}
		<-entered
		a.Close()
		left, _ := store.Get(t.Context(), "o1")
		if left.Status != saga.StatusCompensating || left.Steps[0].Status != saga.StepCompensating || left.Steps[1].Status != saga.StepCompensated {
			t.Fatalf("after the crash: %s, steps %v; want compensating with reserve compensating and pay compensated", left.Status, left.Steps)
		}
		close(gate)
		b := newOrch(t, store, defs, append(opts, saga.WithOwner("b"))...)
		runRecovery(t, b)
		inst, err := b.Wait(t.Context(), "o1")
		if err != nil {
			t.Fatal(err)
		}
		if inst.Status != saga.StatusCompensated || inst.Steps[0].CompensationAttempts != 2 {
			t.Errorf("status %s, reserve's compensation attempts %d; want compensated after 2", inst.Status, inst.Steps[0].CompensationAttempts)
		}
		want := []string{"reserve", "pay", "ship", "undo ship", "undo pay", "undo reserve", "undo reserve"}
		if diff := cmp.Diff(want, j.get()); diff != "" {
			t.Errorf("calls (-want +got):\n%s", diff)
		}
	})
}

// losable is a store whose writes fail once lost is set: with
// ErrLeaseLost, or with a transient error when transient is set too.
type losable struct {
	*sagatest.MemStore
	lost, transient atomic.Bool
	writesAfter     atomic.Int32 // writes attempted after lost was set
}

func (s *losable) err() error {
	if !s.lost.Load() {
		return nil
	}
	s.writesAfter.Add(1)
	if s.transient.Load() {
		return errors.New("connection reset")
	}
	return saga.ErrLeaseLost
}

func (s *losable) Update(ctx context.Context, inst saga.Instance, lease time.Duration) (saga.Instance, error) {
	if err := s.err(); err != nil {
		return saga.Instance{}, err
	}
	return s.MemStore.Update(ctx, inst, lease)
}

func (s *losable) Renew(ctx context.Context, id, owner string, lease time.Duration) error {
	if err := s.err(); err != nil {
		return err
	}
	return s.MemStore.Renew(ctx, id, owner, lease)
}

func TestLeaseLoss(t *testing.T) {
	tests := []struct {
		name      string
		transient bool
		after     time.Duration // from the loss to the step's cancellation
	}{
		{"renewal refused", false, time.Second},             // the next renewal, a third of the lease
		{"renewals failing", true, 2700 * time.Millisecond}, // nine tenths of the lease
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				store := &losable{MemStore: sagatest.NewMemStore()}
				causes := make(chan error, 1)
				var after atomic.Int32
				blocked := saga.Step[order]{Name: "blocked", Action: func(ctx context.Context, d *order) error {
					<-ctx.Done()
					causes <- context.Cause(ctx)
					return ctx.Err()
				}}
				next := saga.Step[order]{Name: "next", Action: func(context.Context, *order) error { after.Add(1); return nil }}
				o := newOrch(t, store, []saga.Definition[order]{{Name: "l", Stages: []saga.Stage[order]{{blocked}, {next}}}},
					saga.WithLease(3*time.Second))
				if _, err := o.Start(t.Context(), "l", "l1", order{}); err != nil {
					t.Fatal(err)
				}
				synctest.Wait() // the step is blocked
				store.transient.Store(tt.transient)
				store.lost.Store(true)
				lost := time.Now()
				cause := <-causes
				if !errors.Is(cause, saga.ErrLeaseLost) {
					t.Errorf("step context's cause = %v, want saga.ErrLeaseLost", cause)
				}
				if d := time.Since(lost); d != tt.after {
					t.Errorf("step canceled %v after the loss, want %v", d, tt.after)
				}
				o.Close()
				inst, err := store.Get(t.Context(), "l1")
				if err != nil {
					t.Fatal(err)
				}
				if inst.Status != saga.StatusRunning || inst.Steps[0].Status != saga.StepRunning || after.Load() != 0 {
					t.Errorf("after the loss: status %s, step %s, next step ran %d times; want running, running, 0", inst.Status, inst.Steps[0].Status, after.Load())
				}
				if n := store.writesAfter.Load(); tt.transient == false && n != 1 {
					t.Errorf("%d writes after the loss, want only the refused renewal", n)
				}
			})
		})
	}
}

func TestRecoveryRefusesChangedDefinition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := sagatest.NewMemStore()
		j := &journal{}
		entered, gate := make(chan string, 4), make(chan struct{})
		defer close(gate)
		old := []saga.Definition[order]{{Name: "d", Stages: []saga.Stage[order]{{gated(j, "a", false, entered, gate)}, {step(j, "b", nil)}}}}
		changed := []saga.Definition[order]{{Name: "d", Stages: []saga.Stage[order]{{step(j, "a", nil)}, {step(j, "c", nil)}, {step(j, "b", nil)}}}}
		opts := []saga.Option{saga.WithLease(10 * time.Second), saga.WithPollInterval(time.Second)}
		a := newOrch(t, store, old, opts...)
		if _, err := a.Start(t.Context(), "d", "x", order{}); err != nil {
			t.Fatal(err)
		}
		<-entered
		a.Close()
		b := newOrch(t, store, changed, opts...)
		time.Sleep(11 * time.Second) // past the lease
		if n, err := b.Recover(t.Context()); n != 1 || err != nil {
			t.Fatalf("Recover = %d, %v; want 1 instance", n, err)
		}
		synctest.Wait()
		inst, _ := store.Get(t.Context(), "x")
		if inst.Status != saga.StatusRunning || len(inst.Steps) != 2 || inst.Steps[0].Status != saga.StepRunning {
			t.Errorf("instance after recovery by a changed definition: %s %v; want untouched", inst.Status, inst.Steps)
		}
		if diff := cmp.Diff([]string{"a"}, j.get()); diff != "" {
			t.Errorf("calls (-want +got):\n%s", diff)
		}
		b.Close()
		if _, err := b.Recover(t.Context()); !errors.Is(err, saga.ErrClosed) {
			t.Errorf("Recover after Close error = %v, want saga.ErrClosed", err)
		}
	})
}
