package resiliencehttp_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/cairnhq/cairn/resilience"
	"github.com/cairnhq/cairn/resilience/ratelimit"
	"github.com/cairnhq/cairn/resilience/resiliencehttp"
	"github.com/cairnhq/cairn/resilience/retry"
)

func ExampleNewTransport() {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) < 3 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "hello")
	}))
	defer srv.Close()

	p, err := resilience.New[*http.Response](resilience.Retry(retry.Policy{
		MaxAttempts: 3,
		Pushback:    resiliencehttp.RetryAfterPushback, // honour Retry-After
	}))
	if err != nil {
		panic(err)
	}
	client := &http.Client{Transport: resiliencehttp.NewTransport(&http.Transport{}, p, resiliencehttp.TransportConfig{})}
	defer client.CloseIdleConnections()

	resp, err := client.Get(srv.URL)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body), "after", hits.Load(), "attempts")
	// Output: 200 hello after 3 attempts
}

func ExampleMiddleware() {
	l, err := ratelimit.NewTokenBucket(ratelimit.Config{Rate: 1, Per: time.Minute})
	if err != nil {
		panic(err)
	}
	p, err := resilience.New[struct{}](resilience.RateLimit("api", l))
	if err != nil {
		panic(err)
	}
	h := resiliencehttp.Middleware(p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	for range 2 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		fmt.Printf("%d %s %q\n", rec.Code, rec.Header().Get("Content-Type"), rec.Header().Get("Retry-After"))
	}
	// Output:
	// 200 text/plain; charset=utf-8 ""
	// 429 application/problem+json "60"
}
