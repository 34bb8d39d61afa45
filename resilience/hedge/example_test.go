package hedge_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/cairnhq/cairn/resilience/hedge"
)

func Example() {
	h, err := hedge.New(hedge.Config{Name: "inventory", Delay: 10 * time.Millisecond}, nil)
	if err != nil {
		panic(err)
	}
	var attempts atomic.Int32
	lost := make(chan error, 1)
	// The first attempt hangs until cancelled; the hedge, sent after 10ms,
	// answers at once. Do runs both attempts concurrently.
	v, err := hedge.Do(context.Background(), h, func(ctx context.Context) (string, error) {
		if attempts.Add(1) == 1 {
			<-ctx.Done()
			lost <- ctx.Err()
			return "", ctx.Err()
		}
		return "from the hedge", nil
	})
	fmt.Println(v, err)
	fmt.Println("loser saw:", <-lost)
	// Output:
	// from the hedge <nil>
	// loser saw: context canceled
}

func ExampleQuantile() {
	q, err := hedge.NewQuantile(0.95, 0)
	if err != nil {
		panic(err)
	}
	for i := 1; i <= 1000; i++ {
		q.Observe(time.Duration(i%100+1) * time.Millisecond) // 1ms to 100ms, evenly
	}
	// The exact p95 is 95ms; the estimate is within a bucket of it.
	fmt.Println(q.Count(), q.Value().Round(time.Millisecond))
	// Output: 1000 96ms
}
