package scenario_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/cairnhq/cairn/internal/fault"
	"github.com/cairnhq/cairn/internal/scenario"
)

// printEnv is an Env that prints what it is asked to do; its shop never
// leaves a saga unfinished.
type printEnv struct{}

func (printEnv) SetFault(target string, s fault.Settings) error {
	fmt.Printf("fault %s: error rate %g\n", target, s.ErrorRate)
	return nil
}
func (printEnv) Kill(service string) error    { fmt.Println("kill", service); return nil }
func (printEnv) Restart(service string) error { fmt.Println("restart", service); return nil }
func (printEnv) Broker(up bool) error         { fmt.Println("broker up:", up); return nil }
func (printEnv) SetLoad(rps float64)          { fmt.Println("load", rps) }
func (printEnv) Probe() scenario.Probe        { return printProbe{} }

type printProbe struct{ scenario.TelemetryProbe }

func (printProbe) Sagas(context.Context) (scenario.SagaCounts, error) {
	return scenario.SagaCounts{Completed: 12}, nil
}
func (printProbe) DoubleCharges(context.Context) (int, error) { return 0, nil }

// Example declares a scenario with a parameterised fault in the middle of
// the run and an assertion on the shop's state at the end, runs it, and
// prints the report as cairn demo --scenario does. The run clears the
// fault it set (here the timeline does it first) and stops the load.
func Example() {
	s := &scenario.Scenario{
		Name:     "short-outage",
		Summary:  "the payment provider fails for a moment",
		RPS:      20,
		Duration: 200 * time.Millisecond,
		Params:   []scenario.Param{{Name: "error_rate", Type: scenario.Rate, Default: "1", Help: "fraction of calls that fail"}},
		Timeline: []scenario.Event{
			{At: 0, Name: "payment provider fails", Do: func(_ context.Context, env scenario.Env, p scenario.Params) error {
				return env.SetFault(scenario.TargetPaymentProvider, fault.Settings{ErrorRate: p.Float("error_rate")})
			}},
			{At: 0.5, Name: "payment provider recovers", Do: func(_ context.Context, env scenario.Env, _ scenario.Params) error {
				return env.SetFault(scenario.TargetPaymentProvider, fault.Settings{})
			}},
		},
		Assertions: []scenario.Assertion{{
			Name: "no saga unfinished", Kind: scenario.AtEnd,
			Check: func(ctx context.Context, p scenario.Probe, _ scenario.Window) (scenario.Observation, error) {
				c, err := p.Sagas(ctx)
				if err != nil {
					return scenario.Observation{}, err
				}
				return scenario.Observation{OK: c.Running == 0, Text: fmt.Sprintf("%d unfinished, %d completed", c.Running, c.Completed)}, nil
			},
		}},
	}
	params, err := s.ParseParams(map[string]string{"error_rate": "0.5"})
	if err != nil {
		log.Fatal(err)
	}
	rep, err := scenario.Run(context.Background(), printEnv{}, s, params, scenario.Options{Drain: -1})
	if err != nil {
		log.Fatal(err)
	}
	if err := rep.WriteText(os.Stdout); err != nil {
		log.Fatal(err)
	}
	fmt.Println("passed:", rep.Passed())
	// Output:
	// load 20
	// fault payment-provider: error rate 0.5
	// fault payment-provider: error rate 0
	// load 0
	// scenario short-outage: 200ms at 20 rps, drain 0s (done)
	// params: error_rate=0.5
	// events:
	//   0s       payment provider fails (fired)
	//   100ms    payment provider recovers (fired)
	// assertions:
	//   PASS  no saga unfinished  at end: 0 unfinished, 12 completed
	// cleanup: stopped the load
	// result: PASS (1 passed, 0 failed, 0 pending)
	// passed: true
}

// ExampleParams shows parameters parsed from what a user typed: defaults
// fill the gaps, and a bad value is named.
func ExampleParams() {
	s, _ := scenario.Lookup("payment-outage")
	p, err := s.ParseParams(map[string]string{"error_rate": "0.5", "open_within": "5s"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(p)
	fmt.Println(p.Float("error_rate"), p.Duration("open_within"))
	_, err = s.ParseParams(map[string]string{"error_rate": "50%"})
	fmt.Println(err)
	// Output:
	// error_rate=0.5 open_within=5s max_edge_errors=0.01 recover_within=15s
	// 0.5 5s
	// scenario: param error_rate = "50%": want a non-negative number
}
