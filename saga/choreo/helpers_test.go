package choreo_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/cairnhq/cairn/cqrs"
	"github.com/cairnhq/cairn/messaging"
	"github.com/cairnhq/cairn/saga/choreo"
)

// orderSaga is the chain of the tests, its subjects prefixed with p (for
// a shared broker): inventory, payment and shipping, two compensations.
func orderSaga(p string) *choreo.Saga {
	return &choreo.Saga{
		Name:  "order",
		Start: p + "order.placed",
		Steps: []choreo.Step{
			{Name: "reserve", Participant: "inventory", On: []string{p + "order.placed"}, Success: p + "stock.reserved", Failure: p + "stock.rejected"},
			{Name: "charge", Participant: "payment", On: []string{p + "stock.reserved"}, Success: p + "payment.charged", Failure: p + "payment.failed"},
			{Name: "ship", Participant: "shipping", On: []string{p + "payment.charged"}, Success: p + "shipment.scheduled", Failure: p + "shipment.failed"},
			{Name: "refund", Participant: "payment", On: []string{p + "shipment.failed"}, Success: p + "payment.refunded", Compensates: "charge"},
			{Name: "release", Participant: "inventory", On: []string{p + "payment.failed", p + "payment.refunded"}, Success: p + "stock.released", Compensates: "reserve"},
		},
	}
}

// sqliteDB returns a new SQLite database in a temp dir, closed when t
// ends.
func sqliteDB(t testing.TB, name string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), name+".db")+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// effects records, in a participant's database, the steps it ran.
type effects struct {
	db *sql.DB
	d  cqrs.Dialect
}

func newEffects(t testing.TB, db *sql.DB, d cqrs.Dialect) *effects {
	t.Helper()
	if _, err := db.ExecContext(context.Background(), "CREATE TABLE IF NOT EXISTS effects (step TEXT NOT NULL, saga_id TEXT NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	return &effects{db, d}
}

// fn returns a Func that records its step in the transaction, or fails
// permanently when fail reports true for the instance.
func (e *effects) fn(step string, fail func(id string) bool) choreo.Func {
	return func(ctx context.Context, tx *sql.Tx, ev choreo.Event) ([]byte, error) {
		if fail != nil && fail(ev.SagaID) {
			return nil, messaging.Permanent(fmt.Errorf("%s refused %s", step, ev.SagaID))
		}
		if _, err := tx.ExecContext(ctx, e.d.Rebind("INSERT INTO effects (step, saga_id) VALUES (?, ?)"), step, ev.SagaID); err != nil {
			return nil, err
		}
		return []byte(step + " done"), nil
	}
}

// count returns how many times step ran for the instance id.
func (e *effects) count(t testing.TB, step, id string) int {
	t.Helper()
	var n int
	if err := e.db.QueryRowContext(context.Background(), e.d.Rebind("SELECT count(*) FROM effects WHERE step = ? AND saga_id = ?"), step, id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitFinal polls the tracker until the instance id has a final status
// and at least events events (the tracker may receive the final event
// before earlier ones), and returns it; it fails the test after the
// deadline.
func waitFinal(t testing.TB, tr *choreo.Tracker, id string, events int) choreo.Instance {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		in, err := tr.Get(context.Background(), id)
		if err == nil && in.Status.Final() && len(in.History) >= events {
			return in
		}
		if err != nil && !errors.Is(err, choreo.ErrNotFound) {
			t.Fatalf("Get(%s) = %v", id, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance %s not final after 20s: %+v, %v", id, in, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// subjects returns the subjects of h, sorted by order of arrival.
func subjects(h []choreo.Record) []string {
	out := make([]string, len(h))
	for i, r := range h {
		out[i] = r.Subject
	}
	return out
}

// recordingPublisher records the messages published through it.
type recordingPublisher struct {
	messaging.Publisher
	mu  sync.Mutex
	got []messaging.Message
}

func (p *recordingPublisher) Publish(ctx context.Context, msgs ...messaging.Message) error {
	p.mu.Lock()
	p.got = append(p.got, msgs...)
	p.mu.Unlock()
	return p.Publisher.Publish(ctx, msgs...)
}

func (p *recordingPublisher) messages() []messaging.Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]messaging.Message(nil), p.got...)
}
