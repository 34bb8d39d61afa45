package saga

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// run is one orchestrator's execution of one instance, from Start or a
// claim until the instance is final or the orchestrator stops running it.
// Only its goroutine touches inst and data, except that the members of a
// parallel group share data as [Stage] says.
type run[D any] struct {
	o        *Orchestrator[D]
	def      *Definition[D]
	inst     Instance // as last persisted, with the changes being saved
	data     *D
	span     trace.Span // the root or resume span
	ctx      context.Context
	cancel   context.CancelCauseFunc // with ErrLeaseLost or ErrClosed
	deadline *time.Timer             // cancels ctx when the lease may have expired
	done     chan struct{}           // closed when the run's goroutine ends
	stuck    bool                    // counted in the stuck gauge
	created  bool                    // Start created inst with its first stage running
	// last is the instance as last persisted by the run, for Wait: a copy
	// that the run never changes, published after every write.
	last atomic.Pointer[Instance]
}

// publish makes r.inst, as just persisted, the run's last known state.
// The copy owns its Steps, which the run changes in place; Data and Input
// are replaced, never changed, by the run.
func (r *run[D]) publish() {
	inst := r.inst
	inst.Steps = slices.Clone(inst.Steps)
	r.last.Store(&inst)
}

// snapshot returns a copy of the run's last known state, for a caller to
// keep.
func (r *run[D]) snapshot() Instance {
	inst := *r.last.Load()
	inst.Steps = slices.Clone(inst.Steps)
	inst.Input = slices.Clone(inst.Input)
	inst.Data = slices.Clone(inst.Data)
	return inst
}

// errStopped is returned internally when the run must stop touching the
// instance: it lost the lease or the orchestrator closed.
var errStopped = errors.New("saga: run stopped")

// execute runs the instance from its persisted state until it is final or
// the run stops.
func (r *run[D]) execute() {
	var renewer sync.WaitGroup
	defer func() {
		r.cancel(errStopped)
		renewer.Wait()
		r.deadline.Stop()
		if r.stuck {
			r.o.tel.addStuck(r.def.Name, -1)
		}
		r.span.End()
	}()
	if err := r.check(); err != nil {
		r.fail(err)
		return
	}
	renewer.Add(1)
	go r.renew(&renewer, r.inst.ID)

	var err error
	if r.inst.Status == StatusRunning {
		err = r.forward()
	}
	if err == nil && (r.inst.Status == StatusCompensating || r.inst.Status == StatusStuck) {
		err = r.backward()
	}
	if err != nil && !errors.Is(err, errStopped) {
		r.fail(err)
	}
	if cause := context.Cause(r.ctx); errors.Is(cause, ErrLeaseLost) || errors.Is(cause, ErrClosed) {
		r.span.AddEvent(StoppedEventName, trace.WithAttributes(CauseKey.String(cause.Error())))
	}
}

// check verifies that the persisted instance matches the definition, and
// decodes its data.
func (r *run[D]) check() error {
	steps := r.def.steps()
	if len(steps) != len(r.inst.Steps) {
		return fmt.Errorf("saga: instance %q has %d steps, definition %q has %d", r.inst.ID, len(r.inst.Steps), r.def.Name, len(steps))
	}
	for i, s := range steps {
		if r.inst.Steps[i].Name != s.Name {
			return fmt.Errorf("saga: instance %q: step %d is %q, definition %q says %q", r.inst.ID, i+1, r.inst.Steps[i].Name, r.def.Name, s.Name)
		}
	}
	r.data = new(D)
	if err := json.Unmarshal(r.inst.Data, r.data); err != nil {
		return fmt.Errorf("saga: instance %q: decode data: %w", r.inst.ID, err)
	}
	return nil
}

// fail records err on the run's span.
func (r *run[D]) fail(err error) {
	r.span.RecordError(err)
	r.span.SetStatus(codes.Error, err.Error())
}

// renew renews the lease on instance id every third of it until the run
// ends; a successful renewal pushes back the deadline, a lost lease
// cancels the run. It reads nothing that the run's goroutine writes.
func (r *run[D]) renew(wg *sync.WaitGroup, id string) {
	defer wg.Done()
	t := time.NewTicker(max(r.o.cfg.lease/3, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
		}
		t0 := time.Now()
		err := r.o.store.Renew(r.ctx, id, r.o.cfg.owner, r.o.cfg.lease)
		switch {
		case err == nil:
			r.deadline.Reset(r.o.leaseDeadline(t0))
		case errors.Is(err, ErrLeaseLost):
			r.cancel(ErrLeaseLost)
			return
		}
	}
}

// setStatus changes the instance's status, with a span event.
func (r *run[D]) setStatus(s Status) {
	r.inst.Status = s
	r.span.AddEvent(TransitionEventName, trace.WithAttributes(StatusKey.String(string(s))))
}

// setStep changes the status of step i, with a span event.
func (r *run[D]) setStep(i int, s StepStatus) {
	r.inst.Steps[i].Status = s
	r.span.AddEvent(TransitionEventName, trace.WithAttributes(StepKey.String(r.inst.Steps[i].Name), StatusKey.String(string(s))))
}

// save persists the instance, retrying a failing store until the run
// stops. It returns errStopped when the lease is lost.
func (r *run[D]) save() error {
	b, err := json.Marshal(r.data)
	if err != nil {
		return fmt.Errorf("saga: instance %q: encode data: %w", r.inst.ID, err)
	}
	r.inst.Data = b
	delay := 10 * time.Millisecond
	for {
		inst, err := r.o.store.Update(r.ctx, r.inst, r.o.cfg.lease)
		if err == nil {
			r.inst = inst
			r.publish()
			return nil
		}
		if errors.Is(err, ErrLeaseLost) {
			r.cancel(ErrLeaseLost)
		}
		if r.ctx.Err() != nil {
			return errStopped
		}
		r.span.RecordError(fmt.Errorf("saga: save instance %q: %w", r.inst.ID, err))
		if !sleep(r.ctx, delay) {
			return errStopped
		}
		delay = min(2*delay, time.Second)
	}
}

// sleep waits for d or until ctx is done, and reports whether it waited d.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// forward runs the stages whose steps have not all succeeded, in order,
// and completes the instance, or switches it to compensating when a step
// fails.
func (r *run[D]) forward() error {
	steps := r.def.steps()
	off := 0
	started := r.created // the first stage's running steps are persisted
	for _, stage := range r.def.Stages {
		var todo []int
		for j := range stage {
			if r.inst.Steps[off+j].Status != StepSucceeded {
				todo = append(todo, off+j)
			}
		}
		off += len(stage)
		if len(todo) == 0 {
			continue
		}
		if started {
			started = false
		} else if err := r.begin(todo); err != nil {
			return err
		}
		errs := make([]error, len(todo))
		if len(todo) == 1 {
			errs[0] = r.call(steps[todo[0]], false, r.inst.Steps[todo[0]].Attempts)
		} else {
			var wg sync.WaitGroup
			for k, i := range todo {
				attempt := r.inst.Steps[i].Attempts
				wg.Go(func() { errs[k] = r.call(steps[i], false, attempt) })
			}
			wg.Wait()
		}
		if r.ctx.Err() != nil {
			return errStopped
		}
		var failed error
		for k, i := range todo {
			if errs[k] == nil {
				r.inst.Steps[i].Error = ""
				r.setStep(i, StepSucceeded)
				continue
			}
			r.inst.Steps[i].Error = errs[k].Error()
			r.setStep(i, StepFailed)
			if failed == nil {
				failed = fmt.Errorf("step %q: %w", steps[i].Name, errs[k])
			}
		}
		if failed != nil {
			r.inst.Error = failed.Error()
			r.setStatus(StatusCompensating)
			return r.save()
		}
		// The successes are saved with the next stage's running steps, or
		// with the completion.
	}
	r.setStatus(StatusCompleted)
	if err := r.save(); err != nil {
		return err
	}
	r.o.tel.completed.Add(r.ctx, 1, metric.WithAttributes(NameKey.String(r.def.Name)))
	return nil
}

// begin marks the steps todo running, in a new attempt, and saves the
// instance before they run.
func (r *run[D]) begin(todo []int) error {
	for _, i := range todo {
		r.inst.Steps[i].Attempts++
		r.setStep(i, StepRunning)
	}
	// This write also records the outcome of the previous stage, whose
	// successes were not saved on their own: a crash before it leaves
	// those steps running, so that they run again (as after a crash
	// between a step's effect and the write that records it, which
	// actions must tolerate anyway); after it, the state is the one
	// separate writes would have reached. Either way the attempt is
	// counted before the step runs.
	return r.save()
}

// backward compensates, one at a time in reverse definition order, every
// step that ran (succeeded, failed, or was running or compensating when a
// process died), retrying each compensation until it succeeds, and ends
// the instance compensated.
func (r *run[D]) backward() error {
	steps := r.def.steps()
	if r.inst.Status == StatusStuck {
		r.markStuck()
	}
	for i := len(steps) - 1; i >= 0; i-- {
		switch r.inst.Steps[i].Status {
		case StepPending, StepCompensated:
			continue
		}
		if steps[i].Compensate == nil {
			r.setStep(i, StepCompensated)
			if err := r.save(); err != nil {
				return err
			}
			continue
		}
		// The first attempt is counted before it runs, as the action's are.
		r.inst.Steps[i].CompensationAttempts++
		if r.inst.Steps[i].Status != StepCompensating {
			r.setStep(i, StepCompensating)
		}
		if err := r.save(); err != nil {
			return err
		}
		if err := r.compensate(i, steps[i]); err != nil {
			return err
		}
		r.setStep(i, StepCompensated)
		if err := r.save(); err != nil {
			return err
		}
	}
	if r.stuck { // before the write, so that a Wait that sees it sees the gauge too
		r.stuck = false
		r.o.tel.addStuck(r.def.Name, -1)
	}
	r.setStatus(StatusCompensated)
	if err := r.save(); err != nil {
		return err
	}
	r.o.tel.compensated.Add(r.ctx, 1, metric.WithAttributes(NameKey.String(r.def.Name)))
	return nil
}

// compensate runs the compensation of step i until it succeeds, with
// backoff, marking the instance stuck when it fails too often or too long.
func (r *run[D]) compensate(i int, s Step[D]) error {
	cfg := &r.o.cfg
	begin := time.Now()
	var prev time.Duration
	for n := 1; ; n++ {
		if n > 1 {
			r.inst.Steps[i].CompensationAttempts++
		}
		err := r.call(s, true, r.inst.Steps[i].CompensationAttempts)
		if r.ctx.Err() != nil {
			return errStopped
		}
		if err == nil {
			return nil
		}
		r.inst.Steps[i].Error = err.Error()
		if !r.stuck && (n >= cfg.stuckAttempts || time.Since(begin) >= cfg.stuckAfter || errors.Is(err, ErrPermanent)) {
			r.markStuck()
			r.setStatus(StatusStuck)
			if err := r.save(); err != nil {
				return err
			}
		}
		prev = cfg.backoff.Delay(n, prev, rand.Float64)
		if !sleep(r.ctx, prev) {
			return errStopped
		}
	}
}

// markStuck counts the instance in the stuck gauge until the run ends.
func (r *run[D]) markStuck() {
	if !r.stuck {
		r.stuck = true
		r.o.tel.addStuck(r.def.Name, 1)
	}
}

// call runs the action of s, or its compensation, through its executor
// and timeout, in a span, and records its duration. attempt is the run's
// number, for the span and [StepInfo].
func (r *run[D]) call(s Step[D], compensate bool, attempt int) error {
	name, fn, ok, bad := "saga step "+s.Name, s.Action, OutcomeSucceeded, OutcomeFailed
	attrs := []attribute.KeyValue{NameKey.String(r.def.Name), StepKey.String(s.Name), InstanceKey.String(r.inst.ID)}
	if compensate {
		name, fn, ok, bad = "saga compensate "+s.Name, s.Compensate, OutcomeCompensated, OutcomeCompensationFailed
	}
	attrs = append(attrs, AttemptKey.Int(attempt))
	ctx, span := r.o.tel.tracer.Start(r.ctx, name, trace.WithAttributes(attrs...))
	defer span.End()
	ctx = context.WithValue(ctx, stepInfoKey{}, StepInfo{Definition: r.def.Name, InstanceID: r.inst.ID,
		Step: s.Name, Compensation: compensate, Attempt: attempt})
	if s.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.Timeout)
		defer cancel()
	}
	start := time.Now()
	f := func(ctx context.Context) (struct{}, error) { return struct{}{}, fn(ctx, r.data) }
	var err error
	if s.Executor != nil {
		_, err = s.Executor.Execute(ctx, f)
	} else {
		_, err = f(ctx)
	}
	if r.ctx.Err() != nil {
		span.SetStatus(codes.Error, "interrupted: "+context.Cause(r.ctx).Error())
		return errStopped
	}
	outcome := ok
	if err != nil {
		outcome = bad
		if !compensate && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			outcome = OutcomeTimeout
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = &TimeoutError{Step: s.Name, Timeout: s.Timeout, Err: err}
		}
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.SetAttributes(OutcomeKey.String(outcome))
	r.o.tel.stepDuration.Record(r.ctx, time.Since(start).Seconds(), metric.WithAttributes(
		NameKey.String(r.def.Name), StepKey.String(s.Name), OutcomeKey.String(outcome)))
	return err
}
