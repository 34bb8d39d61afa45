package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairnhq/cairn/resilience/budget"
	"github.com/cairnhq/cairn/resilience/hedge"
)

// config holds the experiment's parameters, one flag each.
type config struct {
	RPS                int
	Duration           time.Duration
	Seed               uint64
	Base               time.Duration
	Jitter             time.Duration
	StragglerFrac      float64
	StragglerMult      float64
	FixedDelay         time.Duration
	FixedQuantile      float64
	Quantile           float64
	BudgetPercent      float64
	BudgetMinPerSecond float64
}

func defaultConfig() config {
	return config{
		RPS:                200,
		Duration:           15 * time.Second,
		Seed:               1,
		Base:               2 * time.Millisecond,
		Jitter:             500 * time.Microsecond,
		StragglerFrac:      0.05,
		StragglerMult:      10,
		FixedQuantile:      0.90,
		Quantile:           0.95,
		BudgetPercent:      0.02,
		BudgetMinPerSecond: 1,
	}
}

func (c config) validate() error {
	switch {
	case c.RPS <= 0:
		return fmt.Errorf("-rps %d: must be positive", c.RPS)
	case c.Duration <= 0:
		return fmt.Errorf("-duration %v: must be positive", c.Duration)
	case c.Base <= 0 || c.Jitter < 0 || c.Jitter > c.Base:
		return fmt.Errorf("-base %v, -jitter %v: want 0 <= jitter <= base, base > 0", c.Base, c.Jitter)
	case c.StragglerFrac < 0 || c.StragglerFrac > 1:
		return fmt.Errorf("-straggler-frac %v: must be in [0, 1]", c.StragglerFrac)
	case c.StragglerMult < 1:
		return fmt.Errorf("-straggler-mult %v: must be at least 1", c.StragglerMult)
	case c.FixedQuantile <= 0 || c.FixedQuantile >= 1:
		return fmt.Errorf("-fixed-quantile %v: must be in (0, 1)", c.FixedQuantile)
	}
	return nil
}

// backend is the HTTP server: each request sleeps for a latency drawn from
// a seeded generator, or until its context ends.
type backend struct {
	cfg config

	mu  sync.Mutex
	rng *rand.Rand // guarded by mu

	requests  atomic.Int64 // requests received
	cancelled atomic.Int64 // requests whose context ended before the answer
	inflight  sync.WaitGroup
}

// reset starts a mode: counters to zero, the generator reseeded with the
// mode's number so that every mode draws from the same sequence.
func (b *backend) reset(mode int) {
	b.mu.Lock()
	b.rng = rand.New(rand.NewPCG(b.cfg.Seed, uint64(mode)))
	b.mu.Unlock()
	b.requests.Store(0)
	b.cancelled.Store(0)
}

func (b *backend) latency() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	d := float64(b.cfg.Base)
	if b.cfg.Jitter > 0 {
		d += (b.rng.Float64()*2 - 1) * float64(b.cfg.Jitter)
	}
	if b.rng.Float64() < b.cfg.StragglerFrac {
		d *= b.cfg.StragglerMult
	}
	return time.Duration(d)
}

func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.inflight.Add(1)
	defer b.inflight.Done()
	b.requests.Add(1)
	t := time.NewTimer(b.latency())
	defer t.Stop()
	select {
	case <-t.C:
		_, _ = io.WriteString(w, "ok")
	case <-r.Context().Done():
		b.cancelled.Add(1)
	}
}

// mode is one run of the load.
type mode struct {
	name   string
	hedger *hedge.Hedger // nil: no hedging
	budget *countingBudget
}

// countingBudget counts the withdrawals a budget denies.
type countingBudget struct {
	budget.Budget
	denied atomic.Int64
}

func (c *countingBudget) Withdraw() bool {
	ok := c.Budget.Withdraw()
	if !ok {
		c.denied.Add(1)
	}
	return ok
}

// result is what one mode measured.
type result struct {
	name                 string
	latencies            []time.Duration // of successful calls, sorted
	requests, errors     int64
	backend, cancelled   int64
	hedges, hedgeWins    int64
	denied               int64
	deniedKnown, hedging bool
}

func run(ctx context.Context, cfg config, w io.Writer) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	be := &backend{cfg: cfg}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: be, ReadHeaderTimeout: 5 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	defer func() {
		_ = srv.Close()
		<-serveErr
	}()
	tr := &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: 30 * time.Second}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	url := "http://" + ln.Addr().String() + "/"

	fmt.Fprintf(w, "hedgeexp: %s, GOOS/GOARCH %s/%s, GOMAXPROCS %d, NumCPU %d\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), runtime.NumCPU())
	fmt.Fprintf(w, "load: %d rps open-loop for %v per mode; backend: %v ± %v, %.1f%% stragglers at %gx; seed %d\n\n",
		cfg.RPS, cfg.Duration, cfg.Base, cfg.Jitter, cfg.StragglerFrac*100, cfg.StragglerMult, cfg.Seed)

	var results []result
	runMode := func(i int, m mode) error {
		be.reset(i)
		r, err := drive(ctx, cfg, client, url, m)
		if err != nil {
			return err
		}
		be.inflight.Wait() // the losers' cancellations have been seen
		r.backend, r.cancelled = be.requests.Load(), be.cancelled.Load()
		results = append(results, r)
		tr.CloseIdleConnections()
		return nil
	}

	if err := runMode(0, mode{name: "none"}); err != nil {
		return err
	}
	fixed := cfg.FixedDelay
	if fixed <= 0 {
		fixed = quantile(results[0].latencies, cfg.FixedQuantile)
	}
	hf, err := hedge.New(hedge.Config{Name: "fixed", Delay: fixed}, nil)
	if err != nil {
		return err
	}
	if err := runMode(1, mode{name: "fixed", hedger: hf}); err != nil {
		return err
	}
	ha, err := hedge.New(hedge.Config{Name: "adaptive", Quantile: cfg.Quantile}, nil)
	if err != nil {
		return err
	}
	if err := runMode(2, mode{name: "adaptive", hedger: ha}); err != nil {
		return err
	}
	pb, err := budget.NewPercent(budget.Config{Name: "hedges", Percent: cfg.BudgetPercent, MinPerSecond: cfg.BudgetMinPerSecond})
	if err != nil {
		return err
	}
	cb := &countingBudget{Budget: pb}
	hb, err := hedge.New(hedge.Config{Name: "adaptive+budget", Quantile: cfg.Quantile}, cb)
	if err != nil {
		return err
	}
	if err := runMode(3, mode{name: fmt.Sprintf("adaptive+budget %g%%", cfg.BudgetPercent*100), hedger: hb, budget: cb}); err != nil {
		return err
	}
	fixedHow := fmt.Sprintf("p%g of none", cfg.FixedQuantile*100)
	if cfg.FixedDelay > 0 {
		fixedHow = "-fixed-delay"
	}
	fmt.Fprintf(w, "fixed delay %v (%s); adaptive: hedge.Config{Quantile: %g}, delay at end %v; budget: Percent %g, MinPerSecond %g, TTL %v, delay at end %v\n\n",
		fixed.Round(10*time.Microsecond), fixedHow, cfg.Quantile, ha.Delay().Round(10*time.Microsecond),
		cfg.BudgetPercent, cfg.BudgetMinPerSecond, budget.DefaultTTL, hb.Delay().Round(10*time.Microsecond))
	writeTable(w, results)
	return nil
}

// drive sends cfg.RPS requests per second for cfg.Duration, each in its
// own goroutine, and waits for all of them.
func drive(ctx context.Context, cfg config, client *http.Client, url string, m mode) (result, error) {
	n := int(math.Round(float64(cfg.RPS) * cfg.Duration.Seconds()))
	interval := time.Second / time.Duration(cfg.RPS)
	lat := make([]time.Duration, n)
	ok := make([]bool, n)
	var hedges, wins atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	sent := 0
	for ; sent < n; sent++ {
		due := start.Add(time.Duration(sent) * interval)
		if d := time.Until(due); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			break
		}
		i := sent
		wg.Go(func() {
			var err error
			if m.hedger == nil {
				err = get(ctx, client, url)
			} else {
				var attempts atomic.Int64
				var winner int64
				winner, err = hedge.Do(ctx, m.hedger, func(ctx context.Context) (int64, error) {
					a := attempts.Add(1) - 1
					return a, get(ctx, client, url)
				})
				hedges.Add(attempts.Load() - 1)
				if err == nil && winner > 0 {
					wins.Add(1)
				}
			}
			// Measured from the scheduled send time, so that a slow
			// generator does not hide latency (coordinated omission).
			lat[i] = time.Since(due)
			ok[i] = err == nil
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return result{}, err
	}
	r := result{name: m.name, requests: int64(sent), hedges: hedges.Load(), hedgeWins: wins.Load(), hedging: m.hedger != nil}
	for i := range sent {
		if ok[i] {
			r.latencies = append(r.latencies, lat[i])
		} else {
			r.errors++
		}
	}
	slices.Sort(r.latencies)
	if m.budget != nil {
		r.denied, r.deniedKnown = m.budget.denied.Load(), true
	}
	return r, nil
}

// get fetches url and reads the body; any status but 200 is an error.
func get(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	return nil
}

// quantile returns the q quantile of sorted by the nearest-rank method:
// the smallest sample with at least q of the samples at or below it.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func writeTable(w io.Writer, results []result) {
	fmt.Fprintln(w, "| mode | requests | errors | p50 | p90 | p99 | p99.9 | max | backend requests | extra load | hedges sent | hedge wins | budget denied | cancelled at server |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, r := range results {
		ms := func(q float64) string { return fmtMS(quantile(r.latencies, q)) }
		extra := 0.0
		if r.requests > 0 {
			extra = float64(r.backend)/float64(r.requests) - 1
		}
		hedges, wins, denied := "—", "—", "—"
		if r.hedging {
			hedges, wins = fmt.Sprint(r.hedges), fmt.Sprint(r.hedgeWins)
		}
		if r.deniedKnown {
			denied = fmt.Sprint(r.denied)
		}
		var maxLat time.Duration
		if len(r.latencies) > 0 {
			maxLat = r.latencies[len(r.latencies)-1]
		}
		fmt.Fprintf(w, "| %s | %d | %d | %s | %s | %s | %s | %s | %d | %s | %s | %s | %s | %d |\n",
			r.name, r.requests, r.errors, ms(0.50), ms(0.90), ms(0.99), ms(0.999), fmtMS(maxLat),
			r.backend, fmtPct(extra), hedges, wins, denied, r.cancelled)
	}
}

func fmtMS(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/1e6)
}

func fmtPct(f float64) string { return fmt.Sprintf("%+.1f%%", f*100) }
