package scenario

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cairnhq/cairn/internal/fault"
	"github.com/cairnhq/cairn/messaging/outbox"
	"github.com/cairnhq/cairn/resilience/circuitbreaker"
	"github.com/cairnhq/cairn/resilience/retry"
	"github.com/cairnhq/cairn/saga"
)

// Telemetry of the shop that the catalog reads and that no library
// package names: the payment service's charges and the load generator's
// requests.
const (
	// PaymentChargesMetric counts the payment service's charges by
	// outcome, [PaymentOutcomeKey].
	PaymentChargesMetric = "cairn.shop.payment.charges"
	// PaymentOutcomeKey is the outcome of a charge; [PaymentRefunded]
	// counts refunds.
	PaymentOutcomeKey = "outcome"
	// PaymentRefunded is the outcome of a charge refunded by a
	// compensation.
	PaymentRefunded = "refunded"

	// LoadRequestsMetric counts the load generator's requests by
	// operation and outcome (see internal/loadgen).
	LoadRequestsMetric = "cairn.loadgen.requests"
	loadOperationKey   = "cairn.loadgen.operation"
	loadOutcomeKey     = "cairn.loadgen.outcome"
	loadPlaceOrder     = "place-order"
)

// Catalog returns the built-in scenarios, in a fixed order. Each call
// returns new values, which the caller may change.
func Catalog() []*Scenario {
	return []*Scenario{
		PaymentOutage(),
		PaymentLatency(),
		InventoryFlaky(),
		ShippingDown(),
		OrchestratorCrash(),
		BrokerOutage(),
	}
}

// Lookup returns the built-in scenario called name, or false.
func Lookup(name string) (*Scenario, bool) {
	for _, s := range Catalog() {
		if s.Name == name {
			return s, true
		}
	}
	return nil, false
}

// WriteList writes the scenarios of catalog for people, as cairn demo
// --list-scenarios prints them: each name and summary, then its
// parameters with their defaults and help. It returns the first write
// error.
func WriteList(w io.Writer, catalog []*Scenario) error {
	bw := bufio.NewWriter(w)
	for i, s := range catalog {
		if i > 0 {
			fmt.Fprintln(bw)
		}
		fmt.Fprintf(bw, "%s (%s at %g rps)\n  %s\n", s.Name, s.Duration, s.RPS, s.Summary)
		for _, p := range s.Params {
			fmt.Fprintf(bw, "  --param %s=%s  (%s) %s\n", p.Name, p.Default, p.Type, p.Help)
		}
	}
	return bw.Flush()
}

// checkFunc is the type of [Assertion.Check].
type checkFunc = func(ctx context.Context, probe Probe, w Window) (Observation, error)

func sagaCounter(metric string) Counter { return Counter{Metric: metric} }

func breakerOpened(policy string) Counter {
	return Counter{Metric: circuitbreaker.TransitionsMetricName, Attrs: map[string]string{
		string(circuitbreaker.PolicyNameKey): policy,
		string(circuitbreaker.ToStateKey):    circuitbreaker.StateOpen.String(),
	}}
}

// anyRetries counts the retries of every retry policy: the shop's
// clients share policies (shop-clients, checkout-step), so the retries a
// fault causes are told apart by when they happen (after the fault's
// event), not by policy.
func anyRetries() Counter {
	return Counter{Metric: retry.AttemptsMetricName}
}

func placed(outcome string) Counter {
	return Counter{Metric: LoadRequestsMetric, Attrs: map[string]string{loadOperationKey: loadPlaceOrder, loadOutcomeKey: outcome}}
}

// grew passes once c increased by at least least(params); describe says
// what the increase means.
func grew(c Counter, least func(Params) float64, describe func(n float64) string) checkFunc {
	return func(ctx context.Context, p Probe, w Window) (Observation, error) {
		n, err := w.Increase(ctx, p, c)
		if err != nil {
			return Observation{}, err
		}
		return Observation{OK: n >= least(w.Params), Text: describe(n)}, nil
	}
}

func atLeastOne(Params) float64 { return 1 }

func paramFloat(name string) func(Params) float64 {
	return func(p Params) float64 { return p.Float(name) }
}

// noSagaUnfinished passes when no checkout saga is running.
func noSagaUnfinished(ctx context.Context, p Probe, _ Window) (Observation, error) {
	c, err := p.Sagas(ctx)
	if err != nil {
		return Observation{}, err
	}
	return Observation{OK: c.Running == 0, Text: fmt.Sprintf("%d unfinished, %d completed, %d compensated, %d failed",
		c.Running, c.Completed, c.Compensated, c.Failed)}, nil
}

// sagaIncreases returns how many sagas started, completed and compensated
// since the window's start.
func sagaIncreases(ctx context.Context, p Probe, w Window) (started, completed, compensated float64, err error) {
	if started, err = w.Increase(ctx, p, sagaCounter(saga.StartedMetricName)); err != nil {
		return
	}
	if completed, err = w.Increase(ctx, p, sagaCounter(saga.CompletedMetricName)); err != nil {
		return
	}
	compensated, err = w.Increase(ctx, p, sagaCounter(saga.CompensatedMetricName))
	return
}

// sagasEnded passes when sagas started during the run and as many ended,
// completed or compensated.
func sagasEnded(ctx context.Context, p Probe, w Window) (Observation, error) {
	started, completed, compensated, err := sagaIncreases(ctx, p, w)
	if err != nil {
		return Observation{}, err
	}
	return Observation{
		OK:   started > 0 && completed+compensated >= started,
		Text: fmt.Sprintf("%g sagas started, %g completed, %g compensated", started, completed, compensated),
	}, nil
}

// edgeErrors passes when at most the fraction param of the orders placed
// during the run failed at the edge (the load generator saw an error).
func edgeErrors(param string) checkFunc {
	return func(ctx context.Context, p Probe, w Window) (Observation, error) {
		failed, err := w.Increase(ctx, p, placed("failure"))
		if err != nil {
			return Observation{}, err
		}
		ok, err := w.Increase(ctx, p, placed("success"))
		if err != nil {
			return Observation{}, err
		}
		limit := w.Params.Float(param)
		total := failed + ok
		if total == 0 {
			return Observation{Text: "no order was placed"}, nil
		}
		ratio := failed / total
		return Observation{
			OK:   ratio <= limit,
			Text: fmt.Sprintf("%g of %g orders failed at the edge (%.1f%%, at most %g%%)", failed, total, 100*ratio, 100*limit),
		}, nil
	}
}

// setFault returns an event action that sets target's settings, built
// from the run's params.
func setFault(target string, settings func(Params) fault.Settings) func(context.Context, Env, Params) error {
	return func(_ context.Context, env Env, p Params) error {
		return env.SetFault(target, settings(p))
	}
}

func clearFault(target string) func(context.Context, Env, Params) error {
	return setFault(target, func(Params) fault.Settings { return fault.Settings{} })
}

func kill(service string) func(context.Context, Env, Params) error {
	return func(_ context.Context, env Env, _ Params) error { return env.Kill(service) }
}

func restart(service string) func(context.Context, Env, Params) error {
	return func(_ context.Context, env Env, _ Params) error { return env.Restart(service) }
}

// times writes n with the singular or the plural of what: "1 saga",
// "3 sagas", "2 retries".
func times(n float64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	if strings.HasSuffix(what, "y") {
		return fmt.Sprintf("%g %sies", n, what[:len(what)-1])
	}
	return fmt.Sprintf("%g %ss", n, what)
}

// PaymentOutage is the scenario payment-outage: the external payment
// provider fails every call (error_rate) from a fifth to three fifths of
// the run. The payment service's breaker around the provider must open
// within open_within; checkouts that cannot be charged compensate
// (release their stock) instead of hanging; the shop keeps accepting
// orders, since the saga runs after the order is taken (at most
// max_edge_errors of them fail at the edge); once the provider recovers,
// sagas complete again within recover_within; at the end no saga is left
// unfinished.
func PaymentOutage() *Scenario {
	const (
		fails    = "payment provider fails"
		recovers = "payment provider recovers"
	)
	return &Scenario{
		Name:     "payment-outage",
		Summary:  "the payment provider fails: the breaker opens, sagas compensate, orders are still taken, and checkouts complete again once it recovers",
		RPS:      20,
		Duration: 45 * time.Second,
		Params: []Param{
			{Name: "error_rate", Type: Rate, Default: "1", Help: "fraction of payment provider calls that fail during the outage"},
			{Name: "open_within", Type: Duration, Default: "10s", Help: "how soon after the outage starts the breaker must open"},
			{Name: "max_edge_errors", Type: Rate, Default: "0.01", Help: "fraction of orders that may fail at the edge"},
			{Name: "recover_within", Type: Duration, Default: "15s", Help: "how soon after the outage sagas must complete again"},
		},
		Timeline: []Event{
			{At: 0.2, Name: fails, Do: setFault(TargetPaymentProvider, func(p Params) fault.Settings {
				return fault.Settings{ErrorRate: p.Float("error_rate")}
			})},
			{At: 0.6, Name: recovers, Do: clearFault(TargetPaymentProvider)},
		},
		Assertions: []Assertion{
			{Name: "breaker payment-provider opens", Kind: Eventually, After: fails, WithinParam: "open_within",
				Check: grew(breakerOpened(TargetPaymentProvider), atLeastOne, func(n float64) string {
					return "breaker payment-provider opened " + times(n, "time")
				})},
			{Name: "sagas compensate", Kind: Eventually, After: fails,
				Check: grew(sagaCounter(saga.CompensatedMetricName), atLeastOne, func(n float64) string {
					return times(n, "saga") + " compensated"
				})},
			{Name: "orders are still taken", Kind: AtEnd, Check: edgeErrors("max_edge_errors")},
			{Name: "sagas complete again", Kind: Eventually, After: recovers, WithinParam: "recover_within",
				Check: grew(sagaCounter(saga.CompletedMetricName), atLeastOne, func(n float64) string {
					return times(n, "saga") + " completed"
				})},
			{Name: "no saga unfinished", Kind: AtEnd, Check: noSagaUnfinished},
		},
	}
}

// PaymentLatency is the scenario payment-latency: the payment provider
// answers every call latency late (longer than the payment client's
// timeout) from a fifth to three fifths of the run. Calls time out and
// are retried (at least min_retries retries of the payment-provider
// within retry_within, counted over every retry policy since the
// slowdown), the timeouts show on traces as errors,
// every saga started during the run still ends, completed or compensated,
// and none is left unfinished.
func PaymentLatency() *Scenario {
	const (
		slows    = "payment provider slows down"
		recovers = "payment provider recovers"
	)
	return &Scenario{
		Name:     "payment-latency",
		Summary:  "the payment provider answers too late: calls time out and are retried, and every saga still ends",
		RPS:      20,
		Duration: 45 * time.Second,
		Params: []Param{
			{Name: "latency", Type: Duration, Default: "2s", Help: "delay added to every payment provider call (above the client's timeout)"},
			{Name: "retry_within", Type: Duration, Default: "15s", Help: "how soon after the slowdown retries must show"},
			{Name: "min_retries", Type: Float, Default: "1", Help: "retries expected after the slowdown"},
		},
		Timeline: []Event{
			{At: 0.2, Name: slows, Do: setFault(TargetPaymentProvider, func(p Params) fault.Settings {
				return fault.Settings{Latency: p.Duration("latency")}
			})},
			{At: 0.6, Name: recovers, Do: clearFault(TargetPaymentProvider)},
		},
		Assertions: []Assertion{
			{Name: "timed-out calls are retried", Kind: Eventually, After: slows, WithinParam: "retry_within",
				Check: grew(anyRetries(), paramFloat("min_retries"), func(n float64) string {
					return times(n, "retry") + " since the slowdown"
				})},
			{Name: "timeouts show on traces", Kind: Eventually, After: slows, WithinParam: "retry_within",
				Check: func(ctx context.Context, p Probe, w Window) (Observation, error) {
					n, err := p.ErrorTraces(ctx, "", w.Start)
					if err != nil {
						return Observation{}, err
					}
					return Observation{OK: n > 0, Text: times(float64(n), "error trace")}, nil
				}},
			{Name: "every saga ends", Kind: AtEnd, Check: sagasEnded},
			{Name: "no saga unfinished", Kind: AtEnd, Check: noSagaUnfinished},
		},
	}
}

// InventoryFlaky is the scenario inventory-flaky: calls to the inventory
// service fail at error_rate for most of the run. Retries absorb the
// failures: retries show within retry_within (counted over every retry
// policy since the failures started, as the shop's clients share one), at
// least min_success of the sagas started during the run complete, and
// none is left unfinished.
func InventoryFlaky() *Scenario {
	const flaky = "inventory turns flaky"
	return &Scenario{
		Name:     "inventory-flaky",
		Summary:  "inventory calls fail now and then: retries absorb the failures and most checkouts complete",
		RPS:      20,
		Duration: 45 * time.Second,
		Params: []Param{
			{Name: "error_rate", Type: Rate, Default: "0.3", Help: "fraction of inventory calls that fail"},
			{Name: "min_success", Type: Rate, Default: "0.9", Help: "fraction of the sagas started that must complete"},
			{Name: "retry_within", Type: Duration, Default: "10s", Help: "how soon after the failures start retries must show"},
		},
		Timeline: []Event{
			{At: 0.1, Name: flaky, Do: setFault(TargetInventory, func(p Params) fault.Settings {
				return fault.Settings{ErrorRate: p.Float("error_rate")}
			})},
			{At: 0.8, Name: "inventory recovers", Do: clearFault(TargetInventory)},
		},
		Assertions: []Assertion{
			{Name: "inventory calls are retried", Kind: Eventually, After: flaky, WithinParam: "retry_within",
				Check: grew(anyRetries(), atLeastOne, func(n float64) string {
					return times(n, "retry") + " since the failures started"
				})},
			{Name: "most sagas complete", Kind: AtEnd,
				Check: func(ctx context.Context, p Probe, w Window) (Observation, error) {
					started, completed, _, err := sagaIncreases(ctx, p, w)
					if err != nil {
						return Observation{}, err
					}
					if started == 0 {
						return Observation{Text: "no saga started"}, nil
					}
					least := w.Params.Float("min_success")
					return Observation{
						OK:   completed >= least*started,
						Text: fmt.Sprintf("%g of %g sagas completed (%.1f%%, at least %g%%)", completed, started, 100*completed/started, 100*least),
					}, nil
				}},
			{Name: "no saga unfinished", Kind: AtEnd, Check: noSagaUnfinished},
		},
	}
}

// ShippingDown is the scenario shipping-down: the shipping service's
// process is killed a quarter of the way through and restarted at three
// fifths. Checkouts that cannot schedule shipping compensate, refunding
// their payments, within compensate_within; after the restart sagas
// complete again within recover_within; none is left unfinished.
func ShippingDown() *Scenario {
	const (
		crashes  = "shipping crashes"
		restarts = "shipping restarts"
	)
	return &Scenario{
		Name:     "shipping-down",
		Summary:  "the shipping service crashes: sagas compensate and refund payments, and complete again once it restarts",
		RPS:      20,
		Duration: 45 * time.Second,
		Params: []Param{
			{Name: "compensate_within", Type: Duration, Default: "20s", Help: "how soon after the crash sagas must compensate and refund"},
			{Name: "recover_within", Type: Duration, Default: "15s", Help: "how soon after the restart sagas must complete again"},
		},
		Timeline: []Event{
			{At: 0.25, Name: crashes, Do: kill(ServiceShipping)},
			{At: 0.6, Name: restarts, Do: restart(ServiceShipping)},
		},
		Assertions: []Assertion{
			{Name: "sagas compensate", Kind: Eventually, After: crashes, WithinParam: "compensate_within",
				Check: grew(sagaCounter(saga.CompensatedMetricName), atLeastOne, func(n float64) string {
					return times(n, "saga") + " compensated"
				})},
			{Name: "payments are refunded", Kind: Eventually, After: crashes, WithinParam: "compensate_within",
				Check: grew(Counter{Metric: PaymentChargesMetric, Attrs: map[string]string{PaymentOutcomeKey: PaymentRefunded}}, atLeastOne,
					func(n float64) string { return times(n, "payment") + " refunded" })},
			{Name: "sagas complete after the restart", Kind: Eventually, After: restarts, WithinParam: "recover_within",
				Check: grew(sagaCounter(saga.CompletedMetricName), atLeastOne, func(n float64) string {
					return times(n, "saga") + " completed"
				})},
			{Name: "no saga unfinished", Kind: AtEnd, Check: noSagaUnfinished},
		},
	}
}

// OrchestratorCrash is the scenario orchestrator-crash: the order
// service, which runs the checkout sagas, is killed mid-saga at three
// tenths of the run and restarted at nine twentieths. The restarted
// orchestrator's recovery runs within recover_within and resumes what the
// crash interrupted; every saga started ends; no order is ever charged
// twice; none is left unfinished.
func OrchestratorCrash() *Scenario {
	const restarts = "order service restarts"
	return &Scenario{
		Name:     "orchestrator-crash",
		Summary:  "the order service crashes mid-saga: on restart recovery resumes every saga, and no order is charged twice",
		RPS:      20,
		Duration: 45 * time.Second,
		Params: []Param{
			{Name: "recover_within", Type: Duration, Default: "15s", Help: "how soon after the restart recovery must run"},
		},
		Timeline: []Event{
			{At: 0.3, Name: "order service crashes", Do: kill(ServiceOrder)},
			{At: 0.45, Name: restarts, Do: restart(ServiceOrder)},
		},
		Assertions: []Assertion{
			{Name: "recovery runs", Kind: Eventually, After: restarts, WithinParam: "recover_within",
				Check: grew(sagaCounter(saga.RecoveryRunsMetricName), atLeastOne, func(n float64) string {
					return times(n, "recovery run")
				})},
			{Name: "no double charge", Kind: Always,
				Check: func(ctx context.Context, p Probe, _ Window) (Observation, error) {
					n, err := p.DoubleCharges(ctx)
					if err != nil {
						return Observation{}, err
					}
					return Observation{OK: n == 0, Text: times(float64(n), "order") + " charged twice"}, nil
				}},
			{Name: "every saga ends", Kind: AtEnd, Check: sagasEnded},
			{Name: "no saga unfinished", Kind: AtEnd, Check: noSagaUnfinished},
		},
	}
}

// BrokerOutage is the scenario broker-outage: the message broker is
// unreachable from a quarter to eleven twentieths of the run. Orders are
// still taken and their events wait in the outbox, whose depth rises to
// min_backlog within backlog_within; once the broker is back the outbox
// drains to drained_depth within drain_within, and to zero by the end;
// no event is lost (every order placed started a saga) and no saga is
// left unfinished.
func BrokerOutage() *Scenario {
	const (
		down = "broker goes down"
		back = "broker comes back"
	)
	depth := func(ctx context.Context, p Probe) (float64, error) {
		return p.GaugeValue(ctx, "", outbox.DepthMetric, nil)
	}
	return &Scenario{
		Name:     "broker-outage",
		Summary:  "the broker goes down: events wait in the outbox, then drain once it is back, and none is lost",
		RPS:      20,
		Duration: 45 * time.Second,
		Params: []Param{
			{Name: "backlog_within", Type: Duration, Default: "10s", Help: "how soon after the outage the outbox must back up"},
			{Name: "min_backlog", Type: Float, Default: "1", Help: "outbox depth that shows the backlog"},
			{Name: "drain_within", Type: Duration, Default: "20s", Help: "how soon after the broker is back the outbox must drain"},
			{Name: "drained_depth", Type: Float, Default: "5", Help: "outbox depth that counts as drained while load runs"},
		},
		Timeline: []Event{
			{At: 0.25, Name: down, Do: func(_ context.Context, env Env, _ Params) error { return env.Broker(false) }},
			{At: 0.55, Name: back, Do: func(_ context.Context, env Env, _ Params) error { return env.Broker(true) }},
		},
		Assertions: []Assertion{
			{Name: "outbox backs up", Kind: Eventually, After: down, WithinParam: "backlog_within",
				Check: func(ctx context.Context, p Probe, w Window) (Observation, error) {
					d, err := depth(ctx, p)
					if err != nil {
						return Observation{}, err
					}
					return Observation{OK: d >= w.Params.Float("min_backlog"), Text: fmt.Sprintf("outbox depth %g", d)}, nil
				}},
			{Name: "outbox drains", Kind: Eventually, After: back, WithinParam: "drain_within",
				Check: func(ctx context.Context, p Probe, w Window) (Observation, error) {
					d, err := depth(ctx, p)
					if err != nil {
						return Observation{}, err
					}
					return Observation{OK: d <= w.Params.Float("drained_depth"), Text: fmt.Sprintf("outbox depth %g", d)}, nil
				}},
			{Name: "outbox empty at the end", Kind: AtEnd,
				Check: func(ctx context.Context, p Probe, _ Window) (Observation, error) {
					d, err := depth(ctx, p)
					if err != nil {
						return Observation{}, err
					}
					return Observation{OK: d == 0, Text: fmt.Sprintf("outbox depth %g", d)}, nil
				}},
			{Name: "no event lost", Kind: AtEnd,
				Check: func(ctx context.Context, p Probe, w Window) (Observation, error) {
					orders, err := w.Increase(ctx, p, placed("success"))
					if err != nil {
						return Observation{}, err
					}
					started, err := w.Increase(ctx, p, sagaCounter(saga.StartedMetricName))
					if err != nil {
						return Observation{}, err
					}
					return Observation{
						OK:   orders > 0 && started >= orders,
						Text: fmt.Sprintf("%g orders placed, %g sagas started", orders, started),
					}, nil
				}},
			{Name: "no saga unfinished", Kind: AtEnd, Check: noSagaUnfinished},
		},
	}
}
