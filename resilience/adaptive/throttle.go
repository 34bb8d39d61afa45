package adaptive

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/cairnhq/cairn/resilience/internal/jsonduration"
)

// Defaults applied by [NewThrottle] to zero fields of a [ThrottleConfig].
const (
	DefaultK              = 2.0
	DefaultThrottleWindow = 2 * time.Minute
	DefaultBuckets        = 12
	DefaultMinRequests    = 0
)

// ThrottleConfig configures a [Throttle]. It is a plain struct that can be
// decoded from JSON; Window is a string such as "2m" (or nanoseconds).
// Every zero field means its default. Function fields are not serialised.
type ThrottleConfig struct {
	// K is the multiplier of accepts in the reject probability: the
	// throttle lets through about K times as many requests as the backend
	// accepts. Lower is more aggressive. Default 2.
	K float64 `json:"k,omitempty"`
	// Window is how long requests and accepts are remembered. Default 2m.
	Window time.Duration `json:"window,omitempty"`
	// Buckets is the number of buckets Window is split into; whole buckets
	// expire at once. Default 12.
	Buckets int `json:"buckets,omitempty"`
	// MinRequests is the number of requests the window must hold before
	// the throttle rejects anything. Default 0.
	MinRequests int `json:"min_requests,omitempty"`
	// Rand returns a number in [0, 1). Default math/rand/v2.Float64.
	Rand func() float64 `json:"-"`
}

// Validate reports every invalid field of c, naming the field and its
// value. Zero fields are valid: they mean the default.
func (c ThrottleConfig) Validate() error {
	var errs []error
	bad := func(field string, value any, why string) {
		errs = append(errs, fmt.Errorf("adaptive: invalid throttle config: %s = %v: %s", field, value, why))
	}
	if c.K < 0 {
		bad("K", c.K, "must not be negative")
	}
	if c.Window < 0 {
		bad("Window", c.Window, "must not be negative")
	}
	if c.Buckets < 0 {
		bad("Buckets", c.Buckets, "must not be negative")
	}
	if c.MinRequests < 0 {
		bad("MinRequests", c.MinRequests, "must not be negative")
	}
	return errors.Join(errs...)
}

func (c ThrottleConfig) withDefaults() ThrottleConfig {
	if c.K == 0 {
		c.K = DefaultK
	}
	if c.Window == 0 {
		c.Window = DefaultThrottleWindow
	}
	if c.Buckets == 0 {
		c.Buckets = DefaultBuckets
	}
	if c.Rand == nil {
		c.Rand = rand.Float64
	}
	return c
}

// MarshalJSON encodes c with Window as a string such as "2m0s".
func (c ThrottleConfig) MarshalJSON() ([]byte, error) {
	type plain ThrottleConfig
	return json.Marshal(struct {
		plain
		Window jsonduration.Duration `json:"window,omitempty"`
	}{plain(c), jsonduration.Duration(c.Window)})
}

// UnmarshalJSON decodes c, accepting Window as a string such as "2m" or
// as a number of nanoseconds. It does not validate c.
func (c *ThrottleConfig) UnmarshalJSON(data []byte) error {
	type plain ThrottleConfig
	err := json.Unmarshal(data, &struct {
		*plain
		Window *jsonduration.Duration `json:"window,omitempty"`
	}{(*plain)(c), (*jsonduration.Duration)(&c.Window)})
	return jsonduration.WithPrefix("adaptive", err)
}

// Throttle is client-side adaptive throttling as described in the Google
// SRE book, chapter 21 "Handling Overload"
// (https://sre.google/sre-book/handling-overload/): the client remembers,
// over a sliding window, how many requests it attempted and how many the
// backend accepted, and rejects new requests locally with probability
//
//	max(0, (requests - K*accepts) / (requests + 1))
//
// so that a backend that rejects most requests is not also burdened with
// the cost of rejecting them. Requests rejected locally count as requests,
// which keeps the probability from collapsing once the throttle engages.
//
// The window is a ring of buckets; whole buckets expire at once, so counts
// are kept between Window*(Buckets-1)/Buckets and Window. It is safe for
// concurrent use; create it with [NewThrottle].
type Throttle struct {
	k           float64
	minRequests int64
	width       time.Duration
	rand        func() float64

	mu      sync.Mutex
	buckets []throttleBucket // guarded by mu
}

type throttleBucket struct {
	epoch             int64 // bucket index since the Unix epoch
	requests, accepts int64
}

// NewThrottle returns a Throttle configured by cfg, or the error of
// cfg.Validate.
func NewThrottle(cfg ThrottleConfig) (*Throttle, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	width := max(cfg.Window/time.Duration(cfg.Buckets), 1)
	return &Throttle{
		k:           cfg.K,
		minRequests: int64(cfg.MinRequests),
		width:       width,
		rand:        cfg.Rand,
		buckets:     make([]throttleBucket, cfg.Buckets),
	}, nil
}

// current returns the bucket for now, resetting it if it held an expired
// period, and the window's totals. Called with mu held.
func (t *Throttle) current() (b *throttleBucket, requests, accepts int64) {
	epoch := time.Now().UnixNano() / int64(t.width)
	n := int64(len(t.buckets))
	b = &t.buckets[epoch%n]
	if b.epoch != epoch {
		*b = throttleBucket{epoch: epoch}
	}
	for i := range t.buckets {
		if e := t.buckets[i].epoch; e > epoch-n && e <= epoch {
			requests += t.buckets[i].requests
			accepts += t.buckets[i].accepts
		}
	}
	return b, requests, accepts
}

func (t *Throttle) probability(requests, accepts int64) float64 {
	if requests < t.minRequests {
		return 0
	}
	return max(0, (float64(requests)-t.k*float64(accepts))/float64(requests+1))
}

// RejectProbability returns the probability with which Allow currently
// rejects a request.
func (t *Throttle) RejectProbability() float64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, r, a := t.current()
	return t.probability(r, a)
}

// Allow reports whether to send a request. A request it rejects is
// counted as a request at once; for one it allows, call [Throttle.Record]
// with the backend's answer.
func (t *Throttle) Allow() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	b, r, a := t.current()
	if p := t.probability(r, a); p > 0 && t.rand() < p {
		b.requests++
		return false
	}
	return true
}

// Record counts a request that Allow let through, and whether the backend
// accepted it. A request counts as rejected by the backend when it was
// refused for overload (such as HTTP 429 or 503, or gRPC
// RESOURCE_EXHAUSTED); other failures should normally count as accepted.
func (t *Throttle) Record(accepted bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b, _, _ := t.current()
	b.requests++
	if accepted {
		b.accepts++
	}
}
