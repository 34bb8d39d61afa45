package redisratelimit

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cairnhq/cairn/resilience"
	"github.com/cairnhq/cairn/resilience/ratelimit"
)

type clientKey struct{}

// TestPipelineStage runs the Redis limiter as a resilience.KeyedRateLimit
// stage, one budget per client, against the real Redis; with Redis out and
// the "closed" outage policy the stage fails the call with ErrUnavailable.
func TestPipelineStage(t *testing.T) {
	addr := redisAddr(t)
	cfg := Config{Prefix: testPrefix(t, addr), Rate: 1, Per: time.Hour, Burst: 2, Outage: OutageClosed}
	key := func(ctx context.Context) string { s, _ := ctx.Value(clientKey{}).(string); return s }
	p, err := resilience.New[string](resilience.KeyedRateLimit("per-client", mustNew(t, newClient(t, addr), cfg), key))
	if err != nil {
		t.Fatal(err)
	}
	call := func(context.Context) (string, error) { return "ok", nil }
	for i, tt := range []struct {
		client  string
		limited bool
	}{{"a", false}, {"a", false}, {"a", true}, {"b", false}} {
		ctx := context.WithValue(t.Context(), clientKey{}, tt.client)
		_, err := p.Execute(ctx, call)
		var le *ratelimit.LimitedError
		if got := errors.As(err, &le); got != tt.limited || (got && le.Limit != "per-client") {
			t.Errorf("call %d (client %s): err = %v, want limited %v", i, tt.client, err, tt.limited)
		}
	}

	down, err := resilience.New[string](resilience.KeyedRateLimit("per-client", mustNew(t, newClient(t, deadAddr(t)), cfg), key))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := down.Execute(context.WithValue(t.Context(), clientKey{}, "a"), call); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Redis out, outage closed: err = %v, want ErrUnavailable", err)
	}
}
