package deadline_test

import (
	"context"
	"fmt"
	"time"

	"github.com/cairnhq/cairn/resilience/internal/deadline"
)

// A timeout stage makes a Context per call and cancels it when the call
// returns, as it would with context.WithTimeout.
func Example() {
	call := func(ctx context.Context) error {
		// A callee that only polls Err costs no timer.
		return ctx.Err()
	}
	c := deadline.New(context.Background(), time.Second)
	err := call(c)
	c.Cancel()
	fmt.Println(err, c.Err())
	// Output: <nil> context canceled
}
