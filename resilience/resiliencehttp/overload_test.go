package resiliencehttp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cairnhq/cairn/resilience"
	"github.com/cairnhq/cairn/resilience/adaptive"
	"github.com/cairnhq/cairn/resilience/shed"
)

// The rejections of the Adaptive, Shed and Throttle stages are answered
// with 503, a shed one with Retry-After.
func TestMiddlewareOverloadRejections(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		retryAfter string
	}{
		{"shed", &shed.ShedError{Name: "api", RetryAfter: 100 * time.Millisecond}, "1"},
		{"shed long", &shed.ShedError{Name: "api", RetryAfter: 2500 * time.Millisecond}, "3"},
		{"shed wrapped", fmt.Errorf("calling: %w", &shed.ShedError{Name: "api", RetryAfter: time.Second}), "1"},
		{"shed sentinel", shed.ErrShed, ""},
		{"adaptive", adaptive.ErrLimitExceeded, ""},
		{"throttle", resilience.ErrThrottled, ""},
		{"throttle joined", errors.Join(errors.New("x"), resilience.ErrThrottled), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reject := resilience.Custom[struct{}](policyFunc(func(context.Context, resilience.Next[struct{}]) (struct{}, error) {
				return struct{}{}, tt.err
			}))
			rec := httptest.NewRecorder()
			Middleware(mustPipeline[struct{}](t, reject), http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
			checkProblem(t, rec.Result(), rec.Body.String(), http.StatusServiceUnavailable)
			if got := rec.Header().Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tt.retryAfter)
			}
		})
	}
}

// A real Adaptive stage at its limit and a real Shed stage that sheds
// answer 503 without calling the handler.
func TestMiddlewareOverloadStages(t *testing.T) {
	l, err := adaptive.New(adaptive.Config{InitialLimit: 1, MinLimit: 1, MaxLimit: 1})
	if err != nil {
		t.Fatal(err)
	}
	held, _ := l.Acquire()
	defer held.Done(nil)
	s, err := shed.New(shed.Config{CPU: busyCPU{}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sheddable := resilience.Custom[struct{}](policyFunc(func(ctx context.Context, next resilience.Next[struct{}]) (struct{}, error) {
		return next.Run(shed.WithPriority(ctx, shed.Sheddable))
	}))
	for name, stages := range map[string][]resilience.Stage{
		"adaptive": {resilience.Adaptive(l)},
		"shed":     {sheddable, resilience.Shed(s)},
	} {
		t.Run(name, func(t *testing.T) {
			called := false
			h := Middleware(mustPipeline[struct{}](t, stages...), http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true }))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
			checkProblem(t, rec.Result(), rec.Body.String(), http.StatusServiceUnavailable)
			if called {
				t.Error("the handler ran")
			}
		})
	}
}

// busyCPU reads a CPU usage above any threshold.
type busyCPU struct{}

func (busyCPU) Usage() float64 { return 1 }
