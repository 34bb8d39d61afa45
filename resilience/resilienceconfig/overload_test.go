package resilienceconfig_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/cairnhq/cairn/resilience"
	"github.com/cairnhq/cairn/resilience/adaptive"
	"github.com/cairnhq/cairn/resilience/budget"
	"github.com/cairnhq/cairn/resilience/hedge"
	"github.com/cairnhq/cairn/resilience/resilienceconfig"
	"github.com/cairnhq/cairn/resilience/shed"
)

const overloadYAML = `
budgets:
  inventory: {max_tokens: 10, token_ratio: 0.1}
adaptive:
  db: {algorithm: vegas, max_limit: 50}
shedders:
  api: {cpu_threshold: 0.8, window: 5s, buckets: 50, cool_off: 1s}
throttles:
  inventory: {k: 1.5, window: 1m, buckets: 6}
hedges:
  inventory: {delay: 20ms, max_hedges: 2, budget: inventory}
pipelines:
  inventory-client:
    - throttle: inventory
    - hedge: inventory
    - adaptive: db
    - timeout: 1s
  orders-server:
    - shed: api
    - timeout: 5s
`

// overloadFile is what overloadYAML decodes to.
func overloadFile() *resilienceconfig.File {
	return &resilienceconfig.File{
		Budgets:   map[string]budget.Config{"inventory": {MaxTokens: 10, TokenRatio: 0.1}},
		Adaptive:  map[string]adaptive.Config{"db": {Algorithm: "vegas", MaxLimit: 50}},
		Shedders:  map[string]shed.Config{"api": {CPUThreshold: 0.8, Window: 5 * time.Second, Buckets: 50, CoolOff: time.Second}},
		Throttles: map[string]adaptive.ThrottleConfig{"inventory": {K: 1.5, Window: time.Minute, Buckets: 6}},
		Hedges: map[string]resilienceconfig.Hedge{
			"inventory": {Config: hedge.Config{Delay: 20 * time.Millisecond, MaxHedges: 2}, Budget: "inventory"},
		},
		Pipelines: map[string][]resilienceconfig.Stage{
			"inventory-client": {
				{Kind: "throttle", Policy: "inventory"},
				{Kind: "hedge", Policy: "inventory"},
				{Kind: "adaptive", Policy: "db"},
				{Kind: "timeout", Timeout: time.Second},
			},
			"orders-server": {
				{Kind: "shed", Policy: "api"},
				{Kind: "timeout", Timeout: 5 * time.Second},
			},
		},
	}
}

func TestDecodeOverloadSections(t *testing.T) {
	f, err := resilienceconfig.Decode([]byte(overloadYAML))
	if err != nil {
		t.Fatalf("Decode = %v", err)
	}
	if diff := cmp.Diff(overloadFile(), f, cmpFile...); diff != "" {
		t.Errorf("Decode mismatch (-want +got):\n%s", diff)
	}
	if err := f.Validate(); err != nil {
		t.Errorf("Validate = %v, want nil", err)
	}
	data, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	again, err := resilienceconfig.Decode(data)
	if err != nil {
		t.Fatalf("Decode(%s) = %v", data, err)
	}
	if diff := cmp.Diff(f, again, cmpFile...); diff != "" {
		t.Errorf("round trip through %s mismatch (-first +second):\n%s", data, diff)
	}
}

func TestNewBuildsOverloadPolicies(t *testing.T) {
	s, err := resilienceconfig.New(overloadFile())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l, found := s.Adaptive("db")
	if !found || l == nil || l.Limit() > 50 {
		t.Errorf("Adaptive(db) = %v, %v; want a limiter of at most 50", l, found)
	}
	sh, found := s.Shedder("api")
	if !found || sh == nil {
		t.Errorf("Shedder(api) = %v, %v", sh, found)
	}
	if th, found := s.Throttle("inventory"); !found || th == nil {
		t.Errorf("Throttle(inventory) = %v, %v", th, found)
	}
	h, found := s.Hedger("inventory")
	if !found || h == nil || h.Name() != "inventory" || h.Delay() != 20*time.Millisecond {
		t.Errorf("Hedger(inventory) = %v, %v; want one named inventory with a 20ms delay", h, found)
	}
	for _, name := range []string{"inventory-client", "orders-server"} {
		p, err := resilienceconfig.Pipeline[string](s, name)
		if err != nil {
			t.Fatalf("Pipeline(%s) = %v", name, err)
		}
		if v, err := p.Execute(t.Context(), ok); v != "ok" || err != nil {
			t.Errorf("%s: Execute = %q, %v; want ok, nil", name, v, err)
		}
	}
	if n := l.InFlight(); n != 0 {
		t.Errorf("adaptive InFlight after the calls = %d, want 0", n)
	}
	if n := sh.InFlight(); n != 0 {
		t.Errorf("shedder InFlight after the calls = %d, want 0", n)
	}
	// Close is idempotent, and the shedder keeps working after it.
	s.Close()
	p, _ := resilienceconfig.Pipeline[string](s, "orders-server")
	if _, err := p.Execute(t.Context(), ok); err != nil {
		t.Errorf("Execute after Close = %v, want nil", err)
	}
}

// An adaptive limiter at its limit rejects the pipeline's calls with
// adaptive.ErrLimitExceeded.
func TestAdaptiveStageFromFile(t *testing.T) {
	f := &resilienceconfig.File{
		Adaptive:  map[string]adaptive.Config{"db": {InitialLimit: 1, MinLimit: 1, MaxLimit: 1}},
		Pipelines: map[string][]resilienceconfig.Stage{"p": {{Kind: "adaptive", Policy: "db"}}},
	}
	s, err := resilienceconfig.New(f)
	if err != nil {
		t.Fatal(err)
	}
	l, _ := s.Adaptive("db")
	held, _ := l.Acquire()
	defer held.Done(nil)
	p, _ := resilienceconfig.Pipeline[string](s, "p")
	if _, err := p.Execute(t.Context(), ok); !errors.Is(err, adaptive.ErrLimitExceeded) {
		t.Errorf("Execute at the limit = %v, want adaptive.ErrLimitExceeded", err)
	}
}

func TestReloadKeepsOverloadPolicies(t *testing.T) {
	before := goleak.IgnoreCurrent()
	r := newReloader(t, overloadFile())
	old := r.Current()
	get := func(s *resilienceconfig.Set) (*adaptive.Limiter, *shed.Shedder, *adaptive.Throttle, *hedge.Hedger) {
		l, _ := s.Adaptive("db")
		sh, _ := s.Shedder("api")
		th, _ := s.Throttle("inventory")
		h, _ := s.Hedger("inventory")
		return l, sh, th, h
	}
	l0, sh0, th0, h0 := get(old)

	// Unchanged configs keep their policies.
	if err := r.Apply(overloadFile()); err != nil {
		t.Fatal(err)
	}
	l1, sh1, th1, h1 := get(r.Current())
	if l1 != l0 || sh1 != sh0 || th1 != th0 || h1 != h0 {
		t.Errorf("unchanged policies replaced: adaptive %v, shedder %v, throttle %v, hedger %v (true = kept)", l1 == l0, sh1 == sh0, th1 == th0, h1 == h0)
	}

	// Changed configs replace them; a changed budget replaces the hedger
	// that draws from it.
	f := overloadFile()
	f.Adaptive["db"] = adaptive.Config{Algorithm: "aimd"}
	f.Shedders["api"] = shed.Config{CPUThreshold: 0.7}
	f.Throttles["inventory"] = adaptive.ThrottleConfig{K: 2}
	f.Budgets["inventory"] = budget.Config{MaxTokens: 20}
	if err := r.Apply(f); err != nil {
		t.Fatal(err)
	}
	l2, sh2, th2, h2 := get(r.Current())
	if l2 == l1 || sh2 == sh1 || th2 == th1 || h2 == h1 {
		t.Errorf("changed policies kept: adaptive %v, shedder %v, throttle %v, hedger %v (true = replaced)", l2 != l1, sh2 != sh1, th2 != th1, h2 != h1)
	}
	// The replaced shedder still works for calls on an old pipeline.
	p, _ := resilienceconfig.Pipeline[string](old, "orders-server")
	if _, err := p.Execute(t.Context(), ok); err != nil {
		t.Errorf("Execute on the old Set = %v, want nil", err)
	}

	// Removing the shedders closes them: no sampler goroutine is left.
	f = overloadFile()
	f.Shedders = nil
	f.Pipelines["orders-server"] = f.Pipelines["orders-server"][1:]
	if err := r.Apply(f); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, before)

	// After Close, reloads fail.
	r.Close()
	if err := r.Apply(overloadFile()); err == nil {
		t.Error("Apply after Close = nil, want an error")
	}
	goleak.VerifyNone(t, before)
}

// A hedge stage from a file hedges a slow call.
func TestHedgeStageFromFile(t *testing.T) {
	f := &resilienceconfig.File{
		Hedges:    map[string]resilienceconfig.Hedge{"h": {Config: hedge.Config{Delay: time.Millisecond}}},
		Pipelines: map[string][]resilienceconfig.Stage{"p": {{Kind: "hedge", Policy: "h"}}},
	}
	s, err := resilienceconfig.New(f)
	if err != nil {
		t.Fatal(err)
	}
	p, err := resilienceconfig.Pipeline[string](s, "p", resilience.Timeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	first := make(chan struct{}, 1)
	v, err := p.Execute(t.Context(), func(ctx context.Context) (string, error) {
		select {
		case first <- struct{}{}: // the first attempt waits to be hedged
			<-ctx.Done()
			return "", ctx.Err()
		default:
			return "hedge", nil
		}
	})
	if v != "hedge" || err != nil {
		t.Errorf("Execute = %q, %v; want the hedge's answer", v, err)
	}
}
