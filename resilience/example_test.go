package resilience_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/cairnhq/cairn/resilience"
	"github.com/cairnhq/cairn/resilience/circuitbreaker"
	"github.com/cairnhq/cairn/resilience/retry"
)

// A price lookup retried, behind a circuit breaker, with a cached price as
// the last resort.
func ExampleNew() {
	breaker, err := circuitbreaker.New(circuitbreaker.Config{Name: "prices"})
	if err != nil {
		fmt.Println(err)
		return
	}
	prices, err := resilience.New[int](
		resilience.Fallback(func(_ context.Context, err error) (int, error) {
			fmt.Println("falling back after:", err)
			return 1299, nil // the last known price
		}),
		resilience.Retry(retry.Policy{MaxAttempts: 2, Backoff: retry.Backoff{Kind: retry.KindConstant}}),
		resilience.CircuitBreaker(breaker),
	)
	if err != nil {
		fmt.Println(err)
		return
	}

	attempts := 0
	price, err := prices.Execute(context.Background(), func(context.Context) (int, error) {
		attempts++
		return 0, errors.New("price service unavailable")
	})
	fmt.Println(price, err, "after", attempts, "attempts")
	// Output:
	// falling back after: retry "retry": gave up after 2 attempts (max_attempts): price service unavailable
	// 1299 <nil> after 2 attempts
}
