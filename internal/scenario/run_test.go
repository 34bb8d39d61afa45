package scenario

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cairnhq/cairn/internal/fault"
)

// testScenario has a fault from a quarter to a half of its 8s run and
// the assertions given.
func testScenario(assertions ...Assertion) *Scenario {
	return &Scenario{
		Name:     "test",
		Summary:  "a fault in the middle",
		RPS:      10,
		Duration: 8 * time.Second,
		Params: []Param{
			{Name: "rate", Type: Rate, Default: "0.5", Help: "error rate"},
			{Name: "within", Type: Duration, Default: "3s", Help: "bound"},
		},
		Timeline: []Event{
			{At: 0.5, Name: "fault cleared", Do: clearFault("x")},
			{At: 0.25, Name: "fault set", Do: setFault("x", func(p Params) fault.Settings {
				return fault.Settings{ErrorRate: p.Float("rate")}
			})},
		},
		Assertions: assertions,
	}
}

// secondsOfFault is a counter that grows by one per whole second the
// fault on "x" has been set, from 100 (a baseline from earlier load).
func secondsOfFault() func(e *fakeEnv, metric string, attrs map[string]string, now time.Time) float64 {
	var total float64
	var last time.Time
	return func(e *fakeEnv, _ string, _ map[string]string, now time.Time) float64 {
		if last.IsZero() {
			last = now
		}
		for ; !last.Add(time.Second).After(now); last = last.Add(time.Second) {
			if _, ok := e.faults["x"]; ok {
				total++
			}
		}
		return 100 + total
	}
}

func TestRunTimelineAndCleanup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := newFakeEnv()
		s := testScenario(Assertion{Name: "kill", Kind: AtEnd, Check: func(context.Context, Probe, Window) (Observation, error) {
			return Observation{OK: true, Text: "fine"}, nil
		}})
		s.Timeline = append(s.Timeline, Event{At: 0.75, Name: "crash", Do: kill(ServiceShipping)})
		var updates int
		rep, err := Run(t.Context(), env, s, Params{}, Options{Drain: 2 * time.Second, OnUpdate: func(Report) { updates++ }})
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		want := []call{
			{0, "load 10"},
			{2 * time.Second, "fault x {ErrorRate:0.5 Latency:0s LatencyRate:0}"},
			{4 * time.Second, "fault x {ErrorRate:0 Latency:0s LatencyRate:0}"},
			{6 * time.Second, "kill shipping"},
			{8 * time.Second, "restart shipping"},
			{8 * time.Second, "load 0"},
		}
		if diff := cmp.Diff(want, env.callList()); diff != "" {
			t.Errorf("calls (-want +got):\n%s", diff)
		}
		if rep.Phase != PhaseDone || !rep.Passed() {
			t.Errorf("Phase, Passed = %v, %v; want done, true", rep.Phase, rep.Passed())
		}
		if got, want := rep.Cleanup, []string{"restarted shipping", "stopped the load"}; !cmp.Equal(got, want) {
			t.Errorf("Cleanup = %q, want %q", got, want)
		}
		if got := rep.Assertions[0]; got.State != Passed || got.At != 10*time.Second || got.Observed != "fine" {
			t.Errorf("AtEnd result = %+v; want passed at 10s (duration + drain), observed fine", got)
		}
		if rep.Elapsed != 10*time.Second {
			t.Errorf("Elapsed = %v, want 10s", rep.Elapsed)
		}
		if updates < 10 {
			t.Errorf("OnUpdate called %d times, want at least once a second", updates)
		}
		for _, e := range rep.Events {
			if !e.Fired || e.Error != "" {
				t.Errorf("event %+v: want fired without error", e)
			}
		}
	})
}

func TestRunEventually(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := newFakeEnv()
		env.counter = secondsOfFault()
		grows := func(least float64) checkFunc {
			return grew(Counter{Metric: "c"}, func(Params) float64 { return least }, func(n float64) string { return fmt.Sprintf("grew %g", n) })
		}
		s := testScenario(
			// The fault starts at 2s; the counter grows once a second
			// from then on, so it grows by 2 at 4s.
			Assertion{Name: "grows by 2 after the fault", Kind: Eventually, After: "fault set", WithinParam: "within", Check: grows(2)},
			Assertion{Name: "grows by 10 after the fault", Kind: Eventually, After: "fault set", WithinParam: "within", Check: grows(10)},
			Assertion{Name: "grows by 2 from the start", Kind: Eventually, Within: 3500 * time.Millisecond, Check: grows(2)},
			Assertion{Name: "grows by 2 by the end", Kind: Eventually, Check: grows(2)},
			Assertion{Name: "grows after the fault clears", Kind: Eventually, After: "fault cleared", Check: grows(1)},
		)
		rep, err := Run(t.Context(), env, s, Params{}, Options{Drain: time.Second})
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		want := []Result{
			{Name: "grows by 2 after the fault", Kind: Eventually, After: "fault set", Within: 3 * time.Second,
				State: Passed, Observed: "grew 2", At: 2 * time.Second, Samples: 4},
			// Sampled at 2s (the event), 3s, 3.5s (another deadline), 4s
			// and at its deadline, 5s; the fault lasted 2s.
			{Name: "grows by 10 after the fault", Kind: Eventually, After: "fault set", Within: 3 * time.Second,
				State: Failed, Observed: "grew 2", At: 3 * time.Second, Samples: 5},
			// Sampled at 0s, 1s, 2s, 3s and at its deadline, 3.5s: the
			// counter grew by 1 at 3s.
			{Name: "grows by 2 from the start", Kind: Eventually, Within: 3500 * time.Millisecond,
				State: Failed, Observed: "grew 1", At: 3500 * time.Millisecond, Samples: 5},
			{Name: "grows by 2 by the end", Kind: Eventually, State: Passed, Observed: "grew 2", At: 4 * time.Second, Samples: 6},
			// The counter stops when the fault clears at 4s.
			{Name: "grows after the fault clears", Kind: Eventually, After: "fault cleared",
				State: Failed, Observed: "grew 0", At: 5 * time.Second, Samples: 6},
		}
		if diff := cmp.Diff(want, rep.Assertions); diff != "" {
			t.Errorf("results (-want +got):\n%s", diff)
		}
		if rep.Passed() {
			t.Error("Passed() = true with failed assertions")
		}
	})
}

func TestRunAlways(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := newFakeEnv()
		var start time.Time
		s := testScenario(
			Assertion{Name: "true until 5s", Kind: Always, Check: func(_ context.Context, _ Probe, w Window) (Observation, error) {
				if w.Baseline {
					start = w.Now
				}
				return Observation{OK: w.Now.Sub(start) < 5*time.Second, Text: w.Now.Sub(start).String()}, nil
			}},
			Assertion{Name: "true but unreadable at times", Kind: Always, Check: func(_ context.Context, _ Probe, w Window) (Observation, error) {
				if w.Now.Sub(start) == 3*time.Second {
					return Observation{}, errors.New("console unreachable")
				}
				return Observation{OK: true, Text: "ok"}, nil
			}},
			Assertion{Name: "never readable", Kind: Always, Check: func(context.Context, Probe, Window) (Observation, error) {
				return Observation{}, errors.New("down")
			}},
			Assertion{Name: "true after the fault clears", Kind: Always, After: "fault cleared", Check: func(_ context.Context, _ Probe, w Window) (Observation, error) {
				return Observation{OK: w.Now.Sub(start) >= 4*time.Second, Text: "ok"}, nil
			}},
		)
		rep, err := Run(t.Context(), env, s, Params{}, Options{Drain: -1})
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		got := make([]string, len(rep.Assertions))
		for i, a := range rep.Assertions {
			got[i] = fmt.Sprintf("%s: %s at %v: %s", a.Name, a.State, a.At, a.Observed)
		}
		want := []string{
			"true until 5s: failed at 5s: 5s",
			"true but unreadable at times: passed at 8s: ok",
			"never readable: failed at 8s: never observed: could not observe: down",
			"true after the fault clears: passed at 4s: ok",
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("results (-want +got):\n%s", diff)
		}
	})
}

func TestRunStopsOnCancelAndCleansUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := newFakeEnv()
		s := testScenario(Assertion{Name: "at end", Kind: AtEnd, Check: func(context.Context, Probe, Window) (Observation, error) {
			return Observation{OK: true}, nil
		}})
		s.Timeline = append(s.Timeline,
			Event{At: 0.3, Name: "crash", Do: kill(ServiceShipping)},
			Event{At: 0.3, Name: "broker down", Do: func(_ context.Context, env Env, _ Params) error { return env.Broker(false) }})
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		defer cancel()
		rep, err := Run(ctx, env, s, Params{}, Options{})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Run error = %v, want context.DeadlineExceeded", err)
		}
		if !env.healthy() {
			t.Errorf("after a cancelled run the env is not restored: %+v", env.callList())
		}
		if rep.Phase != PhaseStopped || rep.Passed() {
			t.Errorf("Phase, Passed = %v, %v; want stopped, false", rep.Phase, rep.Passed())
		}
		if rep.Assertions[0].State != Pending {
			t.Errorf("AtEnd state = %v, want pending: a stopped run does not evaluate it", rep.Assertions[0].State)
		}
		want := []string{"cleared fault x", "restarted shipping", "brought the broker up", "stopped the load"}
		if diff := cmp.Diff(want, rep.Cleanup); diff != "" {
			t.Errorf("Cleanup (-want +got):\n%s", diff)
		}
		if last := env.callList(); last[len(last)-1].At != 3*time.Second {
			t.Errorf("cleanup at %v, want at the cancellation, 3s", last[len(last)-1].At)
		}
	})
}

func TestRunAbortsOnFailingEvent(t *testing.T) {
	for _, tc := range []struct {
		name string
		do   func(context.Context, Env, Params) error
		want string
	}{
		{"error", func(context.Context, Env, Params) error { return errors.New("no such target") }, "no such target"},
		{"panic", func(context.Context, Env, Params) error { panic("boom") }, "panic: boom"},
		{"kill fails", kill(ServiceOrder), "cannot kill"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				env := newFakeEnv()
				env.failKill = errors.New("cannot kill")
				s := testScenario()
				s.Timeline[0].At = 0.9 // "fault cleared" must never fire
				s.Timeline = append(s.Timeline, Event{At: 0.4, Name: "bad", Do: tc.do})
				rep, err := Run(t.Context(), env, s, Params{}, Options{})
				if err == nil || !strings.Contains(err.Error(), `event "bad"`) || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("Run error = %v, want one naming the event and %q", err, tc.want)
				}
				if !env.healthy() {
					t.Errorf("after a failed event the env is not restored: %+v", env.callList())
				}
				if rep.Phase != PhaseAborted || rep.Passed() {
					t.Errorf("Phase, Passed = %v, %v; want aborted, false", rep.Phase, rep.Passed())
				}
				fired := map[string]bool{}
				for _, e := range rep.Events {
					fired[e.Name] = e.Fired
				}
				if !fired["fault set"] || !fired["bad"] || fired["fault cleared"] {
					t.Errorf("fired = %v; want fault set and bad only", fired)
				}
				if got := env.callList(); got[len(got)-1].At != 3200*time.Millisecond {
					t.Errorf("cleanup at %v, want at the failure, 3.2s", got[len(got)-1].At)
				}
			})
		})
	}
}

func TestRunRejects(t *testing.T) {
	env := newFakeEnv()
	s := testScenario()
	other := PaymentOutage()
	p, err := other.ParseParams(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Run(t.Context(), env, s, p, Options{}); err == nil || !strings.Contains(err.Error(), "payment-outage") {
		t.Errorf("Run with another scenario's params: error = %v", err)
	}
	bad := testScenario(Assertion{Name: "x", Kind: AtEnd, After: "nothing"})
	if _, err := Run(t.Context(), env, bad, Params{}, Options{}); err == nil || !strings.Contains(err.Error(), `after "nothing": no such event`) {
		t.Errorf("Run with an invalid scenario: error = %v", err)
	}
	if calls := env.callList(); len(calls) != 0 {
		t.Errorf("a rejected run called the env: %v", calls)
	}
}

func TestBaselineMeasuresFromTheEvent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := newFakeEnv()
		var n float64 = 1000 // earlier load left the counter high
		env.counter = func(*fakeEnv, string, map[string]string, time.Time) float64 { n += 5; return n }
		var seen []float64
		s := testScenario(Assertion{Name: "sees increases", Kind: AtEnd, After: "fault set",
			Check: func(ctx context.Context, p Probe, w Window) (Observation, error) {
				v, err := w.Increase(ctx, p, Counter{Metric: "c", Attrs: map[string]string{"k": "v"}})
				if !w.Baseline {
					seen = append(seen, v)
				}
				return Observation{OK: true}, err
			}})
		if _, err := Run(t.Context(), env, s, Params{}, Options{Drain: -1}); err != nil {
			t.Fatal(err)
		}
		// Reads: 1005 baseline at the start, 1010 at "fault set", 1015 at
		// "fault cleared", 1020 at the end.
		if want := []float64{10}; !cmp.Equal(seen, want) {
			t.Errorf("Increase = %v, want %v (from the event's snapshot)", seen, want)
		}
	})
}
