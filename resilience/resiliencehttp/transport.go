package resiliencehttp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/cairnhq/cairn/resilience"
	"github.com/cairnhq/cairn/resilience/retry"
)

// DefaultRetryableStatus are the status codes [NewTransport] turns into a
// [*StatusError] when TransportConfig.RetryableStatus is empty: 429 Too Many
// Requests, 502 Bad Gateway, 503 Service Unavailable and 504 Gateway
// Timeout.
var DefaultRetryableStatus = []int{
	http.StatusTooManyRequests,
	http.StatusBadGateway,
	http.StatusServiceUnavailable,
	http.StatusGatewayTimeout,
}

// bufferLimit is how much of a retryable response's body the transport
// reads into memory, so that the connection is released while the pipeline
// retries and the body can still be returned intact.
const bufferLimit = 64 << 10

// TransportConfig configures [NewTransport].
type TransportConfig struct {
	// RetryableStatus are the status codes that fail an attempt with a
	// [*StatusError]. Default [DefaultRetryableStatus].
	RetryableStatus []int
	// RetryNonIdempotent lets requests of any method be sent more than
	// once. Set it only when the server deduplicates them. Default false:
	// POST, PATCH and CONNECT requests without an Idempotency-Key or
	// X-Idempotency-Key header are sent once.
	RetryNonIdempotent bool
}

// NewTransport returns an http.RoundTripper that sends each request through
// p (a [*resilience.Pipeline], or a handle that swaps pipelines on
// reload), each attempt with base (http.DefaultTransport if nil). A nil p is a
// pipeline without stages.
//
// Each attempt sends a clone of the request, so the caller's request is
// never modified. The first attempt sends the request's Body; later attempts
// send a fresh body from Request.GetBody. A request that must not be sent
// twice is sent at most once: one whose method is not idempotent (POST,
// PATCH, CONNECT) and that carries no Idempotency-Key or X-Idempotency-Key
// header, the rule net/http's Transport uses for its own retries, unless
// cfg.RetryNonIdempotent is set; and one whose body cannot be replayed
// (Body set, GetBody nil; http.NewRequest sets GetBody for *bytes.Buffer,
// *bytes.Reader and *strings.Reader bodies). Such a request's first
// attempt's error is marked so that [RetryAfterPushback]
// stops a retry, and if a retry stage without that pushback retries anyway,
// the later attempts fail at once with the same error, without sending
// anything. Either way the caller gets the first attempt's result.
//
// A response whose status is in cfg.RetryableStatus fails its attempt with
// a [*StatusError] carrying the response, so retry and circuit breaker
// stages see a failure. Up to 64 KiB of its body is read into memory to
// free the connection. When the pipeline fails and an attempt got such a
// response, RoundTrip returns the last one with a nil error, its body
// intact; otherwise it returns the pipeline's error (for instance one
// matching circuitbreaker.ErrOpen). The body of every other response is
// closed.
//
// A resilience.Hedge stage in p sends hedged attempts of idempotent
// requests concurrently: the first success is returned, and the responses
// of attempts that also succeeded, before or after it, are closed. A
// request that must not be sent twice is not hedged (its hedged attempts
// fail at once).
//
// Each attempt's request context derives from the caller's request
// context, not from the context the pipeline passes to the attempt: a
// Timeout stage bounds the attempt until the response headers arrive, but
// reading the body of the returned response is bounded only by the
// caller's context. Values the pipeline's stages add to the context are
// therefore not seen by base.
//
// The transport is safe for concurrent use if base and p are. Its
// CloseIdleConnections method calls base's, if base has one.
func NewTransport(base http.RoundTripper, p resilience.Executor[*http.Response], cfg TransportConfig) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	if pp, ok := p.(*resilience.Pipeline[*http.Response]); p == nil || ok && pp == nil {
		p, _ = resilience.New[*http.Response]() // no stages cannot fail
	}
	codes := cfg.RetryableStatus
	if len(codes) == 0 {
		codes = DefaultRetryableStatus
	}
	return &transport{base: base, p: p, retryable: slices.Clone(codes), anyMethod: cfg.RetryNonIdempotent}
}

type transport struct {
	base      http.RoundTripper
	p         resilience.Executor[*http.Response]
	retryable []int
	anyMethod bool
}

// errLate is the result of an attempt that succeeded after RoundTrip
// returned; only a hedging stage runs such attempts, and drops their results.
var errLate = errors.New("resiliencehttp: response arrived after the call ended")

// idempotent reports whether req may be sent twice, by the rule net/http's
// own Transport uses for retries: its method is idempotent (RFC 9110,
// section 9.2.2) or it carries an Idempotency-Key or X-Idempotency-Key
// header.
func idempotent(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	_, key := req.Header["Idempotency-Key"]
	_, xkey := req.Header["X-Idempotency-Key"]
	return key || xkey
}

// CloseIdleConnections closes the idle connections of the base transport,
// if it has such a method.
func (t *transport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// RoundTrip runs req through the pipeline.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	c := &call{
		t:   t,
		req: req,
		replayable: (req.Body == nil || req.Body == http.NoBody || req.GetBody != nil) &&
			(t.anyMethod || idempotent(req)),
	}
	resp, err := t.p.Execute(req.Context(), c.attempt)

	c.mu.Lock()
	c.done = true
	last := c.last
	c.last = nil
	sent := c.sent
	ok := c.ok
	c.ok = nil
	c.mu.Unlock()
	// A hedging stage may have let more than one attempt succeed: close
	// the responses the caller does not get.
	for _, r := range ok {
		if r != resp {
			discard(r)
		}
	}
	if !sent && req.Body != nil {
		req.Body.Close() // a RoundTripper must close the body, even on errors
	}

	if err == nil {
		if last != nil && last != resp {
			discard(last)
		}
		if resp == nil {
			return nil, errors.New("resiliencehttp: pipeline returned neither a response nor an error")
		}
		return resp, nil
	}
	if last != nil {
		return last, nil
	}
	return nil, err
}

// call is the state of one RoundTrip across its attempts.
type call struct {
	t          *transport
	req        *http.Request
	replayable bool

	mu       sync.Mutex
	attempts int
	sent     bool             // req.Body was handed to base
	firstErr error            // the error of the only attempt of a non-replayable request
	last     *http.Response   // the last retryable-status response, not yet discarded
	ok       []*http.Response // the successful responses, one unless attempts ran concurrently
	done     bool             // RoundTrip has returned
}

// attempt sends one clone of the request.
func (c *call) attempt(ctx context.Context) (*http.Response, error) {
	c.mu.Lock()
	n := c.attempts
	c.attempts++
	if n > 0 && !c.replayable {
		err := c.firstErr
		c.mu.Unlock()
		if err == nil { // the first attempt succeeded; a custom policy asked again
			err = &noReplayError{err: errors.New("resiliencehttp: request cannot be sent again")}
		}
		return nil, err
	}
	body := c.req.Body
	if n == 0 {
		c.sent = true
	}
	c.mu.Unlock()

	if n > 0 && body != nil && body != http.NoBody {
		b, err := c.req.GetBody()
		if err != nil {
			return nil, err
		}
		body = b
	}

	// The attempt's context follows the caller's, and the pipeline's until
	// the response headers arrive; it ends when the body is closed.
	actx, cancel := context.WithCancel(c.req.Context())
	stop := context.AfterFunc(ctx, cancel)
	r := c.req.Clone(actx)
	r.Body = body
	resp, err := c.t.base.RoundTrip(r)
	stop()
	if err != nil {
		cancel()
		return nil, c.fail(n, err)
	}
	if resp.Body == nil {
		resp.Body = http.NoBody
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	if !slices.Contains(c.t.retryable, resp.StatusCode) {
		c.mu.Lock()
		if c.done { // a hedged attempt that lost: nobody will read it
			c.mu.Unlock()
			discard(resp)
			return nil, errLate
		}
		c.ok = append(c.ok, resp)
		c.mu.Unlock()
		return resp, nil
	}

	ra, ok := retry.RetryAfter(resp.Header, time.Now())
	buffer(resp)
	c.mu.Lock()
	prev := c.last
	done := c.done
	if !done {
		c.last = resp
	}
	c.mu.Unlock()
	if prev != nil {
		discard(prev)
	}
	if done {
		discard(resp)
	}
	return nil, c.fail(n, &StatusError{StatusCode: resp.StatusCode, RetryAfter: ra, HasRetryAfter: ok, Response: resp})
}

// fail marks the error of the first attempt of a non-replayable request.
func (c *call) fail(n int, err error) error {
	if c.replayable || n > 0 {
		return err
	}
	err = &noReplayError{err: err}
	c.mu.Lock()
	c.firstErr = err
	c.mu.Unlock()
	return err
}

// buffer reads up to bufferLimit of resp's body; if that is all of it, the
// original body is closed, freeing the connection, and replaced by the
// buffered bytes.
func buffer(resp *http.Response) {
	data, err := io.ReadAll(io.LimitReader(resp.Body, bufferLimit+1))
	if err == nil && len(data) <= bufferLimit {
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(data))
		return
	}
	// Too long, or a read error: keep the prefix and the rest of the
	// original body, which the reader sees in order.
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(data), resp.Body), resp.Body}
}

// discard drains a little of resp's body, so its connection can be reused,
// and closes it.
func discard(resp *http.Response) {
	_, _ = io.CopyN(io.Discard, resp.Body, bufferLimit)
	resp.Body.Close()
}

// cancelBody ends an attempt's context when the response body is closed.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}
