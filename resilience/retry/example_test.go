package retry_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/cairnhq/cairn/resilience/retry"
)

func ExampleBackoff_Delay() {
	b := retry.Backoff{Kind: retry.KindExponential, Initial: 100 * time.Millisecond, Max: time.Second}
	for n := 1; n <= 6; n++ {
		fmt.Println(b.Delay(n, 0, nil))
	}
	// Output:
	// 100ms
	// 200ms
	// 400ms
	// 800ms
	// 1s
	// 1s
}

func ExampleBackoff_Delay_jitter() {
	b := retry.Backoff{Initial: 100 * time.Millisecond, Jitter: retry.JitterEqual}
	half := func() float64 { return 0.5 } // a real caller passes nil or a seeded source
	fmt.Println(b.Delay(3, 0, half))
	// Output: 300ms
}

func ExampleRetryAfter() {
	h := http.Header{"Retry-After": {"Wed, 21 Oct 2015 07:28:30 GMT"}}
	now := time.Date(2015, time.October, 21, 7, 28, 0, 0, time.UTC)
	fmt.Println(retry.RetryAfter(h, now))
	// Output: 30s true
}

func ExamplePushback() {
	fmt.Println(retry.Pushback([]string{"250"}))
	fmt.Println(retry.Pushback([]string{"-1"}))
	fmt.Println(retry.Pushback(nil))
	// Output:
	// 250ms true true
	// 0s false true
	// 0s true false
}

func ExampleDo() {
	attempts := 0
	err := retry.Do(context.Background(), retry.Policy{
		MaxAttempts: 4,
		Backoff:     retry.Backoff{Initial: time.Millisecond, Jitter: retry.JitterFull},
	}, func(context.Context) error {
		attempts++
		if attempts < 3 {
			return errors.New("unavailable")
		}
		return nil
	})
	fmt.Println(attempts, err)
	// Output: 3 <nil>
}
