package ratelimit_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/cairnhq/cairn/resilience/ratelimit"
)

func Example() {
	// 10 requests per second with bursts of up to 3.
	limiter, err := ratelimit.New(ratelimit.Config{Name: "api", Rate: 10, Burst: 3})
	if err != nil {
		panic(err)
	}
	now := time.Unix(1_700_000_000, 0) // pass time.Now() in real code, or call Allow
	for i := range 4 {
		d := limiter.AllowN(now, 1)
		fmt.Printf("request %d: allowed=%v remaining=%d retry after %v\n", i, d.Allowed, d.Remaining, d.RetryAfter)
	}
	d := limiter.AllowN(now.Add(100*time.Millisecond), 1)
	fmt.Printf("100ms later: allowed=%v\n", d.Allowed)
	// Output:
	// request 0: allowed=true remaining=2 retry after 0s
	// request 1: allowed=true remaining=1 retry after 0s
	// request 2: allowed=true remaining=0 retry after 0s
	// request 3: allowed=false remaining=0 retry after 100ms
	// 100ms later: allowed=true
}

func ExampleLeakyBucket() {
	// Smooth bursts into one request every 100ms, queueing at most 3.
	limiter, err := ratelimit.NewLeakyBucket(ratelimit.Config{Rate: 10, Burst: 3})
	if err != nil {
		panic(err)
	}
	now := time.Unix(1_700_000_000, 0)
	for i := range 4 {
		d := limiter.AllowN(now, 1)
		fmt.Printf("request %d: allowed=%v delay=%v\n", i, d.Allowed, d.Delay)
	}
	// Output:
	// request 0: allowed=true delay=0s
	// request 1: allowed=true delay=100ms
	// request 2: allowed=true delay=200ms
	// request 3: allowed=false delay=0s
}

func ExampleSlidingWindowCounter() {
	limiter, err := ratelimit.New(ratelimit.Config{Algorithm: "sliding_window_counter", Rate: 10, Window: time.Second})
	if err != nil {
		panic(err)
	}
	start := time.Unix(1_700_000_000, 0) // a window boundary
	limiter.AllowN(start, 10)
	// A quarter into the next window the previous window still weighs 75%.
	d := limiter.AllowN(start.Add(1250*time.Millisecond), 3)
	fmt.Printf("allowed=%v remaining=%d retry after %v\n", d.Allowed, d.Remaining, d.RetryAfter)
	// Output:
	// allowed=false remaining=2 retry after 50ms
}

func ExampleLimitedError() {
	err := error(&ratelimit.LimitedError{Limit: "api", RetryAfter: 2 * time.Second})
	fmt.Println(errors.Is(err, ratelimit.ErrLimited), err)
	// Output:
	// true ratelimit: limited by "api", retry after 2s
}
