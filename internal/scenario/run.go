package scenario

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Defaults of [Options].
const (
	DefaultDrain       = 15 * time.Second
	DefaultSampleEvery = time.Second
)

// checkTimeout bounds one call of a Check, and one baseline read.
const checkTimeout = 5 * time.Second

// Options configures one [Run]. The zero value runs the scenario as
// declared.
type Options struct {
	// Duration is the length of the run before its drain. Default the
	// scenario's Duration.
	Duration time.Duration
	// RPS is the load. Default the scenario's RPS.
	RPS float64
	// Drain is how long the run waits, once its faults are cleared and the
	// load stopped, for the shop to finish what is in flight before the
	// AtEnd assertions are evaluated. Eventually and Always assertions
	// are still sampled meanwhile. Default DefaultDrain (15s); negative
	// means no drain.
	Drain time.Duration
	// SampleEvery is how often Eventually and Always assertions are
	// sampled; they are also sampled as each event fires and at each
	// Eventually deadline. Default DefaultSampleEvery (1s).
	SampleEvery time.Duration
	// OnUpdate, if set, is called with the report so far after each
	// event and each sample, from the goroutine that called Run; it must
	// not block for long. The report is a copy the callee may keep.
	OnUpdate func(Report)
}

// State is the state of an assertion's result.
type State string

// The states of an assertion's result.
const (
	Pending State = "pending" // not decided yet, or never decided because the run stopped early
	Passed  State = "passed"
	Failed  State = "failed"
)

// Phase is where a run is.
type Phase string

// The phases of a run.
const (
	PhaseRunning  Phase = "running"  // load and timeline
	PhaseDraining Phase = "draining" // faults cleared, load stopped, waiting
	PhaseDone     Phase = "done"     // every assertion decided
	PhaseStopped  Phase = "stopped"  // the context ended the run early; cleaned up
	PhaseAborted  Phase = "aborted"  // an event failed; cleaned up
)

// Report is the result of a run, or of a run so far ([Options.OnUpdate]).
// Durations are in nanoseconds in JSON, as the fields' names say.
type Report struct {
	Scenario string        `json:"scenario"`
	Params   Params        `json:"params"`
	RPS      float64       `json:"rps"`
	Duration time.Duration `json:"duration_ns"`
	Drain    time.Duration `json:"drain_ns"`
	// Started is when the load was set.
	Started time.Time `json:"started"`
	// Elapsed is how long the run has taken so far.
	Elapsed    time.Duration `json:"elapsed_ns"`
	Phase      Phase         `json:"phase"`
	Events     []EventResult `json:"events"`
	Assertions []Result      `json:"assertions"`
	// Cleanup lists what the run undid once its duration was over:
	// "cleared fault payment-provider", "restarted shipping".
	Cleanup []string `json:"cleanup"`
	// Errors lists what went wrong with the run itself: a failed event, a
	// failed cleanup step, the context ending it early.
	Errors []string `json:"errors"`
}

// EventResult is one event of a run's timeline.
type EventResult struct {
	Name string `json:"name"`
	// At is when the event fires, from the run's start.
	At    time.Duration `json:"at_ns"`
	Fired bool          `json:"fired"`
	Error string        `json:"error,omitempty"`
}

// Result is the result of one assertion.
type Result struct {
	Name   string        `json:"name"`
	Kind   Kind          `json:"kind"`
	After  string        `json:"after,omitempty"`
	Within time.Duration `json:"within_ns,omitempty"`
	State  State         `json:"state"`
	// Observed is what the latest evaluation saw.
	Observed string `json:"observed"`
	// At is when the result was decided, or last sampled while pending,
	// from the assertion's start (the run's start or its After event).
	At time.Duration `json:"at_ns"`
	// Samples counts the evaluations.
	Samples int `json:"samples"`
}

// Passed reports whether the run went through to the end without an error
// and every assertion passed.
func (r Report) Passed() bool {
	if r.Phase != PhaseDone || len(r.Errors) > 0 {
		return false
	}
	for _, a := range r.Assertions {
		if a.State != Passed {
			return false
		}
	}
	return true
}

// clone returns a copy of r that shares no slices with it.
func (r Report) clone() Report {
	r.Events = slices.Clone(r.Events)
	r.Assertions = slices.Clone(r.Assertions)
	r.Cleanup = slices.Clone(r.Cleanup)
	r.Errors = slices.Clone(r.Errors)
	return r
}

// Run runs scenario s against env with params (the zero Params means the
// defaults) and returns its report.
//
// It reads every assertion once for the counters' baselines, sets the
// load, fires the timeline's events at their times and samples the
// Eventually and Always assertions every opts.SampleEvery. When the
// duration is over it clears every fault the events set, restarts every
// service they killed, brings the broker up if they took it down and
// stops the load; it waits opts.Drain, sampling still, then evaluates the
// AtEnd assertions. Run leaves the load at zero: the caller sets the load
// it wants afterwards.
//
// The cleanup happens however the run ends: if an event fails (returns
// an error or panics), Run stops the timeline, cleans up and returns the
// report so far (phase aborted) with the event's error; if ctx ends, it
// cleans up and returns the report so far (phase stopped) with ctx's
// error. Otherwise the error is nil, whether or not the assertions passed:
// see [Report.Passed]. A failed cleanup step is in Report.Errors and in
// the error. Run calls env from its own goroutine only, and starts none.
func Run(ctx context.Context, env Env, s *Scenario, params Params, opts Options) (Report, error) {
	if err := s.Validate(); err != nil {
		return Report{}, err
	}
	switch params.scenario {
	case "":
		var err error
		if params, err = s.ParseParams(nil); err != nil {
			return Report{}, err
		}
	case s.Name:
	default:
		return Report{}, fmt.Errorf("scenario: %s: params are those of scenario %s", s.Name, params.scenario)
	}
	opts.Duration = cmp.Or(opts.Duration, s.Duration)
	opts.RPS = cmp.Or(opts.RPS, s.RPS)
	switch {
	case opts.Drain == 0:
		opts.Drain = DefaultDrain
	case opts.Drain < 0:
		opts.Drain = 0
	}
	if opts.SampleEvery <= 0 {
		opts.SampleEvery = DefaultSampleEvery
	}
	if opts.Duration < 0 || !(opts.RPS > 0) {
		return Report{}, fmt.Errorf("scenario: %s: duration %v and rps %v must be positive", s.Name, opts.Duration, opts.RPS)
	}
	r := &runner{
		s: s, params: params, opts: opts,
		env: newTrackingEnv(env), probe: env.Probe(), base: newBaselines(),
		fired:    make(map[string]time.Time),
		sampleOK: make([]bool, len(s.Assertions)),
	}
	r.rep = Report{
		Scenario: s.Name, Params: params, RPS: opts.RPS, Duration: opts.Duration, Drain: opts.Drain,
		Phase: PhaseRunning, Cleanup: []string{}, Errors: []string{},
	}
	return r.run(ctx)
}

// runner is the state of one run; it is used from Run's goroutine only.
type runner struct {
	s        *Scenario
	params   Params
	opts     Options
	env      *trackingEnv
	probe    Probe
	base     *baselines
	start    time.Time
	order    []int                // indices of s.Timeline in firing order
	fired    map[string]time.Time // event name -> when it fired
	sampleOK []bool               // an Always assertion had a successful sample
	rep      Report
	cleaned  bool
	// cleanupErr joins the failed cleanup steps.
	cleanupErr error
}

func (r *runner) run(ctx context.Context) (Report, error) {
	r.order = make([]int, len(r.s.Timeline))
	for i := range r.order {
		r.order[i] = i
	}
	slices.SortStableFunc(r.order, func(a, b int) int { return cmp.Compare(r.s.Timeline[a].At, r.s.Timeline[b].At) })
	for _, i := range r.order {
		e := r.s.Timeline[i]
		r.rep.Events = append(r.rep.Events, EventResult{Name: e.Name, At: r.offset(e.At)})
	}
	for _, a := range r.s.Assertions {
		within := a.Within
		if a.WithinParam != "" {
			within = r.params.Duration(a.WithinParam)
		}
		r.rep.Assertions = append(r.rep.Assertions, Result{Name: a.Name, Kind: a.Kind, After: a.After, Within: within, State: Pending})
	}

	// Baselines: every check reads its counters once before anything
	// happens.
	pre := time.Now()
	for i := range r.s.Assertions {
		_, _ = r.check(ctx, i, Window{RunStart: pre, Start: pre, Now: pre, Baseline: true})
	}

	r.start = time.Now()
	r.rep.Started = r.start
	defer r.cleanup() // also on a panic of the env
	r.env.SetLoad(r.opts.RPS)
	end := r.start.Add(r.opts.Duration)
	drainEnd := end.Add(r.opts.Drain)
	nextSample := r.start.Add(r.opts.SampleEvery)
	next := 0 // of r.order
	var runErr error
	r.update(r.start)
	for {
		now := time.Now()
		if r.rep.Phase == PhaseRunning {
			for next < len(r.order) && !now.Before(r.eventTime(next)) {
				if err := r.fire(ctx, next, now); err != nil {
					runErr = err
					break
				}
				next++
			}
			if runErr != nil {
				break
			}
		}
		r.sample(ctx, now)
		if r.rep.Phase == PhaseRunning && !now.Before(end) {
			r.cleanup()
			r.rep.Phase = PhaseDraining
		}
		if !now.Before(drainEnd) {
			break
		}
		for !nextSample.After(now) {
			nextSample = nextSample.Add(r.opts.SampleEvery)
		}
		wake := earliest(nextSample, drainEnd)
		if r.rep.Phase == PhaseRunning {
			wake = earliest(wake, end)
			if next < len(r.order) {
				wake = earliest(wake, r.eventTime(next))
			}
		}
		for i := range r.s.Assertions {
			if d, ok := r.deadline(i); ok && d.After(now) {
				wake = earliest(wake, d)
			}
		}
		r.update(now)
		t := time.NewTimer(wake.Sub(now))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			runErr = fmt.Errorf("scenario: %s stopped: %w", r.s.Name, context.Cause(ctx))
		}
		if runErr != nil {
			r.rep.Phase = PhaseStopped
			break
		}
	}
	r.cleanup()
	now := time.Now()
	if runErr == nil {
		r.finish(ctx, now)
	} else {
		r.rep.Errors = append(r.rep.Errors, runErr.Error())
	}
	r.update(now)
	return r.rep.clone(), errors.Join(runErr, r.cleanupErr)
}

// offset returns the offset of a fraction of the duration.
func (r *runner) offset(at float64) time.Duration {
	return time.Duration(at * float64(r.opts.Duration))
}

// eventTime returns when the next-th event to fire fires.
func (r *runner) eventTime(next int) time.Time {
	return r.start.Add(r.offset(r.s.Timeline[r.order[next]].At))
}

// fire records the baselines of the next-th event and carries it out.
func (r *runner) fire(ctx context.Context, next int, now time.Time) error {
	e := r.s.Timeline[r.order[next]]
	r.base.snapshot(ctx, r.probe, e.Name)
	r.fired[e.Name] = now
	err := protect(func() error { return e.Do(ctx, r.env, r.params) })
	ev := &r.rep.Events[next]
	ev.Fired = true
	if err != nil {
		ev.Error = err.Error()
		r.rep.Phase = PhaseAborted
		r.update(now)
		return fmt.Errorf("scenario: %s: event %q: %w", r.s.Name, e.Name, err)
	}
	r.update(now)
	return nil
}

// startOf returns when assertion i started, and false if its After event
// has not fired.
func (r *runner) startOf(i int) (time.Time, bool) {
	a := r.s.Assertions[i]
	if a.After == "" {
		return r.start, true
	}
	t, ok := r.fired[a.After]
	return t, ok
}

// deadline returns when the Eventually assertion i fails if it has not
// passed, once its start is known; Within zero has no deadline before
// the end of the run.
func (r *runner) deadline(i int) (time.Time, bool) {
	res := r.rep.Assertions[i]
	if res.Kind != Eventually || res.Within == 0 || res.State != Pending {
		return time.Time{}, false
	}
	st, ok := r.startOf(i)
	if !ok {
		return time.Time{}, false
	}
	return st.Add(res.Within), true
}

// sample evaluates every started Eventually and Always assertion that is
// still pending.
func (r *runner) sample(ctx context.Context, now time.Time) {
	for i, a := range r.s.Assertions {
		res := &r.rep.Assertions[i]
		if a.Kind == AtEnd || res.State != Pending {
			continue
		}
		st, ok := r.startOf(i)
		if !ok {
			continue
		}
		obs, err := r.check(ctx, i, Window{RunStart: r.start, Start: st, Now: now, anchor: a.After})
		res.Samples++
		res.At = now.Sub(st)
		res.Observed = observed(obs, err)
		switch a.Kind {
		case Eventually:
			if err == nil && obs.OK {
				res.State = Passed
			} else if d, ok := r.deadline(i); ok && !now.Before(d) {
				res.State = Failed
			}
		case Always:
			if err != nil {
				continue
			}
			if !obs.OK {
				res.State = Failed
			}
			r.sampleOK[i] = true
		}
	}
}

// finish decides every assertion still pending at the end of a run.
func (r *runner) finish(ctx context.Context, now time.Time) {
	for i, a := range r.s.Assertions {
		res := &r.rep.Assertions[i]
		if res.State != Pending {
			continue
		}
		st, ok := r.startOf(i)
		if !ok {
			res.State, res.Observed = Failed, fmt.Sprintf("event %q never fired", a.After)
			continue
		}
		switch a.Kind {
		case AtEnd:
			obs, err := r.check(ctx, i, Window{RunStart: r.start, Start: st, Now: now, anchor: a.After})
			res.Samples++
			res.At = now.Sub(st)
			res.Observed = observed(obs, err)
			res.State = Failed
			if err == nil && obs.OK {
				res.State = Passed
			}
		case Eventually:
			res.State = Failed
		case Always:
			res.State = Passed
			if !r.sampleOK[i] {
				res.State = Failed
				res.Observed = "never observed: " + res.Observed
			}
		}
	}
	r.rep.Phase = PhaseDone
}

// check runs assertion i's Check with a bounded context, turning a panic
// into an error.
func (r *runner) check(ctx context.Context, i int, w Window) (obs Observation, err error) {
	w.Params, w.base = r.params, r.base
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	err = protect(func() error {
		var err error
		obs, err = r.s.Assertions[i].Check(ctx, r.probe, w)
		return err
	})
	return obs, err
}

// cleanup undoes what the events did, once.
func (r *runner) cleanup() {
	if r.cleaned {
		return
	}
	r.cleaned = true
	done, errs := r.env.cleanup()
	r.rep.Cleanup = append(r.rep.Cleanup, done...)
	for _, err := range errs {
		r.rep.Errors = append(r.rep.Errors, err.Error())
		r.cleanupErr = errors.Join(r.cleanupErr, fmt.Errorf("scenario: %s: %w", r.s.Name, err))
	}
}

func (r *runner) update(now time.Time) {
	r.rep.Elapsed = now.Sub(r.start)
	if r.opts.OnUpdate != nil {
		r.opts.OnUpdate(r.rep.clone())
	}
}

// observed is the text of a check's result.
func observed(obs Observation, err error) string {
	if err != nil {
		return "could not observe: " + err.Error()
	}
	return obs.Text
}

// protect calls fn, turning a panic into an error.
func protect(fn func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic: %v", v)
		}
	}()
	return fn()
}

// earliest returns the earlier of a and b.
func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
