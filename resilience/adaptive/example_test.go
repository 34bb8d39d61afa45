package adaptive_test

import (
	"fmt"
	"time"

	"github.com/cairnhq/cairn/resilience/adaptive"
)

func Example() {
	l, err := adaptive.New(adaptive.Config{
		Name:         "inventory",
		Algorithm:    adaptive.AlgorithmAIMD,
		InitialLimit: 2,
		MaxLimit:     10,
	})
	if err != nil {
		panic(err)
	}
	p1, _ := l.Acquire()
	p2, _ := l.Acquire()
	_, ok := l.Acquire()
	fmt.Println("third admitted:", ok, "in flight:", l.InFlight())

	p1.Dropped() // overload: the limit backs off
	fmt.Println("limit after a drop:", l.Limit())
	p2.Done(nil) // a fast success while busy: the limit grows by one
	fmt.Println("limit after a success:", l.Limit(), "in flight:", l.InFlight())

	// Callers that need an error turn a rejection into ErrLimitExceeded.
	call := func() error {
		p, ok := l.Acquire()
		if !ok {
			return adaptive.ErrLimitExceeded
		}
		p.Done(nil)
		return nil
	}
	fmt.Println(call())
	// Output:
	// third admitted: false in flight: 2
	// limit after a drop: 1
	// limit after a success: 2 in flight: 0
	// <nil>
}

func ExampleVegas() {
	v := &adaptive.Vegas{Initial: 10}
	for _, ms := range []int{10, 10, 10, 40} {
		rtt := adaptive.Sample{RTT: durationMS(ms), InFlight: 10}
		fmt.Println(v.Update(rtt))
	}
	// Output:
	// 10
	// 11
	// 12
	// 11
}

func ExampleThrottle() {
	th, _ := adaptive.NewThrottle(adaptive.ThrottleConfig{
		K:    2,
		Rand: func() float64 { return 0.5 }, // deterministic for the example
	})
	// The backend accepted 20 of the last 100 requests.
	for i := range 100 {
		th.Record(i < 20)
	}
	fmt.Printf("reject probability: %.3f\n", th.RejectProbability())
	fmt.Println("allowed:", th.Allow())
	// Output:
	// reject probability: 0.594
	// allowed: false
}

func durationMS(n int) time.Duration { return time.Duration(n) * time.Millisecond }
