package saga_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cairnhq/cairn/resilience"
	"github.com/cairnhq/cairn/resilience/retry"
	"github.com/cairnhq/cairn/saga"
	"github.com/cairnhq/cairn/saga/sagatest"
)

// order is the data of the tests' sagas. Members of a parallel group
// write their own fields.
type order struct {
	ID        string            `json:"id"`
	Amount    int               `json:"amount"`
	Items     map[string]int    `json:"items,omitempty"`
	PaymentID string            `json:"payment_id,omitempty"`
	Reserved  bool              `json:"reserved,omitempty"`
	Shipped   bool              `json:"shipped,omitempty"`
	Notified  bool              `json:"notified,omitempty"`
	Log       []string          `json:"log,omitempty"`
	Meta      map[string]string `json:"meta,omitempty"`
}

// journal records the calls of actions and compensations.
type journal struct {
	mu    sync.Mutex
	calls []string
}

func (j *journal) add(s string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.calls = append(j.calls, s)
}

func (j *journal) get() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.calls)
}

// step returns a step whose action and compensation are journaled; the
// action returns fail's error, if fail is not nil.
func step(j *journal, name string, fail func() error) saga.Step[order] {
	return saga.Step[order]{
		Name: name,
		Action: func(ctx context.Context, d *order) error {
			j.add(name)
			if fail != nil {
				return fail()
			}
			return nil
		},
		Compensate: func(ctx context.Context, d *order) error {
			j.add("undo " + name)
			return nil
		},
	}
}

// newOrch returns an orchestrator closed at cleanup.
func newOrch(t *testing.T, s saga.Store, defs []saga.Definition[order], opts ...saga.Option) *saga.Orchestrator[order] {
	t.Helper()
	o, err := saga.New(s, defs, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { o.Close() })
	return o
}

// startWait starts an instance and waits for it to be final.
func startWait(t *testing.T, o *saga.Orchestrator[order], def, id string, data order) saga.Instance {
	t.Helper()
	if _, err := o.Start(t.Context(), def, id, data); err != nil {
		t.Fatalf("Start(%q): %v", id, err)
	}
	inst, err := o.Wait(t.Context(), id)
	if err != nil {
		t.Fatalf("Wait(%q): %v", id, err)
	}
	return inst
}

func statuses(inst saga.Instance) map[string]saga.StepStatus {
	m := make(map[string]saga.StepStatus)
	for _, s := range inst.Steps {
		m[s.Name] = s.Status
	}
	return m
}

func TestHappyPath(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := &journal{}
		def := saga.Definition[order]{Name: "checkout", Stages: []saga.Stage[order]{
			{{Name: "pay", Action: func(ctx context.Context, d *order) error {
				j.add("pay")
				d.PaymentID = "pay-" + d.ID
				d.Log = append(d.Log, "paid")
				return nil
			}}},
			{
				{Name: "reserve", Action: func(ctx context.Context, d *order) error { d.Reserved = true; return nil }},
				{Name: "notify", Action: func(ctx context.Context, d *order) error { d.Notified = true; return nil }},
			},
			{{Name: "ship", Action: func(ctx context.Context, d *order) error {
				if d.PaymentID != "pay-"+d.ID || !d.Reserved || !d.Notified {
					return errors.New("ship: earlier steps' data missing")
				}
				d.Shipped = true
				return nil
			}}},
		}}
		o := newOrch(t, sagatest.NewMemStore(), []saga.Definition[order]{def})
		in := order{ID: "o1", Amount: 42, Items: map[string]int{"apple": 2}, Meta: map[string]string{"é": "\"q\""}}
		inst := startWait(t, o, "checkout", "o1", in)
		if inst.Status != saga.StatusCompleted || inst.Error != "" {
			t.Fatalf("status %s, error %q; want completed", inst.Status, inst.Error)
		}
		want := map[string]saga.StepStatus{"pay": saga.StepSucceeded, "reserve": saga.StepSucceeded, "notify": saga.StepSucceeded, "ship": saga.StepSucceeded}
		if diff := cmp.Diff(want, statuses(inst)); diff != "" {
			t.Errorf("step statuses (-want +got):\n%s", diff)
		}
		got, err := o.Data(inst)
		if err != nil {
			t.Fatal(err)
		}
		wantData := in
		wantData.PaymentID, wantData.Reserved, wantData.Notified, wantData.Shipped, wantData.Log = "pay-o1", true, true, true, []string{"paid"}
		if diff := cmp.Diff(wantData, got); diff != "" {
			t.Errorf("data (-want +got):\n%s", diff)
		}
		if string(inst.Input) != `{"id":"o1","amount":42,"items":{"apple":2},"meta":{"é":"\"q\""}}` {
			t.Errorf("Input = %s, want the data given to Start", inst.Input)
		}
		if b, err := json.Marshal(inst); err != nil || !strings.Contains(string(b), `"input":{"id":"o1","amount":42,`) || !strings.Contains(string(b), `"status":"completed"`) {
			t.Errorf("json.Marshal(instance) = %s, %v; want input and data as JSON values", b, err)
		}
		if got, err := o.Get(t.Context(), "o1"); err != nil || got.Version != inst.Version {
			t.Errorf("Get = version %d, %v; want %d", got.Version, err, inst.Version)
		}
		if _, err := o.Get(t.Context(), "nope"); !errors.Is(err, saga.ErrNotFound) {
			t.Errorf("Get(missing) error = %v, want saga.ErrNotFound", err)
		}
	})
}

func TestSequentialFailureCompensatesInReverse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := &journal{}
		boom := errors.New("card declined")
		var refunded string
		pay := step(j, "pay", nil)
		pay.Action = func(ctx context.Context, d *order) error { j.add("pay"); d.PaymentID = "p-7"; return nil }
		pay.Compensate = func(ctx context.Context, d *order) error { j.add("undo pay"); refunded = d.PaymentID; return nil }
		def := saga.Definition[order]{Name: "checkout", Stages: []saga.Stage[order]{
			{step(j, "reserve", nil)}, {pay}, {step(j, "ship", func() error { return boom })}, {step(j, "notify", nil)},
		}}
		o := newOrch(t, sagatest.NewMemStore(), []saga.Definition[order]{def})
		inst := startWait(t, o, "checkout", "o1", order{ID: "o1"})
		if inst.Status != saga.StatusCompensated || !strings.Contains(inst.Error, `step "ship": card declined`) {
			t.Errorf("status %s, error %q; want compensated by ship's error", inst.Status, inst.Error)
		}
		want := []string{"reserve", "pay", "ship", "undo ship", "undo pay", "undo reserve"}
		if diff := cmp.Diff(want, j.get()); diff != "" {
			t.Errorf("calls (-want +got):\n%s", diff)
		}
		if refunded != "p-7" {
			t.Errorf("pay's compensation saw payment ID %q, want the one its action recorded, p-7", refunded)
		}
		wantSteps := map[string]saga.StepStatus{"reserve": saga.StepCompensated, "pay": saga.StepCompensated, "ship": saga.StepCompensated, "notify": saga.StepPending}
		if diff := cmp.Diff(wantSteps, statuses(inst)); diff != "" {
			t.Errorf("step statuses (-want +got):\n%s", diff)
		}
		if inst.Steps[2].Error != "card declined" {
			t.Errorf("ship's error = %q, want card declined", inst.Steps[2].Error)
		}
	})
}

func TestParallelGroupFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := &journal{}
		def := saga.Definition[order]{Name: "fanout", Stages: []saga.Stage[order]{
			{step(j, "a", nil)},
			{step(j, "b", nil), step(j, "c", func() error { return errors.New("c broke") }), step(j, "d", nil)},
			{step(j, "e", nil)},
		}}
		o := newOrch(t, sagatest.NewMemStore(), []saga.Definition[order]{def})
		inst := startWait(t, o, "fanout", "f1", order{})
		if inst.Status != saga.StatusCompensated {
			t.Fatalf("status %s, want compensated", inst.Status)
		}
		calls := j.get()
		if got := calls[:4]; got[0] != "a" || !slices.Contains(got, "b") || !slices.Contains(got, "c") || !slices.Contains(got, "d") {
			t.Errorf("actions = %v, want a then b, c and d in any order", got)
		}
		if diff := cmp.Diff([]string{"undo d", "undo c", "undo b", "undo a"}, calls[4:]); diff != "" {
			t.Errorf("compensations (-want +got):\n%s", diff)
		}
		if s := statuses(inst); s["e"] != saga.StepPending || s["c"] != saga.StepCompensated {
			t.Errorf("step statuses %v, want e pending and c compensated", s)
		}
	})
}

func TestTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := &journal{}
		slow := step(j, "slow", nil)
		slow.Timeout = 2 * time.Second
		slow.Action = func(ctx context.Context, d *order) error {
			<-ctx.Done()
			return ctx.Err()
		}
		o := newOrch(t, sagatest.NewMemStore(), []saga.Definition[order]{{Name: "s", Stages: []saga.Stage[order]{{step(j, "first", nil)}, {slow}}}})
		start := time.Now()
		inst := startWait(t, o, "s", "t1", order{})
		if inst.Status != saga.StatusCompensated || !strings.Contains(inst.Error, "timed out after 2s") {
			t.Errorf("status %s, error %q; want compensated after a 2s timeout", inst.Status, inst.Error)
		}
		if d := time.Since(start); d != 2*time.Second {
			t.Errorf("instance took %v, want exactly the timeout, 2s (fake clock)", d)
		}
		if diff := cmp.Diff([]string{"first", "undo slow", "undo first"}, j.get()); diff != "" {
			t.Errorf("calls (-want +got):\n%s", diff)
		}
	})
}

func TestRetriesThroughPipeline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		p, err := resilience.New[struct{}](resilience.Retry(retry.Policy{MaxAttempts: 4, RetryIf: saga.Retryable,
			Backoff: retry.Backoff{Kind: retry.KindConstant, Initial: time.Second}}))
		if err != nil {
			t.Fatal(err)
		}
		flaky := saga.Step[order]{Name: "flaky", Executor: p, Action: func(ctx context.Context, d *order) error {
			if calls.Add(1) < 3 {
				return errors.New("transient")
			}
			return nil
		}}
		o := newOrch(t, sagatest.NewMemStore(), []saga.Definition[order]{{Name: "r", Stages: []saga.Stage[order]{{flaky}}}})
		start := time.Now()
		inst := startWait(t, o, "r", "r1", order{})
		if inst.Status != saga.StatusCompleted || calls.Load() != 3 {
			t.Errorf("status %s after %d calls, want completed after 3", inst.Status, calls.Load())
		}
		if d := time.Since(start); d != 2*time.Second {
			t.Errorf("took %v, want two backoffs of 1s", d)
		}
		if inst.Steps[0].Attempts != 1 {
			t.Errorf("Attempts = %d, want 1 (the executor's retries are one run)", inst.Steps[0].Attempts)
		}
	})
}

func TestPermanentError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		j := &journal{}
		p, err := resilience.New[struct{}](resilience.Retry(retry.Policy{MaxAttempts: 5, RetryIf: saga.Retryable}))
		if err != nil {
			t.Fatal(err)
		}
		bad := step(j, "bad", nil)
		bad.Executor = p
		bad.Action = func(ctx context.Context, d *order) error {
			calls.Add(1)
			return saga.Permanent(errors.New("invalid card"))
		}
		o := newOrch(t, sagatest.NewMemStore(), []saga.Definition[order]{{Name: "p", Stages: []saga.Stage[order]{{bad}}}})
		inst := startWait(t, o, "p", "p1", order{})
		if inst.Status != saga.StatusCompensated || calls.Load() != 1 || !strings.Contains(inst.Error, "invalid card") {
			t.Errorf("status %s, error %q after %d calls; want compensated after 1 call", inst.Status, inst.Error, calls.Load())
		}
		if !errors.Is(saga.Permanent(errors.New("x")), saga.ErrPermanent) || saga.Permanent(nil) != nil {
			t.Error("Permanent does not match ErrPermanent, or wraps nil")
		}
		if saga.Retryable(saga.Permanent(errors.New("x"))) || saga.Retryable(context.Canceled) || !saga.Retryable(errors.New("x")) {
			t.Error("Retryable misjudges permanent, canceled or plain errors")
		}
	})
}

// statusLog is a store that records the instance statuses written.
type statusLog struct {
	*sagatest.MemStore
	mu       sync.Mutex
	statuses []saga.Status
}

func (s *statusLog) Create(ctx context.Context, inst saga.Instance, lease time.Duration) (saga.Instance, bool, error) {
	out, created, err := s.MemStore.Create(ctx, inst, lease)
	if created {
		s.log(inst.Status)
	}
	return out, created, err
}

func (s *statusLog) Update(ctx context.Context, inst saga.Instance, lease time.Duration) (saga.Instance, error) {
	out, err := s.MemStore.Update(ctx, inst, lease)
	if err == nil {
		s.log(inst.Status)
	}
	return out, err
}

// log records status unless it is the last one recorded.
func (s *statusLog) log(status saga.Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.statuses); n == 0 || s.statuses[n-1] != status {
		s.statuses = append(s.statuses, status)
	}
}

func TestCompensationRetriesUntilSuccess(t *testing.T) {
	stuck := []saga.Status{saga.StatusRunning, saga.StatusCompensating, saga.StatusStuck, saga.StatusCompensated}
	notStuck := []saga.Status{saga.StatusRunning, saga.StatusCompensating, saga.StatusCompensated}
	tests := []struct {
		name      string
		opt       saga.Option
		permanent bool
		want      []saga.Status
	}{
		{"stuck after attempts", saga.WithStuckAfter(2, 0), false, stuck},
		{"stuck after elapsed time", saga.WithStuckAfter(100, 1500*time.Millisecond), false, stuck},
		{"stuck at a permanent error", saga.WithStuckAfter(100, 0), true, stuck},
		{"not stuck", saga.WithStuckAfter(100, 0), false, notStuck},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var attempts atomic.Int32
				hold := step(&journal{}, "hold", nil)
				hold.Compensate = func(ctx context.Context, d *order) error {
					if attempts.Add(1) <= 3 {
						if tt.permanent {
							return saga.Permanent(errors.New("account closed"))
						}
						return errors.New("bank unavailable")
					}
					return nil
				}
				fail := step(&journal{}, "fail", func() error { return errors.New("no") })
				store := &statusLog{MemStore: sagatest.NewMemStore()}
				o := newOrch(t, store, []saga.Definition[order]{{Name: "c", Stages: []saga.Stage[order]{{hold}, {fail}}}},
					tt.opt, saga.WithCompensationBackoff(retry.Backoff{Kind: retry.KindConstant, Initial: time.Second}))
				start := time.Now()
				inst := startWait(t, o, "c", "c1", order{})
				if inst.Status != saga.StatusCompensated || attempts.Load() != 4 || inst.Steps[0].CompensationAttempts != 4 {
					t.Errorf("status %s after %d attempts (%d recorded); want compensated after 4", inst.Status, attempts.Load(), inst.Steps[0].CompensationAttempts)
				}
				if d := time.Since(start); d != 3*time.Second {
					t.Errorf("took %v, want three backoffs of 1s", d)
				}
				store.mu.Lock()
				defer store.mu.Unlock()
				if diff := cmp.Diff(tt.want, store.statuses); diff != "" {
					t.Errorf("statuses written (-want +got):\n%s", diff)
				}
			})
		})
	}
}

func TestStartIdempotent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var runs atomic.Int32
		s := saga.Step[order]{Name: "once", Action: func(ctx context.Context, d *order) error { runs.Add(1); return nil }}
		defs := []saga.Definition[order]{{Name: "x", Stages: []saga.Stage[order]{{s}}}, {Name: "y", Stages: []saga.Stage[order]{{s}}}}
		o := newOrch(t, sagatest.NewMemStore(), defs)
		first := startWait(t, o, "x", "i1", order{Amount: 1})
		again, err := o.Start(t.Context(), "x", "i1", order{Amount: 1})
		if err != nil || again.Version != first.Version || again.Status != saga.StatusCompleted {
			t.Errorf("Start again = version %d status %s, %v; want the existing instance", again.Version, again.Status, err)
		}
		synctest.Wait()
		if runs.Load() != 1 {
			t.Errorf("action ran %d times, want 1", runs.Load())
		}
		var conflict *saga.ConflictError
		if _, err := o.Start(t.Context(), "x", "i1", order{Amount: 2}); !errors.As(err, &conflict) || conflict.Reason != "other input data" {
			t.Errorf("Start with other data error = %v, want a *ConflictError about the data", err)
		}
		if _, err := o.Start(t.Context(), "y", "i1", order{Amount: 1}); !errors.As(err, &conflict) || !strings.Contains(err.Error(), "another definition") {
			t.Errorf("Start with another definition error = %v, want a *ConflictError about the definition", err)
		}
		if _, err := o.Start(t.Context(), "z", "i2", order{}); err == nil || !strings.Contains(err.Error(), `unknown definition "z"`) {
			t.Errorf("Start of an unknown definition error = %v", err)
		}
		if _, err := o.Start(t.Context(), "x", "", order{}); err == nil {
			t.Error("Start with an empty ID succeeded")
		}
		o.Close()
		if _, err := o.Start(t.Context(), "x", "i3", order{}); !errors.Is(err, saga.ErrClosed) {
			t.Errorf("Start after Close error = %v, want saga.ErrClosed", err)
		}
	})
}

func TestBadDefinitions(t *testing.T) {
	act := func(context.Context, *order) error { return nil }
	ok := saga.Step[order]{Name: "a", Action: act}
	tests := []struct {
		name string
		defs []saga.Definition[order]
		want string
	}{
		{"none", nil, "no definitions"},
		{"empty name", []saga.Definition[order]{{Stages: []saga.Stage[order]{{ok}}}}, "empty name"},
		{"no stages", []saga.Definition[order]{{Name: "d"}}, `"d" has no stages`},
		{"empty stage", []saga.Definition[order]{{Name: "d", Stages: []saga.Stage[order]{{ok}, {}}}}, "stage 2 is empty"},
		{"unnamed step", []saga.Definition[order]{{Name: "d", Stages: []saga.Stage[order]{{ok, {Action: act}}}}}, "stage 1, step 2 has an empty name"},
		{"duplicate step", []saga.Definition[order]{{Name: "d", Stages: []saga.Stage[order]{{ok}, {{Name: "b", Action: act}, ok}}}}, `duplicate step name "a" (stage 2)`},
		{"no action", []saga.Definition[order]{{Name: "d", Stages: []saga.Stage[order]{{{Name: "b"}}}}}, `step "b" has no action`},
		{"negative timeout", []saga.Definition[order]{{Name: "d", Stages: []saga.Stage[order]{{{Name: "b", Action: act, Timeout: -1}}}}}, "negative timeout"},
		{"duplicate definition", []saga.Definition[order]{{Name: "d", Stages: []saga.Stage[order]{{ok}}}, {Name: "d", Stages: []saga.Stage[order]{{ok}}}}, `two definitions named "d"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := saga.New(sagatest.NewMemStore(), tt.defs)
			if err == nil {
				o.Close()
				t.Fatalf("New succeeded, want an error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New error = %q, want one containing %q", err, tt.want)
			}
		})
	}
	if _, err := saga.New[order](nil, []saga.Definition[order]{{Name: "d", Stages: []saga.Stage[order]{{ok}}}}); err == nil {
		t.Error("New with a nil store succeeded")
	}
}

func TestStepInfo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var got []saga.StepInfo
		record := func(ctx context.Context) {
			info, ok := saga.StepInfoFrom(ctx)
			if !ok {
				t.Error("StepInfoFrom found nothing in a step's context")
			}
			mu.Lock()
			got = append(got, info)
			mu.Unlock()
		}
		s := saga.Step[order]{Name: "pay",
			Action:     func(ctx context.Context, d *order) error { record(ctx); return errors.New("no") },
			Compensate: func(ctx context.Context, d *order) error { record(ctx); return nil },
		}
		o := newOrch(t, sagatest.NewMemStore(), []saga.Definition[order]{{Name: "i", Stages: []saga.Stage[order]{{s}}}})
		startWait(t, o, "i", "i-1", order{})
		want := []saga.StepInfo{
			{Definition: "i", InstanceID: "i-1", Step: "pay", Attempt: 1},
			{Definition: "i", InstanceID: "i-1", Step: "pay", Compensation: true, Attempt: 1},
		}
		mu.Lock()
		defer mu.Unlock()
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("step infos (-want +got):\n%s", diff)
		}
		if _, ok := saga.StepInfoFrom(t.Context()); ok {
			t.Error("StepInfoFrom found a step in a plain context")
		}
	})
}

// countingStore counts the calls of a MemStore's methods, and records the
// step states that Create and Update write.
type countingStore struct {
	*sagatest.MemStore
	mu                     sync.Mutex
	creates, updates, gets int
	written                [][]saga.StepState
}

func (s *countingStore) Create(ctx context.Context, inst saga.Instance, lease time.Duration) (saga.Instance, bool, error) {
	s.mu.Lock()
	s.creates++
	s.written = append(s.written, slices.Clone(inst.Steps))
	s.mu.Unlock()
	return s.MemStore.Create(ctx, inst, lease)
}

func (s *countingStore) Update(ctx context.Context, inst saga.Instance, lease time.Duration) (saga.Instance, error) {
	s.mu.Lock()
	s.updates++
	s.written = append(s.written, slices.Clone(inst.Steps))
	s.mu.Unlock()
	return s.MemStore.Update(ctx, inst, lease)
}

func (s *countingStore) Get(ctx context.Context, id string) (saga.Instance, error) {
	s.mu.Lock()
	s.gets++
	s.mu.Unlock()
	return s.MemStore.Get(ctx, id)
}

// TestWritesPerSaga checks that a saga of n stages that completes is one
// Create and n Updates, each step marked running (its attempt counted)
// before it runs and succeeded with the next stage's start, and that
// Wait on the orchestrator that runs the instance reads nothing.
func TestWritesPerSaga(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &countingStore{MemStore: sagatest.NewMemStore()}
		j := &journal{}
		defs := []saga.Definition[order]{{Name: "checkout", Stages: []saga.Stage[order]{
			{step(j, "reserve", nil)}, {step(j, "pay", nil), step(j, "ship", nil)}, {step(j, "notify", nil)},
		}}}
		o := newOrch(t, store, defs)
		inst := startWait(t, o, "checkout", "o1", order{ID: "o1"})
		if inst.Status != saga.StatusCompleted {
			t.Fatalf("status %s, want completed", inst.Status)
		}
		store.mu.Lock()
		defer store.mu.Unlock()
		if store.creates != 1 || store.updates != 3 || store.gets != 0 {
			t.Errorf("%d creates, %d updates, %d gets; want 1, 3, 0", store.creates, store.updates, store.gets)
		}
		r, p, s, n := saga.StepRunning, saga.StepPending, saga.StepSucceeded, "notify"
		state := func(name string, st saga.StepStatus, attempts int) saga.StepState {
			return saga.StepState{Name: name, Status: st, Attempts: attempts}
		}
		want := [][]saga.StepState{
			{state("reserve", r, 1), state("pay", p, 0), state("ship", p, 0), state(n, p, 0)},
			{state("reserve", s, 1), state("pay", r, 1), state("ship", r, 1), state(n, p, 0)},
			{state("reserve", s, 1), state("pay", s, 1), state("ship", s, 1), state(n, r, 1)},
			{state("reserve", s, 1), state("pay", s, 1), state("ship", s, 1), state(n, s, 1)},
		}
		if diff := cmp.Diff(want, store.written); diff != "" {
			t.Errorf("step states written (-want +got):\n%s", diff)
		}
	})
}

// TestWaitReturnsCopies checks that the instances that concurrent Waits
// return for a run of their orchestrator are each the caller's to change,
// and that a Wait whose context ends returns the last state persisted.
func TestWaitReturnsCopies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &countingStore{MemStore: sagatest.NewMemStore()}
		j := &journal{}
		entered, gate := make(chan string, 1), make(chan struct{})
		o := newOrch(t, store, []saga.Definition[order]{{Name: "d", Stages: []saga.Stage[order]{{gated(j, "a", false, entered, gate)}}}})
		if _, err := o.Start(t.Context(), "d", "x", order{ID: "x"}); err != nil {
			t.Fatal(err)
		}
		<-entered
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		inst, err := o.Wait(ctx, "x")
		if !errors.Is(err, context.Canceled) || inst.Status != saga.StatusRunning || inst.Steps[0].Status != saga.StepRunning {
			t.Errorf("Wait with a canceled context = %s (step %s), %v; want running, running, context.Canceled", inst.Status, inst.Steps[0].Status, err)
		}
		var got [2]saga.Instance
		var wg sync.WaitGroup
		for i := range got {
			wg.Go(func() {
				var err error
				if got[i], err = o.Wait(t.Context(), "x"); err != nil {
					t.Errorf("Wait: %v", err)
				}
			})
		}
		synctest.Wait() // both wait for the run
		close(gate)
		wg.Wait()
		got[0].Steps[0].Status = saga.StepFailed
		got[0].Data[0] = '!'
		if got[1].Status != saga.StatusCompleted || got[1].Steps[0].Status != saga.StepSucceeded || !json.Valid(got[1].Data) {
			t.Errorf("second Wait: %s, step %s, data %s; want completed, succeeded and the stored JSON", got[1].Status, got[1].Steps[0].Status, got[1].Data)
		}
		store.mu.Lock()
		defer store.mu.Unlock()
		if store.gets != 0 {
			t.Errorf("%d gets, want none while the orchestrator runs the instance", store.gets)
		}
	})
}
