package resilienceconfig_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/cairnhq/cairn/resilience"
	"github.com/cairnhq/cairn/resilience/resilienceconfig"
)

func Example() {
	f, err := resilienceconfig.Decode([]byte(`
breakers:
  inventory: {window_size: 20, failure_rate_threshold: 0.5, open_duration: 5s}
bulkheads:
  inventory: {max_concurrent: 32}
retries:
  inventory: {max_attempts: 3, backoff: {initial: 1ms}}
pipelines:
  inventory-client:    # outermost first
    - retry: inventory
    - circuitbreaker: inventory
    - bulkhead: inventory
    - timeout: 2s
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	set, err := resilienceconfig.New(f)
	if err != nil {
		fmt.Println(err)
		return
	}
	p, err := resilienceconfig.Pipeline[string](set, "inventory-client")
	if err != nil {
		fmt.Println(err)
		return
	}
	attempts := 0
	v, err := p.Execute(context.Background(), func(context.Context) (string, error) {
		attempts++
		if attempts < 2 {
			return "", errors.New("connection reset")
		}
		return "42 in stock", nil
	})
	fmt.Println(v, err, "after", attempts, "attempts")
	// Output: 42 in stock <nil> after 2 attempts
}

func ExampleFile_Validate() {
	f, _ := resilienceconfig.Decode([]byte(`
breakers:
  inventory: {failure_rate_threshold: 1.5}
pipelines:
  inventory-client:
    - circuitbreaker: inventry
    - cache: inventory
    - timeout: -1s
  empty: []
`))
	fmt.Println(f.Validate())
	// Output:
	// resilienceconfig: breakers.inventory.failure_rate_threshold = 1.5: must be in (0, 1]
	// resilienceconfig: pipelines.empty: empty pipeline
	// resilienceconfig: pipelines.inventory-client[0]: unknown circuitbreaker "inventry"
	// resilienceconfig: pipelines.inventory-client[1]: unknown stage kind "cache": want one of retry, circuitbreaker, bulkhead, ratelimit, timeout, adaptive, shed, throttle, hedge
	// resilienceconfig: pipelines.inventory-client[2].timeout = -1s: must be positive
}

func ExampleReloader() {
	r, err := resilienceconfig.NewReloader(&resilienceconfig.File{
		Pipelines: map[string][]resilienceconfig.Stage{"fast": {{Kind: "timeout", Timeout: 1e9}}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fallback := resilience.Fallback(func(context.Context, error) (string, error) { return "fallback", nil })
	live, err := resilienceconfig.NewLive[string](r, "fast", fallback)
	if err != nil {
		fmt.Println(err)
		return
	}
	call := func(context.Context) (string, error) { return "", errors.New("down") }

	v, _ := live.Execute(context.Background(), call)
	fmt.Println(v)

	// A bad configuration is rejected and the current one keeps serving.
	err = r.Reload([]byte(`pipelines: {fast: [{timeout: 1s}, {circuitbreaker: nope}]}`))
	fmt.Println(err)

	// A good one takes effect on the next call.
	err = r.Reload([]byte(`
breakers: {db: {minimum_calls: 1, window_size: 1}}
pipelines: {fast: [{timeout: 1s}, {circuitbreaker: db}]}`))
	fmt.Println(err)
	_, _ = live.Execute(context.Background(), call) // opens the breaker
	v, _ = live.Execute(context.Background(), call)
	state, _ := r.Current().Breaker("db")
	fmt.Println(v, state.State())
	// Output:
	// fallback
	// resilienceconfig: pipelines.fast[1]: unknown circuitbreaker "nope"
	// <nil>
	// fallback open
}
