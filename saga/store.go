package saga

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Status is the state of a saga instance. An instance starts
// [StatusRunning] and ends [StatusCompleted], or goes through
// [StatusCompensating] (and [StatusStuck] while a compensation keeps
// failing) to [StatusCompensated].
type Status string

// The statuses of an instance.
const (
	// StatusRunning is an instance running its actions.
	StatusRunning Status = "running"
	// StatusCompensating is an instance undoing its steps after one failed.
	StatusCompensating Status = "compensating"
	// StatusStuck is an instance compensating whose compensation failed
	// too often or for too long (see [WithStuckAfter]). It is still
	// retried, by its orchestrator and by recovery.
	StatusStuck Status = "stuck"
	// StatusCompleted is an instance whose actions all succeeded. Final.
	StatusCompleted Status = "completed"
	// StatusCompensated is an instance whose steps were all undone. Final.
	StatusCompensated Status = "compensated"
)

// Final reports whether s is a final status: completed or compensated.
func (s Status) Final() bool { return s == StatusCompleted || s == StatusCompensated }

// StepStatus is the state of one step of an instance.
type StepStatus string

// The statuses of a step. A step goes pending → running → succeeded or
// failed, then, if the instance compensates, compensating → compensated.
const (
	StepPending      StepStatus = "pending"
	StepRunning      StepStatus = "running"
	StepSucceeded    StepStatus = "succeeded"
	StepFailed       StepStatus = "failed"
	StepCompensating StepStatus = "compensating"
	StepCompensated  StepStatus = "compensated"
)

// StepState is the persisted state of one step.
type StepState struct {
	// Name is the step's name.
	Name string `json:"name"`
	// Status is the step's status.
	Status StepStatus `json:"status"`
	// Attempts counts the runs of the action by orchestrators: one, plus
	// one per resumption after a crash (an executor's retries are one run).
	Attempts int `json:"attempts,omitempty"`
	// CompensationAttempts counts the attempts of the compensation.
	CompensationAttempts int `json:"compensation_attempts,omitempty"`
	// Error is the last error of the action or, after it, of the
	// compensation; empty when there was none.
	Error string `json:"error,omitempty"`
}

// Instance is the persisted state of one saga instance. Its JSON form
// suits a read model or a UI: Input and Data appear as JSON values.
type Instance struct {
	// ID identifies the instance; it is the idempotency key of Start.
	ID string `json:"id"`
	// Definition is the name of the instance's [Definition].
	Definition string `json:"definition"`
	// Status is the instance's status.
	Status Status `json:"status"`
	// Input is the data given to Start, as JSON; it never changes.
	Input json.RawMessage `json:"input"`
	// Data is the current data, as JSON, as the steps left it.
	Data json.RawMessage `json:"data"`
	// Steps holds one state per step, in definition order.
	Steps []StepState `json:"steps"`
	// Error is the error that made the instance compensate, if any.
	Error string `json:"error,omitempty"`
	// TraceParent and TraceState are the W3C trace context of the
	// instance's root span, so that every span of the instance, in any
	// process, joins one trace.
	TraceParent string `json:"trace_parent,omitempty"`
	TraceState  string `json:"trace_state,omitempty"`
	// Owner is the orchestrator holding the lease (or that held it last).
	Owner string `json:"owner"`
	// LeaseExpires is when the lease ends, by the store's clock.
	LeaseExpires time.Time `json:"lease_expires"`
	// Version counts the writes of the instance, from 1; every conditional
	// write checks it.
	Version int64 `json:"version"`
	// CreatedAt and UpdatedAt are when the instance was created and last
	// written, by the store's clock.
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Store errors.
var (
	// ErrNotFound is returned for an instance ID that the store does not
	// hold.
	ErrNotFound = errors.New("saga: instance not found")
	// ErrLeaseLost is returned by a conditional write whose writer no
	// longer holds the instance: another owner claimed it, its lease
	// expired or its version moved on. It is also the cause of the context
	// of a step whose orchestrator lost the instance.
	ErrLeaseLost = errors.New("saga: lease lost")
)

// Store persists saga instances and their leases. Implementations must be
// safe for concurrent use, by several processes when the store is shared:
// every method is atomic. Lease expiry is judged by the store's clock (the
// database's, where there is one); the orchestrator stops using a lease
// a safety margin before its own clock says it ends. The package
// saga/sagatest checks the contract.
type Store interface {
	// Create stores inst (Version, CreatedAt, UpdatedAt and LeaseExpires
	// are set by the store) with inst.Owner holding a lease of the given
	// duration, and returns it with true. If an instance with inst.ID
	// exists, it stores nothing and returns that instance with false.
	Create(ctx context.Context, inst Instance, lease time.Duration) (Instance, bool, error)
	// Get returns the instance id, or [ErrNotFound].
	Get(ctx context.Context, id string) (Instance, error)
	// Update writes the Status, Data, Steps and Error of inst if the stored
	// instance has inst.Version and is held by inst.Owner with a lease
	// that has not expired; it extends the lease by lease and returns the
	// stored instance, its Version incremented. Otherwise it returns
	// [ErrLeaseLost] and writes nothing.
	Update(ctx context.Context, inst Instance, lease time.Duration) (Instance, error)
	// Renew extends the lease of instance id to lease from now, if owner
	// holds a lease on it that has not expired; else it returns
	// [ErrLeaseLost].
	Renew(ctx context.Context, id, owner string, lease time.Duration) error
	// Claim gives owner a lease of the given duration on at most limit
	// instances of the named definitions that are not final and whose
	// lease has expired, incrementing their Version, and returns them.
	// Two concurrent Claims never return the same instance.
	Claim(ctx context.Context, owner string, definitions []string, lease time.Duration, limit int) ([]Instance, error)
}

// ConflictError is returned by Start for an instance ID that exists with
// another definition or other input data.
type ConflictError struct {
	// ID is the instance ID.
	ID string
	// Definition is the existing instance's definition name.
	Definition string
	// Reason says what differs.
	Reason string
}

// Error names the instance, its definition and what differs.
func (e *ConflictError) Error() string {
	return fmt.Sprintf("saga: instance %q exists (definition %q) with %s", e.ID, e.Definition, e.Reason)
}
