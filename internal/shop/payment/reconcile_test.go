package payment_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	paymentv1 "github.com/cairnhq/cairn/api/proto/cairn/shop/payment/v1"
	"github.com/cairnhq/cairn/internal/shop/payment"
	"github.com/cairnhq/cairn/internal/shop/payment/adapters/sqlstore"
	"github.com/cairnhq/cairn/internal/shop/payment/domain"
	"github.com/cairnhq/cairn/internal/shop/payment/internal/testdb"
	"github.com/cairnhq/cairn/internal/shop/payment/provider"
)

// lateCapture reproduces the window the reconciler closes, at the real
// simulated provider: the payment of saga is PENDING (its Charge call is
// at the provider), a Refund finds no charge and cancels it, and then the
// provider captures the charge with the payment's key, whose Charge call
// stops before recording it. It returns the charge.
func lateCapture(t *testing.T, api paymentv1.PaymentServiceServer, store *sqlstore.Store, pc *provider.Client, saga string, now time.Time) provider.Charge {
	t.Helper()
	ctx := t.Context()
	p := domain.NewPayment(domain.Key{SagaID: saga, BranchID: "charge"}, "order-"+saga, 2599, "EUR", provider.TokenVisa, now)
	if _, err := store.BeginCharge(ctx, p); err != nil {
		t.Fatal(err)
	}
	if r, err := api.Refund(ctx, refundReq(saga)); err != nil || r.GetPayment() != nil {
		t.Fatalf("Refund = %v, %v; want no payment (canceled)", r, err)
	}
	ch, err := pc.Charge(ctx, domain.ChargeKey(p.ID), provider.ChargeRequest{AmountMinor: 2599, Currency: "EUR", PaymentMethod: provider.TokenVisa})
	if err != nil || ch.Status != provider.StatusCaptured {
		t.Fatalf("late charge = %+v, %v", ch, err)
	}
	got, err := store.Get(ctx, p.ID)
	if err != nil || got.Status != domain.Canceled {
		t.Fatalf("payment = %+v, %v; want CANCELED", got, err)
	}
	return ch
}

// TestReconcileRefundsLateCapture: Reconcile leaves a canceled payment
// alone for ReconcileAfter, then refunds its late capture at the provider
// once, even from two replicas at once, and records it REFUNDED.
func TestReconcileRefundsLateCapture(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		store, err := sqlstore.New(ctx, e.tdb.DB, e.tdb.Dialect, nil)
		if err != nil {
			t.Fatal(err)
		}
		ch := lateCapture(t, e.svc.Server(), store, e.pspClient, "late", e.now())
		if n, err := e.svc.Reconcile(ctx); n != 0 || err != nil {
			t.Fatalf("Reconcile at once = %d, %v; want 0", n, err)
		}
		if n := e.psp.RefundCount(ch.ID); n != 0 {
			t.Fatalf("RefundCount before ReconcileAfter = %d", n)
		}

		// A second replica on the same database and provider.
		other, err := payment.New(ctx, payment.Config{DB: e.tdb.DB, Dialect: e.tdb.Dialect, Provider: e.pspClient,
			Now: e.now, ReconcileInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		e.skew.Store(int64(31 * time.Second))
		var ns [2]int
		var errs [2]error
		var wg sync.WaitGroup
		for i, s := range []*payment.Service{e.svc, other} {
			wg.Go(func() { ns[i], errs[i] = s.Reconcile(ctx) })
		}
		wg.Wait()
		if ns[0]+ns[1] != 1 || errs[0] != nil || errs[1] != nil {
			t.Fatalf("Reconcile by two replicas = %v, %v; want 1 in all", ns, errs)
		}
		if n, err := e.svc.Reconcile(ctx); n != 0 || err != nil {
			t.Errorf("Reconcile again = %d, %v; want 0", n, err)
		}
		if n := e.psp.RefundCount(ch.ID); n != 1 {
			t.Errorf("RefundCount = %d, want 1", n)
		}
		g, err := e.client.GetPayment(ctx, &paymentv1.GetPaymentRequest{PaymentId: paymentID("late")})
		if err != nil || g.GetPayment().GetStatus() != paymentv1.PaymentStatus_PAYMENT_STATUS_REFUNDED {
			t.Errorf("GetPayment = %v, %v; want REFUNDED", g, err)
		}
		if got := e.charges(t)["refunded"]; got != int64(ns[0]) {
			t.Errorf("charges{outcome=refunded} = %d, want %d (this replica's refunds)", got, ns[0])
		}
		var passes []int64
		for _, s := range e.spans.Ended() {
			if s.Name() == "payment.reconcile" {
				for _, a := range s.Attributes() {
					if a.Key == "cairn.payment.reconciled" {
						passes = append(passes, a.Value.AsInt64())
					}
				}
			}
		}
		if want := []int64{0, int64(ns[0]), 0}; !slices.Equal(passes, want) {
			t.Errorf("payment.reconcile spans' counts = %v, want %v", passes, want)
		}
	})
}

// TestReconcileLeavesUncharged: a payment canceled with nothing charged at
// the provider stays CANCELED.
func TestReconcileLeavesUncharged(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		beginPending(t, e, "unsent")
		if r, err := e.client.Refund(ctx, refundReq("unsent")); err != nil || r.GetPayment() != nil {
			t.Fatalf("Refund = %v, %v; want no payment", r, err)
		}
		e.skew.Store(int64(time.Minute))
		if n, err := e.svc.Reconcile(ctx); n != 0 || err != nil {
			t.Fatalf("Reconcile = %d, %v; want 0", n, err)
		}
		store, err := sqlstore.New(ctx, e.tdb.DB, e.tdb.Dialect, nil)
		if err != nil {
			t.Fatal(err)
		}
		if p, err := store.Get(ctx, paymentID("unsent")); err != nil || p.Status != domain.Canceled {
			t.Errorf("payment = %+v, %v; want CANCELED", p, err)
		}
		if n := len(e.psp.Charges()); n != 0 {
			t.Errorf("provider charges = %d, want 0", n)
		}
	})
}

// handlerTransport serves requests with a handler in-process, so that the
// provider needs no socket inside a synctest bubble.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// TestReconcileLoop: New's background loop reconciles every
// ReconcileInterval, each pass a span of its own; it refunds the late
// capture at the first pass after ReconcileAfter, and Close stops it.
func TestReconcileLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		tdb := testdb.SQLite(t)
		psp := provider.NewServer(provider.ServerConfig{})
		pc, err := provider.NewClient(provider.ClientConfig{
			HTTPClient: &http.Client{Transport: handlerTransport{psp.Handler()}}, BaseURL: "http://psp.invalid",
		})
		if err != nil {
			t.Fatal(err)
		}
		spans := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
		defer func() { _ = tp.Shutdown(context.Background()) }()
		svc, err := payment.New(ctx, payment.Config{DB: tdb.DB, Dialect: tdb.Dialect, Provider: pc,
			TracerProvider: tp, ReconcileInterval: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer svc.Close()
		store, err := sqlstore.New(ctx, tdb.DB, tdb.Dialect, nil)
		if err != nil {
			t.Fatal(err)
		}
		ch := lateCapture(t, svc.Server(), store, pc, "loop", time.Now())

		// Passes at 10s, 20s and 30s find the payment too recent (the
		// bound is exclusive); the pass at 40s refunds it.
		for i := 1; i <= 5; i++ {
			time.Sleep(10 * time.Second)
			synctest.Wait()
			want := 0
			if i >= 4 {
				want = 1
			}
			if n := psp.RefundCount(ch.ID); n != want {
				t.Errorf("after %ds: RefundCount = %d, want %d", i*10, n, want)
			}
		}
		if got, want := passCounts(t, spans), []int64{0, 0, 0, 1, 0}; !slices.Equal(got, want) {
			t.Errorf("passes' counts = %v, want %v", got, want)
		}
		if err := svc.Close(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute) // no pass after Close
		synctest.Wait()
		if got := passCounts(t, spans); len(got) != 5 {
			t.Errorf("passes after Close: %v", got[5:])
		}
	})
}

// passCounts returns the counts of the ended root spans payment.reconcile.
func passCounts(t *testing.T, spans *tracetest.SpanRecorder) []int64 {
	t.Helper()
	var counts []int64
	for _, s := range spans.Ended() {
		if s.Name() != "payment.reconcile" {
			continue
		}
		if s.Parent().IsValid() {
			t.Errorf("pass span has a parent %v", s.Parent())
		}
		for _, a := range s.Attributes() {
			if a.Key == attribute.Key("cairn.payment.reconciled") {
				counts = append(counts, a.Value.AsInt64())
			}
		}
	}
	return counts
}
