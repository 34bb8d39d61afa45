package resilienceconfig_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cairnhq/cairn/resilience"
	"github.com/cairnhq/cairn/resilience/circuitbreaker"
	"github.com/cairnhq/cairn/resilience/ratelimit"
	"github.com/cairnhq/cairn/resilience/resilienceconfig"
	"github.com/cairnhq/cairn/resilience/retry"
)

func ok(context.Context) (string, error) { return "ok", nil }

func TestNewBuildsPolicies(t *testing.T) {
	s, err := resilienceconfig.New(sampleFile())
	if err != nil {
		t.Fatalf("New = %v", err)
	}
	for _, tt := range []struct {
		kind string
		ok   bool
	}{
		{"breaker", func() bool { _, ok := s.Breaker("inventory"); return ok }()},
		{"bulkhead", func() bool { _, ok := s.Bulkhead("inventory"); return ok }()},
		{"limiter", func() bool { _, ok := s.Limiter("api"); return ok }()},
		{"budget", func() bool { _, ok := s.Budget("inventory"); return ok }()},
		{"retry", func() bool { _, ok := s.Retry("inventory"); return ok }()},
	} {
		if !tt.ok {
			t.Errorf("%s %q missing from the Set", tt.kind, "inventory")
		}
	}
	if _, ok := s.Breaker("nope"); ok {
		t.Error(`Breaker("nope") found, want not`)
	}
	p, _ := s.Retry("inventory")
	if p.Name != "inventory" || p.Budget == nil || p.MaxAttempts != 3 {
		t.Errorf("Retry(inventory) = name %q, budget %v, max attempts %d; want inventory, the budget, 3", p.Name, p.Budget, p.MaxAttempts)
	}
	if b, _ := s.Budget("inventory"); p.Budget != b {
		t.Error("the retry's budget is not the Set's budget")
	}
	for _, name := range []string{"inventory-client", "orders-server"} {
		pl, err := resilienceconfig.Pipeline[string](s, name)
		if err != nil {
			t.Fatalf("Pipeline(%q) = %v", name, err)
		}
		if v, err := pl.Execute(t.Context(), ok); v != "ok" || err != nil {
			t.Errorf("Pipeline(%q).Execute = %q, %v; want ok, nil", name, v, err)
		}
		st, err := s.Stages(name)
		if err != nil || len(st) != len(sampleFile().Pipelines[name]) {
			t.Errorf("Stages(%q) = %d stages, %v; want %d", name, len(st), err, len(sampleFile().Pipelines[name]))
		}
	}
	if diff := s.File(); len(diff.Pipelines) != 2 {
		t.Errorf("File() has %d pipelines, want 2", len(diff.Pipelines))
	}
}

func TestNewDoesNotKeepTheFile(t *testing.T) {
	f := sampleFile()
	s, err := resilienceconfig.New(f)
	if err != nil {
		t.Fatal(err)
	}
	f.Pipelines["orders-server"][0].Policy = "changed"
	f.Breakers["new"] = circuitbreaker.Config{}
	got := s.File()
	if got.Pipelines["orders-server"][0].Policy != "api" || len(got.Breakers) != 1 {
		t.Error("Set.File() changed with the File passed to New")
	}
}

func TestPipelineUnknown(t *testing.T) {
	s, err := resilienceconfig.New(sampleFile())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := resilienceconfig.Pipeline[string](s, "nope"); !errors.Is(err, resilienceconfig.ErrUnknownPipeline) {
		t.Errorf("Pipeline(nope) = %v, want ErrUnknownPipeline", err)
	}
	if _, err := s.Stages("nope"); !errors.Is(err, resilienceconfig.ErrUnknownPipeline) {
		t.Errorf("Stages(nope) = %v, want ErrUnknownPipeline", err)
	}
}

func TestPipelineOuterStages(t *testing.T) {
	f := &resilienceconfig.File{
		Breakers:  map[string]circuitbreaker.Config{"b": {}},
		Pipelines: map[string][]resilienceconfig.Stage{"p": {{Kind: "circuitbreaker", Policy: "b"}}},
	}
	s, err := resilienceconfig.New(f)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := s.Breaker("b")
	b.ForceOpen()
	fallback := resilience.Fallback(func(_ context.Context, err error) (string, error) { return "cached", nil })
	p, err := resilienceconfig.Pipeline[string](s, "p", fallback)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := p.Execute(t.Context(), ok); v != "cached" || err != nil {
		t.Errorf("Execute through an open breaker = %q, %v; want the fallback's cached, nil", v, err)
	}
	if _, err := resilienceconfig.Pipeline[int](s, "p", fallback); err == nil {
		t.Error("Pipeline[int] with a string fallback = nil error, want one")
	}
	// Without the fallback, the breaker's error names the breaker after
	// its key.
	p, _ = resilienceconfig.Pipeline[string](s, "p")
	var oe *circuitbreaker.OpenError
	if _, err := p.Execute(t.Context(), ok); !errors.As(err, &oe) || oe.Name != "b" {
		t.Errorf("Execute = %v, want an OpenError named b", err)
	}
}

func TestSharedPolicies(t *testing.T) {
	f := &resilienceconfig.File{
		Breakers: map[string]circuitbreaker.Config{"b": {}},
		Pipelines: map[string][]resilienceconfig.Stage{
			"p1": {{Kind: "circuitbreaker", Policy: "b"}},
			"p2": {{Kind: "circuitbreaker", Policy: "b"}, {Kind: "timeout", Timeout: time.Second}},
		},
	}
	s, err := resilienceconfig.New(f)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := s.Breaker("b")
	b.ForceOpen()
	p2, _ := resilienceconfig.Pipeline[string](s, "p2")
	if _, err := p2.Execute(t.Context(), ok); !errors.Is(err, circuitbreaker.ErrOpen) {
		t.Errorf("p2.Execute = %v, want ErrOpen from the shared breaker", err)
	}
}

func TestRateLimitStageName(t *testing.T) {
	f := &resilienceconfig.File{
		RateLimits: map[string]ratelimit.Config{"api": {Rate: 1, Per: time.Hour, Burst: 1}},
		Pipelines:  map[string][]resilienceconfig.Stage{"p": {{Kind: "ratelimit", Policy: "api"}}},
	}
	s, err := resilienceconfig.New(f)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := resilienceconfig.Pipeline[string](s, "p")
	if _, err := p.Execute(t.Context(), ok); err != nil {
		t.Fatalf("first Execute = %v, want nil", err)
	}
	var le *ratelimit.LimitedError
	if _, err := p.Execute(t.Context(), ok); !errors.As(err, &le) || le.Limit != "api" {
		t.Errorf("second Execute = %v, want a LimitedError for api", err)
	}
}

func TestOptionsHooks(t *testing.T) {
	f := &resilienceconfig.File{
		Breakers: map[string]circuitbreaker.Config{"b": {MinimumCalls: 1, WindowSize: 1}},
		Retries:  map[string]resilienceconfig.Retry{"r": {Policy: retry.Policy{MaxAttempts: 5, Backoff: retry.Backoff{Initial: time.Nanosecond}}}},
		Pipelines: map[string][]resilienceconfig.Stage{
			"p": {{Kind: "retry", Policy: "r"}, {Kind: "circuitbreaker", Policy: "b"}},
		},
	}
	notFound := errors.New("not found")
	var breakerNames, retryNames []string
	s, err := resilienceconfig.New(f,
		resilienceconfig.WithBreakerConfig(func(name string, c *circuitbreaker.Config) {
			breakerNames = append(breakerNames, name)
			c.IsFailure = func(err error) bool { return !errors.Is(err, notFound) }
		}),
		resilienceconfig.WithRetryConfig(func(name string, p *retry.Policy) {
			retryNames = append(retryNames, name)
			p.RetryIf = func(err error) bool { return !errors.Is(err, notFound) }
		}))
	if err != nil {
		t.Fatal(err)
	}
	if len(breakerNames) != 1 || breakerNames[0] != "b" || len(retryNames) != 1 || retryNames[0] != "r" {
		t.Errorf("hooks called with %v and %v, want [b] and [r]", breakerNames, retryNames)
	}
	p, _ := resilienceconfig.Pipeline[string](s, "p")
	calls := 0
	_, err = p.Execute(t.Context(), func(context.Context) (string, error) { calls++; return "", notFound })
	if !errors.Is(err, notFound) || calls != 1 {
		t.Errorf("Execute = %v after %d calls, want notFound after 1 (not retried)", err, calls)
	}
	b, _ := s.Breaker("b")
	if st := b.State(); st != circuitbreaker.StateClosed {
		t.Errorf("breaker state = %v, want closed: notFound is not a failure", st)
	}
}
