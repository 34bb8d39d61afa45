package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/problem"
	"github.com/cairnhq/cairn/resilience"
	"github.com/cairnhq/cairn/resilience/resiliencehttp"
)

// ClientConfig configures a Client. BaseURL is required.
type ClientConfig struct {
	// HTTPClient sends the requests: its Transport is the base of every
	// attempt, and its Timeout bounds a whole call, retries included.
	// Default: a client with http.DefaultTransport and no timeout.
	HTTPClient *http.Client
	// BaseURL is the provider's URL, such as "http://127.0.0.1:8089".
	BaseURL string
	// Writes runs charges and refunds: typically a retry with a retry
	// budget, a circuit breaker and a timeout. Writes are sent again only
	// because they carry an Idempotency-Key (resiliencehttp.NewTransport
	// sends a POST without one at most once). Default nil: one attempt,
	// no policies.
	Writes resilience.Executor[*http.Response]
	// Reads runs charge look-ups: typically Writes' policies plus a
	// hedge, since reads are idempotent. Default nil: one attempt, no
	// policies.
	Reads resilience.Executor[*http.Response]
	// TracerProvider receives a client span per attempt. Default: the
	// OpenTelemetry global TracerProvider.
	TracerProvider trace.TracerProvider
	// MeterProvider receives otelhttp's client metrics. Default: the
	// OpenTelemetry global MeterProvider.
	MeterProvider metric.MeterProvider
}

// Client calls a payment provider. It is safe for concurrent use.
type Client struct {
	base          *url.URL
	writes, reads *http.Client
	transport     http.RoundTripper
}

// NewClient returns a client of the provider at cfg.BaseURL, or an error if
// the URL is not absolute.
func NewClient(cfg ClientConfig) (*Client, error) {
	u, err := url.Parse(strings.TrimSuffix(cfg.BaseURL, "/"))
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("provider: BaseURL %q is not an absolute URL", cfg.BaseURL)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	tp, mp := cfg.TracerProvider, cfg.MeterProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	// One client span per attempt, so that retries and hedges show on
	// the trace as the requests they are.
	traced := otelhttp.NewTransport(base,
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithMeterProvider(mp),
		otelhttp.WithPropagators(otel.GetTextMapPropagator()),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			return "provider " + r.Method + " " + r.URL.Path
		}))
	c := &Client{base: u, transport: base}
	w, r := *hc, *hc
	w.Transport = resiliencehttp.NewTransport(traced, cfg.Writes, resiliencehttp.TransportConfig{})
	r.Transport = resiliencehttp.NewTransport(traced, cfg.Reads, resiliencehttp.TransportConfig{})
	c.writes, c.reads = &w, &r
	return c, nil
}

// CloseIdleConnections closes the idle connections of the base transport.
func (c *Client) CloseIdleConnections() {
	if t, ok := c.transport.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
}

// Charge charges req with idempotency key key: sent again with the same
// key, it returns the same charge. A declined charge is a result, not an
// error. Errors are *ProviderError.
func (c *Client) Charge(ctx context.Context, key string, req ChargeRequest) (Charge, error) {
	var out Charge
	err := c.do(ctx, c.writes, http.MethodPost, "/v1/charges", nil, key, req, &out)
	return out, err
}

// Refund refunds the charge chargeID in full with idempotency key key:
// sent again with the same key, it returns the same refund. Refunding a
// declined or already refunded charge fails with status 409. Errors are
// *ProviderError.
func (c *Client) Refund(ctx context.Context, key, chargeID string) (Refund, error) {
	var out Refund
	err := c.do(ctx, c.writes, http.MethodPost, "/v1/refunds", nil, key, refundRequest{ChargeID: chargeID}, &out)
	return out, err
}

// GetCharge returns the charge id; an unknown id fails with an error that
// matches ErrNotFound.
func (c *Client) GetCharge(ctx context.Context, id string) (Charge, error) {
	var out Charge
	err := c.do(ctx, c.reads, http.MethodGet, "/v1/charges/"+url.PathEscape(id), nil, "", nil, &out)
	return out, err
}

// FindCharge returns the charge made with idempotency key key; when there
// is none (the charge request never reached the provider, or was refused),
// the error matches ErrNotFound.
func (c *Client) FindCharge(ctx context.Context, key string) (Charge, error) {
	var out Charge
	err := c.do(ctx, c.reads, http.MethodGet, "/v1/charges", url.Values{"idempotency_key": {key}}, "", nil, &out)
	return out, err
}

// do sends one call with hc and decodes its 200 response into out.
func (c *Client) do(ctx context.Context, hc *http.Client, method, path string, query url.Values, key string, body, out any) error {
	op := method + " " + path
	if query != nil {
		op = method + " " + path + "?" + query.Encode()
	}
	u := *c.base
	u.Path += path
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return &ProviderError{Op: op, Err: err}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return &ProviderError{Op: op, Err: err}
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := hc.Do(req)
	if err != nil {
		// http.Client wraps the transport's error in a *url.Error; keep
		// the cause (an open breaker, a timeout) for errors.Is.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return &ProviderError{Op: op, Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return &ProviderError{Op: op, Err: fmt.Errorf("read response: %w", err)}
	}
	if resp.StatusCode != http.StatusOK {
		pe := &ProviderError{Op: op, Status: resp.StatusCode}
		var d problem.Details
		if json.Unmarshal(data, &d) == nil {
			pe.Title, pe.Detail = d.Title, d.Detail
		}
		return pe
	}
	if err := json.Unmarshal(data, out); err != nil {
		return &ProviderError{Op: op, Err: fmt.Errorf("decode response: %w", err)}
	}
	return nil
}
