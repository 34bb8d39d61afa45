package app_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/shop/payment/adapters/sqlstore"
	"github.com/cairnhq/cairn/internal/shop/payment/app"
	"github.com/cairnhq/cairn/internal/shop/payment/domain"
	"github.com/cairnhq/cairn/internal/shop/payment/internal/testdb"
)

// clock is a settable time for Config.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

var t0 = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

// reconcileEnv is a Service on a clock at t0, with a log buffer.
type reconcileEnv struct {
	s     *app.Service
	store *sqlstore.Store
	f     *fakeProvider
	clock *clock
	logs  *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func newReconcileEnv(t *testing.T, tdb testdb.DB) *reconcileEnv {
	t.Helper()
	store, err := sqlstore.New(t.Context(), tdb.DB, tdb.Dialect, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &reconcileEnv{store: store, f: newFake(), clock: &clock{now: t0}, logs: &syncBuffer{}}
	e.s, err = app.New(app.Config{Store: store, Provider: e.f, Now: e.clock.Now,
		Logger: slog.New(slog.NewTextHandler(e.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// lateCapture reproduces the window the reconciler closes: a Charge's
// provider call is in flight when a Refund finds no charge and cancels
// the payment; then the provider captures it, and the Charge call's answer
// is lost (its process stopped before recording it).
func (e *reconcileEnv) lateCapture(t *testing.T, saga string) domain.Key {
	t.Helper()
	ctx := t.Context()
	k := domain.Key{SagaID: saga, BranchID: "charge"}
	e.f.holdBefore, e.f.lostAnswer = true, true
	var chargeErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		_, chargeErr = e.s.Charge(ctx, app.ChargeCommand{Key: k, OrderID: "order-" + saga, AmountMinor: 100, Currency: "EUR", PaymentMethod: "tok_visa"})
	})
	<-e.f.entered
	if _, found, err := e.s.Refund(ctx, k, "compensated"); err != nil || found {
		t.Fatalf("Refund during the charge = %v, %v; want not found", found, err)
	}
	close(e.f.release)
	wg.Wait()
	if !errors.Is(chargeErr, app.ErrUnavailable) {
		t.Fatalf("Charge = %v, want its answer lost", chargeErr)
	}
	p, err := e.store.Get(ctx, k.PaymentID())
	if err != nil || p.Status != domain.Canceled {
		t.Fatalf("payment = %+v, %v; want CANCELED", p, err)
	}
	if _, ok := e.f.charges[domain.ChargeKey(k.PaymentID())]; !ok {
		t.Fatal("the provider did not capture the charge")
	}
	return k
}

func (e *reconcileEnv) reconcile(t *testing.T, at time.Duration, want int) {
	t.Helper()
	e.clock.Set(t0.Add(at))
	if n, err := e.s.Reconcile(t.Context()); n != want || err != nil {
		t.Fatalf("Reconcile at t0+%v = %d, %v; want %d", at, n, err, want)
	}
}

// TestReconcileLateCapture: the reconciler leaves the canceled payment
// alone while a charge may still be in flight, then refunds the late
// capture once, and records it.
func TestReconcileLateCapture(t *testing.T) {
	for _, tdb := range testdb.All(t) {
		t.Run(tdb.Name, func(t *testing.T) {
			e := newReconcileEnv(t, tdb)
			k := e.lateCapture(t, "late")
			e.reconcile(t, 10*time.Second, 0)
			e.reconcile(t, app.DefaultReconcileAfter, 0) // the bound is exclusive
			if e.f.refundCalls != 0 {
				t.Fatalf("refunds before ReconcileAfter: %d", e.f.refundCalls)
			}
			e.reconcile(t, app.DefaultReconcileAfter+time.Second, 1)
			e.reconcile(t, app.DefaultReconcileAfter+2*time.Second, 0)
			e.reconcile(t, time.Hour, 0)

			p, err := e.store.Get(t.Context(), k.PaymentID())
			if err != nil {
				t.Fatal(err)
			}
			if p.Status != domain.Refunded || p.ChargeID != "ch_1" || p.RefundID != "re_ch_1" || !p.Compensated {
				t.Errorf("payment = %+v, want REFUNDED ch_1 by re_ch_1", p)
			}
			if e.f.refundCalls != 1 || e.f.refunds[domain.RefundKey(k.PaymentID())] != "ch_1" {
				t.Errorf("provider refunds %v in %d calls, want ch_1 once with the refund key", e.f.refunds, e.f.refundCalls)
			}
			logs := e.logs.String()
			if !strings.Contains(logs, `level=WARN msg="late capture refunded by reconciliation" order_id=order-late payment_id=`+k.PaymentID()) {
				t.Errorf("logs lack the reconciliation's WARN:\n%s", logs)
			}
		})
	}
}

// TestReconcileLeavesUncharged: a payment canceled before any charge
// reached the provider stays CANCELED, and nothing is refunded.
func TestReconcileLeavesUncharged(t *testing.T) {
	for _, tdb := range testdb.All(t) {
		t.Run(tdb.Name, func(t *testing.T) {
			e := newReconcileEnv(t, tdb)
			ctx := t.Context()
			k := domain.Key{SagaID: "unsent", BranchID: "charge"}
			p := domain.NewPayment(k, "order-unsent", 100, "EUR", "tok_visa", t0)
			if _, err := e.store.BeginCharge(ctx, p); err != nil {
				t.Fatal(err)
			}
			if _, found, err := e.s.Refund(ctx, k, "r"); found || err != nil {
				t.Fatalf("Refund = %v, %v; want not found", found, err)
			}
			e.reconcile(t, time.Minute, 0)
			if got, err := e.store.Get(ctx, p.ID); err != nil || got.Status != domain.Canceled {
				t.Errorf("payment = %+v, %v; want CANCELED", got, err)
			}
			if e.f.refundCalls != 0 {
				t.Errorf("refunds = %d, want 0", e.f.refundCalls)
			}
		})
	}
}

// TestReconcileResumes: a pass stopped by the provider's outage refunds
// nothing; a pass that refunded and stopped before recording is finished
// by the next one without a second refund; payments past the window are
// not looked at.
func TestReconcileResumes(t *testing.T) {
	tdb := testdb.SQLite(t)
	e := newReconcileEnv(t, tdb)
	k := e.lateCapture(t, "resume")
	e.f.down = true
	e.clock.Set(t0.Add(time.Minute))
	if n, err := e.s.Reconcile(t.Context()); n != 0 || !errors.Is(err, app.ErrUnavailable) {
		t.Fatalf("Reconcile with the provider down = %d, %v; want ErrUnavailable", n, err)
	}
	e.f.down = false
	e.reconcile(t, app.DefaultReconcileWindow+time.Second, 0) // too old
	// The refund was made, and its pass stopped before recording it.
	e.f.refunds[domain.RefundKey(k.PaymentID())] = "ch_1"
	e.reconcile(t, 2*time.Minute, 1)
	if e.f.refundCalls != 0 {
		t.Errorf("refund calls = %d, want 0: the provider had refunded it", e.f.refundCalls)
	}
	p, err := e.store.Get(context.Background(), k.PaymentID())
	if err != nil || p.Status != domain.Refunded || p.RefundID != "re_ch_1" {
		t.Errorf("payment = %+v, %v; want REFUNDED by re_ch_1", p, err)
	}
}
