package resiliencehttp

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnhq/cairn/problem"
	"github.com/cairnhq/cairn/resilience"
	"github.com/cairnhq/cairn/resilience/bulkhead"
	"github.com/cairnhq/cairn/resilience/circuitbreaker"
	"github.com/cairnhq/cairn/resilience/ratelimit"
)

// get requests url and returns the response with its body read.
func get(t *testing.T, client *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	return resp, readAll(t, resp)
}

func checkProblem(t *testing.T, resp *http.Response, body string, status int) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status = %d, want %d (body %q)", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != problem.ContentType {
		t.Errorf("Content-Type = %q", ct)
	}
	var d struct {
		Status int `json:"status"`
	}
	if err := json.Unmarshal([]byte(body), &d); err != nil || d.Status != status {
		t.Errorf("body %q: status %d, err %v", body, d.Status, err)
	}
}

func newServer(t *testing.T, h http.Handler) (*httptest.Server, *http.Client) {
	t.Helper()
	srv := httptest.NewServer(h)
	client := srv.Client()
	t.Cleanup(func() {
		client.CloseIdleConnections()
		srv.Close()
	})
	return srv, client
}

func TestMiddlewareRateLimit(t *testing.T) {
	l, err := ratelimit.NewTokenBucket(ratelimit.Config{Rate: 1, Per: time.Hour, Burst: 1})
	if err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int64
	h := Middleware(mustPipeline[struct{}](t, resilience.RateLimit("api", l)), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, "ok")
	}))
	srv, client := newServer(t, h)

	if resp, body := get(t, client, srv.URL); resp.StatusCode != http.StatusOK || body != "ok" {
		t.Fatalf("first: %d %q", resp.StatusCode, body)
	}
	resp, body := get(t, client, srv.URL)
	checkProblem(t, resp, body, http.StatusTooManyRequests)
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 {
		t.Errorf("Retry-After = %q", resp.Header.Get("Retry-After"))
	}
	if hits.Load() != 1 {
		t.Errorf("handler ran %d times, want 1", hits.Load())
	}
}

func TestMiddlewareBulkheadFull(t *testing.T) {
	b, err := bulkhead.New(bulkhead.Config{MaxConcurrent: 1})
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	h := Middleware(mustPipeline[struct{}](t, resilience.Bulkhead(b)), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(entered)
			<-release
		}
	}))
	srv, client := newServer(t, h)

	done := make(chan int)
	go func() {
		resp, err := client.Get(srv.URL + "/slow")
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	<-entered
	resp, body := get(t, client, srv.URL)
	checkProblem(t, resp, body, http.StatusServiceUnavailable)
	close(release)
	if code := <-done; code != http.StatusOK {
		t.Errorf("slow request status %d", code)
	}
}

func TestMiddlewareHandlerFailuresTripBreaker(t *testing.T) {
	b, err := circuitbreaker.New(circuitbreaker.Config{WindowSize: 2, MinimumCalls: 2, OpenDuration: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int64
	h := Middleware(mustPipeline[struct{}](t, resilience.CircuitBreaker(b)), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "boom", http.StatusInternalServerError)
	}))
	srv, client := newServer(t, h)

	for range 2 {
		resp, body := get(t, client, srv.URL)
		if resp.StatusCode != http.StatusInternalServerError || body != "boom\n" {
			t.Fatalf("handler's answer: %d %q", resp.StatusCode, body)
		}
	}
	resp, body := get(t, client, srv.URL)
	checkProblem(t, resp, body, http.StatusServiceUnavailable)
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 {
		t.Errorf("Retry-After = %q", resp.Header.Get("Retry-After"))
	}
	if hits.Load() != 2 {
		t.Errorf("handler ran %d times, want 2", hits.Load())
	}
}

func TestMiddlewareTimeout(t *testing.T) {
	p := mustPipeline[struct{}](t, resilience.Timeout(time.Millisecond))
	t.Run("before write", func(t *testing.T) {
		rec := httptest.NewRecorder()
		Middleware(p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
		})).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		resp := rec.Result()
		checkProblem(t, resp, rec.Body.String(), http.StatusServiceUnavailable)
	})
	t.Run("after write", func(t *testing.T) {
		rec := httptest.NewRecorder()
		Middleware(p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "partial")
			<-r.Context().Done()
		})).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		if rec.Code != http.StatusOK || rec.Body.String() != "partial" {
			t.Errorf("got %d %q, want the handler's 200 partial", rec.Code, rec.Body.String())
		}
	})
}

func TestMiddlewareOtherErrors(t *testing.T) {
	fail := resilience.Custom[struct{}](policyFunc(func(ctx context.Context, next resilience.Next[struct{}]) (struct{}, error) {
		return struct{}{}, problem.Errorf(http.StatusTeapot, "short and stout")
	}))
	rec := httptest.NewRecorder()
	Middleware(mustPipeline[struct{}](t, fail), http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	checkProblem(t, rec.Result(), rec.Body.String(), http.StatusTeapot)
}

type policyFunc func(context.Context, resilience.Next[struct{}]) (struct{}, error)

func (f policyFunc) Execute(ctx context.Context, next resilience.Next[struct{}]) (struct{}, error) {
	return f(ctx, next)
}

func TestSeconds(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "1", time.Millisecond: "1", time.Second: "1", 1500 * time.Millisecond: "2", 1<<63 - 1: strconv.FormatInt(int64((1<<63-1)/time.Second), 10),
	} {
		if got := seconds(d); got != want {
			t.Errorf("seconds(%v) = %s, want %s", d, got, want)
		}
	}
}
