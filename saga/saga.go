package saga

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cairnhq/cairn/resilience"
)

// Step is one step of a saga: an action and the compensation that undoes
// it. Both receive the instance's data as *D and may change it (an action
// records a payment ID for its compensation, say); the orchestrator
// persists the data after every step.
//
// Action and Compensate must be idempotent: after a crash, the step that
// was running is run again, and a compensation is retried until it
// succeeds. They should return promptly when ctx is done: its cause is
// [ErrLeaseLost] when the orchestrator lost the instance to another one.
type Step[D any] struct {
	// Name identifies the step in its definition, in the persisted state,
	// in span names and in metric attributes. It must be unique in the
	// definition and not empty.
	Name string
	// Action does the step's work. It must not be nil.
	Action func(ctx context.Context, data *D) error
	// Compensate undoes Action. It is called for a step whose action
	// succeeded, and also for one whose action failed or timed out (it may
	// have taken effect, as in DTM's saga), when a later or the same step
	// fails. Nil means there is nothing to undo.
	Compensate func(ctx context.Context, data *D) error
	// Timeout bounds the step's action, all of Executor's attempts
	// included, and each attempt of its compensation. Zero means no
	// timeout; add a [resilience.Timeout] stage to Executor to bound each
	// attempt of the action instead.
	Timeout time.Duration
	// Executor runs the action and each attempt of the compensation, with
	// its retries, circuit breaker and so on. Nil calls them directly. Use
	// [Retryable] as its retry policy's RetryIf so that it does not retry a
	// [Permanent] error.
	Executor resilience.Executor[struct{}]
}

// Stage is one stage of a saga: a single step, or a parallel group of
// steps when it holds several. The steps of a group run concurrently and
// share the same *D: each must write only its own fields of D and read no
// field that another member writes. The stage succeeds when all its steps
// do; when one fails, the orchestrator waits for the others to end and then
// compensates.
type Stage[D any] []Step[D]

// Definition is a saga: a name and a sequence of stages. A definition must
// not change while instances of it run; a new version of a saga is a new
// definition name.
type Definition[D any] struct {
	// Name identifies the saga; it is stored with every instance, so that
	// any orchestrator knowing the definition can resume it.
	Name string
	// Stages run in order.
	Stages []Stage[D]
}

// Validate returns an error naming what is wrong with d, or nil: an empty
// name, no stages, an empty stage, a step without a name or action, a
// duplicate step name or a negative timeout.
func (d *Definition[D]) Validate() error {
	if d.Name == "" {
		return errors.New("saga: definition with an empty name")
	}
	if len(d.Stages) == 0 {
		return fmt.Errorf("saga: definition %q has no stages", d.Name)
	}
	seen := make(map[string]bool)
	for i, stage := range d.Stages {
		if len(stage) == 0 {
			return fmt.Errorf("saga: definition %q: stage %d is empty", d.Name, i+1)
		}
		for j, s := range stage {
			switch {
			case s.Name == "":
				return fmt.Errorf("saga: definition %q: stage %d, step %d has an empty name", d.Name, i+1, j+1)
			case seen[s.Name]:
				return fmt.Errorf("saga: definition %q: duplicate step name %q (stage %d)", d.Name, s.Name, i+1)
			case s.Action == nil:
				return fmt.Errorf("saga: definition %q: step %q has no action", d.Name, s.Name)
			case s.Timeout < 0:
				return fmt.Errorf("saga: definition %q: step %q has a negative timeout %v", d.Name, s.Name, s.Timeout)
			}
			seen[s.Name] = true
		}
	}
	return nil
}

// steps returns the steps of d in definition order, the order of
// [Instance.Steps].
func (d *Definition[D]) steps() []Step[D] {
	var all []Step[D]
	for _, stage := range d.Stages {
		all = append(all, stage...)
	}
	return all
}

// ErrPermanent matches every error made by [Permanent].
var ErrPermanent = errors.New("saga: permanent error")

// permanentError marks an error as not worth retrying.
type permanentError struct{ err error }

func (e *permanentError) Error() string        { return e.err.Error() }
func (e *permanentError) Unwrap() error        { return e.err }
func (e *permanentError) Is(target error) bool { return target == ErrPermanent }

// Permanent wraps err to say that retrying cannot help: an action failing
// with it fails its step at once (with [Retryable] as the executor's
// RetryIf), and a compensation failing with it marks its instance
// [StatusStuck] at once; the orchestrator keeps retrying the compensation,
// as a compensation must eventually succeed. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// Retryable reports whether err may be retried: it is not a [Permanent]
// error and not the end of its context. Use it as the RetryIf of a step's
// retry policy.
func Retryable(err error) bool {
	return !errors.Is(err, ErrPermanent) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// TimeoutError is the error of a step whose action or compensation ran
// longer than its [Step.Timeout].
type TimeoutError struct {
	// Step is the step's name.
	Step string
	// Timeout is the step's timeout.
	Timeout time.Duration
	// Err is what the action or compensation returned.
	Err error
}

// Error says which step timed out, after how long, and what it returned.
func (e *TimeoutError) Error() string {
	return fmt.Sprintf("saga: step %q timed out after %v: %v", e.Step, e.Timeout, e.Err)
}

// Unwrap returns the error of the action or compensation.
func (e *TimeoutError) Unwrap() error { return e.Err }

// StepInfo describes the step run that a context belongs to: the
// orchestrator puts it in the context of every action and compensation.
// With saga/barrier, InstanceID is the barrier's saga ID, Step its branch
// ID and Compensation its operation.
type StepInfo struct {
	// Definition is the saga's definition name.
	Definition string
	// InstanceID is the instance's ID.
	InstanceID string
	// Step is the step's name.
	Step string
	// Compensation is true in a compensation, false in an action.
	Compensation bool
	// Attempt numbers the runs of the action (resumptions after a crash
	// included) or the attempts of the compensation, from 1.
	Attempt int
}

type stepInfoKey struct{}

// StepInfoFrom returns the [StepInfo] of ctx, and false when ctx is not
// the context of an action or compensation.
func StepInfoFrom(ctx context.Context) (StepInfo, bool) {
	info, ok := ctx.Value(stepInfoKey{}).(StepInfo)
	return info, ok
}
