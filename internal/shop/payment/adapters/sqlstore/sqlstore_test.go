package sqlstore_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/cairnhq/cairn/internal/shop/payment/adapters/sqlstore"
	"github.com/cairnhq/cairn/internal/shop/payment/app"
	"github.com/cairnhq/cairn/internal/shop/payment/domain"
	"github.com/cairnhq/cairn/internal/shop/payment/internal/testdb"
	"github.com/cairnhq/cairn/saga/barrier"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestStore(t *testing.T) {
	for _, tdb := range testdb.All(t) {
		t.Run(tdb.Name, func(t *testing.T) {
			ctx := t.Context()
			s, err := sqlstore.New(ctx, tdb.DB, tdb.Dialect, nil)
			if err != nil {
				t.Fatal(err)
			}
			// New is idempotent: the tables exist already.
			if _, err := sqlstore.New(ctx, tdb.DB, tdb.Dialect, nil); err != nil {
				t.Fatal(err)
			}
			now := time.Date(2026, 12, 7, 10, 0, 0, 123456789, time.UTC)
			k := domain.Key{SagaID: "saga-1", BranchID: "charge"}
			p := domain.NewPayment(k, "order-1", 1999, "EUR", "tok_visa", now)

			out, err := s.BeginCharge(ctx, p)
			if out != app.Executed || err != nil {
				t.Fatalf("BeginCharge = %v, %v; want executed", out, err)
			}
			out, err = s.BeginCharge(ctx, p)
			if out != app.Duplicate || err != nil {
				t.Fatalf("BeginCharge again = %v, %v; want duplicate", out, err)
			}
			got, err := s.Get(ctx, p.ID)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(p, got); diff != "" {
				t.Errorf("Get (-want +got):\n%s", diff)
			}

			q := p
			q.Status, q.ChargeID, q.Updated = domain.Captured, "ch_1", now.Add(time.Second)
			if ok, err := s.Update(ctx, q, domain.Declined); ok || err != nil {
				t.Errorf("Update from DECLINED = %v, %v; want false", ok, err)
			}
			if ok, err := s.Update(ctx, q, domain.Pending, domain.Canceled); !ok || err != nil {
				t.Errorf("Update from PENDING = %v, %v; want true", ok, err)
			}
			if ok, err := s.Update(ctx, q, domain.Pending); ok || err != nil {
				t.Errorf("Update from PENDING again = %v, %v; want false", ok, err)
			}

			out, err = s.BeginRefund(ctx, k, "out of stock")
			if out != app.Executed || err != nil {
				t.Fatalf("BeginRefund = %v, %v; want executed", out, err)
			}
			out, err = s.BeginRefund(ctx, k, "again")
			if out != app.Duplicate || err != nil {
				t.Fatalf("BeginRefund again = %v, %v; want duplicate", out, err)
			}
			got, err = s.Get(ctx, p.ID)
			if err != nil {
				t.Fatal(err)
			}
			q.Compensated, q.RefundReason = true, "out of stock"
			if diff := cmp.Diff(q, got); diff != "" {
				t.Errorf("Get after BeginRefund (-want +got):\n%s", diff)
			}

			// A compensation first: null, and the action is refused.
			k2 := domain.Key{SagaID: "saga-2", BranchID: "charge"}
			out, err = s.BeginRefund(ctx, k2, "")
			if out != app.NullCompensation || err != nil {
				t.Fatalf("BeginRefund first = %v, %v; want null_compensation", out, err)
			}
			out, err = s.BeginCharge(ctx, domain.NewPayment(k2, "order-2", 1, "EUR", "tok_visa", now))
			if out != 0 || !errors.Is(err, domain.ErrAborted) || !errors.Is(err, barrier.ErrHanging) {
				t.Fatalf("BeginCharge after its compensation = %v, %v; want refused", out, err)
			}
			if _, err := s.Get(ctx, k2.PaymentID()); !errors.Is(err, domain.ErrNotFound) {
				t.Errorf("Get(refused payment) = %v, want ErrNotFound", err)
			}
		})
	}
}
