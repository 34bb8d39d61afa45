package provider_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/cairnhq/cairn/internal/fault"
	"github.com/cairnhq/cairn/internal/shop/payment/provider"
	"github.com/cairnhq/cairn/resilience"
	"github.com/cairnhq/cairn/resilience/circuitbreaker"
)

// env is a provider on httptest and a client of it.
type env struct {
	srv    *provider.Server
	hs     *httptest.Server
	client *provider.Client
	pipes  *provider.Pipelines
	spans  *tracetest.SpanRecorder
}

// newEnv starts a provider with cfg, wrapping its handler with wrap if
// set, and a client with the default pipelines.
func newEnv(t *testing.T, cfg provider.ServerConfig, wrap func(http.Handler) http.Handler) *env {
	t.Helper()
	e := &env{srv: provider.NewServer(cfg), spans: tracetest.NewSpanRecorder()}
	h := e.srv.Handler()
	if wrap != nil {
		h = wrap(h)
	}
	e.hs = httptest.NewServer(h)
	t.Cleanup(e.hs.Close)
	mp := sdkmetric.NewMeterProvider()
	t.Cleanup(func() { _ = mp.Shutdown(t.Context()) })
	var err error
	if e.pipes, err = provider.DefaultPipelines(mp); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.pipes.Close() })
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(e.spans))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	e.client, err = provider.NewClient(provider.ClientConfig{
		HTTPClient: &http.Client{Transport: &http.Transport{}}, BaseURL: e.hs.URL,
		Writes: e.pipes.Writes, Reads: e.pipes.Reads, TracerProvider: tp, MeterProvider: mp,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.client.CloseIdleConnections)
	return e
}

var visa = provider.ChargeRequest{AmountMinor: 1250, Currency: "EUR", PaymentMethod: provider.TokenVisa}

func TestChargeIdempotent(t *testing.T) {
	e := newEnv(t, provider.ServerConfig{}, nil)
	ctx := t.Context()
	first, err := e.client.Charge(ctx, "k1", visa)
	if err != nil {
		t.Fatal(err)
	}
	if first.Status != provider.StatusCaptured || first.AmountMinor != 1250 || first.IdempotencyKey != "k1" {
		t.Errorf("Charge = %+v, want captured 1250 with key k1", first)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			again, err := e.client.Charge(ctx, "k1", visa)
			if err != nil {
				t.Error(err)
				return
			}
			if diff := cmp.Diff(first, again); diff != "" {
				t.Errorf("Charge again (-first +again):\n%s", diff)
			}
		})
	}
	wg.Wait()
	if n := e.srv.CaptureCount("k1"); n != 1 {
		t.Errorf("CaptureCount(k1) = %d, want 1", n)
	}
	if n := len(e.srv.Charges()); n != 1 {
		t.Errorf("len(Charges()) = %d, want 1", n)
	}

	other := visa
	other.AmountMinor = 999
	_, err = e.client.Charge(ctx, "k1", other)
	pe, ok := errors.AsType[*provider.ProviderError](err)
	if !ok || pe.Status != http.StatusUnprocessableEntity || !strings.Contains(pe.Detail, "amount_minor 999, first sent as 1250") {
		t.Fatalf("Charge(k1, other amount) = %v, want 422 naming amount_minor", err)
	}
	if pe.Retryable() {
		t.Errorf("422 Retryable() = true, want false")
	}

	got, err := e.client.GetCharge(ctx, first.ID)
	if err != nil || got.ID != first.ID {
		t.Errorf("GetCharge(%s) = %+v, %v", first.ID, got, err)
	}
	found, err := e.client.FindCharge(ctx, "k1")
	if err != nil || found.ID != first.ID {
		t.Errorf("FindCharge(k1) = %+v, %v", found, err)
	}
	if _, err := e.client.FindCharge(ctx, "nope"); !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("FindCharge(nope) = %v, want ErrNotFound", err)
	}
	if _, err := e.client.GetCharge(ctx, "ch_nope"); !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("GetCharge(ch_nope) = %v, want ErrNotFound", err)
	}
}

func TestChargeErrors(t *testing.T) {
	e := newEnv(t, provider.ServerConfig{}, nil)
	for _, tc := range []struct {
		name   string
		key    string
		req    provider.ChargeRequest
		status int
		detail string
	}{
		{"no key", "", visa, 400, "Idempotency-Key"},
		{"zero amount", "a", provider.ChargeRequest{Currency: "EUR", PaymentMethod: "tok_visa"}, 400, "amount_minor"},
		{"bad currency", "b", provider.ChargeRequest{AmountMinor: 1, Currency: "eur", PaymentMethod: "tok_visa"}, 400, "currency"},
		{"no token", "c", provider.ChargeRequest{AmountMinor: 1, Currency: "EUR"}, 400, "payment_method"},
		{"card number", "d", provider.ChargeRequest{AmountMinor: 1, Currency: "EUR", PaymentMethod: "4242424242424242"}, 400, "not a token"},
		{"expired", "e", provider.ChargeRequest{AmountMinor: 1, Currency: "EUR", PaymentMethod: provider.TokenExpired}, 402, "expired"},
		{"revoked", "f", provider.ChargeRequest{AmountMinor: 1, Currency: "EUR", PaymentMethod: provider.TokenRevoked}, 402, "revoked"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.client.Charge(t.Context(), tc.key, tc.req)
			pe, ok := errors.AsType[*provider.ProviderError](err)
			if !ok || pe.Status != tc.status || !strings.Contains(pe.Detail, tc.detail) {
				t.Fatalf("Charge = %v, want %d naming %q", err, tc.status, tc.detail)
			}
			if provider.Retryable(err) {
				t.Errorf("Retryable(%v) = true, want false", err)
			}
		})
	}
	if n := len(e.srv.Charges()); n != 0 {
		t.Errorf("len(Charges()) = %d, want 0", n)
	}
}

func TestDecline(t *testing.T) {
	e := newEnv(t, provider.ServerConfig{DeclineRate: 1}, nil)
	ctx := t.Context()
	for _, tc := range []struct{ token, reason string }{
		{provider.TokenDecline, "card declined"},
		{provider.TokenVisa, "insufficient funds"},
	} {
		c, err := e.client.Charge(ctx, tc.token, provider.ChargeRequest{AmountMinor: 5, Currency: "USD", PaymentMethod: tc.token})
		if err != nil {
			t.Fatal(err)
		}
		if c.Status != provider.StatusDeclined || c.DeclineReason != tc.reason {
			t.Errorf("Charge(%s) = %s %q, want declined %q", tc.token, c.Status, c.DeclineReason, tc.reason)
		}
		if n := e.srv.CaptureCount(tc.token); n != 0 {
			t.Errorf("CaptureCount(%s) = %d, want 0", tc.token, n)
		}
		_, err = e.client.Refund(ctx, "r-"+tc.token, c.ID)
		if pe, ok := errors.AsType[*provider.ProviderError](err); !ok || pe.Status != http.StatusConflict || !strings.Contains(pe.Detail, "declined") {
			t.Errorf("Refund(declined) = %v, want 409 naming the decline", err)
		}
	}
}

func TestRefundIdempotent(t *testing.T) {
	e := newEnv(t, provider.ServerConfig{}, nil)
	ctx := t.Context()
	c, err := e.client.Charge(ctx, "k", visa)
	if err != nil {
		t.Fatal(err)
	}
	r1, err := e.client.Refund(ctx, "k-refund", c.ID)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := e.client.Refund(ctx, "k-refund", c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r1 != r2 || r1.ChargeID != c.ID || r1.AmountMinor != c.AmountMinor {
		t.Errorf("Refund twice = %+v, %+v; want the same refund of %s", r1, r2, c.ID)
	}
	if n := e.srv.RefundCount(c.ID); n != 1 {
		t.Errorf("RefundCount = %d, want 1", n)
	}
	if _, err := e.client.Refund(ctx, "other-key", c.ID); !isStatus(err, http.StatusConflict) {
		t.Errorf("Refund(other key) = %v, want 409", err)
	}
	if _, err := e.client.Refund(ctx, "k-refund", "ch_other"); !isStatus(err, http.StatusUnprocessableEntity) {
		t.Errorf("Refund(same key, other charge) = %v, want 422", err)
	}
	if _, err := e.client.Refund(ctx, "x", "ch_nope"); !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("Refund(unknown charge) = %v, want ErrNotFound", err)
	}
	got, err := e.client.GetCharge(ctx, c.ID)
	if err != nil || !got.Refunded || got.RefundID != r1.ID {
		t.Errorf("GetCharge after refund = %+v, %v; want refunded by %s", got, err, r1.ID)
	}
}

func isStatus(err error, status int) bool {
	pe, ok := errors.AsType[*provider.ProviderError](err)
	return ok && pe.Status == status
}

// TestFaultsRetried: the first two attempts meet an injected 503, the
// retry's third succeeds, and the provider charged once.
func TestFaultsRetried(t *testing.T) {
	inj := fault.New("provider")
	if err := inj.Set(fault.Settings{ErrorRate: 1}); err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int32
	e := newEnv(t, provider.ServerConfig{Faults: inj}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(w, r)
			if hits.Add(1) == 2 {
				_ = inj.Set(fault.Settings{}) // heal after two failures
			}
		})
	})
	c, err := e.client.Charge(t.Context(), "k", visa)
	if err != nil {
		t.Fatal(err)
	}
	if c.Status != provider.StatusCaptured {
		t.Errorf("Status = %s, want captured", c.Status)
	}
	if n := hits.Load(); n != 3 {
		t.Errorf("requests = %d, want 3", n)
	}
	if failed, _ := inj.Counts(); failed != 2 {
		t.Errorf("injected failures = %d, want 2", failed)
	}
	if n := e.srv.CaptureCount("k"); n != 1 {
		t.Errorf("CaptureCount = %d, want 1", n)
	}
	// Every attempt is a client span.
	var attempts int
	for _, s := range e.spans.Ended() {
		if s.Name() == "provider POST /v1/charges" {
			attempts++
		}
	}
	if attempts != 3 {
		t.Errorf("client spans = %d, want 3", attempts)
	}
}

// TestBreakerOpens: a provider that always fails gets 503s (retryable,
// with the provider's problem details) until the breaker opens, and then
// no more requests.
func TestBreakerOpens(t *testing.T) {
	inj := fault.New("provider")
	if err := inj.Set(fault.Settings{ErrorRate: 1}); err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int32
	e := newEnv(t, provider.ServerConfig{Faults: inj}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			h.ServeHTTP(w, r)
		})
	})
	ctx := t.Context()
	var err error
	for i := 0; i < 20; i++ {
		_, err = e.client.Charge(ctx, "k", visa)
		if errors.Is(err, circuitbreaker.ErrOpen) {
			break
		}
		pe, ok := errors.AsType[*provider.ProviderError](err)
		if !ok || pe.Status != http.StatusServiceUnavailable || !pe.Retryable() {
			t.Fatalf("Charge %d = %v, want a retryable 503", i, err)
		}
	}
	if !errors.Is(err, circuitbreaker.ErrOpen) || !provider.Retryable(err) || !resilience.IsOverload(err) {
		t.Fatalf("Charge = %v, want a retryable open breaker", err)
	}
	if s := e.pipes.Breaker.State(); s != circuitbreaker.StateOpen {
		t.Errorf("breaker state = %v, want open", s)
	}
	before := hits.Load()
	if _, err := e.client.FindCharge(ctx, "k"); !errors.Is(err, circuitbreaker.ErrOpen) {
		t.Errorf("FindCharge = %v, want the open breaker", err)
	}
	if hits.Load() != before {
		t.Errorf("requests after the breaker opened = %d, want 0", hits.Load()-before)
	}
	if n := len(e.srv.Charges()); n != 0 {
		t.Errorf("len(Charges()) = %d, want 0", n)
	}
}

// TestHedgedRead: the first look-up hangs until cancelled; the hedge sent
// after the hedger's delay answers, and the first attempt is cancelled.
func TestHedgedRead(t *testing.T) {
	var gets atomic.Int32
	cancelled := make(chan struct{})
	e := newEnv(t, provider.ServerConfig{}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && gets.Add(1) == 1 {
				<-r.Context().Done()
				close(cancelled)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	ctx := t.Context()
	c, err := e.client.Charge(ctx, "k", visa)
	if err != nil {
		t.Fatal(err)
	}
	found, err := e.client.FindCharge(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if found.ID != c.ID {
		t.Errorf("FindCharge = %s, want %s", found.ID, c.ID)
	}
	<-cancelled
	if n := gets.Load(); n != 2 {
		t.Errorf("GET requests = %d, want 2", n)
	}
}

func TestNewClientBadURL(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:80", "/v1"} {
		if _, err := provider.NewClient(provider.ClientConfig{BaseURL: u}); err == nil {
			t.Errorf("NewClient(%q) = nil error, want one", u)
		}
	}
}
