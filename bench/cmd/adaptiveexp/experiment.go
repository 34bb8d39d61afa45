package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/cairnhq/cairn/resilience/adaptive"
)

// config holds the experiment's parameters, one flag each.
type config struct {
	Workers         int
	Service         time.Duration
	Jitter          float64
	Low, High       float64
	LowFor, HighFor time.Duration
	AfterFor        time.Duration
	SLO, Timeout    time.Duration
	FixedLimit      int
	AIMDTimeout     time.Duration
	Seed            uint64
	Trace           bool
}

func defaultConfig() config {
	return config{
		Workers:  10,
		Service:  20 * time.Millisecond,
		Jitter:   0.1,
		Low:      0.5,
		High:     2.0,
		LowFor:   4 * time.Second,
		HighFor:  10 * time.Second,
		AfterFor: 4 * time.Second,
		SLO:      100 * time.Millisecond,
		Timeout:  time.Second,
		Seed:     1,
	}
}

func (c config) validate() error {
	switch {
	case c.Workers <= 0:
		return fmt.Errorf("-workers %d: must be positive", c.Workers)
	case c.Service <= 0:
		return fmt.Errorf("-service %v: must be positive", c.Service)
	case c.Jitter < 0 || c.Jitter >= 1:
		return fmt.Errorf("-jitter %v: must be in [0, 1)", c.Jitter)
	case c.Low <= 0 || c.High <= 0:
		return fmt.Errorf("-low %v, -high %v: must be positive", c.Low, c.High)
	case c.LowFor < 0 || c.HighFor <= 0 || c.AfterFor < 0:
		return fmt.Errorf("-low-for %v, -high-for %v, -after-for %v: want the step positive, the others not negative", c.LowFor, c.HighFor, c.AfterFor)
	case c.SLO <= 0 || c.Timeout < c.SLO:
		return fmt.Errorf("-slo %v, -timeout %v: want 0 < slo <= timeout", c.SLO, c.Timeout)
	case c.FixedLimit < 0 || c.AIMDTimeout < 0:
		return fmt.Errorf("-fixed-limit %d, -aimd-timeout %v: must not be negative", c.FixedLimit, c.AIMDTimeout)
	}
	return nil
}

// capacity returns the requests per second the server completes at most.
func (c config) capacity() float64 { return float64(c.Workers) / c.Service.Seconds() }

// server is the modelled dependency: Workers goroutines serve a FIFO queue.
type server struct {
	queue chan chan struct{} // each job is closed when served
	stop  chan struct{}
	wg    sync.WaitGroup
}

func startServer(cfg config, mode int) *server {
	s := &server{queue: make(chan chan struct{}, 1<<20), stop: make(chan struct{})}
	for w := range cfg.Workers {
		rng := rand.New(rand.NewPCG(cfg.Seed, uint64(mode*1000+w)))
		s.wg.Go(func() {
			t := time.NewTimer(time.Hour)
			defer t.Stop()
			for {
				select {
				case <-s.stop:
					return
				case job := <-s.queue:
					d := float64(cfg.Service) * (1 + cfg.Jitter*(2*rng.Float64()-1))
					t.Reset(time.Duration(d))
					select {
					case <-t.C:
						close(job)
					case <-s.stop:
						return
					}
				}
			}
		})
	}
	return s
}

// close stops the workers and drops the requests still queued.
func (s *server) close() {
	close(s.stop)
	s.wg.Wait()
}

// fixedLimit is an Algorithm whose limit never moves.
type fixedLimit int

func (f fixedLimit) Update(adaptive.Sample) int { return int(f) }
func (f fixedLimit) Limit() int                 { return int(f) }

// mode is one run of the load: a limiter, or none.
type mode struct {
	name    string
	limiter *adaptive.Limiter
}

// call is what one call measured.
type call struct {
	phase    int
	at       time.Duration // scheduled send time, from the start of the run
	rejected bool
	ok       bool // answered before Timeout
	latency  time.Duration
}

// limitSample is the limit at a moment of the run.
type limitSample struct {
	at    time.Duration
	limit int
}

// result is what one mode measured.
type result struct {
	name      string
	offered   int
	goodput   [4]float64 // per second: phases 0-2, then overall
	p50, p99  time.Duration
	rejected  [4]float64 // fractions of offered: phases 0-2, then overall
	timedOut  float64    // fraction of offered
	meanLimit float64
	stepLimit [2]int // lowest and highest limit sampled during the step
	final     int
	limited   bool
	trace     []second
}

// second is one second of the run, for -trace.
type second struct {
	offered, good, rejected, timedOut int
	limitSum, limitN                  int
	limitMin, limitMax                int
}

var phaseNames = [3]string{"before", "step", "after"}

func run(ctx context.Context, cfg config, w io.Writer) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	fixed := cfg.FixedLimit
	if fixed == 0 {
		fixed = 2 * cfg.Workers
	}
	aimdTimeout := cfg.AIMDTimeout
	if aimdTimeout == 0 {
		aimdTimeout = cfg.SLO
	}
	fmt.Fprintf(w, "adaptiveexp: %s, GOOS/GOARCH %s/%s, GOMAXPROCS %d, NumCPU %d\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), runtime.NumCPU())
	fmt.Fprintf(w, "server: %d workers, service %v ± %.0f%%, FIFO queue, capacity %.0f rps; seed %d\n",
		cfg.Workers, cfg.Service, cfg.Jitter*100, cfg.capacity(), cfg.Seed)
	fmt.Fprintf(w, "load: %.0f rps for %v, %.0f rps for %v, %.0f rps for %v; SLO %v, caller timeout %v\n",
		cfg.Low*cfg.capacity(), cfg.LowFor, cfg.High*cfg.capacity(), cfg.HighFor, cfg.Low*cfg.capacity(), cfg.AfterFor, cfg.SLO, cfg.Timeout)
	fmt.Fprintf(w, "limiters: fixed %d; aimd Timeout %v; otherwise adaptive.Config defaults (InitialLimit %d, MinLimit %d, MaxLimit %d)\n\n",
		fixed, aimdTimeout, adaptive.DefaultInitialLimit, adaptive.DefaultMinLimit, adaptive.DefaultMaxLimit)

	modes := []func() (mode, error){
		func() (mode, error) { return mode{name: "none"}, nil },
		func() (mode, error) {
			l, err := adaptive.NewWithAlgorithm(adaptive.Config{Name: "fixed"}, fixedLimit(fixed))
			return mode{name: fmt.Sprintf("fixed %d", fixed), limiter: l}, err
		},
		func() (mode, error) {
			l, err := adaptive.New(adaptive.Config{Name: "aimd", Algorithm: adaptive.AlgorithmAIMD, Timeout: aimdTimeout})
			return mode{name: "aimd", limiter: l}, err
		},
		func() (mode, error) {
			l, err := adaptive.New(adaptive.Config{Name: "vegas", Algorithm: adaptive.AlgorithmVegas})
			return mode{name: "vegas", limiter: l}, err
		},
		func() (mode, error) {
			l, err := adaptive.New(adaptive.Config{Name: "gradient2", Algorithm: adaptive.AlgorithmGradient2})
			return mode{name: "gradient2", limiter: l}, err
		},
	}
	var results []result
	for i, newMode := range modes {
		m, err := newMode()
		if err != nil {
			return err
		}
		r, err := drive(ctx, cfg, i, m)
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	writeTable(w, results)
	if cfg.Trace {
		writeTrace(w, results)
	}
	return nil
}

// drive runs the load step against a fresh server through m's limiter.
func drive(ctx context.Context, cfg config, modeIndex int, m mode) (result, error) {
	srv := startServer(cfg, modeIndex)
	defer srv.close()

	type phase struct {
		rate float64
		dur  time.Duration
	}
	phases := [3]phase{{cfg.Low * cfg.capacity(), cfg.LowFor}, {cfg.High * cfg.capacity(), cfg.HighFor}, {cfg.Low * cfg.capacity(), cfg.AfterFor}}
	start := time.Now()

	// Sample the limit every 10ms while the load runs.
	var limits []limitSample
	samplerDone := make(chan struct{})
	stopSampler := make(chan struct{})
	if m.limiter != nil {
		go func() {
			defer close(samplerDone)
			t := time.NewTicker(10 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case now := <-t.C:
					limits = append(limits, limitSample{now.Sub(start), m.limiter.Limit()})
				case <-stopSampler:
					return
				}
			}
		}()
	} else {
		close(samplerDone)
	}

	var (
		mu    sync.Mutex
		calls []call
		wg    sync.WaitGroup
	)
	record := func(c call) {
		mu.Lock()
		calls = append(calls, c)
		mu.Unlock()
	}
	phaseStart := start
	for p, ph := range phases {
		n := int(math.Round(ph.rate * ph.dur.Seconds()))
		interval := time.Duration(float64(time.Second) / ph.rate)
		for i := range n {
			due := phaseStart.Add(time.Duration(i) * interval)
			if d := time.Until(due); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
				}
			}
			if ctx.Err() != nil {
				break
			}
			wg.Go(func() {
				c := send(cfg, srv, m.limiter, due)
				c.phase, c.at = p, due.Sub(start)
				record(c)
			})
		}
		phaseStart = phaseStart.Add(ph.dur)
	}
	wg.Wait()
	close(stopSampler)
	<-samplerDone
	if err := ctx.Err(); err != nil {
		return result{}, err
	}
	return summarize(cfg, m, phases[0].dur, phases[1].dur, phases[2].dur, calls, limits), nil
}

// summarize computes a mode's result from its calls and limit samples.
func summarize(cfg config, m mode, before, step, after time.Duration, calls []call, limits []limitSample) result {
	durs := [3]time.Duration{before, step, after}
	total := before + step + after
	r := result{name: m.name, offered: len(calls), limited: m.limiter != nil}
	r.trace = make([]second, int(math.Ceil(total.Seconds())))
	bucket := func(at time.Duration) *second {
		return &r.trace[min(max(int(at/time.Second), 0), len(r.trace)-1)]
	}
	var good, offered, rejected [4]int
	var admitted []time.Duration
	timedOut := 0
	for _, c := range calls {
		s := bucket(c.at)
		s.offered++
		offered[c.phase]++
		offered[3]++
		switch {
		case c.rejected:
			rejected[c.phase]++
			rejected[3]++
			s.rejected++
			continue
		case !c.ok:
			timedOut++
			s.timedOut++
		case c.latency <= cfg.SLO:
			good[c.phase]++
			good[3]++
			s.good++
		}
		admitted = append(admitted, c.latency)
	}
	for p := range 4 {
		d := total
		if p < 3 {
			d = durs[p]
		}
		if d > 0 {
			r.goodput[p] = float64(good[p]) / d.Seconds()
		}
		if offered[p] > 0 {
			r.rejected[p] = float64(rejected[p]) / float64(offered[p])
		}
	}
	slices.Sort(admitted)
	r.p50, r.p99 = quantile(admitted, 0.50), quantile(admitted, 0.99)
	if r.offered > 0 {
		r.timedOut = float64(timedOut) / float64(r.offered)
	}
	if m.limiter != nil {
		sum := 0
		r.stepLimit = [2]int{math.MaxInt, 0}
		for _, l := range limits {
			sum += l.limit
			if l.at >= before && l.at < before+step {
				r.stepLimit[0] = min(r.stepLimit[0], l.limit)
				r.stepLimit[1] = max(r.stepLimit[1], l.limit)
			}
			s := bucket(l.at)
			if s.limitN == 0 || l.limit < s.limitMin {
				s.limitMin = l.limit
			}
			s.limitMax = max(s.limitMax, l.limit)
			s.limitSum += l.limit
			s.limitN++
		}
		if len(limits) > 0 {
			r.meanLimit = float64(sum) / float64(len(limits))
		}
		if r.stepLimit[1] == 0 {
			r.stepLimit[0] = 0
		}
		r.final = m.limiter.Limit()
	}
	return r
}

// send makes one call scheduled at due: through the limiter if there is
// one, then queued at the server, waiting at most cfg.Timeout.
func send(cfg config, srv *server, l *adaptive.Limiter, due time.Time) call {
	var p adaptive.Permit
	if l != nil {
		var ok bool
		if p, ok = l.Acquire(); !ok {
			return call{rejected: true}
		}
	}
	job := make(chan struct{})
	srv.queue <- job
	t := time.NewTimer(time.Until(due.Add(cfg.Timeout)))
	defer t.Stop()
	select {
	case <-job:
		p.Done(nil)
		return call{ok: true, latency: time.Since(due)}
	case <-t.C:
		p.Done(context.DeadlineExceeded)
		return call{latency: time.Since(due)}
	}
}

// quantile returns the q quantile of sorted by the nearest-rank method.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func writeTable(w io.Writer, results []result) {
	fmt.Fprintf(w, "| mode | offered | goodput %s | goodput %s | goodput %s | goodput overall | p50 admitted | p99 admitted | rejected %s | rejected %s | rejected %s | timed out | limit mean | limit in step | limit final |\n",
		phaseNames[0], phaseNames[1], phaseNames[2], phaseNames[0], phaseNames[1], phaseNames[2])
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, r := range results {
		mean, step, final := "—", "—", "—"
		if r.limited {
			mean = fmt.Sprintf("%.1f", r.meanLimit)
			step = fmt.Sprintf("%d–%d", r.stepLimit[0], r.stepLimit[1])
			final = fmt.Sprint(r.final)
		}
		fmt.Fprintf(w, "| %s | %d | %.0f/s | %.0f/s | %.0f/s | %.0f/s | %s | %s | %.1f%% | %.1f%% | %.1f%% | %.1f%% | %s | %s | %s |\n",
			r.name, r.offered, r.goodput[0], r.goodput[1], r.goodput[2], r.goodput[3],
			fmtMS(r.p50), fmtMS(r.p99), r.rejected[0]*100, r.rejected[1]*100, r.rejected[2]*100, r.timedOut*100, mean, step, final)
	}
}

// writeTrace writes each mode's run second by second.
func writeTrace(w io.Writer, results []result) {
	for _, r := range results {
		fmt.Fprintf(w, "\n%s, per second: offered, good (within the SLO), rejected, timed out, limit min/mean/max\n", r.name)
		for i, s := range r.trace {
			lim := "—"
			if s.limitN > 0 {
				lim = fmt.Sprintf("%d/%.0f/%d", s.limitMin, float64(s.limitSum)/float64(s.limitN), s.limitMax)
			}
			fmt.Fprintf(w, "  %3ds %5d %5d %5d %5d  %s\n", i, s.offered, s.good, s.rejected, s.timedOut, lim)
		}
	}
}

func fmtMS(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/1e6) }
