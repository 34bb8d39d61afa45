package choreo

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/cqrs"
	"github.com/cairnhq/cairn/messaging"
	"github.com/cairnhq/cairn/messaging/outbox"
)

// Status is where a saga instance stands, as the [Tracker] sees it.
type Status string

// Statuses. Running and Compensating are in progress; the others final.
const (
	StatusRunning      Status = "running"
	StatusCompleted    Status = "completed"
	StatusCompensating Status = "compensating"
	StatusCompensated  Status = "compensated"
	// StatusFailed is a failure nothing compensates: the first step
	// failed, or a compensation did.
	StatusFailed Status = "failed"
)

// rank orders statuses: a tracker never moves an instance to a lower rank.
func (s Status) rank() int {
	switch s {
	case StatusRunning:
		return 0
	case StatusCompensating:
		return 1
	}
	return 2
}

// Final reports whether s is a final status.
func (s Status) Final() bool { return s.rank() == 2 }

// Metric names of the tracker, with the attribute [NameKey].
const (
	StartedMetricName     = "cairn.choreo.started"
	CompletedMetricName   = "cairn.choreo.completed"
	CompensatedMetricName = "cairn.choreo.compensated"
	FailedMetricName      = "cairn.choreo.failed"
	// StuckMetricName counts the instances [Tracker.CheckStuck] marked
	// stuck.
	StuckMetricName = "cairn.choreo.stuck"
)

// StatusEventName is the span event added to the delivery's span when an
// event changes an instance's status, with [StatusKey].
const StatusEventName = "choreo.status"

// InstanceTable is the tracker's table.
const InstanceTable = "cairn_choreo_instance"

// Instance is the tracker's view of one saga instance.
type Instance struct {
	Saga, ID string
	Status   Status
	// Stage is the step the instance waits for (the one its last event
	// triggers) or, when none, the step that emitted its last event.
	Stage string
	// LastEvent is the subject of the event that set Status and Stage.
	LastEvent string
	// Stuck is set by [Tracker.CheckStuck] on an instance in progress
	// that received no event for [TrackerOptions.StuckAfter]; the next
	// event clears it.
	Stuck     bool
	StartedAt time.Time
	UpdatedAt time.Time
	// History is every event received, in order of arrival.
	History []Record
}

// Record is one event in an instance's history.
type Record struct {
	Subject   string    `json:"subject"`
	MessageID string    `json:"id"`
	At        time.Time `json:"at"`
}

// TrackerOptions configures a [Tracker].
type TrackerOptions struct {
	// Dialect is the database's. Required.
	Dialect cqrs.Dialect
	// Group is the subscriber group. Empty means "choreo-tracker-<saga>".
	Group string
	// StuckAfter is how long an instance in progress may go without an
	// event before CheckStuck marks it. Zero means five minutes.
	StuckAfter time.Duration
	// MeterProvider makes the metrics. Nil means the global provider.
	MeterProvider metric.MeterProvider
}

// Tracker is the process manager's read model of a saga: it follows every
// event of the chain and records, per instance, its status, stage and
// history in a table. It is idempotent per message ID and safe for
// concurrent use.
type Tracker struct {
	saga  *Saga
	db    *sql.DB
	opts  TrackerOptions
	inbox *outbox.Inbox

	started, completed, compensated, failed, stuck metric.Int64Counter
}

// NewTracker returns the tracker of s on db, creating its tables.
func NewTracker(ctx context.Context, db *sql.DB, s *Saga, opts TrackerOptions) (*Tracker, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if opts.Group == "" {
		opts.Group = "choreo-tracker-" + s.Name
	}
	if opts.StuckAfter <= 0 {
		opts.StuckAfter = 5 * time.Minute
	}
	in, err := outbox.NewInbox(ctx, db, opts.Dialect)
	if err != nil {
		return nil, fmt.Errorf("choreo: tracker of %s: %w", s.Name, err)
	}
	create := `CREATE TABLE IF NOT EXISTS ` + InstanceTable + ` (
	saga       TEXT   NOT NULL,
	id         TEXT   NOT NULL,
	status     TEXT   NOT NULL,
	stage      TEXT   NOT NULL,
	last_event TEXT   NOT NULL,
	stuck      INTEGER NOT NULL,
	started_at BIGINT NOT NULL, -- Unix nanoseconds
	updated_at BIGINT NOT NULL,
	history    TEXT   NOT NULL, -- JSON array of Record
	PRIMARY KEY (saga, id)
)`
	if _, err := db.ExecContext(ctx, create); err != nil {
		return nil, fmt.Errorf("choreo: tracker of %s: create table %s: %w", s.Name, InstanceTable, err)
	}
	mp := opts.MeterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter(ScopeName)
	t := &Tracker{saga: s, db: db, opts: opts, inbox: in}
	for _, c := range []struct {
		dst        *metric.Int64Counter
		name, desc string
	}{
		{&t.started, StartedMetricName, "Saga instances started."},
		{&t.completed, CompletedMetricName, "Saga instances completed."},
		{&t.compensated, CompensatedMetricName, "Saga instances compensated."},
		{&t.failed, FailedMetricName, "Saga instances failed without compensation."},
		{&t.stuck, StuckMetricName, "Saga instances marked stuck."},
	} {
		if *c.dst, err = m.Int64Counter(c.name, metric.WithDescription(c.desc), metric.WithUnit("{instance}")); err != nil {
			return nil, fmt.Errorf("choreo: tracker of %s: metric %s: %w", s.Name, c.name, err)
		}
	}
	return t, nil
}

// subscriptions closes several subscriptions as one.
type subscriptions []messaging.Subscription

// Close closes every subscription and joins their errors.
func (s subscriptions) Close() error {
	var errs []error
	for _, sub := range s {
		errs = append(errs, sub.Close())
	}
	return errors.Join(errs...)
}

// Subscribe subscribes the tracker to every subject of the saga, with
// cfg's settings (its Subject and Group are overwritten). Closing the
// result closes every subscription.
func (t *Tracker) Subscribe(ctx context.Context, sub messaging.Subscriber, cfg messaging.SubscribeConfig) (messaging.Subscription, error) {
	return subscribeAll(ctx, sub, cfg, t.saga.Subjects(), t.opts.Group, t.Handle)
}

// subscribeAll subscribes h to every subject in group.
func subscribeAll(ctx context.Context, sub messaging.Subscriber, cfg messaging.SubscribeConfig, subjects []string, group string, h messaging.Handler) (messaging.Subscription, error) {
	var subs subscriptions
	for _, subj := range subjects {
		cfg.Subject, cfg.Group = subj, group
		s, err := sub.Subscribe(ctx, cfg, h)
		if err != nil {
			return nil, errors.Join(err, subs.Close())
		}
		subs = append(subs, s)
	}
	return subs, nil
}

// Handle records a delivered event: it is the tracker's
// [messaging.Handler]. Events of one instance may arrive out of order
// (each subject is a subscription of its own), so an instance never goes
// back from compensating to running, nor from a final status; the history
// keeps every event in order of arrival. A message seen before is ignored.
func (t *Tracker) Handle(ctx context.Context, d messaging.Delivery) (err error) {
	id := d.Header[HeaderSagaID]
	if id == "" {
		return messaging.Permanent(fmt.Errorf("choreo: tracker of %s: message %q on %q: %w", t.saga.Name, d.ID, d.Subject, ErrNoSagaID))
	}
	if !slices.Contains(t.saga.Subjects(), d.Subject) {
		return messaging.Permanent(fmt.Errorf("choreo: tracker of %s: message %q on %q: not an event of the saga", t.saga.Name, d.ID, d.Subject))
	}
	tx, err := t.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("choreo: tracker of %s: begin: %w", t.saga.Name, err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, ignoreDone(tx.Rollback()))
		}
	}()
	first, err := t.inbox.Claim(ctx, tx, "choreo-tracker/"+t.saga.Name, d.ID)
	if err != nil || !first {
		return errors.Join(err, tx.Rollback())
	}
	// Create the row if it is missing, then lock it: concurrent events
	// of one instance (on PostgreSQL, where the inbox claims of two
	// messages do not conflict) must not lose each other's history.
	res, err := tx.ExecContext(ctx, t.opts.Dialect.Rebind(`INSERT INTO `+InstanceTable+
		` (saga, id, status, stage, last_event, stuck, started_at, updated_at, history) VALUES (?, ?, '', '', '', 0, ?, ?, '[]') ON CONFLICT DO NOTHING`),
		t.saga.Name, id, time.Now().UnixNano(), time.Now().UnixNano())
	if err != nil {
		return fmt.Errorf("choreo: tracker of %s: create instance %s: %w", t.saga.Name, id, err)
	}
	created, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("choreo: tracker of %s: create instance %s: %w", t.saga.Name, id, err)
	}
	isNew := created == 1
	lock := ""
	if t.opts.Dialect == cqrs.Postgres {
		lock = " FOR UPDATE"
	}
	inst, err := t.get(ctx, tx, id, lock)
	if err != nil {
		return err
	}
	now := time.Now() // read under the lock, so that updates are in order
	status, stage := t.saga.classify(d.Subject)
	old := inst.Status
	if isNew || status.rank() >= old.rank() {
		inst.Status, inst.Stage, inst.LastEvent = status, stage, d.Subject
	}
	inst.Stuck = false
	inst.UpdatedAt = now
	inst.History = append(inst.History, Record{Subject: d.Subject, MessageID: d.ID, At: now})
	hist, err := json.Marshal(inst.History)
	if err != nil {
		return fmt.Errorf("choreo: tracker of %s: encode history of %s: %w", t.saga.Name, id, err)
	}
	q := `UPDATE ` + InstanceTable + ` SET status = ?, stage = ?, last_event = ?, stuck = 0, updated_at = ?, history = ? WHERE saga = ? AND id = ?`
	args := []any{string(inst.Status), inst.Stage, inst.LastEvent, now.UnixNano(), string(hist), t.saga.Name, id}
	if _, err := tx.ExecContext(ctx, t.opts.Dialect.Rebind(q), args...); err != nil {
		return fmt.Errorf("choreo: tracker of %s: record %s of %s: %w", t.saga.Name, d.Subject, id, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("choreo: tracker of %s: commit %s of %s: %w", t.saga.Name, d.Subject, id, err)
	}
	attrs := metric.WithAttributes(NameKey.String(t.saga.Name))
	if isNew {
		t.started.Add(ctx, 1, attrs)
	}
	if isNew || inst.Status != old {
		trace.SpanFromContext(ctx).AddEvent(StatusEventName, trace.WithAttributes(InstanceKey.String(id), StatusKey.String(string(inst.Status))))
		switch inst.Status {
		case StatusCompleted:
			t.completed.Add(ctx, 1, attrs)
		case StatusCompensated:
			t.compensated.Add(ctx, 1, attrs)
		case StatusFailed:
			t.failed.Add(ctx, 1, attrs)
		}
	}
	return nil
}

const selectInstance = `SELECT saga, id, status, stage, last_event, stuck, started_at, updated_at, history FROM ` + InstanceTable

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dst ...any) error }

func scanInstance(r scanner) (Instance, error) {
	var (
		in              Instance
		status, hist    string
		stuck           int
		started, update int64
	)
	if err := r.Scan(&in.Saga, &in.ID, &status, &in.Stage, &in.LastEvent, &stuck, &started, &update, &hist); err != nil {
		return Instance{}, err
	}
	in.Status, in.Stuck = Status(status), stuck != 0
	in.StartedAt, in.UpdatedAt = time.Unix(0, started), time.Unix(0, update)
	if err := json.Unmarshal([]byte(hist), &in.History); err != nil {
		return Instance{}, fmt.Errorf("decode history of %s: %w", in.ID, err)
	}
	return in, nil
}

// querier is a *sql.DB or *sql.Tx.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// get reads the instance id; suffix ends the query (" FOR UPDATE").
func (t *Tracker) get(ctx context.Context, q querier, id, suffix string) (Instance, error) {
	in, err := scanInstance(q.QueryRowContext(ctx, t.opts.Dialect.Rebind(selectInstance+` WHERE saga = ? AND id = ?`+suffix), t.saga.Name, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Instance{}, fmt.Errorf("choreo: saga %s instance %s: %w", t.saga.Name, id, ErrNotFound)
	}
	if err != nil {
		return Instance{}, fmt.Errorf("choreo: get saga %s instance %s: %w", t.saga.Name, id, err)
	}
	return in, nil
}

// Get returns the instance id, or an error wrapping [ErrNotFound].
func (t *Tracker) Get(ctx context.Context, id string) (Instance, error) {
	return t.get(ctx, t.db, id, "")
}

// Filter selects instances for [Tracker.List]. The zero value selects
// every instance.
type Filter struct {
	// Status, if set, selects the instances with this status.
	Status Status
	// StuckOnly selects the stuck instances.
	StuckOnly bool
	// Limit bounds the result. Zero means 100.
	Limit int
}

// List returns the saga's instances that f selects, most recently updated
// first.
func (t *Tracker) List(ctx context.Context, f Filter) ([]Instance, error) {
	q := selectInstance + ` WHERE saga = ?`
	args := []any{t.saga.Name}
	if f.Status != "" {
		q += ` AND status = ?`
		args = append(args, string(f.Status))
	}
	if f.StuckOnly {
		q += ` AND stuck = 1`
	}
	if f.Limit <= 0 {
		f.Limit = 100
	}
	q += fmt.Sprintf(` ORDER BY updated_at DESC, id LIMIT %d`, f.Limit)
	rows, err := t.db.QueryContext(ctx, t.opts.Dialect.Rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("choreo: list saga %s: %w", t.saga.Name, err)
	}
	defer rows.Close()
	var out []Instance
	for rows.Next() {
		in, err := scanInstance(rows)
		if err != nil {
			return nil, fmt.Errorf("choreo: list saga %s: %w", t.saga.Name, err)
		}
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("choreo: list saga %s: %w", t.saga.Name, err)
	}
	return out, nil
}

// CheckStuck marks stuck every instance in progress (running or
// compensating) whose last event is older than StuckAfter, and returns
// how many it marked now. Call it periodically, or use [Tracker.Run].
func (t *Tracker) CheckStuck(ctx context.Context) (int, error) {
	cutoff := time.Now().Add(-t.opts.StuckAfter).UnixNano()
	res, err := t.db.ExecContext(ctx, t.opts.Dialect.Rebind(`UPDATE `+InstanceTable+` SET stuck = 1
WHERE saga = ? AND stuck = 0 AND status IN (?, ?) AND updated_at < ?`),
		t.saga.Name, string(StatusRunning), string(StatusCompensating), cutoff)
	if err != nil {
		return 0, fmt.Errorf("choreo: check stuck instances of %s: %w", t.saga.Name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("choreo: check stuck instances of %s: %w", t.saga.Name, err)
	}
	t.stuck.Add(ctx, n, metric.WithAttributes(NameKey.String(t.saga.Name)))
	return int(n), nil
}

// Run calls CheckStuck every StuckAfter/2 until ctx ends, and returns
// ctx's error, or CheckStuck's first error.
func (t *Tracker) Run(ctx context.Context) error {
	tick := time.NewTicker(t.opts.StuckAfter / 2)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			if _, err := t.CheckStuck(ctx); err != nil {
				return err
			}
		}
	}
}
