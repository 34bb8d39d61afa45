package console

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
	"modernc.org/sqlite" // also registers the pure-Go "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"
)

// DataFile is the name of the SQLite database a Console keeps in
// Options.DataDir.
const DataFile = "console.db"

// PersistStats counts the work of the console's SQLite persistence
// (Options.DataDir). It is all zero when the console keeps memory only.
type PersistStats struct {
	// WrittenRequests and WrittenItems count the export requests, and the
	// accepted items in them, written to the database since Open.
	WrittenRequests uint64 `json:"written_requests"`
	WrittenItems    uint64 `json:"written_items"`
	// WriteErrors counts the acknowledged export requests that could not
	// be written (each failure is logged at error level): they are in
	// memory but will not survive a restart.
	WriteErrors uint64 `json:"write_errors"`
	// Pending is the number of acknowledged requests waiting to be
	// written.
	Pending int `json:"pending"`
	// ReplayedSpans, ReplayedLogs and ReplayedPoints count the items
	// restored from the database by Open. They are also counted in the
	// signals' Received and Stored (or Evicted) stats, as if just received.
	ReplayedSpans  uint64 `json:"replayed_spans"`
	ReplayedLogs   uint64 `json:"replayed_logs"`
	ReplayedPoints uint64 `json:"replayed_points"`
	// ReplaySkipped counts the database rows Open could not decode and
	// left out of the replay; each is logged at warn level with its id.
	ReplaySkipped uint64 `json:"replay_skipped"`
	// TrimmedItems counts the items deleted from the database, oldest
	// first, to keep it within twice the memory bounds.
	TrimmedItems uint64 `json:"trimmed_items"`
	// DatabaseBytes is the size on disk of the database and its
	// write-ahead log, as of the last write.
	DatabaseBytes int64 `json:"database_bytes"`
}

// Tuning of the persistence writer.
const (
	// persistQueue is how many acknowledged requests may wait for the
	// writer; an export finding the queue full waits for room.
	persistQueue = 256
	// persistBatch and persistBatchBytes bound one write transaction.
	persistBatch      = 256
	persistBatchBytes = 16 << 20
	// persistBusyMillis is how long opening a database in use by another
	// process waits before failing.
	persistBusyMillis = 1000
	// schemaVersion is the PRAGMA user_version of the schema below.
	schemaVersion = 1
)

// schema creates the database. exports holds one accepted OTLP export
// request per row: its signal ("traces", "logs" or "metrics"), arrival
// time in Unix nanoseconds, number of accepted items and the
// Export*ServiceRequest as protobuf. Rows are in arrival order by id.
var schema = []string{
	`CREATE TABLE IF NOT EXISTS exports (
	id          INTEGER PRIMARY KEY,
	signal      TEXT    NOT NULL,
	received_at INTEGER NOT NULL,
	items       INTEGER NOT NULL,
	body        BLOB    NOT NULL
)`,
	`CREATE INDEX IF NOT EXISTS exports_by_signal ON exports (signal, id)`,
}

// signal is one of the three OTLP signals; it indexes per-signal arrays.
type signal int

const (
	sigTraces signal = iota
	sigLogs
	sigMetrics
	numSignals
)

// String returns the signal's name in the database.
func (s signal) String() string {
	return [numSignals]string{"traces", "logs", "metrics"}[s]
}

// errClosed is the error of an export that reaches a persisting Console
// after Close.
var errClosed = errors.New("console: closed")

// record is one export request on its way to the database.
type record struct {
	sig   signal
	at    int64 // arrival, Unix nanoseconds
	items int   // accepted items
	body  []byte
}

// persister writes accepted export requests to a SQLite database from a
// single goroutine, in batches, and trims the database to twice the
// console's memory bounds. Create it with openPersister, start its writer
// with start and stop it with stop.
type persister struct {
	db     *sql.DB // one connection, holding the database's exclusive lock
	path   string
	log    *slog.Logger
	bounds [numSignals]int // the store's bounds per signal

	// mu guards closed and sending on in: senders hold it for reading
	// while they send (or wait for room), shutdown holds it for writing
	// to close in, so that no send can follow.
	mu     sync.RWMutex
	closed bool
	in     chan record
	done   chan struct{} // closed when the writer has exited
	stop   func() error  // shutdown, run once

	// items counts the persisted items per signal. Only openPersister and
	// then the writer goroutine use it.
	items [numSignals]int64

	// Set by replay before the writer starts, read-only afterwards.
	replayed [numSignals]uint64
	skipped  uint64

	written, writtenItems, writeErrors, trimmed atomic.Uint64
	dbBytes                                     atomic.Int64
}

// openPersister opens or creates dir/console.db, checks its schema
// version, and trims it to the bounds. queue is the capacity of the write
// queue. The caller replays it, then calls start.
func openPersister(dir string, bounds [numSignals]int, log *slog.Logger, queue int) (*persister, error) {
	if strings.Contains(dir, "?") {
		return nil, fmt.Errorf("console: data directory %q: the name must not contain '?'", dir)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("console: data directory: %w", err)
	}
	path := filepath.Join(dir, DataFile)
	// An exclusive lock keeps a second console (another process) off the
	// same database; it fails after persistBusyMillis instead of sharing.
	dsn := fmt.Sprintf("%s?_pragma=busy_timeout(%d)&_pragma=locking_mode(EXCLUSIVE)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate",
		path, persistBusyMillis)
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("console: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	p := &persister{
		db:     db,
		path:   path,
		log:    log,
		bounds: bounds,
		in:     make(chan record, queue),
		done:   make(chan struct{}),
	}
	p.stop = sync.OnceValue(p.shutdown)
	if err := p.init(); err != nil {
		return nil, errors.Join(fmt.Errorf("console: open %s: %w", path, err), db.Close())
	}
	return p, nil
}

// init migrates the schema, loads the item counts and trims.
func (p *persister) init() error {
	ctx := context.Background()
	var version int
	if err := p.db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		if se, ok := errors.AsType[*sqlite.Error](err); ok && se.Code()&0xff == sqlite3.SQLITE_BUSY {
			return fmt.Errorf("in use by another process: %w", err)
		}
		return fmt.Errorf("read schema version: %w", err)
	}
	if version > schemaVersion {
		return fmt.Errorf("schema version %d is newer than this program's %d; use a newer cairn or another data directory", version, schemaVersion)
	}
	if version < schemaVersion {
		tx, err := p.db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("create schema: %w", err)
		}
		for _, stmt := range append(schema, fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion)) {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return errors.Join(fmt.Errorf("create schema: %w", err), tx.Rollback())
			}
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("create schema: %w", err)
		}
	}
	rows, err := p.db.QueryContext(ctx, `SELECT signal, SUM(items) FROM exports GROUP BY signal`)
	if err != nil {
		return fmt.Errorf("count items: %w", err)
	}
	for rows.Next() {
		var (
			name string
			n    int64
		)
		if err := rows.Scan(&name, &n); err != nil {
			return errors.Join(fmt.Errorf("count items: %w", err), rows.Close())
		}
		for s := range numSignals {
			if s.String() == name {
				p.items[s] = n
			}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("count items: %w", err)
	}
	tx, err := p.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("trim: %w", err)
	}
	items := p.items
	trimmed, err := p.trim(ctx, tx, &items)
	if err != nil {
		return errors.Join(fmt.Errorf("trim: %w", err), tx.Rollback())
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("trim: %w", err)
	}
	p.items = items
	p.trimmed.Add(trimmed)
	p.updateSize()
	return nil
}

// cutoff returns the id of the oldest row of signal s among the newest
// rows whose items add up to keep, and the items in the rows from there
// on. It returns 0 and the signal's total when all rows add up to less.
func cutoff(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, s signal, keep int) (id, kept int64, err error) {
	rows, err := q.QueryContext(ctx, `SELECT id, items FROM exports WHERE signal = ? ORDER BY id DESC`, s.String())
	if err != nil {
		return 0, 0, err
	}
	defer rows.Close()
	for rows.Next() && kept < int64(keep) {
		var n int64
		if err := rows.Scan(&id, &n); err != nil {
			return 0, 0, err
		}
		kept += n
	}
	if err := rows.Err(); err != nil {
		return 0, 0, err
	}
	if kept < int64(keep) {
		id = 0
	}
	return id, kept, nil
}

// trim deletes, for every signal whose items exceed twice its bound, the
// oldest rows not needed to refill the bound. It updates items and
// returns the number of items deleted.
func (p *persister) trim(ctx context.Context, tx *sql.Tx, items *[numSignals]int64) (uint64, error) {
	var trimmed uint64
	for s := range numSignals {
		if items[s] <= 2*int64(p.bounds[s]) {
			continue
		}
		id, kept, err := cutoff(ctx, tx, s, p.bounds[s])
		if err != nil {
			return 0, fmt.Errorf("find the oldest %s to keep: %w", s, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM exports WHERE signal = ? AND id < ?`, s.String(), id); err != nil {
			return 0, fmt.Errorf("delete old %s: %w", s, err)
		}
		trimmed += uint64(items[s] - kept)
		items[s] = kept
	}
	return trimmed, nil
}

// start starts the writer goroutine, which runs until stop.
func (p *persister) start() { go p.run() }

// enqueue hands r to the writer, waiting for room in the queue while ctx
// allows. It fails with errClosed once stop has begun.
func (p *persister) enqueue(ctx context.Context, r record) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return errClosed
	}
	select {
	case p.in <- r:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("console: export abandoned while waiting to be persisted: %w", context.Cause(ctx))
	}
}

// run writes the queued records, taking as many as are waiting (within
// persistBatch and persistBatchBytes) into each transaction, until the
// queue is closed and empty.
func (p *persister) run() {
	defer close(p.done)
	batch := make([]record, 0, persistBatch)
	for r := range p.in {
		batch = append(batch[:0], r)
		size := len(r.body)
	fill:
		for len(batch) < persistBatch && size < persistBatchBytes {
			select {
			case r, ok := <-p.in:
				if !ok {
					break fill
				}
				batch = append(batch, r)
				size += len(r.body)
			default:
				break fill
			}
		}
		p.write(batch)
		clear(batch) // let the bodies go
	}
}

// write stores batch in one transaction, trimming in the same one, and
// counts and logs a failure.
func (p *persister) write(batch []record) {
	var n uint64
	for _, r := range batch {
		n += uint64(r.items)
	}
	items := p.items
	trimmed, err := p.writeTx(batch, &items)
	if err != nil {
		p.writeErrors.Add(uint64(len(batch)))
		p.log.LogAttrs(context.Background(), slog.LevelError, "console: acknowledged exports not persisted; they will not survive a restart",
			slog.String("database", p.path), slog.Int("requests", len(batch)), slog.Uint64("items", n), slog.Any("error", err))
		return
	}
	p.items = items
	p.written.Add(uint64(len(batch)))
	p.writtenItems.Add(n)
	p.trimmed.Add(trimmed)
	p.updateSize()
}

// writeTx inserts batch and trims, adding the batch's items to items.
func (p *persister) writeTx(batch []record, items *[numSignals]int64) (uint64, error) {
	ctx := context.Background()
	tx, err := p.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	rollback := func(err error) (uint64, error) { return 0, errors.Join(err, tx.Rollback()) }
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO exports (signal, received_at, items, body) VALUES (?, ?, ?, ?)`)
	if err != nil {
		return rollback(err)
	}
	for _, r := range batch {
		if _, err := stmt.ExecContext(ctx, r.sig.String(), r.at, r.items, r.body); err != nil {
			return rollback(errors.Join(err, stmt.Close()))
		}
		items[r.sig] += int64(r.items)
	}
	if err := stmt.Close(); err != nil {
		return rollback(err)
	}
	trimmed, err := p.trim(ctx, tx, items)
	if err != nil {
		return rollback(err)
	}
	return trimmed, tx.Commit()
}

// updateSize records the size of the database and its write-ahead log.
func (p *persister) updateSize() {
	var n int64
	for _, name := range []string{p.path, p.path + "-wal"} {
		if fi, err := os.Stat(name); err == nil {
			n += fi.Size()
		}
	}
	p.dbBytes.Store(n)
}

// shutdown refuses new records, waits for the writer to write the queued
// ones and closes the database.
func (p *persister) shutdown() error {
	p.mu.Lock()
	p.closed = true
	close(p.in)
	p.mu.Unlock()
	<-p.done
	if err := p.db.Close(); err != nil {
		return fmt.Errorf("console: close %s: %w", p.path, err)
	}
	return nil
}

// stats returns the persistence counters.
func (p *persister) stats() PersistStats {
	return PersistStats{
		WrittenRequests: p.written.Load(),
		WrittenItems:    p.writtenItems.Load(),
		WriteErrors:     p.writeErrors.Load(),
		Pending:         len(p.in),
		ReplayedSpans:   p.replayed[sigTraces],
		ReplayedLogs:    p.replayed[sigLogs],
		ReplayedPoints:  p.replayed[sigMetrics],
		ReplaySkipped:   p.skipped,
		TrimmedItems:    p.trimmed.Load(),
		DatabaseBytes:   p.dbBytes.Load(),
	}
}

// persistExport queues req, with its number of accepted items, for the
// database; it does nothing for a console without one or a request
// without accepted items. It waits while the queue is full, and fails
// when ctx ends first or the console is closed.
func (c *Console) persistExport(ctx context.Context, s signal, req proto.Message, items int) error {
	if c.persist == nil || items == 0 {
		return nil
	}
	body, err := proto.Marshal(req)
	if err != nil {
		return fmt.Errorf("console: encode %s export for the database: %w", s, err)
	}
	return c.persist.enqueue(ctx, record{sig: s, at: time.Now().UnixNano(), items: items, body: body})
}

// replay feeds the newest rows of each signal, up to the store's bound,
// oldest first, through the conversion and store path of a new export.
// A row that cannot be decoded is skipped, counted and logged.
func (c *Console) replay(p *persister) error {
	ctx := context.Background()
	for s := range numSignals {
		from, _, err := cutoff(ctx, p.db, s, p.bounds[s])
		if err != nil {
			return fmt.Errorf("console: replay %s from %s: %w", s, p.path, err)
		}
		rows, err := p.db.QueryContext(ctx, `SELECT id, body FROM exports WHERE signal = ? AND id >= ? ORDER BY id`, s.String(), from)
		if err != nil {
			return fmt.Errorf("console: replay %s from %s: %w", s, p.path, err)
		}
		for rows.Next() {
			var (
				id   int64
				body []byte
			)
			if err := rows.Scan(&id, &body); err != nil {
				return errors.Join(fmt.Errorf("console: replay %s from %s: %w", s, p.path, err), rows.Close())
			}
			n, err := c.restore(s, body)
			if err != nil {
				p.skipped++
				c.log.LogAttrs(ctx, slog.LevelWarn, "console: skipped a database row that cannot be decoded",
					slog.String("database", p.path), slog.Int64("row", id), slog.String("signal", s.String()), slog.Any("error", err))
				continue
			}
			p.replayed[s] += uint64(n)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("console: replay %s from %s: %w", s, p.path, err)
		}
	}
	return nil
}

// restore decodes a persisted request of signal s and stores its accepted
// items, returning how many. Its rejected items were counted when it
// arrived and are not counted again.
func (c *Console) restore(s signal, body []byte) (int, error) {
	switch s {
	case sigTraces:
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			return 0, err
		}
		spans, _ := convertTraces(&req)
		c.store.addSpans(spans, 0)
		return len(spans), nil
	case sigLogs:
		var req collogspb.ExportLogsServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			return 0, err
		}
		records, _ := convertLogs(&req)
		c.store.addLogs(records, 0)
		return len(records), nil
	default:
		var req colmetricspb.ExportMetricsServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			return 0, err
		}
		batches, _ := convertMetrics(&req)
		c.store.addMetrics(batches, 0)
		return pointCount(batches), nil
	}
}

// pointCount returns the number of data points in batches.
func pointCount(batches []metricBatch) int {
	n := 0
	for _, b := range batches {
		n += len(b.Points)
	}
	return n
}
