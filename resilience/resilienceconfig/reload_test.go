package resilienceconfig_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/cairnhq/cairn/resilience"
	"github.com/cairnhq/cairn/resilience/bulkhead"
	"github.com/cairnhq/cairn/resilience/circuitbreaker"
	"github.com/cairnhq/cairn/resilience/ratelimit"
	"github.com/cairnhq/cairn/resilience/resilienceconfig"
)

func newReloader(t *testing.T, f *resilienceconfig.File, opts ...resilienceconfig.Option) *resilienceconfig.Reloader {
	t.Helper()
	r, err := resilienceconfig.NewReloader(f, opts...)
	if err != nil {
		t.Fatalf("NewReloader = %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func breaker(t *testing.T, s *resilienceconfig.Set, name string) *circuitbreaker.Breaker {
	t.Helper()
	b, ok := s.Breaker(name)
	if !ok {
		t.Fatalf("no breaker %q", name)
	}
	return b
}

func TestReloadKeepsUnchangedPolicies(t *testing.T) {
	r := newReloader(t, sampleFile())
	old := r.Current()
	b := breaker(t, old, "inventory")
	b.ForceOpen()
	oldLimiter, _ := old.Limiter("api")
	oldBudget, _ := old.Budget("inventory")
	oldBulkhead, _ := old.Bulkhead("inventory")

	// An unrelated change: the bulkhead and a timeout.
	f := sampleFile()
	f.Bulkheads["inventory"] = bulkhead.Config{MaxConcurrent: 8}
	f.Pipelines["orders-server"][1].Timeout = time.Second
	if err := r.Apply(f); err != nil {
		t.Fatalf("Apply = %v", err)
	}
	cur := r.Current()
	if cur == old {
		t.Fatal("Current() did not change after Apply")
	}
	if got := breaker(t, cur, "inventory"); got != b || got.State() != circuitbreaker.StateForcedOpen {
		t.Errorf("breaker after an unrelated reload: same object %v, state %v; want the same, forced open", got == b, got.State())
	}
	if l, _ := cur.Limiter("api"); l != oldLimiter {
		t.Error("unchanged limiter was replaced")
	}
	if bg, _ := cur.Budget("inventory"); bg != oldBudget {
		t.Error("unchanged budget was replaced")
	}
	if bh, _ := cur.Bulkhead("inventory"); bh == oldBulkhead {
		t.Error("changed bulkhead was reused")
	}
	p, _ := resilienceconfig.Pipeline[string](cur, "inventory-client")
	if _, err := p.Execute(t.Context(), ok); !errors.Is(err, circuitbreaker.ErrOpen) {
		t.Errorf("Execute after reload = %v, want ErrOpen from the kept breaker", err)
	}

	// Now change the breaker: it is replaced and starts closed.
	f.Breakers["inventory"] = circuitbreaker.Config{WindowSize: 20}
	if err := r.Apply(f); err != nil {
		t.Fatalf("Apply = %v", err)
	}
	if got := breaker(t, r.Current(), "inventory"); got == b || got.State() != circuitbreaker.StateClosed {
		t.Errorf("changed breaker: same object %v, state %v; want a new one, closed", got == b, got.State())
	}
}

func TestReloadKeepsLimiterTokens(t *testing.T) {
	f := &resilienceconfig.File{
		RateLimits: map[string]ratelimit.Config{"api": {Rate: 1, Per: time.Hour, Burst: 1}},
		Pipelines:  map[string][]resilienceconfig.Stage{"p": {{Kind: "ratelimit", Policy: "api"}}},
	}
	r := newReloader(t, f)
	live, err := resilienceconfig.NewLive[string](r, "p")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := live.Execute(t.Context(), ok); err != nil {
		t.Fatalf("Execute = %v", err)
	}
	f.Pipelines["p"] = append(f.Pipelines["p"], resilienceconfig.Stage{Kind: "timeout", Timeout: time.Second})
	if err := r.Apply(f); err != nil {
		t.Fatal(err)
	}
	if _, err := live.Execute(t.Context(), ok); !errors.Is(err, ratelimit.ErrLimited) {
		t.Errorf("Execute after reload = %v, want ErrLimited: the bucket is still empty", err)
	}
}

func TestReloadRejectsBadConfig(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	var errs []error
	var reloaded []*resilienceconfig.Set
	r := newReloader(t, sampleFile(), resilienceconfig.WithMeterProvider(mp),
		resilienceconfig.WithOnError(func(err error) { errs = append(errs, err) }),
		resilienceconfig.WithOnReload(func(s *resilienceconfig.Set) { reloaded = append(reloaded, s) }))
	old := r.Current()
	dir := t.TempDir()
	for _, tt := range []struct {
		name   string
		reload func() error
		want   string
	}{
		{"syntax", func() error { return r.Reload([]byte("breakers: {b: [")) }, "yaml: line 1"},
		{"unknown field", func() error { return r.Reload([]byte("breakrs: {}")) }, `unknown field "breakrs"`},
		{"invalid", func() error {
			return r.Reload([]byte(strings.Replace(sampleYAML, "failure_rate_threshold: 0.5", "failure_rate_threshold: 1.5", 1)))
		}, "breakers.inventory.failure_rate_threshold = 1.5: must be in (0, 1]"},
		{"missing file", func() error { return r.ReloadFile(filepath.Join(dir, "missing.yaml")) }, "no such file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.reload()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("reload = %v, want an error containing %q", err, tt.want)
			}
			if r.Current() != old {
				t.Error("Current() changed after a failed reload")
			}
		})
	}
	if len(errs) != 4 || len(reloaded) != 0 {
		t.Errorf("OnError called %d times, OnReload %d; want 4 and 0", len(errs), len(reloaded))
	}
	path := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(path, []byte(sampleYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.ReloadFile(path); err != nil {
		t.Fatalf("ReloadFile(good) = %v", err)
	}
	if len(reloaded) != 1 || reloaded[0] != r.Current() {
		t.Errorf("OnReload called %d times, want once with the new Set", len(reloaded))
	}
	if got := reloadCounts(t, reader); got["ok"] != 1 || got["error"] != 4 {
		t.Errorf("%s = %v, want ok 1, error 4", resilienceconfig.ReloadsMetricName, got)
	}
}

// reloadCounts returns the reload counter by outcome.
func reloadCounts(t *testing.T, reader *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != resilienceconfig.ReloadsMetricName {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				v, _ := dp.Attributes.Value(resilienceconfig.OutcomeKey)
				got[v.AsString()] += dp.Value
			}
		}
	}
	return got
}

func TestNewReloaderInvalid(t *testing.T) {
	f := sampleFile()
	f.Pipelines["x"] = nil
	if _, err := resilienceconfig.NewReloader(f); err == nil {
		t.Error("NewReloader(invalid) = nil error, want one")
	}
}

func TestLiveFollowsReloads(t *testing.T) {
	f := &resilienceconfig.File{
		Breakers: map[string]circuitbreaker.Config{"a": {}, "b": {}},
		Pipelines: map[string][]resilienceconfig.Stage{
			"p": {{Kind: "circuitbreaker", Policy: "a"}},
		},
	}
	r := newReloader(t, f)
	live, err := resilienceconfig.NewLive[string](r, "p")
	if err != nil {
		t.Fatal(err)
	}
	breaker(t, r.Current(), "a").ForceOpen()
	if _, err := live.Execute(t.Context(), ok); !errors.Is(err, circuitbreaker.ErrOpen) {
		t.Fatalf("Execute = %v, want ErrOpen", err)
	}
	f.Pipelines["p"] = []resilienceconfig.Stage{{Kind: "circuitbreaker", Policy: "b"}}
	if err := r.Apply(f); err != nil {
		t.Fatal(err)
	}
	if v, err := live.Execute(t.Context(), ok); v != "ok" || err != nil {
		t.Errorf("Execute after switching to breaker b = %q, %v; want ok, nil", v, err)
	}
	if p1, p2 := live.Pipeline(), live.Pipeline(); p1 != p2 {
		t.Error("Pipeline() differs between calls without a reload")
	}
}

func TestLiveErrors(t *testing.T) {
	r := newReloader(t, sampleFile())
	if _, err := resilienceconfig.NewLive[string](r, "nope"); !errors.Is(err, resilienceconfig.ErrUnknownPipeline) {
		t.Errorf("NewLive(nope) = %v, want ErrUnknownPipeline", err)
	}
	wrong := resilience.Fallback(func(context.Context, error) (int, error) { return 0, nil })
	if _, err := resilienceconfig.NewLive[string](r, "orders-server", wrong); err == nil {
		t.Error("NewLive with a fallback of another type = nil error, want one")
	}
	if _, err := resilienceconfig.NewLive[string](r, "orders-server"); err != nil {
		t.Fatal(err)
	}
	// A pipeline in use cannot be removed; one not in use can.
	f := sampleFile()
	delete(f.Pipelines, "orders-server")
	delete(f.Pipelines, "inventory-client")
	err := r.Apply(f)
	if err == nil || !strings.Contains(err.Error(), "pipelines.orders-server: removed, but a Live handle uses it") || strings.Contains(err.Error(), "inventory-client") {
		t.Errorf("Apply without a live pipeline = %v, want an error naming orders-server only", err)
	}
	f = sampleFile()
	delete(f.Pipelines, "inventory-client")
	if err := r.Apply(f); err != nil {
		t.Errorf("Apply without an unused pipeline = %v, want nil", err)
	}
}

func TestConcurrentExecuteDuringReloads(t *testing.T) {
	f1 := sampleFile()
	f2 := sampleFile()
	f2.Breakers["inventory"] = circuitbreaker.Config{WindowSize: 10}
	f2.Pipelines["inventory-client"] = f2.Pipelines["inventory-client"][1:]
	r := newReloader(t, f1)
	fallback := resilience.Fallback(func(context.Context, error) (string, error) { return "fallback", nil })
	live, err := resilienceconfig.NewLive[string](r, "inventory-client", fallback)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				v, err := live.Execute(ctx, ok)
				if err != nil && ctx.Err() != nil {
					return // cancelled between the check and the call
				}
				if err != nil || (v != "ok" && v != "fallback") {
					t.Errorf("Execute = %q, %v", v, err)
					return
				}
			}
		})
	}
	for i := range 200 {
		f := f1
		if i%2 == 1 {
			f = f2
		}
		if err := r.Apply(f); err != nil {
			t.Errorf("Apply = %v", err)
		}
	}
	cancel()
	wg.Wait()
}

func TestLiveExecuteAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	f := &resilienceconfig.File{
		Breakers:   map[string]circuitbreaker.Config{"b": {}},
		Bulkheads:  map[string]bulkhead.Config{"b": {}},
		RateLimits: map[string]ratelimit.Config{"api": {Rate: 1e8, Burst: 1e8}},
		Retries:    map[string]resilienceconfig.Retry{"r": {}},
		Pipelines: map[string][]resilienceconfig.Stage{"p": {
			{Kind: "retry", Policy: "r"},
			{Kind: "ratelimit", Policy: "api"},
			{Kind: "circuitbreaker", Policy: "b"},
			{Kind: "bulkhead", Policy: "b"},
		}},
	}
	r := newReloader(t, f)
	live, err := resilienceconfig.NewLive[string](r, "p")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	direct := testing.AllocsPerRun(1000, func() { _, _ = live.Pipeline().Execute(ctx, ok) })
	got := testing.AllocsPerRun(1000, func() { _, _ = live.Execute(ctx, ok) })
	if got != direct || got != 0 {
		t.Errorf("Live.Execute allocs = %v, the pipeline's own = %v; want both 0", got, direct)
	}
}

func TestWatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "resilience.yaml")
		write := func(s string) {
			t.Helper()
			if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		write(sampleYAML)
		f, err := resilienceconfig.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var reloads int
		var errs []error
		r := newReloader(t, f,
			resilienceconfig.WithOnReload(func(*resilienceconfig.Set) { mu.Lock(); reloads++; mu.Unlock() }),
			resilienceconfig.WithOnError(func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() }))
		counts := func() (int, int) {
			mu.Lock()
			defer mu.Unlock()
			return reloads, len(errs)
		}
		if err := r.Watch(t.Context(), path, 0); err == nil {
			t.Error("Watch with interval 0 = nil, want an error")
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- r.Watch(ctx, path, time.Second) }()
		synctest.Wait()
		// The first poll applies the file once; after that, unchanged
		// content is not reloaded.
		if n, e := counts(); n != 1 || e != 0 {
			t.Fatalf("after start: %d reloads, %d errors; want 1, 0", n, e)
		}
		b := breaker(t, r.Current(), "inventory")
		b.ForceOpen()
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if n, _ := counts(); n != 1 {
			t.Errorf("unchanged file reloaded: %d reloads, want 1", n)
		}

		write(strings.Replace(sampleYAML, "max_concurrent: 32", "max_concurrent: 16", 1))
		time.Sleep(time.Second)
		synctest.Wait()
		if n, e := counts(); n != 2 || e != 0 {
			t.Errorf("after a change: %d reloads, %d errors; want 2, 0", n, e)
		}
		if got := breaker(t, r.Current(), "inventory"); got != b || got.State() != circuitbreaker.StateForcedOpen {
			t.Error("breaker replaced or reset by a reload of the bulkhead")
		}

		good := r.Current()
		write("breakers: {inventory: {window: sliding}}")
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if n, e := counts(); n != 2 || e != 1 || r.Current() != good {
			t.Errorf("after a bad change: %d reloads, %d errors, Set kept %v; want 2, 1 (reported once), true", n, e, r.Current() == good)
		}

		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if _, e := counts(); e != 2 {
			t.Errorf("after removing the file: %d errors, want 2 (the read error once)", e)
		}

		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Watch = %v, want context.Canceled", err)
		}
	})
}
