// Package sqlitestore is the SQLite backend of [eventstore]: an
// [eventstore.Store] in one database file (or in memory), through
// database/sql and the pure-Go driver modernc.org/sqlite.
//
// # Schema
//
// Events live in one table, events, which is the global log: its column
// position, an INTEGER PRIMARY KEY AUTOINCREMENT, is the event's
// [eventstore.Position]. A row also holds the stream ID and the version in
// the stream (unique together), the event ID (unique across streams), the
// type, the schema version, the data (a BLOB), the metadata (JSON) and the
// time the store recorded it (integer Unix nanoseconds, UTC). A second
// table, streams, holds each stream's current version and whether it is
// deleted; a third, snapshots, the latest [eventstore.Snapshot] of each
// stream ([Store.SaveSnapshot]). PRAGMA user_version records which
// migrations ran.
//
// # Order of the global log
//
// A file database runs in WAL mode with one writer connection, through
// which every append runs in a BEGIN IMMEDIATE transaction, and a pool of
// read-only connections. SQLite admits one write transaction at a time per
// database, across connections and processes, and positions are taken
// inside that transaction, so transactions commit in position order: when
// a reader's snapshot holds position p it holds every position below p that
// will ever exist. [Store.ReadAll] therefore never skips an event and never
// waits; the gap problem of PostgreSQL sequences does not arise. Positions
// of an append that rolls back may be taken again by the next append, which
// is harmless, because no reader saw them. For the same reason the database
// runs with synchronous=FULL: with NORMAL, a power loss could undo appends
// that readers had already seen, and their positions would then be given to
// other events, behind the readers' checkpoints.
//
// Stream reads check the deleted flag and read the events in one read
// transaction, so they see one snapshot. A [MemoryPath] store has a single
// connection for reads and writes.
//
// # Deletion
//
// [Store.DeleteStream] marks the stream deleted and deletes its snapshot:
// stream reads, snapshot loads and saves, and appends fail with
// [eventstore.ErrStreamDeleted], but the events stay in the global log,
// where [Store.ReadAll] still returns them, and their IDs stay taken. Deleting a stream that has no events tombstones its ID all the
// same; deleting a deleted stream does nothing.
//
// # Round trips
//
// RecordedAt is stored in nanoseconds and read back exactly, in UTC. A
// SchemaVersion of 0 is stored, and read back, as 1. Data of length zero
// reads back as nil. Metadata is stored as JSON, without its empty fields,
// so an empty, non-nil Metadata.Extra reads back as nil; Append refuses
// metadata strings that are not valid UTF-8, which JSON would alter, with
// an [*eventstore.InvalidEventError]. IDs, types and stream IDs are stored
// byte for byte.
//
// # Telemetry
//
// The store reports the telemetry every backend shares, named in package
// eventstore. Every operation, SaveSnapshot and LoadSnapshot included,
// makes one OpenTelemetry CLIENT span following the database semantic
// conventions (db.system.name "sqlite", db.operation.name the
// [eventstore.OperationKey] value, such as "append" or "save_snapshot",
// db.collection.name the table, "events" or "snapshots", and the span name
// those two values, such as "append events"), with the stream as
// [eventstore.StreamKey] and the outcome as [eventstore.OutcomeKey], and
// records its duration in the histogram named by
// [eventstore.OperationDurationMetricName]; appends also count the events
// stored ([eventstore.AppendedEventsMetricName]) and the version conflicts
// ([eventstore.ConflictsMetricName]). An append whose events were all
// stored already has the outcome [eventstore.OutcomeIdempotent]. With no-op
// providers the telemetry costs no allocation, only a few interface calls.
package sqlitestore

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/cairnhq/cairn/eventstore"
)

// instrumentationName names the tracer and the meter of this package.
const instrumentationName = "github.com/cairnhq/cairn/eventstore/sqlite"

// MemoryPath is the path that opens a private in-memory database, which lives
// as long as the [Store]. It is served by a single connection.
const MemoryPath = ":memory:"

// busyTimeoutMillis is how long a connection waits for a lock held by another
// connection (or process) before failing with SQLITE_BUSY.
const busyTimeoutMillis = 5000

// outcome is the outcome of an operation, an index into outcomeNames.
type outcome int

const (
	outcomeOK outcome = iota
	outcomeIdempotent
	outcomeConflict
	outcomeError
	numOutcomes
)

var outcomeNames = [numOutcomes]string{eventstore.OutcomeOK, eventstore.OutcomeIdempotent, eventstore.OutcomeConflict, eventstore.OutcomeError}

// outcomeOf returns the outcome of an operation that returned err: a
// conflict for a *VersionConflictError, an error for any other error.
func outcomeOf(err error) outcome {
	if err == nil {
		return outcomeOK
	}
	var ce *eventstore.VersionConflictError
	if errors.As(err, &ce) {
		return outcomeConflict
	}
	return outcomeError
}

// migrations are applied in order; migration i brings the schema to
// PRAGMA user_version i+1. Append only: never edit a released migration.
var migrations = [][]string{
	{
		`CREATE TABLE events (
			position       INTEGER PRIMARY KEY AUTOINCREMENT,
			stream_id      TEXT    NOT NULL,
			version        INTEGER NOT NULL,
			event_id       TEXT    NOT NULL UNIQUE,
			type           TEXT    NOT NULL,
			schema_version INTEGER NOT NULL,
			data           BLOB    NOT NULL,
			metadata       TEXT    NOT NULL, -- JSON of eventstore.Metadata
			recorded_at    INTEGER NOT NULL, -- Unix nanoseconds, UTC
			UNIQUE (stream_id, version)
		)`,
		`CREATE TABLE streams (
			stream_id TEXT    PRIMARY KEY,
			version   INTEGER NOT NULL, -- of the stream's last event, 0 if none
			deleted   INTEGER NOT NULL DEFAULT 0
		) WITHOUT ROWID`,
	},
	{
		// The latest snapshot of each stream (see snapshot.go).
		`CREATE TABLE snapshots (
			stream_id   TEXT    PRIMARY KEY,
			version     INTEGER NOT NULL, -- of the stream's last event it includes
			type        TEXT    NOT NULL,
			data        BLOB    NOT NULL,
			recorded_at INTEGER NOT NULL  -- Unix nanoseconds, UTC
		) WITHOUT ROWID`,
	},
	{
		// Named positions in the global log (see checkpoint.go).
		`CREATE TABLE checkpoints (
			name       TEXT    PRIMARY KEY,
			position   INTEGER NOT NULL,
			updated_at INTEGER NOT NULL  -- Unix nanoseconds, UTC
		) WITHOUT ROWID`,
	},
}

// The statements the store runs.
const (
	eventColumns = `position, stream_id, version, event_id, type, schema_version, data, metadata, recorded_at`

	selectStreamSQL   = `SELECT version, deleted FROM streams WHERE stream_id = ?`
	selectByIDsSQL    = `SELECT ` + eventColumns + ` FROM events WHERE event_id IN (SELECT CAST(unhex(value) AS TEXT) FROM json_each(?))`
	insertEventSQL    = `INSERT INTO events (stream_id, version, event_id, type, schema_version, data, metadata, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	upsertStreamSQL   = `INSERT INTO streams (stream_id, version) VALUES (?, ?) ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version`
	deleteStreamSQL   = `INSERT INTO streams (stream_id, version, deleted) VALUES (?, 0, 1) ON CONFLICT (stream_id) DO UPDATE SET deleted = 1`
	readForwardsSQL   = `SELECT ` + eventColumns + ` FROM events WHERE stream_id = ? AND version >= ? ORDER BY version LIMIT ?`
	readBackwardsSQL  = `SELECT ` + eventColumns + ` FROM events WHERE stream_id = ? AND version <= ? ORDER BY version DESC LIMIT ?`
	readAllSQL        = `SELECT ` + eventColumns + ` FROM events WHERE position > ? ORDER BY position LIMIT ?`
	appendQueryText   = selectStreamSQL + "; " + selectByIDsSQL + "; " + insertEventSQL + "; " + upsertStreamSQL
	readStreamQueries = selectStreamSQL + "; " + readForwardsSQL
)

// Option configures [Open]. Most callers need none.
type Option func(*options)

type options struct {
	tp         trace.TracerProvider
	mp         metric.MeterProvider
	syncNormal bool
}

// WithSyncNormal commits with synchronous=NORMAL instead of FULL: in WAL
// mode, a commit then survives a crash of the process but not of the
// machine (a power loss may roll back the last transactions), and costs no
// fsync. It suits an embedded demo or a cache of events that another
// system holds durably; the default, FULL, fsyncs the write-ahead log at
// every commit.
func WithSyncNormal() Option {
	return func(o *options) { o.syncNormal = true }
}

// WithTracerProvider sets the TracerProvider of the store's spans. Default
// the global otel.GetTracerProvider().
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *options) { o.tp = tp }
}

// WithMeterProvider sets the MeterProvider of the store's metrics. Default
// the global otel.GetMeterProvider().
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(o *options) { o.mp = mp }
}

// Store is an [eventstore.Store] backed by SQLite. It is safe for concurrent
// use by multiple goroutines. Close it when done.
type Store struct {
	write *sql.DB // one connection; every write goes through it
	read  *sql.DB // read-only pool; the same as write for an in-memory database

	tracer    trace.Tracer
	spanNames [numOps]string
	spanOpts  [numOps][]trace.SpanStartOption

	duration     metric.Float64Histogram
	conflicts    metric.Int64Counter
	appended     metric.Int64Counter
	durationOpts [numOps][numOutcomes][]metric.RecordOption
	outcomeAttrs [numOutcomes]attribute.KeyValue
	conflictOpts []metric.AddOption
	eventsOpts   []metric.AddOption
}

var _ eventstore.Store = (*Store)(nil)

// op is an operation of the store, an index into opNames.
type op int

const (
	opAppend op = iota
	opReadStream
	opReadAll
	opVersion
	opDeleteStream
	opSaveSnapshot
	opLoadSnapshot
	numOps
)

var opNames = [numOps]string{eventstore.OpAppend, eventstore.OpReadStream, eventstore.OpReadAll, eventstore.OpVersion, eventstore.OpDeleteStream, eventstore.OpSaveSnapshot, eventstore.OpLoadSnapshot}

// opTables names the table each operation works on: the db.collection.name
// of its span, and the second word of the span's name.
var opTables = [numOps]string{"events", "events", "events", "events", "events", "snapshots", "snapshots"}

// Open opens (creating if needed) the SQLite database at path, brings its
// schema up to date and returns a Store on it. path is a file name, or
// [MemoryPath] for a private in-memory database.
//
// Migrations are idempotent: opening a database that is already up to date
// changes nothing. Open returns an error if path is empty or contains '?',
// if the database cannot be opened or migrated, or if an instrument cannot
// be created.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	if path == "" || strings.Contains(path, "?") {
		return nil, fmt.Errorf("sqlitestore: open %q: path must be a file name or %s", path, MemoryPath)
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	s := &Store{}
	if err := s.instrument(o); err != nil {
		return nil, fmt.Errorf("sqlitestore: open %s: %w", path, err)
	}

	common := fmt.Sprintf("_pragma=busy_timeout(%d)", busyTimeoutMillis)
	var err error
	sync := "FULL"
	if o.syncNormal {
		sync = "NORMAL"
	}
	s.write, err = sql.Open("sqlite", path+"?"+common+"&_pragma=journal_mode(WAL)&_pragma=synchronous("+sync+")&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: open %s: %w", path, err)
	}
	// One writer connection: SQLite admits a single writer at a time, so
	// writers queue here (honouring ctx) rather than spin on SQLITE_BUSY,
	// and positions are taken in commit order. It is never closed while
	// idle, which an in-memory database needs.
	s.write.SetMaxOpenConns(1)
	s.write.SetMaxIdleConns(1)
	s.write.SetConnMaxIdleTime(0)
	s.write.SetConnMaxLifetime(0)
	if err := s.migrate(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("sqlitestore: migrate %s: %w", path, err), s.write.Close())
	}

	if path == MemoryPath {
		s.read = s.write
		return s, nil
	}
	s.read, err = sql.Open("sqlite", path+"?"+common+"&_pragma=query_only(1)")
	if err != nil {
		return nil, errors.Join(fmt.Errorf("sqlitestore: open %s for reading: %w", path, err), s.write.Close())
	}
	n := max(4, runtime.GOMAXPROCS(0))
	s.read.SetMaxOpenConns(n)
	s.read.SetMaxIdleConns(n)
	if err := s.read.PingContext(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("sqlitestore: open %s for reading: %w", path, err), s.read.Close(), s.write.Close())
	}
	return s, nil
}

// instrument creates the tracer, the instruments and the options of every
// span and measurement, once, so that operations allocate nothing for them.
func (s *Store) instrument(o options) error {
	tp, mp := o.tp, o.mp
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	s.tracer = tp.Tracer(instrumentationName, trace.WithSchemaURL(semconv.SchemaURL))
	for i, name := range opNames {
		s.spanNames[i] = name + " " + opTables[i]
		s.spanOpts[i] = []trace.SpanStartOption{
			trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(
				semconv.DBSystemNameSQLite,
				semconv.DBOperationName(name),
				semconv.DBCollectionName(opTables[i]),
			),
		}
	}

	m := mp.Meter(instrumentationName, metric.WithSchemaURL(semconv.SchemaURL))
	var err error
	s.duration, err = m.Float64Histogram(eventstore.OperationDurationMetricName,
		metric.WithDescription("Duration of event store operations."),
		metric.WithUnit("s"))
	if err != nil {
		return err
	}
	s.conflicts, err = m.Int64Counter(eventstore.ConflictsMetricName,
		metric.WithDescription("Appends refused because the stream's version did not match the expected version."),
		metric.WithUnit("{append}"))
	if err != nil {
		return err
	}
	s.appended, err = m.Int64Counter(eventstore.AppendedEventsMetricName,
		metric.WithDescription("Events appended to the event store."),
		metric.WithUnit("{event}"))
	if err != nil {
		return err
	}
	system := semconv.DBSystemNameSQLite
	for i, name := range outcomeNames {
		s.outcomeAttrs[i] = eventstore.OutcomeKey.String(name)
	}
	for o, op := range opNames {
		for i := range outcomeNames {
			set := attribute.NewSet(system, eventstore.OperationKey.String(op), s.outcomeAttrs[i])
			s.durationOpts[o][i] = []metric.RecordOption{metric.WithAttributeSet(set)}
		}
	}
	set := metric.WithAttributeSet(attribute.NewSet(system))
	s.conflictOpts = []metric.AddOption{set}
	s.eventsOpts = []metric.AddOption{set}
	return nil
}

// migrate applies the pending migrations in one immediate transaction, so two
// processes opening the same file do not race.
func (s *Store) migrate(ctx context.Context) (err error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, tx.Rollback())
		}
	}()
	var version int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return fmt.Errorf("read user_version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this program's %d", version, len(migrations))
	}
	for i := version; i < len(migrations); i++ {
		for _, stmt := range migrations[i] {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("migration %d: %w", i+1, err)
			}
		}
	}
	if version < len(migrations) {
		// PRAGMA does not take bind parameters; the value is our own integer.
		if _, err := tx.ExecContext(ctx, `PRAGMA user_version = `+strconv.Itoa(len(migrations))); err != nil {
			return fmt.Errorf("set user_version: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// Close closes the database connections. It waits for nothing: calls still
// running fail, and so do later calls. Close returns the errors of closing
// each pool, joined.
func (s *Store) Close() error {
	if s.read == s.write {
		return s.write.Close()
	}
	return errors.Join(s.read.Close(), s.write.Close())
}

// Append adds events to stream in one transaction, as [eventstore.Store]
// says. It checks the append with [eventstore.Validate] first. It returns an
// error matching [eventstore.ErrStreamDeleted] if the stream is deleted, and
// one matching [eventstore.ErrDuplicateEvent], naming the event ID, if an
// event's ID is stored already in another stream, at another place in the
// stream, or with another type, schema version or data, or if only some of
// the events are stored. If all of them are stored in stream, in order, at
// consecutive versions and with the same types, schema versions and data,
// it returns the result the append that stored them returned (for a
// retry of only some of that append's events, the versions and positions
// of those), whatever expected is, and stores nothing. Metadata is not
// compared.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.Event) (res eventstore.AppendResult, err error) {
	ctx, span, begin := s.start(ctx, opAppend, stream)
	oc := outcomeError
	defer func() {
		switch oc {
		case outcomeConflict:
			s.conflicts.Add(ctx, 1, s.conflictOpts...)
		case outcomeOK:
			s.appended.Add(ctx, int64(len(events)), s.eventsOpts...)
		}
		s.end(ctx, opAppend, begin, span, oc, err)
	}()

	if err := eventstore.Validate(stream, events); err != nil {
		return eventstore.AppendResult{}, err
	}
	if expected < eventstore.StreamExists {
		return eventstore.AppendResult{}, &eventstore.InvalidEventError{Index: -1, Field: "expected version", Reason: fmt.Sprintf("%d is not a version", int64(expected))}
	}
	rows := make([]row, len(events))
	ids := make([]string, len(events))
	for i, e := range events {
		ids[i] = hex.EncodeToString([]byte(e.ID)) // exact bytes, even if not UTF-8
		rows[i], err = toRow(e)
		if err != nil {
			return eventstore.AppendResult{}, &eventstore.InvalidEventError{Index: i, Field: "Metadata", Reason: err.Error()}
		}
	}
	idsJSON, err := json.Marshal(ids)
	if err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("sqlitestore: append to %s: %w", stream, err)
	}

	res, oc, err = s.append(ctx, stream, expected, rows, idsJSON)
	if err != nil {
		var ce *eventstore.VersionConflictError
		if errors.As(err, &ce) || errors.Is(err, eventstore.ErrDuplicateEvent) || errors.Is(err, eventstore.ErrStreamDeleted) {
			return eventstore.AppendResult{}, err
		}
		return eventstore.AppendResult{}, fmt.Errorf("sqlitestore: append to %s: %w", stream, err)
	}
	return res, nil
}

// append runs the transaction of Append.
func (s *Store) append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, rows []row, idsJSON []byte) (_ eventstore.AppendResult, oc outcome, err error) {
	tx, err := s.write.BeginTx(ctx, nil) // BEGIN IMMEDIATE: _txlock=immediate
	if err != nil {
		return eventstore.AppendResult{}, outcomeError, fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil || oc != outcomeOK {
			err = errors.Join(err, ignoreDone(tx.Rollback()))
		}
	}()

	current, deleted, err := streamState(ctx, tx, stream)
	if err != nil {
		return eventstore.AppendResult{}, outcomeError, err
	}
	if deleted {
		return eventstore.AppendResult{}, outcomeError, fmt.Errorf("sqlitestore: append to %s: %w", stream, eventstore.ErrStreamDeleted)
	}

	stored, err := storedByID(ctx, tx, idsJSON)
	if err != nil {
		return eventstore.AppendResult{}, outcomeError, err
	}
	if len(stored) > 0 {
		res, err := idempotent(stream, rows, stored)
		if err != nil {
			return eventstore.AppendResult{}, outcomeError, err
		}
		return res, outcomeIdempotent, nil
	}

	if !matches(expected, current) {
		return eventstore.AppendResult{}, outcomeConflict, &eventstore.VersionConflictError{Stream: stream, Expected: expected, Actual: current}
	}

	stmt, err := tx.PrepareContext(ctx, insertEventSQL)
	if err != nil {
		return eventstore.AppendResult{}, outcomeError, fmt.Errorf("prepare: %w", err)
	}
	defer stmt.Close()
	now := time.Now().UnixNano()
	var res eventstore.AppendResult
	for i, r := range rows {
		version := current + int64(i) + 1
		sr, err := stmt.ExecContext(ctx, stream, version, r.id, r.typ, r.schemaVersion, r.data, r.metadata, now)
		if isUniqueViolation(err) {
			// The ID lookup should have found it; never fail with a bare
			// constraint error all the same.
			return eventstore.AppendResult{}, outcomeError, fmt.Errorf("sqlitestore: append to %s: event %d, %q, is stored already: %w", stream, i, r.id, eventstore.ErrDuplicateEvent)
		}
		if err != nil {
			return eventstore.AppendResult{}, outcomeError, fmt.Errorf("insert event %s: %w", r.id, err)
		}
		pos, err := sr.LastInsertId()
		if err != nil {
			return eventstore.AppendResult{}, outcomeError, fmt.Errorf("insert event %s: %w", r.id, err)
		}
		if i == 0 {
			res.FirstPosition = eventstore.Position(pos)
		}
		res.LastPosition = eventstore.Position(pos)
		res.NextExpectedVersion = version
	}
	if _, err := tx.ExecContext(ctx, upsertStreamSQL, stream, res.NextExpectedVersion); err != nil {
		return eventstore.AppendResult{}, outcomeError, fmt.Errorf("update stream: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return eventstore.AppendResult{}, outcomeError, fmt.Errorf("commit: %w", err)
	}
	return res, outcomeOK, nil
}

// matches reports whether a stream at version current satisfies expected.
func matches(expected eventstore.ExpectedVersion, current int64) bool {
	switch expected {
	case eventstore.Any:
		return true
	case eventstore.StreamExists:
		return current > 0
	}
	return int64(expected) == current // NoStream is 0
}

// idempotent returns the result of the append that stored rows, whose stored
// rows with the same IDs are stored, or an error matching
// [eventstore.ErrDuplicateEvent] if they are not that append's events.
func idempotent(stream string, rows []row, stored map[string]eventstore.RecordedEvent) (eventstore.AppendResult, error) {
	var res eventstore.AppendResult
	for i, r := range rows {
		e, ok := stored[r.id]
		if !ok {
			return eventstore.AppendResult{}, fmt.Errorf("sqlitestore: append to %s: event %d, %q, is new but others of the append are stored: %w", stream, i, r.id, eventstore.ErrDuplicateEvent)
		}
		var why string
		switch {
		case e.StreamID != stream:
			why = fmt.Sprintf("is stored in stream %q", e.StreamID)
		case i > 0 && e.Version != res.NextExpectedVersion+1:
			why = fmt.Sprintf("is stored at version %d, not after the append's previous event", e.Version)
		case e.Type != r.typ || int64(e.SchemaVersion) != r.schemaVersion || !bytes.Equal(e.Data, r.data):
			why = "is stored with another type, schema version or data"
		}
		if why != "" {
			return eventstore.AppendResult{}, fmt.Errorf("sqlitestore: append to %s: event %d, %q, %s: %w", stream, i, r.id, why, eventstore.ErrDuplicateEvent)
		}
		if i == 0 {
			res.FirstPosition = e.Position
		}
		res.LastPosition = e.Position
		res.NextExpectedVersion = e.Version
	}
	return res, nil
}

// ReadStream returns at most limit events of stream from version from, as
// [eventstore.Reader] says: an empty slice for a stream with no events,
// and an error matching [eventstore.ErrStreamDeleted] for a deleted one. A
// from of zero or less means the first event going forwards and the last
// going backwards; a limit of zero or less returns no events.
func (s *Store) ReadStream(ctx context.Context, stream string, from int64, dir eventstore.Direction, limit int) (events []eventstore.RecordedEvent, err error) {
	ctx, span, begin := s.start(ctx, opReadStream, stream)
	defer func() { s.end(ctx, opReadStream, begin, span, outcomeOf(err), err) }()

	query := readForwardsSQL
	switch dir {
	case eventstore.Forwards:
	case eventstore.Backwards:
		query = readBackwardsSQL
		if from <= 0 {
			from = math.MaxInt64
		}
	default:
		return nil, fmt.Errorf("sqlitestore: read stream %s: unknown direction %d", stream, dir)
	}
	events, err = s.readStream(ctx, stream, query, from, limit)
	if err != nil {
		if errors.Is(err, eventstore.ErrStreamDeleted) {
			return nil, err
		}
		return nil, fmt.Errorf("sqlitestore: read stream %s: %w", stream, err)
	}
	return events, nil
}

// readStream checks that stream is not deleted and reads its events, in one
// read transaction.
func (s *Store) readStream(ctx context.Context, stream, query string, from int64, limit int) (_ []eventstore.RecordedEvent, err error) {
	tx, err := s.read.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer func() { err = errors.Join(err, ignoreDone(tx.Rollback())) }()
	_, deleted, err := streamState(ctx, tx, stream)
	if err != nil {
		return nil, err
	}
	if deleted {
		return nil, fmt.Errorf("sqlitestore: read stream %s: %w", stream, eventstore.ErrStreamDeleted)
	}
	if limit <= 0 {
		return []eventstore.RecordedEvent{}, nil
	}
	events, err := queryEvents(ctx, tx, limit, query, stream, from, limit)
	if err != nil {
		return nil, err
	}
	return events, nil
}

// ReadAll returns at most limit events of the global log with positions
// above after, in position order. It never waits: see the package doc. A
// limit of zero or less returns no events. Events of deleted streams are
// included.
func (s *Store) ReadAll(ctx context.Context, after eventstore.Position, limit int) (events []eventstore.RecordedEvent, err error) {
	ctx, span, begin := s.start(ctx, opReadAll, "")
	defer func() { s.end(ctx, opReadAll, begin, span, outcomeOf(err), err) }()

	if limit <= 0 {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("sqlitestore: read all after %d: %w", after, err)
		}
		return []eventstore.RecordedEvent{}, nil
	}
	events, err = queryEvents(ctx, s.read, limit, readAllSQL, int64(after), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: read all after %d: %w", after, err)
	}
	return events, nil
}

// Version returns the version of stream's last event, 0 if it has none. It
// returns an error matching [eventstore.ErrStreamDeleted] if the stream is
// deleted.
func (s *Store) Version(ctx context.Context, stream string) (v int64, err error) {
	ctx, span, begin := s.start(ctx, opVersion, stream)
	defer func() { s.end(ctx, opVersion, begin, span, outcomeOf(err), err) }()

	v, deleted, err := streamState(ctx, s.read, stream)
	if err != nil {
		return 0, fmt.Errorf("sqlitestore: version of %s: %w", stream, err)
	}
	if deleted {
		return 0, fmt.Errorf("sqlitestore: version of %s: %w", stream, eventstore.ErrStreamDeleted)
	}
	return v, nil
}

// DeleteStream marks stream deleted. Its events stay in the global log and
// their IDs stay taken; reads of the stream and appends to it fail with
// [eventstore.ErrStreamDeleted]. Deleting a stream with no events marks it
// deleted too; deleting a deleted stream does nothing.
func (s *Store) DeleteStream(ctx context.Context, stream string) (err error) {
	ctx, span, begin := s.start(ctx, opDeleteStream, stream)
	defer func() { s.end(ctx, opDeleteStream, begin, span, outcomeOf(err), err) }()

	if stream == "" {
		return fmt.Errorf("sqlitestore: delete stream: %w", &eventstore.InvalidEventError{Index: -1, Field: "stream", Reason: "is empty"})
	}
	if err := s.deleteStream(ctx, stream); err != nil {
		return fmt.Errorf("sqlitestore: delete stream %s: %w", stream, err)
	}
	return nil
}

// deleteStream marks stream deleted and deletes its snapshot, in one
// transaction.
func (s *Store) deleteStream(ctx context.Context, stream string) (err error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { err = errors.Join(err, ignoreDone(tx.Rollback())) }()
	if _, err := tx.ExecContext(ctx, deleteStreamSQL, stream); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, deleteSnapshotSQL, stream); err != nil {
		return fmt.Errorf("delete snapshot: %w", err)
	}
	return tx.Commit()
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// streamState returns stream's version and deleted flag; 0 and false for a
// stream never appended to nor deleted.
func streamState(ctx context.Context, q querier, stream string) (version int64, deleted bool, err error) {
	err = q.QueryRowContext(ctx, selectStreamSQL, stream).Scan(&version, &deleted)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read stream state: %w", err)
	}
	return version, deleted, nil
}

// storedByID returns the stored events whose IDs are in ids, a JSON array
// of the hex-encoded IDs, by ID.
func storedByID(ctx context.Context, q querier, ids []byte) (map[string]eventstore.RecordedEvent, error) {
	events, err := queryEvents(ctx, q, 0, selectByIDsSQL, ids)
	if err != nil {
		return nil, fmt.Errorf("look up event IDs: %w", err)
	}
	if len(events) == 0 {
		return nil, nil
	}
	m := make(map[string]eventstore.RecordedEvent, len(events))
	for _, e := range events {
		m[e.ID] = e
	}
	return m, nil
}

// queryEvents runs a query selecting eventColumns and returns its events,
// never nil. size is a capacity hint.
func queryEvents(ctx context.Context, q querier, size int, query string, args ...any) (_ []eventstore.RecordedEvent, err error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, rows.Close()) }()
	events := make([]eventstore.RecordedEvent, 0, min(size, 1024))
	for rows.Next() {
		var (
			e        eventstore.RecordedEvent
			metadata []byte
			recorded int64
		)
		if err := rows.Scan(&e.Position, &e.StreamID, &e.Version, &e.ID, &e.Type, &e.SchemaVersion, &e.Data, &metadata, &recorded); err != nil {
			return nil, fmt.Errorf("scan: %w", err)
		}
		if len(e.Data) == 0 {
			e.Data = nil
		}
		if err := json.Unmarshal(metadata, &e.Metadata); err != nil {
			return nil, fmt.Errorf("event %s: metadata: %w", e.ID, err)
		}
		e.RecordedAt = time.Unix(0, recorded).UTC()
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return events, nil
}

// row is an event as the events table holds it.
type row struct {
	id, typ       string
	schemaVersion int64
	data          []byte
	metadata      string
}

// toRow normalises e for storing: SchemaVersion 0 becomes 1, nil Data an
// empty BLOB (the column is NOT NULL), and the metadata JSON. It returns an
// error if a metadata string is not valid UTF-8, which JSON would not
// round-trip.
func toRow(e eventstore.Event) (row, error) {
	m := e.Metadata
	for _, v := range [...]string{m.CorrelationID, m.CausationID, m.TraceParent, m.TraceState} {
		if !utf8.ValidString(v) {
			return row{}, errors.New("is not valid UTF-8")
		}
	}
	for k, v := range m.Extra {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return row{}, errors.New("extra is not valid UTF-8")
		}
	}
	md, err := json.Marshal(e.Metadata)
	if err != nil {
		return row{}, err
	}
	r := row{id: e.ID, typ: e.Type, schemaVersion: int64(max(e.SchemaVersion, 1)), data: e.Data, metadata: string(md)}
	if r.data == nil {
		r.data = []byte{}
	}
	return r, nil
}

// start starts a CLIENT span for o with the database semantic-convention
// attributes, adding stream when the span records, and returns the time
// the operation began.
func (s *Store) start(ctx context.Context, o op, stream string) (context.Context, trace.Span, time.Time) {
	if o == opReadAll && !trace.SpanContextFromContext(ctx).IsValid() {
		// A follower polling the log with no trace of its own (a
		// projector, a relay) would start a new trace at every poll.
		return ctx, trace.SpanFromContext(ctx), time.Now()
	}
	ctx, span := s.tracer.Start(ctx, s.spanNames[o], s.spanOpts[o]...)
	if stream != "" && span.IsRecording() {
		span.SetAttributes(eventstore.StreamKey.String(stream))
	}
	return ctx, span, time.Now()
}

// end records the duration of operation o, which began at begin and
// ended with outcome oc and err, and ends its span.
func (s *Store) end(ctx context.Context, o op, begin time.Time, span trace.Span, oc outcome, err error) {
	s.duration.Record(ctx, time.Since(begin).Seconds(), s.durationOpts[o][oc]...)
	if span.IsRecording() {
		span.SetAttributes(s.outcomeAttrs[oc])
	}
	endSpan(span, err)
}

// endSpan ends span, recording err unless it is nil or an answer rather
// than a failure of the database: a version conflict, a deleted stream, a
// duplicate event, an invalid append or snapshot, or a snapshot ahead of
// its stream, which get error.type only.
func endSpan(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.SetAttributes(semconv.ErrorType(err))
		var se *sqlite.Error
		if errors.As(err, &se) {
			span.SetAttributes(semconv.DBResponseStatusCode(strconv.Itoa(se.Code())))
		}
		if !isAnswer(err) {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
	}
	span.End()
}

// isUniqueViolation reports whether err is SQLite rejecting a duplicate key.
func isUniqueViolation(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}

// isAnswer reports whether err is the store refusing a request, not failing.
func isAnswer(err error) bool {
	return errors.Is(err, eventstore.ErrVersionConflict) || errors.Is(err, eventstore.ErrStreamDeleted) ||
		errors.Is(err, eventstore.ErrDuplicateEvent) || errors.Is(err, eventstore.ErrInvalidEvent) ||
		errors.Is(err, eventstore.ErrSnapshotAhead)
}

// ignoreDone drops sql.ErrTxDone, which Rollback returns after Commit or a
// failed Commit has already ended the transaction.
func ignoreDone(err error) error {
	if errors.Is(err, sql.ErrTxDone) {
		return nil
	}
	return err
}
