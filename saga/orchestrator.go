package saga

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/resilience/retry"
)

// Defaults of the options.
const (
	DefaultLease         = 30 * time.Second
	DefaultPollInterval  = 5 * time.Second
	DefaultStuckAttempts = 10
	DefaultStuckAfter    = 5 * time.Minute
	DefaultClaimLimit    = 32
)

// DefaultCompensationBackoff is the wait between the attempts of a
// compensation without [WithCompensationBackoff]: exponential from 100ms,
// doubling, at most a minute, with full jitter.
var DefaultCompensationBackoff = retry.Backoff{
	Kind: retry.KindExponential, Initial: 100 * time.Millisecond, Max: time.Minute,
	Multiplier: 2, Jitter: retry.JitterFull,
}

// ErrClosed is returned by Start on a closed orchestrator, and is the
// cause of the context of the steps it interrupts when it closes.
var ErrClosed = errors.New("saga: orchestrator closed")

// Option configures [New].
type Option func(*config)

type config struct {
	owner         string
	lease         time.Duration
	poll          time.Duration
	backoff       retry.Backoff
	stuckAttempts int
	stuckAfter    time.Duration
	claimLimit    int
	tp            trace.TracerProvider
	mp            metric.MeterProvider
}

// WithOwner sets the orchestrator's owner ID in leases; it must be unique
// among the orchestrators sharing a store. Default a random 16-hex-digit
// string.
func WithOwner(id string) Option { return func(c *config) { c.owner = id } }

// WithLease sets the duration of a lease: how long after a crash other
// orchestrators wait before they resume an instance. The orchestrator
// renews its leases every third of it, and abandons an instance (cancels
// its step) when it has not renewed for nine tenths of it. Default
// [DefaultLease].
func WithLease(d time.Duration) Option { return func(c *config) { c.lease = d } }

// WithPollInterval sets how often [Orchestrator.Run] looks for instances
// to recover, and [Orchestrator.Wait] for instances run elsewhere.
// Default [DefaultPollInterval].
func WithPollInterval(d time.Duration) Option { return func(c *config) { c.poll = d } }

// WithCompensationBackoff sets the wait between the attempts of a
// compensation. Default [DefaultCompensationBackoff].
func WithCompensationBackoff(b retry.Backoff) Option { return func(c *config) { c.backoff = b } }

// WithStuckAfter sets when an instance whose compensation keeps failing is
// marked [StatusStuck]: after attempts failed attempts of one
// compensation, or once it has been retried for elapsed. Zero values keep
// the defaults, [DefaultStuckAttempts] and [DefaultStuckAfter].
func WithStuckAfter(attempts int, elapsed time.Duration) Option {
	return func(c *config) {
		if attempts > 0 {
			c.stuckAttempts = attempts
		}
		if elapsed > 0 {
			c.stuckAfter = elapsed
		}
	}
}

// WithTracerProvider sets the provider of the spans. Default the global
// otel.GetTracerProvider().
func WithTracerProvider(tp trace.TracerProvider) Option { return func(c *config) { c.tp = tp } }

// WithMeterProvider sets the provider of the metrics. Default the global
// otel.GetMeterProvider().
func WithMeterProvider(mp metric.MeterProvider) Option { return func(c *config) { c.mp = mp } }

// Orchestrator runs the instances of a set of definitions sharing the data
// type D, persisting their state in a [Store]. Several orchestrators, in
// one process or many, may share a store: leases make sure that one
// instance runs in one of them at a time. It is safe for concurrent use;
// Close stops it.
type Orchestrator[D any] struct {
	store Store
	defs  map[string]*Definition[D]
	names []string
	cfg   config
	tel   *telemetry

	mu     sync.Mutex
	runs   map[string]*run[D] // by instance ID, the runs in progress
	closed bool
	wg     sync.WaitGroup // the runs' goroutines
}

// New returns an orchestrator of defs over store, after validating every
// definition.
func New[D any](store Store, defs []Definition[D], opts ...Option) (*Orchestrator[D], error) {
	cfg := config{lease: DefaultLease, poll: DefaultPollInterval, backoff: DefaultCompensationBackoff,
		stuckAttempts: DefaultStuckAttempts, stuckAfter: DefaultStuckAfter, claimLimit: DefaultClaimLimit}
	for _, o := range opts {
		o(&cfg)
	}
	if store == nil {
		return nil, errors.New("saga: nil store")
	}
	if cfg.lease <= 0 || cfg.poll <= 0 {
		return nil, fmt.Errorf("saga: lease %v and poll interval %v must be positive", cfg.lease, cfg.poll)
	}
	if err := cfg.backoff.Validate(); err != nil {
		return nil, fmt.Errorf("saga: compensation backoff: %w", err)
	}
	if cfg.owner == "" {
		var b [8]byte
		rand.Read(b[:])
		cfg.owner = hex.EncodeToString(b[:])
	}
	if cfg.tp == nil {
		cfg.tp = otel.GetTracerProvider()
	}
	if cfg.mp == nil {
		cfg.mp = otel.GetMeterProvider()
	}
	if len(defs) == 0 {
		return nil, errors.New("saga: no definitions")
	}
	o := &Orchestrator[D]{store: store, defs: make(map[string]*Definition[D]), cfg: cfg, runs: make(map[string]*run[D])}
	for i := range defs {
		d := &defs[i]
		if err := d.Validate(); err != nil {
			return nil, err
		}
		if o.defs[d.Name] != nil {
			return nil, fmt.Errorf("saga: two definitions named %q", d.Name)
		}
		o.defs[d.Name] = d
		o.names = append(o.names, d.Name)
	}
	slices.Sort(o.names)
	tel, err := newTelemetry(cfg.tp, cfg.mp)
	if err != nil {
		return nil, fmt.Errorf("saga: metrics: %w", err)
	}
	o.tel = tel
	return o, nil
}

// Owner returns the orchestrator's owner ID.
func (o *Orchestrator[D]) Owner() string { return o.cfg.owner }

// Start persists a new instance id of the definition named definition with
// data, and then runs it in the background; [Orchestrator.Wait] waits for
// it to end. It returns the persisted instance, whose first stage's steps
// are running (in their first attempt) and the others pending.
//
// Start is idempotent on id: when the instance exists with the same
// definition and input data (as JSON), Start returns it and runs nothing,
// as a retried request must be safe; when it exists with another
// definition or data, Start returns a [*ConflictError], as reusing an ID
// for other work is a bug that must not pass silently.
//
// The instance's root span, "saga <definition>", starts here as a child
// of ctx's span; the instance runs with ctx's values but not its
// cancellation.
func (o *Orchestrator[D]) Start(ctx context.Context, definition, id string, data D) (Instance, error) {
	def := o.defs[definition]
	if def == nil {
		return Instance{}, fmt.Errorf("saga: start %q: unknown definition %q", id, definition)
	}
	if id == "" {
		return Instance{}, fmt.Errorf("saga: start %q: empty instance ID", definition)
	}
	input, err := json.Marshal(data)
	if err != nil {
		return Instance{}, fmt.Errorf("saga: start %s %q: encode data: %w", definition, id, err)
	}
	o.mu.Lock()
	closed := o.closed
	o.mu.Unlock()
	if closed {
		return Instance{}, ErrClosed
	}
	ctx, span := o.tel.tracer.Start(ctx, "saga "+definition,
		trace.WithAttributes(NameKey.String(definition), InstanceKey.String(id)))
	inst := Instance{ID: id, Definition: definition, Status: StatusRunning, Input: input, Data: input, Owner: o.cfg.owner}
	// The steps of the first stage are created running, in their first
	// attempt, as they would be by the write that precedes them: a crash
	// after Create runs them again, as a crash after that write would.
	first := len(def.Stages[0])
	for i, s := range def.steps() {
		st := StepState{Name: s.Name, Status: StepPending}
		if i < first {
			st.Status, st.Attempts = StepRunning, 1
		}
		inst.Steps = append(inst.Steps, st)
	}
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, carrier)
	inst.TraceParent, inst.TraceState = carrier["traceparent"], carrier["tracestate"]

	t0 := time.Now()
	stored, created, err := o.store.Create(ctx, inst, o.cfg.lease)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		span.End()
		return Instance{}, fmt.Errorf("saga: start %s %q: %w", definition, id, err)
	}
	if !created {
		span.SetAttributes(duplicateKey.Bool(true))
		span.End()
		switch {
		case stored.Definition != definition:
			return stored, &ConflictError{ID: id, Definition: stored.Definition, Reason: "another definition than " + definition}
		case !bytes.Equal(stored.Input, input):
			return stored, &ConflictError{ID: id, Definition: stored.Definition, Reason: "other input data"}
		}
		return stored, nil
	}
	o.tel.started.Add(ctx, 1, metric.WithAttributes(NameKey.String(definition)))
	span.AddEvent(TransitionEventName, trace.WithAttributes(StatusKey.String(string(StatusRunning))))
	for _, st := range stored.Steps[:first] {
		span.AddEvent(TransitionEventName, trace.WithAttributes(StepKey.String(st.Name), StatusKey.String(string(st.Status))))
	}
	o.launch(ctx, def, stored, span, t0, true)
	return stored, nil
}

// duplicateKey marks the root span of a Start that found its instance
// already stored.
const duplicateKey = attribute.Key("cairn.saga.duplicate")

// Get returns the persisted state of instance id, or an error matching
// [ErrNotFound].
func (o *Orchestrator[D]) Get(ctx context.Context, id string) (Instance, error) {
	inst, err := o.store.Get(ctx, id)
	if err != nil {
		return Instance{}, fmt.Errorf("saga: get %q: %w", id, err)
	}
	return inst, nil
}

// Data decodes the data of inst.
func (o *Orchestrator[D]) Data(inst Instance) (D, error) {
	var d D
	if err := json.Unmarshal(inst.Data, &d); err != nil {
		return d, fmt.Errorf("saga: instance %q: decode data: %w", inst.ID, err)
	}
	return d, nil
}

// Wait waits until instance id is final (completed or compensated) and
// returns it, or returns ctx's error with the instance's last known state.
// While this orchestrator runs the instance, Wait waits for the run to end
// and returns the state it persisted last, without reading the store;
// otherwise it polls the store every poll interval.
func (o *Orchestrator[D]) Wait(ctx context.Context, id string) (Instance, error) {
	for {
		o.mu.Lock()
		r := o.runs[id]
		o.mu.Unlock()
		if r != nil {
			select {
			case <-ctx.Done():
				return r.snapshot(), ctx.Err()
			case <-r.done:
			}
			if inst := r.snapshot(); inst.Status.Final() {
				return inst, nil
			}
			continue // the run stopped before the end: ask the store
		}
		inst, err := o.Get(ctx, id)
		if err != nil || inst.Status.Final() {
			return inst, err
		}
		t := time.NewTimer(o.cfg.poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return inst, ctx.Err()
		case <-t.C:
		}
	}
}

// Run recovers instances until ctx is done, then returns nil: at once and
// every poll interval, it claims the instances of the orchestrator's
// definitions whose lease has expired (their process died, or lost them)
// and resumes them from their persisted state. A step that was running is
// run again; an instance that was compensating goes on compensating. The
// resumed instances keep running after Run returns, until they end or
// Close.
func (o *Orchestrator[D]) Run(ctx context.Context) error {
	for {
		o.recoverOnce(ctx)
		t := time.NewTimer(o.cfg.poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// Recover claims and resumes, once, the instances whose lease has expired,
// and returns how many it resumed.
func (o *Orchestrator[D]) Recover(ctx context.Context) (int, error) {
	return o.recoverOnce(ctx)
}

func (o *Orchestrator[D]) recoverOnce(ctx context.Context) (int, error) {
	o.mu.Lock()
	closed := o.closed
	o.mu.Unlock()
	if closed {
		return 0, ErrClosed
	}
	t0 := time.Now()
	insts, err := o.store.Claim(ctx, o.cfg.owner, o.names, o.cfg.lease, o.cfg.claimLimit)
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	o.tel.recoveryRuns.Add(ctx, 1, metric.WithAttributes(OutcomeKey.String(outcome)))
	if err != nil {
		return 0, fmt.Errorf("saga: recover: %w", err)
	}
	for _, inst := range insts {
		def := o.defs[inst.Definition]
		if def == nil { // a store that ignored the definitions asked for
			continue
		}
		o.tel.recovered.Add(ctx, 1, metric.WithAttributes(NameKey.String(inst.Definition)))
		parent := propagation.TraceContext{}.Extract(context.WithoutCancel(ctx),
			propagation.MapCarrier{"traceparent": inst.TraceParent, "tracestate": inst.TraceState})
		rctx, span := o.tel.tracer.Start(parent, "saga "+inst.Definition+" resume",
			trace.WithAttributes(NameKey.String(inst.Definition), InstanceKey.String(inst.ID)))
		span.AddEvent(TransitionEventName, trace.WithAttributes(StatusKey.String(string(inst.Status))))
		o.launch(rctx, def, inst, span, t0, false)
	}
	return len(insts), nil
}

// Close stops the orchestrator: it cancels the contexts of the steps it
// runs (with the cause [ErrClosed]), waits for its runs to stop, and
// leaves their leases to expire, as a crash would; other orchestrators
// resume the unfinished instances then. Wait for the instances first to
// stop without interrupting them. Start fails after Close.
func (o *Orchestrator[D]) Close() error {
	o.mu.Lock()
	o.closed = true
	for _, r := range o.runs {
		r.cancel(ErrClosed)
	}
	o.mu.Unlock()
	o.wg.Wait()
	return o.tel.reg.Unregister()
}

// launch runs inst in a new goroutine, after any run of the same instance
// still ending in this orchestrator. t0 is the time before the store
// call that gave the lease; created is true for an instance that Start
// has just created, whose first stage is persisted running already.
func (o *Orchestrator[D]) launch(ctx context.Context, def *Definition[D], inst Instance, span trace.Span, t0 time.Time, created bool) {
	inst.Owner = o.cfg.owner // fence writes by this orchestrator's identity, whatever the store returned
	ctx, cancel := context.WithCancelCause(trace.ContextWithSpan(context.WithoutCancel(ctx), span))
	r := &run[D]{o: o, def: def, inst: inst, span: span, ctx: ctx, cancel: cancel, done: make(chan struct{}), created: created}
	r.publish()
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		cancel(ErrClosed)
		span.End()
		return
	}
	prev := o.runs[inst.ID]
	o.runs[inst.ID] = r
	o.wg.Add(1)
	o.mu.Unlock()
	r.deadline = time.AfterFunc(o.leaseDeadline(t0), func() { cancel(ErrLeaseLost) })
	go func() {
		defer o.wg.Done()
		if prev != nil {
			<-prev.done
		}
		r.execute()
		o.mu.Lock()
		if o.runs[inst.ID] == r {
			delete(o.runs, inst.ID)
		}
		o.mu.Unlock()
		close(r.done)
	}()
}

// leaseDeadline returns how long from now a lease obtained by a store call
// made at t0 may still be used: nine tenths of the lease after t0, a
// margin for the steps to stop and for clocks to drift.
func (o *Orchestrator[D]) leaseDeadline(t0 time.Time) time.Duration {
	return time.Until(t0.Add(o.cfg.lease - o.cfg.lease/10))
}
