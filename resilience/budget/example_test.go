package budget_test

import (
	"fmt"

	"github.com/cairnhq/cairn/resilience/budget"
)

func Example() {
	b, err := budget.New(budget.Config{Name: "inventory", MaxTokens: 10, TokenRatio: 0.1})
	if err != nil {
		panic(err)
	}
	// Five retryable failures leave 5 of 10 tokens: retries stop.
	for range 5 {
		b.OnRequest()
		b.OnFailure()
	}
	fmt.Println(b.Withdraw())
	// Ten successes bring the tokens back to 6: retries resume.
	for range 10 {
		b.OnRequest()
		b.OnSuccess()
	}
	fmt.Println(b.Withdraw())
	// Output:
	// false
	// true
}

func ExampleNewPercent() {
	b, err := budget.NewPercent(budget.Config{Percent: 0.2, MinPerSecond: 1, TTL: budget.DefaultTTL})
	if err != nil {
		panic(err)
	}
	for range 100 {
		b.OnRequest()
	}
	fmt.Println(b.Balance()) // 10 reserve + 20% of 100 requests
	// Output: 30
}
