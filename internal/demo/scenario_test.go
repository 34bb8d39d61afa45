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
// scenarios run in the race run only, since they take minutes.
func TestScenarios(t *testing.T) {
	if !raceEnabled {
		t.Skip("the fault scenarios run in the -race run of the tests only (they take minutes)")
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
				if _, err := d.Wait(context.Background()); err != nil {
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
