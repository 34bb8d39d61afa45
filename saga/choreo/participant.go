package choreo

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/cqrs"
	"github.com/cairnhq/cairn/messaging"
	"github.com/cairnhq/cairn/messaging/outbox"
)

// ReplyTable keeps, per participant and handled message, the event the
// participant emitted, so that a redelivered message publishes it again
// instead of losing it.
const ReplyTable = "cairn_choreo_reply"

// Event is an event of a saga instance, as a participant's [Func] gets it.
type Event struct {
	// SagaID is the instance's correlation ID.
	SagaID string
	// ID is the message ID.
	ID string
	// Subject is the event's subject.
	Subject string
	// Data is the payload.
	Data []byte
}

// Func is a participant's work for one event. tx is the transaction of
// the participant's inbox, or nil without a database: writes made in it
// commit with the message's claim, once. It returns the payload of the
// success event; an error wrapped with [messaging.Permanent] emits the
// failure event (its payload is the error's text), and what Func wrote
// in tx before returning it commits too, so write nothing before deciding
// to fail; any other error rolls back and the message is delivered again.
type Func func(ctx context.Context, tx *sql.Tx, e Event) ([]byte, error)

// Options configures a [Participant].
type Options struct {
	// Publisher publishes the events the participant emits. Required.
	Publisher messaging.Publisher
	// DB, if set, makes the participant idempotent: an [outbox.Inbox]
	// claims each message ID in a transaction with Func's writes, and
	// the emitted event is stored with it. Nil means no deduplication:
	// Func must be idempotent itself.
	DB *sql.DB
	// Dialect is DB's dialect. Required with DB.
	Dialect cqrs.Dialect
}

// Participant runs one step of a saga. It is safe for concurrent use.
type Participant struct {
	saga  *Saga
	step  Step
	fn    Func
	opts  Options
	inbox *outbox.Inbox
	// save and load are the statements on ReplyTable.
	save, load string
}

// NewParticipant returns the participant running the step named step of
// s with fn, creating its tables in opts.DB if there is one.
func NewParticipant(ctx context.Context, s *Saga, step string, fn Func, opts Options) (*Participant, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	st, ok := s.step(step)
	if !ok {
		return nil, fmt.Errorf("choreo: saga %s has no step %q", s.Name, step)
	}
	if fn == nil || opts.Publisher == nil {
		return nil, fmt.Errorf("choreo: participant %s of saga %s: func and publisher are required", step, s.Name)
	}
	p := &Participant{saga: s, step: st, fn: fn, opts: opts}
	if opts.DB == nil {
		return p, nil
	}
	in, err := outbox.NewInbox(ctx, opts.DB, opts.Dialect)
	if err != nil {
		return nil, fmt.Errorf("choreo: participant %s: %w", step, err)
	}
	p.inbox = in
	blob := "BLOB"
	if opts.Dialect == cqrs.Postgres {
		blob = "bytea"
	}
	create := `CREATE TABLE IF NOT EXISTS ` + ReplyTable + ` (
	consumer   TEXT NOT NULL,
	message_id TEXT NOT NULL,
	subject    TEXT NOT NULL,
	data       ` + blob + ` NOT NULL,
	PRIMARY KEY (consumer, message_id)
)`
	if _, err := opts.DB.ExecContext(ctx, create); err != nil {
		return nil, fmt.Errorf("choreo: participant %s: create table %s: %w", step, ReplyTable, err)
	}
	p.save = opts.Dialect.Rebind(`INSERT INTO ` + ReplyTable + ` (consumer, message_id, subject, data) VALUES (?, ?, ?, ?)`)
	p.load = opts.Dialect.Rebind(`SELECT subject, data FROM ` + ReplyTable + ` WHERE consumer = ? AND message_id = ?`)
	return p, nil
}

// consumer is the participant's name in the inbox.
func (p *Participant) consumer() string { return "choreo/" + p.saga.Name + "/" + p.step.Name }

// Subscribe subscribes the participant to its step's triggers, in the
// group of its participant name, with the other settings of cfg (its
// Subject and Group are overwritten). Closing the result closes every
// subscription.
func (p *Participant) Subscribe(ctx context.Context, sub messaging.Subscriber, cfg messaging.SubscribeConfig) (messaging.Subscription, error) {
	return subscribeAll(ctx, sub, cfg, p.step.On, p.step.Participant, p.Handle)
}

// Handle is the participant's [messaging.Handler]. It runs Func under a
// span "choreo <saga> <step>", a child of the delivery's span (or of the
// trace context in its headers), and publishes the success or failure
// event with the same correlation ID and the span's trace context. A
// message without [HeaderSagaID] fails with a permanent error.
func (p *Participant) Handle(ctx context.Context, d messaging.Delivery) (err error) {
	id := d.Header[HeaderSagaID]
	if id == "" {
		return messaging.Permanent(fmt.Errorf("choreo: %s of saga %s: message %q on %q: %w", p.step.Name, p.saga.Name, d.ID, d.Subject, ErrNoSagaID))
	}
	if !trace.SpanContextFromContext(ctx).IsValid() {
		ctx = messaging.ExtractTraceContext(ctx, d.Header)
	}
	ctx, span := tracer(p.saga.TracerProvider).Start(ctx, "choreo "+p.saga.Name+" "+p.step.Name,
		trace.WithAttributes(NameKey.String(p.saga.Name), StepKey.String(p.step.Name), InstanceKey.String(id), EventKey.String(d.Subject)))
	defer func() {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()
	e := Event{SagaID: id, ID: d.ID, Subject: d.Subject, Data: d.Data}
	if p.inbox == nil {
		subject, data, err := p.run(ctx, nil, e)
		if err != nil {
			return err
		}
		return p.emit(ctx, id, d.ID, subject, data)
	}
	subject, data, err := p.runOnce(ctx, e)
	if err != nil {
		return err
	}
	return p.emit(ctx, id, d.ID, subject, data)
}

// run calls Func and returns the event to emit, or the error for a retry.
func (p *Participant) run(ctx context.Context, tx *sql.Tx, e Event) (subject string, data []byte, err error) {
	out, err := p.fn(ctx, tx, e)
	switch {
	case err == nil:
		return p.step.Success, out, nil
	case messaging.IsPermanent(err) && p.step.Failure != "":
		trace.SpanFromContext(ctx).AddEvent("choreo.failure", trace.WithAttributes(attribute.String("error", err.Error())))
		return p.step.Failure, []byte(err.Error()), nil
	}
	return "", nil, fmt.Errorf("choreo: %s of saga %s instance %s: %w", p.step.Name, p.saga.Name, e.SagaID, err)
}

// runOnce runs Func in a transaction that claims the message in the inbox
// and stores the event to emit; for a message claimed before, it returns
// the event stored then.
func (p *Participant) runOnce(ctx context.Context, e Event) (subject string, data []byte, err error) {
	tx, err := p.opts.DB.BeginTx(ctx, nil)
	if err != nil {
		return "", nil, fmt.Errorf("choreo: %s: begin: %w", p.step.Name, err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, ignoreDone(tx.Rollback()))
		}
	}()
	first, err := p.inbox.Claim(ctx, tx, p.consumer(), e.ID)
	if err != nil {
		return "", nil, err
	}
	if !first {
		trace.SpanFromContext(ctx).AddEvent("inbox.duplicate")
		if err := tx.QueryRowContext(ctx, p.load, p.consumer(), e.ID).Scan(&subject, &data); err != nil {
			return "", nil, fmt.Errorf("choreo: %s: load the reply to %q: %w", p.step.Name, e.ID, err)
		}
		return subject, data, tx.Rollback()
	}
	subject, data, err = p.run(ctx, tx, e)
	if err != nil {
		return "", nil, err
	}
	// Never nil: database/sql stores a nil []byte as NULL.
	if _, err := tx.ExecContext(ctx, p.save, p.consumer(), e.ID, subject, append([]byte{}, data...)); err != nil {
		return "", nil, fmt.Errorf("choreo: %s: store the reply to %q: %w", p.step.Name, e.ID, err)
	}
	if err := tx.Commit(); err != nil {
		return "", nil, fmt.Errorf("choreo: %s: commit %q: %w", p.step.Name, e.ID, err)
	}
	return subject, data, nil
}

// emit publishes the step's event. Its ID derives from the triggering
// message's, so a repeat is deduplicated downstream.
func (p *Participant) emit(ctx context.Context, id, cause, subject string, data []byte) error {
	m := messaging.Message{
		ID: cause + ">" + p.step.Name, Subject: subject, Key: id, Data: data,
		Header: map[string]string{HeaderSagaID: id, HeaderSaga: p.saga.Name},
	}
	messaging.InjectTraceContext(ctx, m.Header)
	trace.SpanFromContext(ctx).AddEvent("choreo.emit", trace.WithAttributes(EventKey.String(subject)))
	if err := p.opts.Publisher.Publish(ctx, m); err != nil {
		return fmt.Errorf("choreo: %s of saga %s instance %s: publish %s: %w", p.step.Name, p.saga.Name, id, subject, err)
	}
	return nil
}

func ignoreDone(err error) error {
	if errors.Is(err, sql.ErrTxDone) {
		return nil
	}
	return err
}
