package circuitbreaker_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cairnhq/cairn/resilience/circuitbreaker"
)

func Example() {
	b, err := circuitbreaker.New(circuitbreaker.Config{
		Name:         "inventory",
		MinimumCalls: 3,
		OpenDuration: 10 * time.Second,
		OnStateChange: func(from, to circuitbreaker.State) {
			fmt.Printf("%s -> %s\n", from, to)
		},
	})
	if err != nil {
		panic(err)
	}
	unavailable := errors.New("inventory unavailable")
	for range 3 {
		_ = b.Execute(context.Background(), func(context.Context) error { return unavailable })
	}
	err = b.Execute(context.Background(), func(context.Context) error { return nil })
	fmt.Println(errors.Is(err, circuitbreaker.ErrOpen))
	var oe *circuitbreaker.OpenError
	if errors.As(err, &oe) {
		fmt.Println(oe.State, oe.RetryAfter > 9*time.Second)
	}
	// Output:
	// closed -> open
	// true
	// open true
}

func ExampleBreaker_Allow() {
	b, _ := circuitbreaker.New(circuitbreaker.Config{Name: "db"})
	p, err := b.Allow()
	if err != nil {
		fmt.Println("rejected:", err)
		return
	}
	p.Done(nil) // report the outcome exactly once
	fmt.Println(b.Metrics().Calls)
	// Output: 1
}
