package scenario

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cairnhq/cairn/internal/fault"
	"github.com/cairnhq/cairn/messaging/outbox"
	"github.com/cairnhq/cairn/resilience/circuitbreaker"
	"github.com/cairnhq/cairn/resilience/retry"
	"github.com/cairnhq/cairn/saga"
)

// call is one call a fakeEnv received, at an offset from the fake's
// creation (exact under synctest).
type call struct {
	At   time.Duration
	What string
}

// fakeEnv records the calls and keeps the state a real shop would. Its
// probe reads counters from a function of that state, set by the test.
type fakeEnv struct {
	mu      sync.Mutex
	created time.Time
	calls   []call
	faults  map[string]fault.Settings
	killed  map[string]bool
	down    bool
	load    float64

	failKill error // returned by Kill
	counter  func(e *fakeEnv, metric string, attrs map[string]string, now time.Time) float64
	gauge    func(e *fakeEnv, metric string, now time.Time) float64
	sagas    SagaCounts
	doubles  int
}

func newFakeEnv() *fakeEnv {
	return &fakeEnv{created: time.Now(), faults: make(map[string]fault.Settings), killed: make(map[string]bool)}
}

func (e *fakeEnv) record(format string, args ...any) {
	e.calls = append(e.calls, call{time.Since(e.created), fmt.Sprintf(format, args...)})
}

func (e *fakeEnv) SetFault(target string, s fault.Settings) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.record("fault %s %+v", target, s)
	if s == (fault.Settings{}) {
		delete(e.faults, target)
	} else {
		e.faults[target] = s
	}
	return nil
}

func (e *fakeEnv) Kill(service string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.record("kill %s", service)
	e.killed[service] = true
	return e.failKill
}

func (e *fakeEnv) Restart(service string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.record("restart %s", service)
	delete(e.killed, service)
	return nil
}

func (e *fakeEnv) Broker(up bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.record("broker up=%v", up)
	e.down = !up
	return nil
}

func (e *fakeEnv) SetLoad(rps float64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.record("load %g", rps)
	e.load = rps
}

func (e *fakeEnv) Probe() Probe { return fakeProbe{e} }

// healthy reports whether the env is back to normal: no fault, nothing
// killed, the broker up, no load.
func (e *fakeEnv) healthy() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.faults) == 0 && len(e.killed) == 0 && !e.down && e.load == 0
}

func (e *fakeEnv) callList() []call {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]call(nil), e.calls...)
}

type fakeProbe struct{ e *fakeEnv }

func (p fakeProbe) CounterTotal(_ context.Context, _, metric string, attrs map[string]string) (float64, error) {
	p.e.mu.Lock()
	defer p.e.mu.Unlock()
	if p.e.counter == nil {
		return 0, nil
	}
	return p.e.counter(p.e, metric, attrs, time.Now()), nil
}

func (p fakeProbe) GaugeValue(_ context.Context, _, metric string, _ map[string]string) (float64, error) {
	p.e.mu.Lock()
	defer p.e.mu.Unlock()
	if p.e.gauge == nil {
		return 0, nil
	}
	return p.e.gauge(p.e, metric, time.Now()), nil
}

func (p fakeProbe) Logs(context.Context, LogQuery) (int, error) { return 0, nil }

func (p fakeProbe) ErrorTraces(context.Context, string, time.Time) (int, error) {
	p.e.mu.Lock()
	defer p.e.mu.Unlock()
	return len(p.e.faults), nil
}

func (p fakeProbe) Sagas(context.Context) (SagaCounts, error) {
	p.e.mu.Lock()
	defer p.e.mu.Unlock()
	return p.e.sagas, nil
}

func (p fakeProbe) DoubleCharges(context.Context) (int, error) {
	p.e.mu.Lock()
	defer p.e.mu.Unlock()
	if p.e.killed[ServicePayment] {
		return 0, errors.New("payment database unreachable")
	}
	return p.e.doubles, nil
}

// shop is a fake shop that models, second by second, what the real one
// does under the catalog's faults, as counters: it places rps orders a
// second; each starts a saga that completes, or compensates (refunding)
// while the payment provider fails, is too slow or shipping is down;
// retries and breaker openings follow the faults; the outbox backs up
// while the broker is down. withBreaker false leaves the breaker closed,
// as a shop without one would.
type shop struct {
	withBreaker bool
	loseBacklog bool // drop the outbox's backlog when the broker returns

	last                                    time.Time
	faultSince                              map[string]time.Duration
	placed, started, completed, compensated float64
	refunded, opened, retried, recoveries   float64
	depth                                   float64
	wasKilled                               bool
}

func newShop(e *fakeEnv, withBreaker bool) *shop {
	s := &shop{withBreaker: withBreaker, last: time.Now(), faultSince: make(map[string]time.Duration)}
	e.counter = func(e *fakeEnv, metric string, attrs map[string]string, now time.Time) float64 {
		s.advance(e, now)
		return s.counter(metric, attrs)
	}
	e.gauge = func(e *fakeEnv, metric string, now time.Time) float64 {
		s.advance(e, now)
		if metric == outbox.DepthMetric {
			return s.depth
		}
		return 0
	}
	return s
}

// advance plays the whole seconds since the last call; e.mu is held.
func (s *shop) advance(e *fakeEnv, now time.Time) {
	for !s.last.Add(time.Second).After(now) {
		s.last = s.last.Add(time.Second)
		n := e.load
		for t := range e.faults {
			s.faultSince[t] += time.Second
		}
		for t := range s.faultSince {
			if _, ok := e.faults[t]; !ok {
				delete(s.faultSince, t)
			}
		}
		if e.killed[ServiceOrder] {
			s.wasKilled = true
			continue
		}
		if s.wasKilled {
			s.wasKilled = false
			s.recoveries++
		}
		s.placed += n
		if e.down {
			s.depth += n
			continue
		}
		if !s.loseBacklog {
			s.started += s.depth // the backlog reaches the saga
			s.completed += s.depth
		}
		s.started += n
		s.depth = 0
		_, payFails := e.faults[TargetPaymentProvider]
		switch {
		case payFails || e.killed[ServiceShipping]:
			s.compensated += n
			if e.killed[ServiceShipping] {
				s.refunded += n
			}
		default:
			s.completed += n
		}
		if payFails {
			s.retried += n
			if s.withBreaker && s.faultSince[TargetPaymentProvider] == 2*time.Second {
				s.opened++
			}
		}
		if f, ok := e.faults[TargetInventory]; ok {
			s.retried += n * f.ErrorRate
		}
	}
}

func (s *shop) counter(metric string, attrs map[string]string) float64 {
	switch metric {
	case LoadRequestsMetric:
		if attrs[loadOutcomeKey] == "success" {
			return s.placed
		}
		return 0
	case saga.StartedMetricName:
		return s.started
	case saga.CompletedMetricName:
		return s.completed
	case saga.CompensatedMetricName:
		return s.compensated
	case saga.RecoveryRunsMetricName:
		return s.recoveries
	case PaymentChargesMetric:
		return s.refunded
	case circuitbreaker.TransitionsMetricName:
		return s.opened
	case retry.AttemptsMetricName:
		return s.retried
	}
	return 0
}

// state returns, under the lock, the faults, the killed services and the
// load.
func (e *fakeEnv) state() (faults map[string]fault.Settings, killed map[string]bool, load float64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	faults, killed = make(map[string]fault.Settings), make(map[string]bool)
	for k, v := range e.faults {
		faults[k] = v
	}
	for k, v := range e.killed {
		killed[k] = v
	}
	return faults, killed, e.load
}
