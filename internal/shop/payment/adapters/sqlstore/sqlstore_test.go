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

// TestCanceled pages through the Canceled payments of an age window, in
// order of their last change, skipping the other statuses and ages.
func TestCanceled(t *testing.T) {
	for _, tdb := range testdb.All(t) {
		t.Run(tdb.Name, func(t *testing.T) {
			ctx := t.Context()
			s, err := sqlstore.New(ctx, tdb.DB, tdb.Dialect, nil)
			if err != nil {
				t.Fatal(err)
			}
			t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
			// name -> status and minutes after t0 of the last change; c3
			// and c4 tie on the time, so the id orders them.
			rows := []struct {
				saga   string
				status domain.Status
				min    int
			}{
				{"old", domain.Canceled, -1}, {"c1", domain.Canceled, 0}, {"c2", domain.Canceled, 1},
				{"cap", domain.Captured, 2}, {"c3", domain.Canceled, 3}, {"c4", domain.Canceled, 3},
				{"new", domain.Canceled, 10},
			}
			want := map[string]string{} // payment id -> saga
			for _, r := range rows {
				p := domain.NewPayment(domain.Key{SagaID: r.saga, BranchID: "charge"}, "order-"+r.saga, 100, "EUR", "tok_visa", t0)
				if _, err := s.BeginCharge(ctx, p); err != nil {
					t.Fatal(err)
				}
				p.Status, p.Updated = r.status, t0.Add(time.Duration(r.min)*time.Minute)
				if ok, err := s.Update(ctx, p, domain.Pending); !ok || err != nil {
					t.Fatalf("Update %s = %v, %v", r.saga, ok, err)
				}
				want[p.ID] = r.saga
			}
			var got []string
			var after domain.Payment
			for range 10 {
				page, err := s.Canceled(ctx, t0, t0.Add(10*time.Minute), after, 2)
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range page {
					if p.Status != domain.Canceled || p.OrderID != "order-"+want[p.ID] {
						t.Errorf("Canceled returned %+v", p)
					}
					got = append(got, want[p.ID])
				}
				if len(page) < 2 {
					break
				}
				after = page[len(page)-1]
			}
			c3, c4 := "c3", "c4"
			if (domain.Key{SagaID: "c4", BranchID: "charge"}).PaymentID() < (domain.Key{SagaID: "c3", BranchID: "charge"}).PaymentID() {
				c3, c4 = c4, c3
			}
			if diff := cmp.Diff([]string{"c1", "c2", c3, c4}, got); diff != "" {
				t.Errorf("Canceled pages (-want +got):\n%s", diff)
			}
		})
	}
}
