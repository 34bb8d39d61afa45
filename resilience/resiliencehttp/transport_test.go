package resiliencehttp

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnhq/cairn/resilience"
	"github.com/cairnhq/cairn/resilience/circuitbreaker"
	"github.com/cairnhq/cairn/resilience/hedge"
	"github.com/cairnhq/cairn/resilience/retry"
)

// countingTransport counts the responses its base returns and how many of
// their bodies were closed.
type countingTransport struct {
	base           *http.Transport
	opened, closed atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	c.opened.Add(1)
	resp.Body = &closeCounter{ReadCloser: resp.Body, n: &c.closed}
	return resp, nil
}

func (c *countingTransport) CloseIdleConnections() { c.base.CloseIdleConnections() }

type closeCounter struct {
	io.ReadCloser
	once sync.Once
	n    *atomic.Int64
}

func (c *closeCounter) Close() error {
	c.once.Do(func() { c.n.Add(1) })
	return c.ReadCloser.Close()
}

// newClient returns a client whose transport runs p over a counting
// transport; both are cleaned up with t.
func newClient(t *testing.T, p *resilience.Pipeline[*http.Response]) (*http.Client, *countingTransport) {
	t.Helper()
	ct := &countingTransport{base: &http.Transport{}}
	client := &http.Client{Transport: NewTransport(ct, p, TransportConfig{})}
	t.Cleanup(client.CloseIdleConnections)
	return client, ct
}

func mustPipeline[T any](t *testing.T, stages ...resilience.Stage) *resilience.Pipeline[T] {
	t.Helper()
	p, err := resilience.New[T](stages...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func retryPolicy(attempts int) retry.Policy {
	return retry.Policy{
		MaxAttempts: attempts,
		Backoff:     retry.Backoff{Kind: retry.KindConstant, Initial: time.Millisecond},
		Pushback:    RetryAfterPushback,
	}
}

// readAll reads and closes resp's body.
func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestTransportRetriesAndReplaysBody(t *testing.T) {
	const payload = "the request body"
	var (
		mu     sync.Mutex
		bodies []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		n := len(bodies)
		mu.Unlock()
		if n < 3 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "busy %d", n)
			return
		}
		fmt.Fprint(w, "ok")
	}))
	defer srv.Close()
	client, ct := newClient(t, mustPipeline[*http.Response](t, resilience.Retry(retryPolicy(3))))

	req, err := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Test", "1")
	req.Header.Set("Idempotency-Key", "order-1") // POST may be sent again
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, want 200", resp.StatusCode)
	}
	if got := readAll(t, resp); got != "ok" {
		t.Errorf("body = %q, want ok", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 3 {
		t.Fatalf("server saw %d requests, want 3", len(bodies))
	}
	for i, b := range bodies {
		if b != payload {
			t.Errorf("request %d body = %q, want %q", i, b, payload)
		}
	}
	if len(req.Header) != 2 || req.Header.Get("X-Test") != "1" {
		t.Errorf("caller's request header changed: %v", req.Header)
	}
	if o, c := ct.opened.Load(), ct.closed.Load(); o != 3 || c != 3 {
		t.Errorf("responses opened %d, closed %d; want 3, 3", o, c)
	}
}

func TestTransportNonIdempotentRequestIsSentOnce(t *testing.T) {
	tests := []struct {
		method, key string
		any         bool
		want        int64
	}{
		{http.MethodPost, "", false, 1},
		{http.MethodPatch, "", false, 1},
		{http.MethodPost, "Idempotency-Key", false, 3},
		{http.MethodPost, "X-Idempotency-Key", false, 3},
		{http.MethodPost, "", true, 3},
		{http.MethodPut, "", false, 3},
		{http.MethodDelete, "", false, 3},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/key=%s/any=%v", tt.method, tt.key, tt.any), func(t *testing.T) {
			var hits atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				hits.Add(1)
				w.WriteHeader(http.StatusServiceUnavailable)
			}))
			defer srv.Close()
			ct := &countingTransport{base: &http.Transport{}}
			client := &http.Client{Transport: NewTransport(ct, mustPipeline[*http.Response](t, resilience.Retry(retryPolicy(3))), TransportConfig{RetryNonIdempotent: tt.any})}
			defer client.CloseIdleConnections()
			req, err := http.NewRequest(tt.method, srv.URL, strings.NewReader("body"))
			if err != nil {
				t.Fatal(err)
			}
			if tt.key != "" {
				req.Header.Set(tt.key, "k1")
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("status = %d, want 503", resp.StatusCode)
			}
			if n := hits.Load(); n != tt.want {
				t.Errorf("server saw %d requests, want %d", n, tt.want)
			}
		})
	}
}

func TestTransportNonReplayableBodyIsSentOnce(t *testing.T) {
	for _, pushback := range []bool{true, false} {
		t.Run(fmt.Sprintf("pushback=%v", pushback), func(t *testing.T) {
			var hits atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				hits.Add(1)
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprint(w, "unavailable")
			}))
			defer srv.Close()
			pol := retryPolicy(3)
			if !pushback {
				pol.Pushback = nil
			}
			client, ct := newClient(t, mustPipeline[*http.Response](t, resilience.Retry(pol)))

			req, err := http.NewRequest(http.MethodPost, srv.URL, io.NopCloser(strings.NewReader("once")))
			if err != nil {
				t.Fatal(err)
			}
			if req.GetBody != nil {
				t.Fatal("GetBody set; the test needs a non-replayable body")
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("status = %d, want 503", resp.StatusCode)
			}
			if got := readAll(t, resp); got != "unavailable" {
				t.Errorf("body = %q", got)
			}
			if n := hits.Load(); n != 1 {
				t.Errorf("server saw %d requests, want 1", n)
			}
			if o, c := ct.opened.Load(), ct.closed.Load(); o != 1 || c != 1 {
				t.Errorf("responses opened %d, closed %d; want 1, 1", o, c)
			}
		})
	}
}

func TestTransportReturnsLastResponseWhenGivingUp(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		w.Header().Set("X-Attempt", fmt.Sprint(n))
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "down %d", n)
	}))
	defer srv.Close()
	client, ct := newClient(t, mustPipeline[*http.Response](t, resilience.Retry(retryPolicy(3))))

	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("X-Attempt") != "3" {
		t.Errorf("got status %d of attempt %s, want 503 of attempt 3", resp.StatusCode, resp.Header.Get("X-Attempt"))
	}
	if got := readAll(t, resp); got != "down 3" {
		t.Errorf("body = %q, want %q", got, "down 3")
	}
	if o, c := ct.opened.Load(), ct.closed.Load(); o != 3 || c != 3 {
		t.Errorf("responses opened %d, closed %d; want 3, 3", o, c)
	}
}

func TestTransportBreakerOpens(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer srv.Close()
	b, err := circuitbreaker.New(circuitbreaker.Config{WindowSize: 2, MinimumCalls: 2, OpenDuration: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	client, ct := newClient(t, mustPipeline[*http.Response](t, resilience.CircuitBreaker(b)))

	for range 2 {
		resp, err := client.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusBadGateway {
			t.Errorf("status = %d, want 502", resp.StatusCode)
		}
		readAll(t, resp)
	}
	resp, err := client.Get(srv.URL)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("got status %d, want an error", resp.StatusCode)
	}
	if !errors.Is(err, circuitbreaker.ErrOpen) {
		t.Errorf("err = %v, want circuitbreaker.ErrOpen", err)
	}
	if n := hits.Load(); n != 2 {
		t.Errorf("server saw %d requests, want 2", n)
	}
	if o, c := ct.opened.Load(), ct.closed.Load(); o != 2 || c != 2 {
		t.Errorf("responses opened %d, closed %d; want 2, 2", o, c)
	}
}

func TestTransportRejectedRequestClosesBody(t *testing.T) {
	b, err := circuitbreaker.New(circuitbreaker.Config{})
	if err != nil {
		t.Fatal(err)
	}
	b.ForceOpen()
	rt := NewTransport(&countingTransport{base: &http.Transport{}}, mustPipeline[*http.Response](t, resilience.CircuitBreaker(b)), TransportConfig{})
	var closed atomic.Int64
	body := &closeCounter{ReadCloser: io.NopCloser(strings.NewReader("x")), n: &closed}
	req := httptest.NewRequest(http.MethodPost, "http://example.invalid/", body)
	if _, err := rt.RoundTrip(req); !errors.Is(err, circuitbreaker.ErrOpen) {
		t.Errorf("err = %v, want ErrOpen", err)
	}
	if closed.Load() != 1 {
		t.Error("request body not closed")
	}
}

func TestTransportCustomStatus(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable) // not retryable here
	}))
	defer srv.Close()
	ct := &countingTransport{base: &http.Transport{}}
	client := &http.Client{Transport: NewTransport(ct, mustPipeline[*http.Response](t, resilience.Retry(retryPolicy(3))),
		TransportConfig{RetryableStatus: []int{http.StatusInternalServerError}})}
	defer client.CloseIdleConnections()
	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if resp.StatusCode != http.StatusServiceUnavailable || hits.Load() != 2 {
		t.Errorf("status %d after %d requests, want 503 after 2", resp.StatusCode, hits.Load())
	}
}

func TestRetryAfterPushback(t *testing.T) {
	tests := []struct {
		name           string
		err            error
		d              time.Duration
		retry, present bool
	}{
		{"plain", errors.New("x"), 0, false, false},
		{"no header", &StatusError{StatusCode: 503}, 0, false, false},
		{"header", fmt.Errorf("w: %w", &StatusError{StatusCode: 503, RetryAfter: 2 * time.Second, HasRetryAfter: true}), 2 * time.Second, true, true},
		{"zero", &StatusError{StatusCode: 429, HasRetryAfter: true}, 0, true, true},
		{"no replay", &noReplayError{err: &StatusError{StatusCode: 503, HasRetryAfter: true}}, 0, false, true},
	}
	for _, tt := range tests {
		d, r, p := RetryAfterPushback(tt.err)
		if d != tt.d || r != tt.retry || p != tt.present {
			t.Errorf("%s: got (%v, %v, %v), want (%v, %v, %v)", tt.name, d, r, p, tt.d, tt.retry, tt.present)
		}
	}
}

// TestTransportHedging sends a hedged attempt when the first is slow; the
// hedge's response is returned, the straggler is cancelled, and no response
// is left open.
func TestTransportHedging(t *testing.T) {
	var hits atomic.Int64
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			<-release // the first attempt is a straggler that ignores cancellation
		}
		fmt.Fprintf(w, "answer %s", r.Method)
	}))
	defer srv.Close()
	defer close(release)
	h, err := hedge.New(hedge.Config{Delay: time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	client, ct := newClient(t, mustPipeline[*http.Response](t, resilience.Hedge(h)))
	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, resp); got != "answer GET" {
		t.Errorf("body = %q", got)
	}
	if n := hits.Load(); n != 2 {
		t.Errorf("server saw %d requests, want 2", n)
	}
	// A non-idempotent request is never hedged.
	resp, err = client.Post(srv.URL, "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, resp); got != "answer POST" || hits.Load() != 3 {
		t.Errorf("POST: body %q, server saw %d requests; want answer POST, 3", got, hits.Load())
	}
	release <- struct{}{} // let the straggler's handler finish
	for deadline := time.Now().Add(10 * time.Second); ct.opened.Load() != ct.closed.Load(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("responses opened %d, closed %d: a late response was left open", ct.opened.Load(), ct.closed.Load())
		}
	}
}

// stallFirst is a base transport whose first round trip ignores its
// context and answers only when released.
type stallFirst struct {
	calls   atomic.Int64
	release chan struct{}
	closed  atomic.Int64
}

func (s *stallFirst) RoundTrip(r *http.Request) (*http.Response, error) {
	n := s.calls.Add(1)
	if n == 1 {
		<-s.release
	}
	body := &closeCounter{ReadCloser: io.NopCloser(strings.NewReader(fmt.Sprint("attempt ", n))), n: &s.closed}
	return &http.Response{StatusCode: http.StatusOK, Body: body, Header: http.Header{}, Request: r}, nil
}

// TestTransportHedgingClosesLateWinner has both attempts succeed, the
// straggler after the hedge: the caller gets the hedge's response and the
// straggler's is closed for it.
func TestTransportHedgingClosesLateWinner(t *testing.T) {
	h, err := hedge.New(hedge.Config{Delay: time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	base := &stallFirst{release: make(chan struct{})}
	rt := NewTransport(base, mustPipeline[*http.Response](t, resilience.Hedge(h)), TransportConfig{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		// The straggler answers once the hedge has been sent.
		for base.calls.Load() < 2 {
			time.Sleep(time.Millisecond)
		}
		close(base.release)
	}()
	resp, err := rt.RoundTrip(httptest.NewRequest(http.MethodGet, "http://example.invalid/", nil))
	<-done
	if err != nil {
		t.Fatal(err)
	}
	got := readAll(t, resp)
	if got != "attempt 2" && got != "attempt 1" {
		t.Errorf("body = %q", got)
	}
	for deadline := time.Now().Add(10 * time.Second); base.closed.Load() != 2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of 2 responses closed: the losing attempt's response was left open", base.closed.Load())
		}
	}
}
