package payment_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	paymentv1 "github.com/cairnhq/cairn/api/proto/cairn/shop/payment/v1"
	typev1 "github.com/cairnhq/cairn/api/proto/cairn/shop/type/v1"
	"github.com/cairnhq/cairn/internal/fault"
	"github.com/cairnhq/cairn/internal/shop/payment"
	"github.com/cairnhq/cairn/internal/shop/payment/adapters/sqlstore"
	"github.com/cairnhq/cairn/internal/shop/payment/domain"
	"github.com/cairnhq/cairn/internal/shop/payment/internal/testdb"
	"github.com/cairnhq/cairn/internal/shop/payment/provider"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env is a payment service on a database, served over gRPC on a loopback
// socket, calling a simulated provider on httptest.
type env struct {
	tdb       testdb.DB
	psp       *provider.Server
	pspFaults *fault.Injector
	svcFaults *fault.Injector
	pspClient *provider.Client
	client    paymentv1.PaymentServiceClient
	reader    *sdkmetric.ManualReader
	spans     *tracetest.SpanRecorder
	svc       *payment.Service
	// skew moves the service's clock (Config.Now) ahead of time.Now.
	skew atomic.Int64
}

// now is the service's clock: time.Now moved ahead by skew.
func (e *env) now() time.Time { return time.Now().Add(time.Duration(e.skew.Load())) }

func newEnv(t *testing.T, tdb testdb.DB) *env {
	t.Helper()
	ctx := t.Context()
	e := &env{tdb: tdb, pspFaults: fault.New("provider"), svcFaults: fault.New("payment"),
		reader: sdkmetric.NewManualReader(), spans: tracetest.NewSpanRecorder()}
	e.psp = provider.NewServer(provider.ServerConfig{Faults: e.pspFaults})
	hs := httptest.NewServer(e.psp.Handler())
	t.Cleanup(hs.Close)

	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(e.reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(e.spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	pipes, err := provider.DefaultPipelines(mp)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pipes.Close() })
	e.pspClient, err = provider.NewClient(provider.ClientConfig{
		HTTPClient: &http.Client{Transport: &http.Transport{}}, BaseURL: hs.URL,
		Writes: pipes.Writes, Reads: pipes.Reads, TracerProvider: tp, MeterProvider: mp,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.pspClient.CloseIdleConnections)

	svc, err := payment.New(ctx, payment.Config{
		DB: tdb.DB, Dialect: tdb.Dialect, Provider: e.pspClient, Faults: e.svcFaults,
		TracerProvider: tp, MeterProvider: mp, Now: e.now,
		ReconcileInterval: -1, // the tests call Reconcile
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Close() })
	e.svc = svc
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	svc.Register(gs)
	var wg sync.WaitGroup
	wg.Go(func() { _ = gs.Serve(lis) })
	t.Cleanup(func() { gs.Stop(); wg.Wait() })
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	e.client = paymentv1.NewPaymentServiceClient(conn)
	return e
}

// forEachDB runs fn on a fresh env of each database.
func forEachDB(t *testing.T, fn func(t *testing.T, e *env)) {
	for _, tdb := range testdb.All(t) {
		t.Run(tdb.Name, func(t *testing.T) { fn(t, newEnv(t, tdb)) })
	}
}

func idem(saga string) *typev1.Idempotency {
	return &typev1.Idempotency{SagaId: saga, BranchId: "charge"}
}

func chargeReq(saga, token string) *paymentv1.ChargeRequest {
	return &paymentv1.ChargeRequest{
		Idempotency: idem(saga), OrderId: "order-" + saga,
		Amount: &typev1.Money{AmountMinor: 2599, CurrencyCode: "EUR"}, PaymentMethodToken: token,
	}
}

func refundReq(saga string) *paymentv1.RefundRequest {
	return &paymentv1.RefundRequest{Idempotency: idem(saga), OrderId: "order-" + saga, Reason: "checkout compensated"}
}

func paymentID(saga string) string { return domain.Key{SagaID: saga, BranchID: "charge"}.PaymentID() }

// charges returns the cairn.shop.payment.charges counts by outcome.
func (e *env) charges(t *testing.T) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := e.reader.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "cairn.shop.payment.charges" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				v, _ := dp.Attributes.Value(attribute.Key("outcome"))
				out[v.AsString()] += dp.Value
			}
		}
	}
	return out
}

// TestDuplicateChargeChargesOnce: a charge sent again, and eight times at
// once, captures once at the provider and returns the same payment.
func TestDuplicateChargeChargesOnce(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		first, err := e.client.Charge(ctx, chargeReq("s1", provider.TokenVisa))
		if err != nil {
			t.Fatal(err)
		}
		if first.GetStatus() != paymentv1.PaymentStatus_PAYMENT_STATUS_CAPTURED || first.GetPaymentId() != paymentID("s1") {
			t.Fatalf("Charge = %v, want CAPTURED %s", first, paymentID("s1"))
		}
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				again, err := e.client.Charge(ctx, chargeReq("s1", provider.TokenVisa))
				if err != nil {
					t.Error(err)
					return
				}
				if again.GetPaymentId() != first.GetPaymentId() || again.GetStatus() != first.GetStatus() {
					t.Errorf("Charge again = %v, want %v", again, first)
				}
			})
		}
		wg.Wait()
		if n := e.psp.CaptureCount(paymentID("s1")); n != 1 {
			t.Errorf("CaptureCount = %d, want 1", n)
		}
		if n := len(e.psp.Charges()); n != 1 {
			t.Errorf("provider charges = %d, want 1", n)
		}
		got, err := e.client.GetPayment(ctx, &paymentv1.GetPaymentRequest{PaymentId: first.GetPaymentId()})
		if err != nil {
			t.Fatal(err)
		}
		if p := got.GetPayment(); p.GetStatus() != paymentv1.PaymentStatus_PAYMENT_STATUS_CAPTURED ||
			p.GetOrderId() != "order-s1" || p.GetAmount().GetAmountMinor() != 2599 || p.GetAmount().GetCurrencyCode() != "EUR" {
			t.Errorf("GetPayment = %v", p)
		}
		if got := e.charges(t); got["captured"] != 1 {
			t.Errorf("charges metric = %v, want captured 1", got)
		}
		// A span per provider call, with the payment's id.
		var calls int
		for _, s := range e.spans.Ended() {
			if s.Name() == "payment.provider.charge" {
				calls++
			}
		}
		if calls != 1 {
			t.Errorf("payment.provider.charge spans = %d, want 1", calls)
		}
	})
}

// TestRefundBeforeCharge: a compensation that overtakes its charge is a
// null compensation, and the late charge is ABORTED without reaching the
// provider.
func TestRefundBeforeCharge(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		r, err := e.client.Refund(ctx, refundReq("s2"))
		if err != nil {
			t.Fatal(err)
		}
		if r.GetPayment() != nil {
			t.Errorf("Refund = %v, want no payment", r)
		}
		_, err = e.client.Charge(ctx, chargeReq("s2", provider.TokenVisa))
		if status.Code(err) != codes.Aborted {
			t.Fatalf("Charge after Refund = %v, want ABORTED", err)
		}
		if n := len(e.psp.Charges()); n != 0 {
			t.Errorf("provider charges = %d, want 0", n)
		}
		if _, err := e.client.Refund(ctx, refundReq("s2")); err != nil {
			t.Errorf("Refund again = %v", err)
		}
		_, err = e.client.GetPayment(ctx, &paymentv1.GetPaymentRequest{PaymentId: paymentID("s2")})
		if status.Code(err) != codes.NotFound {
			t.Errorf("GetPayment = %v, want NOT_FOUND", err)
		}
	})
}

// TestRefundAfterCharge: a captured charge is refunded once, however
// often the compensation is sent; a late duplicate charge is ABORTED.
func TestRefundAfterCharge(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		c, err := e.client.Charge(ctx, chargeReq("s3", provider.TokenVisa))
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			r, err := e.client.Refund(ctx, refundReq("s3"))
			if err != nil {
				t.Fatal(err)
			}
			if p := r.GetPayment(); p.GetStatus() != paymentv1.PaymentStatus_PAYMENT_STATUS_REFUNDED || p.GetPaymentId() != c.GetPaymentId() {
				t.Errorf("Refund = %v, want REFUNDED %s", p, c.GetPaymentId())
			}
		}
		charges := e.psp.Charges()
		if len(charges) != 1 || !charges[0].Refunded || e.psp.RefundCount(charges[0].ID) != 1 {
			t.Errorf("provider charges = %+v, want one, refunded once", charges)
		}
		if _, err := e.client.Charge(ctx, chargeReq("s3", provider.TokenVisa)); status.Code(err) != codes.Aborted {
			t.Errorf("Charge after Refund = %v, want ABORTED", err)
		}
		if got := e.charges(t); got["captured"] != 1 || got["refunded"] != 1 {
			t.Errorf("charges metric = %v, want captured 1, refunded 1", got)
		}
	})
}

// beginPending records the PENDING payment of saga as a Charge does before
// it calls the provider, as if the process stopped right after.
func beginPending(t *testing.T, e *env, saga string) domain.Payment {
	t.Helper()
	s, err := sqlstore.New(t.Context(), e.tdb.DB, e.tdb.Dialect, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := domain.NewPayment(domain.Key{SagaID: saga, BranchID: "charge"}, "order-"+saga, 2599, "EUR", provider.TokenVisa, testNow)
	if _, err := s.BeginCharge(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRefundOfUnrecordedCharge: the provider captured the charge but the
// service stopped before recording it (the payment is PENDING); the
// compensation finds the charge at the provider and refunds it.
func TestRefundOfUnrecordedCharge(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		p := beginPending(t, e, "s4")
		ch, err := e.pspClient.Charge(ctx, domain.ChargeKey(p.ID), provider.ChargeRequest{AmountMinor: 2599, Currency: "EUR", PaymentMethod: provider.TokenVisa})
		if err != nil {
			t.Fatal(err)
		}
		r, err := e.client.Refund(ctx, refundReq("s4"))
		if err != nil {
			t.Fatal(err)
		}
		if r.GetPayment().GetStatus() != paymentv1.PaymentStatus_PAYMENT_STATUS_REFUNDED {
			t.Errorf("Refund = %v, want REFUNDED", r)
		}
		if n := e.psp.RefundCount(ch.ID); n != 1 {
			t.Errorf("RefundCount = %d, want 1", n)
		}
		if _, err := e.client.Charge(ctx, chargeReq("s4", provider.TokenVisa)); status.Code(err) != codes.Aborted {
			t.Errorf("Charge after Refund = %v, want ABORTED", err)
		}
		if n := e.psp.CaptureCount(p.ID); n != 1 {
			t.Errorf("CaptureCount = %d, want 1", n)
		}
	})
}

// TestRefundOfUnsentCharge: the service stopped before calling the
// provider; the compensation learns that nothing was charged, and a late
// duplicate of the charge is ABORTED without charging.
func TestRefundOfUnsentCharge(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		beginPending(t, e, "s5")
		r, err := e.client.Refund(ctx, refundReq("s5"))
		if err != nil {
			t.Fatal(err)
		}
		if r.GetPayment() != nil {
			t.Errorf("Refund = %v, want no payment", r)
		}
		if _, err := e.client.Charge(ctx, chargeReq("s5", provider.TokenVisa)); status.Code(err) != codes.Aborted {
			t.Errorf("Charge after Refund = %v, want ABORTED", err)
		}
		if n := len(e.psp.Charges()); n != 0 {
			t.Errorf("provider charges = %d, want 0", n)
		}
	})
}

// TestChargeResumesPending: the service stopped before calling the
// provider; the saga's retry of the charge charges it, once.
func TestChargeResumesPending(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		p := beginPending(t, e, "s6")
		// GetPayment does not guess: the charge's outcome is unknown.
		if _, err := e.client.GetPayment(ctx, &paymentv1.GetPaymentRequest{PaymentId: p.ID}); status.Code(err) != codes.Unavailable {
			t.Errorf("GetPayment(pending) = %v, want UNAVAILABLE", err)
		}
		c, err := e.client.Charge(ctx, chargeReq("s6", provider.TokenVisa))
		if err != nil {
			t.Fatal(err)
		}
		if c.GetStatus() != paymentv1.PaymentStatus_PAYMENT_STATUS_CAPTURED || c.GetPaymentId() != p.ID {
			t.Errorf("Charge = %v, want CAPTURED %s", c, p.ID)
		}
		if n := e.psp.CaptureCount(p.ID); n != 1 {
			t.Errorf("CaptureCount = %d, want 1", n)
		}
	})
}

// TestGetPaymentResolvesPending: the provider captured the charge but the
// service did not record it; GetPayment asks the provider and records it.
func TestGetPaymentResolvesPending(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		p := beginPending(t, e, "s7")
		if _, err := e.pspClient.Charge(ctx, p.ID, provider.ChargeRequest{AmountMinor: 2599, Currency: "EUR", PaymentMethod: provider.TokenVisa}); err != nil {
			t.Fatal(err)
		}
		got, err := e.client.GetPayment(ctx, &paymentv1.GetPaymentRequest{PaymentId: p.ID})
		if err != nil {
			t.Fatal(err)
		}
		if got.GetPayment().GetStatus() != paymentv1.PaymentStatus_PAYMENT_STATUS_CAPTURED {
			t.Errorf("GetPayment = %v, want CAPTURED", got)
		}
	})
}

// TestProviderDown: while the provider fails, Charge and Refund answer
// UNAVAILABLE and the payment stays PENDING; once it recovers, the saga's
// retries finish both, with one charge and one refund.
func TestProviderDown(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		if err := e.pspFaults.Set(fault.Settings{ErrorRate: 1}); err != nil {
			t.Fatal(err)
		}
		_, err := e.client.Charge(ctx, chargeReq("s8", provider.TokenVisa))
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("Charge with the provider down = %v, want UNAVAILABLE", err)
		}
		if got := e.charges(t); got["failed"] != 1 {
			t.Errorf("charges metric = %v, want failed 1", got)
		}
		if _, err := e.client.Refund(ctx, refundReq("s8")); status.Code(err) != codes.Unavailable {
			t.Fatalf("Refund with the provider down = %v, want UNAVAILABLE", err)
		}
		if err := e.pspFaults.Set(fault.Settings{}); err != nil {
			t.Fatal(err)
		}
		// The compensation was recorded: the charge's retry is ABORTED
		// and charges nothing.
		if _, err := e.client.Charge(ctx, chargeReq("s8", provider.TokenVisa)); status.Code(err) != codes.Aborted {
			t.Errorf("Charge after the recorded Refund = %v, want ABORTED", err)
		}
		r, err := e.client.Refund(ctx, refundReq("s8"))
		if err != nil || r.GetPayment() != nil {
			t.Errorf("Refund after recovery = %v, %v; want no payment", r, err)
		}
		if n := len(e.psp.Charges()); n != 0 {
			t.Errorf("provider charges = %d, want 0", n)
		}

		// A charge that fails, then succeeds when the saga retries it.
		if err := e.pspFaults.Set(fault.Settings{ErrorRate: 1}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.client.Charge(ctx, chargeReq("s9", provider.TokenVisa)); status.Code(err) != codes.Unavailable {
			t.Fatalf("Charge with the provider down = %v, want UNAVAILABLE", err)
		}
		if err := e.pspFaults.Set(fault.Settings{}); err != nil {
			t.Fatal(err)
		}
		c, err := e.client.Charge(ctx, chargeReq("s9", provider.TokenVisa))
		if err != nil || c.GetStatus() != paymentv1.PaymentStatus_PAYMENT_STATUS_CAPTURED {
			t.Fatalf("Charge after recovery = %v, %v; want CAPTURED", c, err)
		}
		if n := e.psp.CaptureCount(paymentID("s9")); n != 1 {
			t.Errorf("CaptureCount = %d, want 1", n)
		}
	})
}

// TestBreakerOpen: while the provider keeps failing, the client's circuit
// breaker opens and Charge answers UNAVAILABLE at once, saying so.
func TestBreakerOpen(t *testing.T) {
	e := newEnv(t, testdb.SQLite(t))
	ctx := t.Context()
	if err := e.pspFaults.Set(fault.Settings{ErrorRate: 1}); err != nil {
		t.Fatal(err)
	}
	var err error
	for i := range 20 {
		_, err = e.client.Charge(ctx, chargeReq(fmt.Sprintf("b%d", i), provider.TokenVisa))
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("Charge %d = %v, want UNAVAILABLE", i, err)
		}
		if strings.Contains(status.Convert(err).Message(), `circuitbreaker "payment-provider": open`) {
			break
		}
	}
	if !strings.Contains(status.Convert(err).Message(), `circuitbreaker "payment-provider": open`) {
		t.Fatalf("Charge = %v, want the open breaker named", err)
	}
	if n := len(e.psp.Charges()); n != 0 {
		t.Errorf("provider charges = %d, want 0", n)
	}
}

// TestDeclined: a declined charge is a result, and its compensation
// leaves it as it is.
func TestDeclined(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		c, err := e.client.Charge(ctx, chargeReq("s10", provider.TokenDecline))
		if err != nil {
			t.Fatal(err)
		}
		if c.GetStatus() != paymentv1.PaymentStatus_PAYMENT_STATUS_DECLINED || c.GetDeclineReason() != "card declined" {
			t.Errorf("Charge = %v, want DECLINED, card declined", c)
		}
		r, err := e.client.Refund(ctx, refundReq("s10"))
		if err != nil {
			t.Fatal(err)
		}
		if r.GetPayment().GetStatus() != paymentv1.PaymentStatus_PAYMENT_STATUS_DECLINED {
			t.Errorf("Refund = %v, want the DECLINED payment", r)
		}
		if got := e.charges(t); got["declined"] != 1 || got["refunded"] != 0 {
			t.Errorf("charges metric = %v, want declined 1", got)
		}
	})
}

// TestCodes checks each status code the .proto documents.
func TestCodes(t *testing.T) {
	e := newEnv(t, testdb.SQLite(t))
	ctx := t.Context()
	with := func(f func(r *paymentv1.ChargeRequest)) *paymentv1.ChargeRequest {
		r := chargeReq("codes", provider.TokenVisa)
		f(r)
		return r
	}
	for _, tc := range []struct {
		name  string
		req   *paymentv1.ChargeRequest
		code  codes.Code
		field string
	}{
		{"no idempotency", with(func(r *paymentv1.ChargeRequest) { r.Idempotency = nil }), codes.InvalidArgument, "idempotency.saga_id"},
		{"no saga", with(func(r *paymentv1.ChargeRequest) { r.Idempotency.SagaId = "" }), codes.InvalidArgument, "idempotency.saga_id"},
		{"no branch", with(func(r *paymentv1.ChargeRequest) { r.Idempotency.BranchId = "" }), codes.InvalidArgument, "idempotency.branch_id"},
		{"no order", with(func(r *paymentv1.ChargeRequest) { r.OrderId = "" }), codes.InvalidArgument, "order_id"},
		{"no amount", with(func(r *paymentv1.ChargeRequest) { r.Amount = nil }), codes.InvalidArgument, "amount"},
		{"zero amount", with(func(r *paymentv1.ChargeRequest) { r.Amount.AmountMinor = 0 }), codes.InvalidArgument, "amount.amount_minor"},
		{"negative amount", with(func(r *paymentv1.ChargeRequest) { r.Amount.AmountMinor = -5 }), codes.InvalidArgument, "amount.amount_minor"},
		{"unknown currency", with(func(r *paymentv1.ChargeRequest) { r.Amount.CurrencyCode = "XYZ" }), codes.InvalidArgument, "amount.currency_code"},
		{"no token", with(func(r *paymentv1.ChargeRequest) { r.PaymentMethodToken = "" }), codes.InvalidArgument, "payment_method_token"},
		{"not a token", with(func(r *paymentv1.ChargeRequest) { r.PaymentMethodToken = "4242424242424242" }), codes.InvalidArgument, "payment_method_token"},
		{"expired token", with(func(r *paymentv1.ChargeRequest) { r.PaymentMethodToken = provider.TokenExpired }), codes.FailedPrecondition, "expired"},
		{"revoked token", with(func(r *paymentv1.ChargeRequest) {
			r.Idempotency.SagaId = "revoked"
			r.PaymentMethodToken = provider.TokenRevoked
		}), codes.FailedPrecondition, "revoked"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if id := tc.req.GetIdempotency(); id.GetSagaId() != "" {
				id.SagaId = tc.name // a branch of its own
			}
			_, err := e.client.Charge(ctx, tc.req)
			if status.Code(err) != tc.code || !strings.Contains(status.Convert(err).Message(), tc.field) {
				t.Errorf("Charge = %v, want %v naming %q", err, tc.code, tc.field)
			}
		})
	}
	if _, err := e.client.Refund(ctx, &paymentv1.RefundRequest{OrderId: "o"}); status.Code(err) != codes.InvalidArgument ||
		!strings.Contains(status.Convert(err).Message(), "idempotency.saga_id") {
		t.Errorf("Refund without a key = %v, want INVALID_ARGUMENT naming idempotency.saga_id", err)
	}
	if _, err := e.client.Refund(ctx, &paymentv1.RefundRequest{Idempotency: idem("x")}); status.Code(err) != codes.InvalidArgument ||
		!strings.Contains(status.Convert(err).Message(), "order_id") {
		t.Errorf("Refund without an order = %v, want INVALID_ARGUMENT naming order_id", err)
	}
	if _, err := e.client.GetPayment(ctx, &paymentv1.GetPaymentRequest{}); status.Code(err) != codes.InvalidArgument ||
		!strings.Contains(status.Convert(err).Message(), "payment_id") {
		t.Errorf("GetPayment without an id = %v, want INVALID_ARGUMENT naming payment_id", err)
	}
	if _, err := e.client.GetPayment(ctx, &paymentv1.GetPaymentRequest{PaymentId: "pay_nope"}); status.Code(err) != codes.NotFound {
		t.Errorf("GetPayment(unknown) = %v, want NOT_FOUND", err)
	}

	if err := e.svcFaults.Set(fault.Settings{ErrorRate: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.Charge(ctx, chargeReq("faults", provider.TokenVisa)); status.Code(err) != codes.Unavailable {
		t.Errorf("Charge with injected faults = %v, want UNAVAILABLE", err)
	}
	if _, err := e.client.Refund(ctx, refundReq("faults")); status.Code(err) != codes.Unavailable {
		t.Errorf("Refund with injected faults = %v, want UNAVAILABLE", err)
	}
	if _, err := e.client.GetPayment(ctx, &paymentv1.GetPaymentRequest{PaymentId: "x"}); status.Code(err) != codes.Unavailable {
		t.Errorf("GetPayment with injected faults = %v, want UNAVAILABLE", err)
	}
	if n := len(e.psp.Charges()); n != 0 {
		t.Errorf("provider charges = %d, want 0", n)
	}
}

func TestNewWithoutProvider(t *testing.T) {
	if _, err := payment.New(t.Context(), payment.Config{}); err == nil || !strings.Contains(err.Error(), "Provider") {
		t.Errorf("New without a provider = %v, want an error naming it", err)
	}
}

var testNow = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
