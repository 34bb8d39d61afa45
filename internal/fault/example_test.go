package fault_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/cairnhq/cairn/internal/fault"
)

func ExampleInjector() {
	db := fault.New("db")
	query := func(ctx context.Context) error {
		if err := db.Inject(ctx); err != nil {
			return err
		}
		return nil // the real query
	}
	fmt.Println(query(context.Background()))

	_ = db.Set(fault.Settings{ErrorRate: 1})
	err := query(context.Background())
	fmt.Println(err, errors.Is(err, fault.ErrInjected))
	// Output:
	// <nil>
	// fault: injected failure in db true
}
