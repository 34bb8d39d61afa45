package barrier_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	_ "modernc.org/sqlite"

	"github.com/cairnhq/cairn/cqrs"
	"github.com/cairnhq/cairn/saga/barrier"
)

// Example shows a participant's step "reserve" of two sagas: the first
// runs its action, receives it again, and compensates it; the second
// receives its compensation first, then its late action, which is
// refused.
func Example() {
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file::memory:")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // one in-memory database
	if _, err := db.ExecContext(ctx, "CREATE TABLE stock (item TEXT PRIMARY KEY, qty INTEGER)"); err != nil {
		fmt.Println(err)
		return
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO stock VALUES ('widget', 10)"); err != nil {
		fmt.Println(err)
		return
	}
	b, err := barrier.New(ctx, db, cqrs.SQLite)
	if err != nil {
		fmt.Println(err)
		return
	}
	move := func(delta int) func(ctx context.Context, tx *sql.Tx) error {
		return func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, "UPDATE stock SET qty = qty + ? WHERE item = 'widget'", delta)
			return err
		}
	}
	qty := func() (n int) {
		_ = db.QueryRowContext(ctx, "SELECT qty FROM stock").Scan(&n)
		return n
	}

	reserve := barrier.Branch{SagaID: "order-1", BranchID: "reserve", Op: barrier.Action}
	release := barrier.Branch{SagaID: "order-1", BranchID: "reserve", Op: barrier.Compensate}
	out, err := b.Do(ctx, reserve, move(-1))
	fmt.Println(out, err, qty())
	out, err = b.Do(ctx, reserve, move(-1)) // a retry
	fmt.Println(out, err, qty())
	out, err = b.Do(ctx, release, move(+1))
	fmt.Println(out, err, qty())

	reserve.SagaID, release.SagaID = "order-2", "order-2"
	out, err = b.Do(ctx, release, move(+1)) // overtook its action
	fmt.Println(out, err, qty())
	out, err = b.Do(ctx, reserve, move(-1))
	fmt.Println(out, errors.Is(err, barrier.ErrHanging), qty())
	// Output:
	// executed <nil> 9
	// duplicate <nil> 9
	// executed <nil> 10
	// null_compensation <nil> 10
	// refused true 10
}
