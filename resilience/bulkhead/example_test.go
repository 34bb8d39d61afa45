package bulkhead_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cairnhq/cairn/resilience/bulkhead"
)

func Example() {
	b, err := bulkhead.New(bulkhead.Config{
		Name:          "inventory",
		MaxConcurrent: 2,
		MaxQueue:      1,
		MaxWait:       10 * time.Millisecond,
	})
	if err != nil {
		panic(err)
	}
	// Two calls hold both slots.
	p1, _ := b.Acquire(context.Background())
	p2, _ := b.Acquire(context.Background())
	fmt.Println("in flight:", b.InFlight())

	// A third call queues, and gives up after MaxWait.
	err = b.Execute(context.Background(), func(context.Context) error { return nil })
	fmt.Println(errors.Is(err, bulkhead.ErrFull))
	var re *bulkhead.RejectedError
	if errors.As(err, &re) {
		fmt.Println(re.Reason)
	}

	p1.Release()
	p2.Release()
	err = b.Execute(context.Background(), func(context.Context) error {
		fmt.Println("called; in flight:", b.InFlight())
		return nil
	})
	fmt.Println(err, b.InFlight())
	// Output:
	// in flight: 2
	// true
	// max wait
	// called; in flight: 1
	// <nil> 0
}

func ExampleBulkhead_TryAcquire() {
	b, _ := bulkhead.New(bulkhead.Config{Name: "db", MaxConcurrent: 1})
	p, ok := b.TryAcquire()
	fmt.Println(ok)
	_, ok = b.TryAcquire()
	fmt.Println(ok)
	p.Release() // return the slot exactly once
	fmt.Println(b.InFlight())
	// Output:
	// true
	// false
	// 0
}
