package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/eventstore"
)

// DB is what the store needs of PostgreSQL: a *pgxpool.Pool in
// production. It must be safe for concurrent use, and its Begin must start
// a transaction on one connection that Commit or Rollback gives back.
type DB interface {
	Begin(ctx context.Context) (pgx.Tx, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Position encoding: position = xid<<indexBits | index.
const (
	indexBits = 14
	// MaxEventsPerTransaction is the most events one transaction may
	// append: the index part of a position has 14 bits.
	MaxEventsPerTransaction = 1 << indexBits
	// MaxTransactionID bounds the xid8 of an appending transaction: the
	// position, a bigint, keeps 49 bits for it.
	MaxTransactionID = 1<<(63-indexBits) - 1
)

// ErrPositionOverflow is returned by an append whose transaction ID or
// event count does not fit the position encoding (see the package doc).
var ErrPositionOverflow = errors.New("postgres: position overflow")

// ErrStreamOrder is returned by an append in a transaction whose ID is
// older than that of the transaction that last appended to the same
// stream: its events would come before that transaction's in the global
// log, out of the stream's version order. It happens when a transaction
// takes its ID (by an earlier write) and then waits for the stream's lock
// held by a younger one. Append retries it in a new transaction, up to
// three times; a caller's own transaction must be rolled back and retried.
var ErrStreamOrder = errors.New("postgres: transaction is older than the stream's last append")

// maxOrderRetries bounds Append's retries of ErrStreamOrder. One retry
// suffices, as the new transaction's ID is above every committed one; more
// cover a race with yet another appender.
const maxOrderRetries = 3

// DefaultSchema is the schema the store uses without [WithSchema].
const DefaultSchema = "eventstore"

// Option configures [New].
type Option func(*config)

type config struct {
	schema   string
	readWait time.Duration
	mp       metric.MeterProvider
	tp       trace.TracerProvider
}

// WithSchema sets the schema holding the store's tables, created by New if
// missing. Default [DefaultSchema].
func WithSchema(name string) Option { return func(c *config) { c.schema = name } }

// WithReadAllWait sets how long [Store.ReadAll] waits, at most, for
// committed events that the watermark still holds back (behind an open
// transaction with a lower ID) before it returns what is readable. With a
// wait, a ReadAll that follows an Append returns that append's events,
// unless a transaction stays open for longer. Zero does not wait; negative
// means zero. Default [DefaultReadAllWait].
func WithReadAllWait(d time.Duration) Option { return func(c *config) { c.readWait = max(d, 0) } }

// DefaultReadAllWait is the wait of ReadAll without [WithReadAllWait].
const DefaultReadAllWait = time.Second

// WithMeterProvider sets the provider of the store's metrics. Default the
// global otel.GetMeterProvider().
func WithMeterProvider(mp metric.MeterProvider) Option { return func(c *config) { c.mp = mp } }

// WithTracerProvider sets the provider of the store's spans, one per
// operation. Default the global otel.GetTracerProvider().
func WithTracerProvider(tp trace.TracerProvider) Option { return func(c *config) { c.tp = tp } }

// Store is an [eventstore.Store] on PostgreSQL. It is safe for concurrent
// use. It does not own its DB: Close unregisters its metrics and leaves
// the pool open.
type Store struct {
	db       DB
	schema   string
	readWait time.Duration
	q        queries
	tel      telemetry
}

var _ eventstore.Store = (*Store)(nil)

// New returns a store over db, after creating its schema and tables if
// they are missing (see [Store.Migrate]).
func New(ctx context.Context, db DB, opts ...Option) (*Store, error) {
	cfg := config{schema: DefaultSchema, readWait: DefaultReadAllWait}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.schema == "" {
		return nil, errors.New("postgres: empty schema name")
	}
	s := &Store{db: db, schema: cfg.schema, readWait: cfg.readWait, q: newQueries(pgx.Identifier{cfg.schema}.Sanitize())}
	if err := s.Migrate(ctx); err != nil {
		return nil, err
	}
	if err := s.tel.init(s, cfg.mp, cfg.tp); err != nil {
		return nil, fmt.Errorf("postgres: metrics: %w", err)
	}
	return s, nil
}

// Migrate creates the store's schema, tables and indexes if they are
// missing. It is idempotent and safe to run from several processes at
// once (it takes a transaction-level advisory lock). New calls it.
func (s *Store) Migrate(ctx context.Context) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext('cairn.eventstore:' || $1))", s.schema); err != nil {
			return err
		}
		for i, step := range s.q.migrate {
			if _, err := tx.Exec(ctx, step); err != nil {
				return fmt.Errorf("postgres: migrate schema %s, step %d: %w", s.schema, i+1, err)
			}
		}
		return nil
	})
}

// Close unregisters the store's metric callback. It does not close the DB.
// It is idempotent.
func (s *Store) Close() error { return s.tel.close() }

type queries struct {
	// migrate are the steps of the schema, applied in order; each is
	// idempotent (IF NOT EXISTS), so a schema of any earlier step is
	// brought up to date. Append only: never edit a released step.
	migrate []string
	snapshotQueries
	checkpointQueries
	lock, lastPos, heldBack, create, insert, lookup, readAll, readFwd, readBwd, streamState, deleteStream, lag string
}

func newQueries(schema string) queries {
	r := strings.NewReplacer("$S.", schema+".", "$S", schema)
	const cols = "position, stream_id, version, event_id, type, schema_version, data, metadata, recorded_at"
	return queries{
		migrate: []string{r.Replace(`
CREATE SCHEMA IF NOT EXISTS $S;
CREATE TABLE IF NOT EXISTS $S.streams (
	stream_id text PRIMARY KEY,
	version bigint NOT NULL,
	deleted boolean NOT NULL DEFAULT false
);
CREATE TABLE IF NOT EXISTS $S.events (
	position bigint PRIMARY KEY,
	stream_id text NOT NULL,
	version bigint NOT NULL,
	event_id text NOT NULL,
	type text NOT NULL,
	schema_version integer NOT NULL,
	data bytea,
	metadata bytea,
	recorded_at timestamptz NOT NULL DEFAULT statement_timestamp(),
	CONSTRAINT events_event_id_key UNIQUE (event_id),
	CONSTRAINT events_stream_version_key UNIQUE (stream_id, version)
);`), r.Replace(migrateSnapshots), r.Replace(migrateCheckpoints)},
		snapshotQueries:   newSnapshotQueries(r),
		checkpointQueries: newCheckpointQueries(r),
		// The stream's row lock serialises appenders to one stream; the
		// transaction ID and the transaction's last position so far (a
		// caller's transaction may hold several appends) fix the append's
		// positions.
		lock: r.Replace(`SELECT x.xid,
	(SELECT max(position) FROM $S.events WHERE position >= x.xid << 14 AND position < (x.xid + 1) << 14),
	s.version, s.deleted
FROM (SELECT pg_current_xact_id()::text::bigint AS xid) AS x
LEFT JOIN (SELECT version, deleted FROM $S.streams WHERE stream_id = $1 FOR UPDATE) AS s ON true`),
		// The position of the stream's last event, read after the lock.
		lastPos: r.Replace(`SELECT position FROM $S.events WHERE stream_id = $1 AND version = $2`),
		create: r.Replace(`INSERT INTO $S.streams AS s (stream_id, version) VALUES ($1, 0)
ON CONFLICT (stream_id) DO UPDATE SET version = s.version RETURNING s.version, s.deleted`),
		insert: r.Replace(`WITH ins AS (
	INSERT INTO $S.events (position, stream_id, version, event_id, type, schema_version, data, metadata)
	SELECT u.p, $1, u.v, u.id, u.ty, u.sv, u.d, u.m
	FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::integer[], $7::bytea[], $8::bytea[]) AS u(p, v, id, ty, sv, d, m)
)
UPDATE $S.streams SET version = $9 WHERE stream_id = $1`),
		lookup: r.Replace(`SELECT ` + cols + ` FROM $S.events WHERE event_id = ANY($1)`),
		// Only transactions below the snapshot's xmin are read: they have
		// all ended, and none that may still commit sorts below them.
		readAll: r.Replace(`SELECT ` + cols + ` FROM $S.events
WHERE position > $1 AND position < (pg_snapshot_xmin(pg_current_snapshot())::text::bigint << 14)
ORDER BY position LIMIT $2`),
		heldBack: r.Replace(`SELECT EXISTS (SELECT 1 FROM $S.events
WHERE position > $1 AND position >= (pg_snapshot_xmin(pg_current_snapshot())::text::bigint << 14))`),
		readFwd:     r.Replace(`SELECT ` + cols + ` FROM $S.events WHERE stream_id = $1 AND version >= $2 ORDER BY version LIMIT $3`),
		readBwd:     r.Replace(`SELECT ` + cols + ` FROM $S.events WHERE stream_id = $1 AND version <= $2 ORDER BY version DESC LIMIT $3`),
		streamState: r.Replace(`SELECT version, deleted FROM $S.streams WHERE stream_id = $1`),
		deleteStream: r.Replace(`INSERT INTO $S.streams AS s (stream_id, version, deleted) VALUES ($1, 0, true)
ON CONFLICT (stream_id) DO UPDATE SET deleted = true`),
		// Committed events not yet readable, and the age of the oldest
		// transaction holding the watermark back.
		lag: r.Replace(`SELECT
	(SELECT count(*) FROM $S.events WHERE position >= (pg_snapshot_xmin(pg_current_snapshot())::text::bigint << 14)),
	coalesce(extract(epoch FROM clock_timestamp() - least(
		(SELECT min(xact_start) FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()),
		(SELECT min(prepared) FROM pg_prepared_xacts)))::float8, 0)`),
	}
}

// Append adds events to stream in one transaction; see
// [eventstore.Store.Append]. Its errors match the eventstore sentinels:
// [eventstore.ErrVersionConflict] (a *VersionConflictError),
// [eventstore.ErrInvalidEvent], [eventstore.ErrStreamDeleted] and
// [eventstore.ErrDuplicateEvent] (naming the event ID).
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.Event) (res eventstore.AppendResult, err error) {
	ctx, c := s.tel.start(ctx, opAppend, stream)
	oc := outcomeOK
	defer func() {
		if err != nil {
			oc = outcomeOf(err)
		}
		c.end(ctx, oc, err)
	}()
	if err := eventstore.Validate(stream, events); err != nil {
		return eventstore.AppendResult{}, err
	}
	if expected < eventstore.StreamExists {
		return eventstore.AppendResult{}, &eventstore.InvalidEventError{Index: -1, Field: "expected version", Reason: fmt.Sprintf("%d is not a version", int64(expected))}
	}
	rows, err := encode(events)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	for attempt := 1; ; attempt++ {
		var tx pgx.Tx
		tx, err = s.db.Begin(ctx)
		if err != nil {
			return eventstore.AppendResult{}, fmt.Errorf("postgres: append to %q: %w", stream, err)
		}
		res, err = s.appendIn(ctx, tx, stream, expected, rows)
		if err == nil {
			err = tx.Commit(ctx)
		}
		if err != nil {
			_ = tx.Rollback(ctx)
		}
		// A new transaction gets an ID above the one that overtook this
		// one, which has committed: the retry is placed after it.
		if !errors.Is(err, ErrStreamOrder) || attempt == maxOrderRetries {
			break
		}
	}
	if err != nil {
		var conflict *eventstore.VersionConflictError
		if errors.As(err, &conflict) || isUniqueViolation(err, "events_event_id_key") {
			// Perhaps a retry of an append that succeeded.
			if orig, ok, lerr := s.lookup(ctx, stream, rows); lerr != nil {
				return eventstore.AppendResult{}, errors.Join(err, lerr)
			} else if ok {
				oc = outcomeIdempotent
				return orig, nil
			}
		}
		if conflict == nil && !isAppendError(err) {
			err = fmt.Errorf("postgres: append to %q: %w", stream, err)
		}
		return eventstore.AppendResult{}, err
	}
	s.tel.appended(ctx, len(events))
	return res, nil
}

// isAppendError reports whether err is one Append returns as it is.
func isAppendError(err error) bool {
	return errors.Is(err, eventstore.ErrStreamDeleted) || errors.Is(err, eventstore.ErrDuplicateEvent) || errors.Is(err, ErrPositionOverflow) || errors.Is(err, ErrStreamOrder)
}

// row is an event encoded for its columns.
type row struct {
	eventstore.Event
	meta []byte
}

func encode(events []eventstore.Event) ([]row, error) {
	rows := make([]row, len(events))
	for i, e := range events {
		rows[i].Event = e
		if rows[i].SchemaVersion == 0 {
			rows[i].SchemaVersion = 1
		}
		if !isZeroMetadata(e.Metadata) {
			m, err := json.Marshal(e.Metadata)
			if err != nil {
				return nil, fmt.Errorf("postgres: event %d metadata: %w", i, err)
			}
			rows[i].meta = m
		}
	}
	return rows, nil
}

func isZeroMetadata(m eventstore.Metadata) bool {
	return m.CorrelationID == "" && m.CausationID == "" && m.TraceParent == "" && m.TraceState == "" && m.Extra == nil
}

// appendIn runs an append inside tx, which the caller commits. Tests call
// it with a transaction they hold open.
func (s *Store) appendIn(ctx context.Context, tx pgx.Tx, stream string, expected eventstore.ExpectedVersion, rows []row) (eventstore.AppendResult, error) {
	var (
		xid     int64
		last    *int64 // of an earlier append in this transaction
		version *int64
		deleted *bool
	)
	if err := tx.QueryRow(ctx, s.q.lock, stream).Scan(&xid, &last, &version, &deleted); err != nil {
		return eventstore.AppendResult{}, err
	}
	if version == nil {
		version, deleted = new(int64), new(bool)
		if err := tx.QueryRow(ctx, s.q.create, stream).Scan(version, deleted); err != nil {
			return eventstore.AppendResult{}, err
		}
	}
	if *deleted {
		return eventstore.AppendResult{}, fmt.Errorf("postgres: append to %q: %w", stream, eventstore.ErrStreamDeleted)
	}
	cur := *version
	ok := false
	switch expected {
	case eventstore.Any:
		ok = true
	case eventstore.StreamExists:
		ok = cur > 0
	default:
		ok = int64(expected) >= 0 && cur == int64(expected)
	}
	if !ok {
		return eventstore.AppendResult{}, &eventstore.VersionConflictError{Stream: stream, Expected: expected, Actual: cur}
	}
	if xid < 0 || xid > MaxTransactionID {
		return eventstore.AppendResult{}, fmt.Errorf("%w: transaction ID %d is above %d", ErrPositionOverflow, xid, int64(MaxTransactionID))
	}
	base := xid << indexBits
	first := base
	if last != nil {
		first = *last + 1
	}
	if cur > 0 {
		// The stream's last writer may have drawn a later transaction ID
		// than this one and still taken the stream's lock first; appending
		// now would put this append's events before its events in the
		// global log, out of version order.
		var lastPos int64
		if err := tx.QueryRow(ctx, s.q.lastPos, stream, cur).Scan(&lastPos); err != nil {
			return eventstore.AppendResult{}, fmt.Errorf("position of version %d: %w", cur, err)
		}
		if lastPos >= first {
			return eventstore.AppendResult{}, fmt.Errorf("postgres: append to %q: %w: version %d is at position %d, above this transaction's %d", stream, ErrStreamOrder, cur, lastPos, first)
		}
	}
	if first-base+int64(len(rows)) > MaxEventsPerTransaction {
		return eventstore.AppendResult{}, fmt.Errorf("%w: more than %d events in one transaction", ErrPositionOverflow, MaxEventsPerTransaction)
	}
	n := len(rows)
	pos, vers := make([]int64, n), make([]int64, n)
	ids, types := make([]string, n), make([]string, n)
	svs := make([]int32, n)
	data, meta := make([][]byte, n), make([][]byte, n)
	for i, r := range rows {
		pos[i], vers[i] = first+int64(i), cur+1+int64(i)
		ids[i], types[i], svs[i] = r.ID, r.Type, int32(r.SchemaVersion)
		data[i], meta[i] = r.Data, r.meta
	}
	if _, err := tx.Exec(ctx, s.q.insert, stream, pos, vers, ids, types, svs, data, meta, cur+int64(n)); err != nil {
		return eventstore.AppendResult{}, err
	}
	return eventstore.AppendResult{
		NextExpectedVersion: cur + int64(n),
		FirstPosition:       eventstore.Position(first),
		LastPosition:        eventstore.Position(first + int64(n) - 1),
	}, nil
}

// lookup decides whether rows were all appended before, to stream, at
// consecutive versions, with the same types, schema versions and data: it
// returns the original result and true if so, false if none of the IDs is
// stored, and an error wrapping ErrDuplicateEvent otherwise.
func (s *Store) lookup(ctx context.Context, stream string, rows []row) (eventstore.AppendResult, bool, error) {
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	got, err := s.query(ctx, s.q.lookup, ids)
	if err != nil {
		return eventstore.AppendResult{}, false, fmt.Errorf("postgres: append to %q: look up event IDs: %w", stream, err)
	}
	if len(got) == 0 {
		return eventstore.AppendResult{}, false, nil
	}
	byID := make(map[string]eventstore.RecordedEvent, len(got))
	for _, e := range got {
		byID[e.ID] = e
	}
	var res eventstore.AppendResult
	for i, r := range rows {
		e, found := byID[r.ID]
		same := found && e.StreamID == stream && e.Type == r.Type && e.SchemaVersion == r.SchemaVersion && string(e.Data) == string(r.Data)
		if same && i > 0 {
			same = e.Version == res.NextExpectedVersion+1
		}
		if !same {
			return eventstore.AppendResult{}, false, fmt.Errorf("postgres: append to %q: event %q: %w", stream, r.ID, eventstore.ErrDuplicateEvent)
		}
		if i == 0 {
			res.FirstPosition = e.Position
		}
		res.NextExpectedVersion, res.LastPosition = e.Version, e.Position
	}
	return res, true, nil
}

func isUniqueViolation(err error, constraint string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" && pe.ConstraintName == constraint
}

// ReadStream returns at most limit events of stream from version from in
// dir; see [eventstore.Reader.ReadStream]. A limit of zero or less returns
// no events.
func (s *Store) ReadStream(ctx context.Context, stream string, from int64, dir eventstore.Direction, limit int) (events []eventstore.RecordedEvent, err error) {
	ctx, c := s.tel.start(ctx, opReadStream, stream)
	defer func() { c.end(ctx, outcomeOf(err), err) }()
	if _, deleted, err := s.streamState(ctx, stream); err != nil {
		return nil, err
	} else if deleted {
		return nil, fmt.Errorf("postgres: read stream %q: %w", stream, eventstore.ErrStreamDeleted)
	}
	if limit <= 0 {
		return []eventstore.RecordedEvent{}, nil
	}
	q := s.q.readFwd
	if dir == eventstore.Backwards {
		q = s.q.readBwd
		if from <= 0 {
			from = 1<<63 - 1
		}
	}
	events, err = s.query(ctx, q, stream, from, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: read stream %q: %w", stream, err)
	}
	return events, nil
}

// ReadAll returns at most limit events of the global log after position
// after, in position order, leaving out every event of a transaction at or
// above the snapshot's xmin; see [eventstore.Reader.ReadAll] and the
// package doc. When it finds fewer than limit events and committed events
// are held back, it reads again for up to the [WithReadAllWait] wait.
func (s *Store) ReadAll(ctx context.Context, after eventstore.Position, limit int) (events []eventstore.RecordedEvent, err error) {
	ctx, c := s.tel.start(ctx, opReadAll, "")
	defer func() { c.end(ctx, outcomeOf(err), err) }()
	if limit <= 0 {
		return []eventstore.RecordedEvent{}, nil
	}
	deadline := time.Now().Add(s.readWait)
	for pause := time.Millisecond; ; pause = min(2*pause, 50*time.Millisecond) {
		events, err = s.query(ctx, s.q.readAll, int64(after), limit)
		if err != nil {
			return nil, fmt.Errorf("postgres: read all after %d: %w", after, err)
		}
		if len(events) == limit || s.readWait == 0 {
			return events, nil
		}
		last := int64(after)
		if len(events) > 0 {
			last = int64(events[len(events)-1].Position)
		}
		var held bool
		if err := s.db.QueryRow(ctx, s.q.heldBack, last).Scan(&held); err != nil {
			return nil, fmt.Errorf("postgres: read all after %d: %w", after, err)
		}
		wait := time.Until(deadline)
		if !held || wait <= 0 {
			return events, nil
		}
		t := time.NewTimer(min(pause, wait))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("postgres: read all after %d: %w", after, ctx.Err())
		case <-t.C:
		}
	}
}

// Version returns the version of stream's last event, 0 if it has none,
// and [eventstore.ErrStreamDeleted] for a deleted stream.
func (s *Store) Version(ctx context.Context, stream string) (v int64, err error) {
	ctx, c := s.tel.start(ctx, opVersion, stream)
	defer func() { c.end(ctx, outcomeOf(err), err) }()
	v, deleted, err := s.streamState(ctx, stream)
	if err != nil {
		return 0, err
	}
	if deleted {
		return 0, fmt.Errorf("postgres: version of %q: %w", stream, eventstore.ErrStreamDeleted)
	}
	return v, nil
}

// DeleteStream marks stream deleted and deletes its snapshot, in one
// transaction: its events leave the stream reads and stay in the global
// log, and appends to it, snapshot loads and saves fail with
// [eventstore.ErrStreamDeleted]. Deleting a deleted or missing stream
// succeeds (a missing one is then deleted too).
func (s *Store) DeleteStream(ctx context.Context, stream string) (err error) {
	ctx, c := s.tel.start(ctx, opDeleteStream, stream)
	defer func() { c.end(ctx, outcomeOf(err), err) }()
	err = pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, s.q.deleteStream, stream); err != nil {
			return err
		}
		// After the stream's row lock: a save that held it has committed
		// and its snapshot is seen, and later saves see the stream deleted.
		_, err := tx.Exec(ctx, s.q.deleteSnapshot, stream)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: delete stream %q: %w", stream, err)
	}
	return nil
}

func (s *Store) streamState(ctx context.Context, stream string) (version int64, deleted bool, err error) {
	err = s.db.QueryRow(ctx, s.q.streamState, stream).Scan(&version, &deleted)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("postgres: stream %q: %w", stream, err)
	}
	return version, deleted, nil
}

// query runs q, which selects the event columns, and decodes the rows.
func (s *Store) query(ctx context.Context, q string, args ...any) ([]eventstore.RecordedEvent, error) {
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []eventstore.RecordedEvent{}
	for rows.Next() {
		var (
			e    eventstore.RecordedEvent
			pos  int64
			sv   int32
			meta []byte
			at   time.Time
		)
		if err := rows.Scan(&pos, &e.StreamID, &e.Version, &e.ID, &e.Type, &sv, &e.Data, &meta, &at); err != nil {
			return nil, err
		}
		e.Position, e.SchemaVersion, e.RecordedAt = eventstore.Position(pos), int(sv), at.UTC()
		if meta != nil {
			if err := json.Unmarshal(meta, &e.Metadata); err != nil {
				return nil, fmt.Errorf("event %q metadata: %w", e.ID, err)
			}
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func recordErr(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
}
