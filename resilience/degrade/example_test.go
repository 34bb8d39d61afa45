package degrade_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/cairnhq/cairn/resilience/degrade"
)

func Example() {
	// The pressure: requests in flight over a limit of 100 (in a real
	// service, an adaptive.Limiter's InFlight and Limit, or a CPU usage).
	inflight := 0
	sw, err := degrade.New(degrade.Config{
		Name: "shop",
		// The default levels: 1 "optional" at 0.7 (left below 0.6),
		// 2 "expensive" at 0.85 (0.75), 3 "essential" at 0.95 (0.85).
		Features: map[string]int{
			"recommendations": 1,
			"suggestions":     2,
			"audit-log":       3,
		},
		MinDwell: 30 * time.Second,
		Signal:   degrade.Ratio(func() int { return inflight }, func() int { return 100 }),
	})
	if err != nil {
		panic(err)
	}
	// A service runs `go sw.Run(ctx)`; the example evaluates by hand.
	ctx := context.Background()
	start := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	show := func(at time.Duration, n int) {
		inflight = n
		lvl := sw.Update(ctx, start.Add(at))
		fmt.Printf("t=%2.0fs pressure %.2f: level %d %-9s recommendations=%-5v suggestions=%v\n",
			at.Seconds(), sw.Pressure(), lvl, sw.LevelName(lvl), sw.Enabled("recommendations"), sw.Enabled("suggestions"))
	}
	show(0, 50)
	show(10*time.Second, 90) // jumps to level 2
	show(20*time.Second, 65) // below level 2's exit, but within the dwell
	show(40*time.Second, 65) // steps down one level
	show(80*time.Second, 65) // above level 1's exit: stays
	show(90*time.Second, 40) // steps down
	// Output:
	// t= 0s pressure 0.50: level 0 full      recommendations=true  suggestions=true
	// t=10s pressure 0.90: level 2 expensive recommendations=false suggestions=false
	// t=20s pressure 0.65: level 2 expensive recommendations=false suggestions=false
	// t=40s pressure 0.65: level 1 optional  recommendations=false suggestions=true
	// t=80s pressure 0.65: level 1 optional  recommendations=false suggestions=true
	// t=90s pressure 0.40: level 0 full      recommendations=true  suggestions=true
}

// An operator forces a level through the admin endpoint, and hands it
// back to the signal.
func ExampleSwitch_Handler() {
	sw, err := degrade.New(degrade.Config{Name: "shop", Features: map[string]int{"recommendations": 1}})
	if err != nil {
		panic(err)
	}
	h := sw.Handler(nil) // in a service: adminMux.Handle("/degrade", sw.Handler(logger))

	for _, body := range []string{`{"level":3}`, `{"level":7}`, `{"auto":true}`} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPut, "/degrade", strings.NewReader(body)))
		fmt.Println(body, "->", rec.Code, "level", sw.Level(), "forced", sw.Forced(), "recommendations", sw.Enabled("recommendations"))
	}
	// After Auto the level stays where it was forced until the next
	// Update, which moves it by the usual rules.

	// Output:
	// {"level":3} -> 200 level 3 forced true recommendations false
	// {"level":7} -> 400 level 3 forced true recommendations false
	// {"auto":true} -> 200 level 3 forced false recommendations false
}
