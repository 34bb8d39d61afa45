package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/cqrs"
	"github.com/cairnhq/cairn/messaging"
)

// InboxTable is the table an [Inbox] keeps its message IDs in.
const InboxTable = "cairn_inbox"

// Inbox remembers which messages each consumer has handled, in the
// consumer's database, so that a message delivered again has no effect.
type Inbox struct {
	db                   *sql.DB
	claim, prune, create string
}

// NewInbox returns the inbox of db, creating its table if it is missing.
// d is the database's dialect: cqrs.SQLite (modernc.org/sqlite) or
// cqrs.Postgres (pgx's database/sql driver), as for a read model.
func NewInbox(ctx context.Context, db *sql.DB, d cqrs.Dialect) (*Inbox, error) {
	i := &Inbox{db: db}
	switch d {
	case cqrs.SQLite:
		i.create = `CREATE TABLE IF NOT EXISTS ` + InboxTable + ` (
	consumer     TEXT    NOT NULL,
	message_id   TEXT    NOT NULL,
	processed_at INTEGER NOT NULL, -- Unix nanoseconds
	PRIMARY KEY (consumer, message_id)
) WITHOUT ROWID`
		i.claim = `INSERT INTO ` + InboxTable + ` (consumer, message_id, processed_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`
		i.prune = `DELETE FROM ` + InboxTable + ` WHERE processed_at < ?`
	case cqrs.Postgres:
		i.create = `CREATE TABLE IF NOT EXISTS ` + InboxTable + ` (
	consumer     text   NOT NULL,
	message_id   text   NOT NULL,
	processed_at bigint NOT NULL, -- Unix nanoseconds
	PRIMARY KEY (consumer, message_id)
)`
		i.claim = `INSERT INTO ` + InboxTable + ` (consumer, message_id, processed_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`
		i.prune = `DELETE FROM ` + InboxTable + ` WHERE processed_at < $1`
	default:
		return nil, fmt.Errorf("outbox: inbox: unknown %v", d)
	}
	if _, err := db.ExecContext(ctx, i.create); err != nil {
		return nil, fmt.Errorf("outbox: inbox: create table %s: %w", InboxTable, err)
	}
	return i, nil
}

// Claim records in tx that consumer handles message id, and reports
// whether this is the first time: false means the message was handled
// before (by a committed transaction) and tx must not repeat its effects.
// On PostgreSQL, a concurrent Claim of the same message waits for the
// other transaction and returns false if it commits, true if it rolls
// back.
func (i *Inbox) Claim(ctx context.Context, tx *sql.Tx, consumer, id string) (bool, error) {
	if consumer == "" || id == "" {
		return false, fmt.Errorf("outbox: inbox: claim with an empty consumer (%q) or message ID (%q)", consumer, id)
	}
	res, err := tx.ExecContext(ctx, i.claim, consumer, id, time.Now().UnixNano())
	if err != nil {
		return false, fmt.Errorf("outbox: inbox: claim message %q for %s: %w", id, consumer, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("outbox: inbox: claim message %q for %s: %w", id, consumer, err)
	}
	return n == 1, nil
}

// Handler returns a messaging handler that runs h in a transaction of the
// inbox's database, once per message ID for consumer: the claim and h's
// writes commit together, and a message claimed before is acknowledged
// without calling h. An error of h rolls back and is returned, so the
// message is delivered again (or dead-lettered).
func (i *Inbox) Handler(consumer string, h func(ctx context.Context, tx *sql.Tx, d messaging.Delivery) error) messaging.Handler {
	return func(ctx context.Context, d messaging.Delivery) (err error) {
		tx, err := i.db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("outbox: inbox: begin: %w", err)
		}
		defer func() {
			if err != nil {
				err = errors.Join(err, ignoreDone(tx.Rollback()))
			}
		}()
		first, err := i.Claim(ctx, tx, consumer, d.ID)
		if err != nil {
			return err
		}
		if !first {
			trace.SpanFromContext(ctx).AddEvent("inbox.duplicate",
				trace.WithAttributes(attribute.String("messaging.message.id", d.ID)))
			return tx.Rollback()
		}
		if err := h(ctx, tx, d); err != nil {
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("outbox: inbox: commit message %q for %s: %w", d.ID, consumer, err)
		}
		return nil
	}
}

// Prune deletes the records of messages handled before t, and returns how
// many. Keep records for longer than a message can be redelivered (the
// relay's and the broker's retention), or a late duplicate has its effect
// again.
func (i *Inbox) Prune(ctx context.Context, t time.Time) (int64, error) {
	res, err := i.db.ExecContext(ctx, i.prune, t.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("outbox: inbox: prune: %w", err)
	}
	return res.RowsAffected()
}

func ignoreDone(err error) error {
	if errors.Is(err, sql.ErrTxDone) {
		return nil
	}
	return err
}
