package cqrs_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite"

	"github.com/cairnhq/cairn/cqrs"
	"github.com/cairnhq/cairn/eventstore"
	sqlitestore "github.com/cairnhq/cairn/eventstore/sqlite"
)

type PlaceOrder struct {
	ID     string
	Order  string
	Amount int
}

func (c PlaceOrder) CommandID() string { return c.ID }

func (c PlaceOrder) Validate() error {
	if c.Amount <= 0 {
		return fmt.Errorf("amount %d is not positive", c.Amount)
	}
	return nil
}

func Example_commandBus() {
	ctx := context.Background()
	bus := cqrs.NewCommandBus(cqrs.Validation(), cqrs.Idempotency(&cqrs.MemoryIdempotencyStore{}))
	cqrs.Handle(bus, func(_ context.Context, c PlaceOrder) error {
		fmt.Printf("placing order %s for %d\n", c.Order, c.Amount)
		return nil
	})

	fmt.Println(cqrs.Dispatch(ctx, bus, PlaceOrder{ID: "cmd-1", Order: "o-1", Amount: 3}))
	// A retry of the same command ID: the handler does not run again.
	fmt.Println(cqrs.Dispatch(ctx, bus, PlaceOrder{ID: "cmd-1", Order: "o-1", Amount: 3}))
	err := cqrs.Dispatch(ctx, bus, PlaceOrder{ID: "cmd-2", Order: "o-2"})
	fmt.Println(errors.Is(err, cqrs.ErrInvalidCommand), err)

	qb := cqrs.NewQueryBus()
	cqrs.HandleQuery(qb, func(_ context.Context, q OrderCount) (int, error) { return 1, nil })
	n, err := cqrs.Ask[OrderCount, int](ctx, qb, OrderCount{})
	fmt.Println(n, err)
	// Output:
	// placing order o-1 for 3
	// <nil>
	// <nil>
	// true cqrs: invalid command: command cqrs_test.PlaceOrder: amount 0 is not positive
	// 1 <nil>
}

type OrderCount struct{}

// totals is a projection: the total amount per order, in
// order_totals_v<version>.
type totals struct{ version int }

func (p totals) table() string { return cqrs.Table("order_totals", p.version) }

func (p totals) Setup(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+p.table()+" (order_id TEXT PRIMARY KEY, amount INTEGER NOT NULL)")
	return err
}

func (p totals) Apply(ctx context.Context, tx *sql.Tx, events []eventstore.RecordedEvent) error {
	for _, e := range events {
		placed, err := cqrs.Decode[struct{ Amount int }](e)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, "INSERT INTO "+p.table()+" (order_id, amount) VALUES (?, ?) ON CONFLICT (order_id) DO UPDATE SET amount = amount + excluded.amount", e.StreamID, placed.Amount)
		if err != nil {
			return err
		}
	}
	return nil
}

func (p totals) Drop(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, "DROP TABLE IF EXISTS "+p.table())
	return err
}

func ExampleProjector() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "cqrs-example")
	defer os.RemoveAll(dir)
	store, _ := sqlitestore.Open(ctx, filepath.Join(dir, "events.db"))
	defer store.Close()
	db, _ := sql.Open("sqlite", filepath.Join(dir, "readmodel.db")+"?_pragma=busy_timeout(5000)&_txlock=immediate")
	defer db.Close()

	for i, amount := range []int{3, 4} {
		store.Append(ctx, "order-1", eventstore.Any, eventstore.Event{
			ID: fmt.Sprint("e", i), Type: "order.placed", Data: fmt.Appendf(nil, `{"amount":%d}`, amount),
		})
	}
	p, err := cqrs.NewProjector(db, cqrs.SQLite, store, totals{version: 1}, cqrs.ProjectorOptions{Name: "order_totals"})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	<-p.Activated() // caught up: version 1 serves queries
	cancel()
	<-done

	v, _ := cqrs.Active(context.Background(), db, cqrs.SQLite, "order_totals")
	var amount int
	db.QueryRow("SELECT amount FROM "+cqrs.Table("order_totals", v)+" WHERE order_id = ?", "order-1").Scan(&amount)
	fmt.Println("version", v, "order-1 total", amount)
	// Output: version 1 order-1 total 7
}
