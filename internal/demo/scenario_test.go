package demo

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/scenario"
)

// TestScenarios runs every fault scenario of the catalog against a demo
// on free ports, shortened, and fails on any assertion that fails: the
// faults are real (the provider fails, services are killed, the broker
// stops) and the assertions read the telemetry the console received.
//
// CI runs the tests twice, with and without the race detector; the
// scenarios run in the run without it. They take minutes, and under the
// race detector, which slows the code five to tenfold, the whole shop in
// one process on two cores cannot take the scenarios' load: sagas queue
// and the assertions fail for want of CPU, not of resilience.
func TestScenarios(t *testing.T) {
	if raceEnabled {
		t.Skip("the fault scenarios run in the tests without -race (the race detector's slowdown leaves the shop without the CPU for their load)")
	}
	if testing.Short() {
		t.Skip("the fault scenarios take minutes; not with -short")
	}
	for _, sc := range scenario.Catalog() {
		t.Run(sc.Name, func(t *testing.T) {
			var out bytes.Buffer
			cfg := loopbackConfig(&out)
			cfg.RPS = 0
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			d, err := Start(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				cancel()
				// Wait returns when its context is done: this one is.
				if _, err := d.Wait(ctx); err != nil {
					t.Errorf("Wait = %v", err)
				}
			}()
			rep, err := scenario.Run(ctx, d, sc, scenario.Params{}, scenario.Options{
				Duration: 20 * time.Second,
				Drain:    15 * time.Second,
			})
			var text bytes.Buffer
			_ = rep.WriteText(&text)
			t.Logf("\n%s", text.String())
			if err != nil {
				t.Fatalf("Run = %v", err)
			}
			if !rep.Passed() {
				t.Errorf("scenario %s failed:\n%s", sc.Name, text.String())
			}
		})
	}
}
