package scenario

import (
	"context"
	"fmt"
	"sync"

	"github.com/cairnhq/cairn/internal/fault"
)

// baselines holds the counter totals increases are measured from, by
// anchor ("" for the run's start, else an event's name) and counter.
type baselines struct {
	mu       sync.Mutex
	counters map[string]Counter            // every counter read, by key
	values   map[string]map[string]float64 // anchor -> counter key -> total
}

func newBaselines() *baselines {
	return &baselines{counters: make(map[string]Counter), values: make(map[string]map[string]float64)}
}

// counterKey is a canonical text form of c.
func counterKey(c Counter) string {
	k := c.Service + "\x00" + c.Metric
	for _, a := range sortedKeys(c.Attrs) {
		k += "\x00" + a + "=" + c.Attrs[a]
	}
	return k
}

// get returns the baseline of c for anchor: the one recorded at the
// anchor, else the one of the run's start, else now, which it records.
func (b *baselines) get(anchor string, c Counter, now float64) float64 {
	k := counterKey(c)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.counters[k] = c
	if v, ok := b.values[anchor][k]; ok {
		return v
	}
	if v, ok := b.values[""][k]; ok && anchor != "" {
		return v
	}
	if b.values[anchor] == nil {
		b.values[anchor] = make(map[string]float64)
	}
	b.values[anchor][k] = now
	return now
}

// snapshot records the current total of every counter read so far as the
// baseline of anchor. A counter it cannot read keeps the start's
// baseline.
func (b *baselines) snapshot(ctx context.Context, p TelemetryProbe, anchor string) {
	b.mu.Lock()
	cs := make(map[string]Counter, len(b.counters))
	for k, c := range b.counters {
		cs[k] = c
	}
	b.mu.Unlock()
	vals := make(map[string]float64, len(cs))
	for k, c := range cs {
		cctx, cancel := context.WithTimeout(ctx, checkTimeout)
		v, err := p.CounterTotal(cctx, c.Service, c.Metric, c.Attrs)
		cancel()
		if err == nil {
			vals[k] = v
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.values[anchor] = vals
}

// trackingEnv is the Env events see: it passes every call on and
// remembers what must be undone when the run ends. It is used from the
// run's goroutine only.
type trackingEnv struct {
	Env
	dirty      map[string]bool // fault targets that may inject something
	killed     map[string]bool // services that may be down
	brokerDown bool
}

func newTrackingEnv(env Env) *trackingEnv {
	return &trackingEnv{Env: env, dirty: make(map[string]bool), killed: make(map[string]bool)}
}

// SetFault remembers target as dirty unless s is zero and was applied.
func (e *trackingEnv) SetFault(target string, s fault.Settings) error {
	err := e.Env.SetFault(target, s)
	e.dirty[target] = s != (fault.Settings{}) || err != nil
	return err
}

// Kill remembers service as possibly down, whatever Kill returns.
func (e *trackingEnv) Kill(service string) error {
	e.killed[service] = true
	return e.Env.Kill(service)
}

// Restart forgets service once it restarted.
func (e *trackingEnv) Restart(service string) error {
	err := e.Env.Restart(service)
	if err == nil {
		delete(e.killed, service)
	}
	return err
}

// Broker remembers the broker as possibly down until it is brought up.
func (e *trackingEnv) Broker(up bool) error {
	if !up {
		e.brokerDown = true
	}
	err := e.Env.Broker(up)
	if up && err == nil {
		e.brokerDown = false
	}
	return err
}

// cleanup clears every dirty fault, restarts every killed service, brings
// the broker up and stops the load. It returns what it did and what
// failed.
func (e *trackingEnv) cleanup() (done []string, errs []error) {
	for _, t := range sortedKeys(e.dirty) {
		if !e.dirty[t] {
			continue
		}
		if err := e.SetFault(t, fault.Settings{}); err != nil {
			errs = append(errs, fmt.Errorf("cleanup: clear fault %s: %w", t, err))
			continue
		}
		done = append(done, "cleared fault "+t)
	}
	for _, s := range sortedKeys(e.killed) {
		if err := e.Restart(s); err != nil {
			errs = append(errs, fmt.Errorf("cleanup: restart %s: %w", s, err))
			continue
		}
		done = append(done, "restarted "+s)
	}
	if e.brokerDown {
		if err := e.Broker(true); err != nil {
			errs = append(errs, fmt.Errorf("cleanup: broker up: %w", err))
		} else {
			done = append(done, "brought the broker up")
		}
	}
	e.SetLoad(0)
	done = append(done, "stopped the load")
	return done, errs
}
