package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // driver "sqlite"

	"github.com/cairnhq/cairn/saga"
	"github.com/cairnhq/cairn/saga/sqlite"
)

type transfer struct {
	From, To string
	Amount   int
}

func ExampleNew() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "saga-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "saga.db")+
		"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	store, err := sqlite.New(ctx, db)
	if err != nil {
		fmt.Println(err)
		return
	}

	move := func(what string) func(context.Context, *transfer) error {
		return func(ctx context.Context, t *transfer) error {
			fmt.Println(what, t.Amount)
			return nil
		}
	}
	def := saga.Definition[transfer]{Name: "transfer", Stages: []saga.Stage[transfer]{
		{{Name: "debit", Action: move("debit"), Compensate: move("credit back")}},
		{{Name: "credit", Action: move("credit"), Compensate: move("debit back")}},
	}}
	o, err := saga.New(store, []saga.Definition[transfer]{def})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer o.Close()
	if _, err := o.Start(ctx, "transfer", "t-1", transfer{From: "alice", To: "bob", Amount: 5}); err != nil {
		fmt.Println(err)
		return
	}
	inst, err := o.Wait(ctx, "t-1")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(inst.Status, inst.Steps[0].Status, inst.Steps[1].Status)
	// Output:
	// debit 5
	// credit 5
	// completed succeeded succeeded
}
