package budget

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Budget is a retry (or hedge) budget shared by the calls to one
// dependency. Implementations are safe for concurrent use.
type Budget interface {
	// Withdraw reports whether one retry (or hedge) may be spent now; a
	// true return consumes it where the algorithm consumes retries.
	Withdraw() bool
	// OnRequest records that an original (non-retry) request was made.
	// [Percent] deposits on it; [GRPC] ignores it.
	OnRequest()
	// OnSuccess records a successful attempt. [GRPC] adds TokenRatio
	// tokens on it; [Percent] ignores it.
	OnSuccess()
	// OnFailure records a failed attempt whose failure is retryable.
	// [GRPC] takes a token on it; [Percent] ignores it.
	OnFailure()
}

// New returns the Budget cfg describes, or the error of cfg.Validate.
func New(cfg Config) (Budget, error) {
	if cfg.withDefaults().Algorithm == AlgorithmPercent {
		return NewPercent(cfg)
	}
	return NewGRPC(cfg)
}

// milli converts v to thousandths, rounding to the nearest.
func milli(v float64) int64 { return int64(math.Round(v * 1000)) }

// GRPC is gRPC's retry throttling (proposal A6): the token count starts at
// MaxTokens; OnFailure takes one token and OnSuccess adds TokenRatio, both
// clamped to [0, MaxTokens]; Withdraw allows a retry while more than
// MaxTokens/2 tokens remain and consumes nothing (the retry's own failure
// takes a token). As in A6, OnSuccess and OnFailure should be called for
// every attempt, original or retry; a failure counts only if its status is
// retryable. Tokens are kept in thousandths, so the arithmetic is exact.
type GRPC struct {
	tokens    atomic.Int64 // thousandths of a token
	max       int64
	ratio     int64
	withdrawn withdrawals
}

var _ Budget = (*GRPC)(nil)

// NewGRPC returns a gRPC A6 budget configured by cfg, whatever
// cfg.Algorithm says, or the error of cfg.Validate.
func NewGRPC(cfg Config) (*GRPC, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	g := &GRPC{max: milli(cfg.MaxTokens), ratio: milli(cfg.TokenRatio)}
	g.tokens.Store(g.max)
	if err := g.withdrawn.init(cfg, func() float64 { return g.Tokens() }); err != nil {
		return nil, err
	}
	return g, nil
}

// Name returns the budget's Config.Name, which the retry and hedge
// policies report as [NameKey] on their [DeniedEventName] span events.
func (g *GRPC) Name() string { return g.withdrawn.name }

// Close unregisters the budget's metric callback, so the
// resilience.budget.tokens gauge no longer reports it; the budget keeps
// working, and counting withdrawals, without its gauge. Close it when
// replacing it with another budget of the same name. It is idempotent and
// returns the MeterProvider's error unregistering, if any.
func (g *GRPC) Close() error { return g.withdrawn.in.close() }

// Withdraw reports whether the token count is above half of MaxTokens.
func (g *GRPC) Withdraw() bool {
	ok := 2*g.tokens.Load() > g.max
	g.withdrawn.record(ok)
	return ok
}

// OnRequest does nothing: A6 counts attempt outcomes, not requests.
func (g *GRPC) OnRequest() {}

// OnSuccess adds TokenRatio tokens, up to MaxTokens.
func (g *GRPC) OnSuccess() {
	for {
		t := g.tokens.Load()
		n := min(t+g.ratio, g.max)
		if n == t || g.tokens.CompareAndSwap(t, n) {
			return
		}
	}
}

// OnFailure takes one token, down to zero.
func (g *GRPC) OnFailure() {
	for {
		t := g.tokens.Load()
		n := max(t-1000, 0)
		if n == t || g.tokens.CompareAndSwap(t, n) {
			return
		}
	}
}

// Tokens returns the current token count.
func (g *GRPC) Tokens() float64 { return float64(g.tokens.Load()) / 1000 }

// Percent is Finagle's RetryBudget
// (https://twitter.github.io/finagle/guide/Clients.html#retries and
// com.twitter.finagle.service.RetryBudget): each OnRequest deposits Percent
// of a retry, each granted Withdraw takes one retry, and Withdraw grants a
// retry only while the balance is at least one. The balance is a reserve of
// MinPerSecond*TTL retries plus the deposits minus the withdrawals of the
// last TTL. As in Finagle, the window is split into buckets that expire
// whole, so an entry is forgotten between TTL*9/10 and TTL after it was
// made. OnSuccess and OnFailure do nothing. Amounts are kept in thousandths
// of a retry.
type Percent struct {
	mu      sync.Mutex
	start   time.Time
	width   time.Duration // of a bucket
	last    int64         // index of the current bucket since start
	buckets [buckets]int64
	sum     int64 // of buckets
	reserve int64
	deposit int64

	withdrawn withdrawals
}

var _ Budget = (*Percent)(nil)

// NewPercent returns a Finagle RetryBudget configured by cfg, whatever
// cfg.Algorithm says, or the error of cfg.Validate.
func NewPercent(cfg Config) (*Percent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	p := &Percent{
		start:   time.Now(),
		width:   cfg.TTL / buckets,
		reserve: milli(cfg.MinPerSecond * cfg.TTL.Seconds()),
		deposit: milli(cfg.Percent),
	}
	if err := p.withdrawn.init(cfg, func() float64 { return p.Balance() }); err != nil {
		return nil, err
	}
	return p, nil
}

// Name returns the budget's Config.Name, which the retry and hedge
// policies report as [NameKey] on their [DeniedEventName] span events.
func (p *Percent) Name() string { return p.withdrawn.name }

// Close unregisters the budget's metric callback, so the
// resilience.budget.tokens gauge no longer reports it; the budget keeps
// working, and counting withdrawals, without its gauge. Close it when
// replacing it with another budget of the same name. It is idempotent and
// returns the MeterProvider's error unregistering, if any.
func (p *Percent) Close() error { return p.withdrawn.in.close() }

// advance expires the buckets older than the TTL and returns the index of
// the current one. p.mu must be held.
func (p *Percent) advance() int {
	cur := int64(time.Since(p.start) / p.width)
	if cur-p.last >= buckets {
		p.buckets = [buckets]int64{}
		p.sum = 0
	} else {
		for i := p.last + 1; i <= cur; i++ {
			p.sum -= p.buckets[i%buckets]
			p.buckets[i%buckets] = 0
		}
	}
	if cur > p.last {
		p.last = cur
	}
	return int(p.last % buckets)
}

// Withdraw reports whether the balance holds a whole retry, and if so
// takes it.
func (p *Percent) Withdraw() bool {
	p.mu.Lock()
	i := p.advance()
	ok := p.reserve+p.sum >= 1000
	if ok {
		p.buckets[i] -= 1000
		p.sum -= 1000
	}
	p.mu.Unlock()
	p.withdrawn.record(ok)
	return ok
}

// OnRequest deposits Percent of a retry.
func (p *Percent) OnRequest() {
	p.mu.Lock()
	i := p.advance()
	p.buckets[i] += p.deposit
	p.sum += p.deposit
	p.mu.Unlock()
}

// OnSuccess does nothing: Finagle's budget counts requests, not outcomes.
func (p *Percent) OnSuccess() {}

// OnFailure does nothing: Finagle's budget counts requests, not outcomes.
func (p *Percent) OnFailure() {}

// Balance returns the number of retries, possibly fractional, that the
// budget holds now.
func (p *Percent) Balance() float64 {
	p.mu.Lock()
	p.advance()
	b := p.reserve + p.sum
	p.mu.Unlock()
	return float64(b) / 1000
}

// withdrawals records Withdraw outcomes in metrics.
type withdrawals struct {
	name string
	in   instruments
}

func (w *withdrawals) init(cfg Config, tokens func() float64) error {
	w.name = cfg.Name
	return w.in.init(cfg.Name, cfg.MeterProvider, tokens)
}

func (w *withdrawals) record(ok bool) {
	o := outcomeDenied
	if ok {
		o = outcomeGranted
	}
	w.in.withdrawals.Add(context.Background(), 1, w.in.outcomeOpts[o]...)
}
