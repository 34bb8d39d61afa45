package app_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/cairnhq/cairn/internal/shop/payment/adapters/sqlstore"
	"github.com/cairnhq/cairn/internal/shop/payment/app"
	"github.com/cairnhq/cairn/internal/shop/payment/domain"
	"github.com/cairnhq/cairn/internal/shop/payment/internal/testdb"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeProvider is an in-memory provider whose Charge can be held, before
// or after it takes effect, to interleave a Refund with it.
type fakeProvider struct {
	mu      sync.Mutex
	charges map[string]app.ChargeResult // by key
	refunds map[string]string           // refund key -> charge id
	down    bool
	// refundCalls counts the calls of Refund that reached the provider.
	refundCalls int
	// lostAnswer makes Charge take effect and then fail, as if the
	// process stopped before it could record the answer.
	lostAnswer bool

	holdBefore, holdAfter bool
	entered, release      chan struct{}
}

func newFake() *fakeProvider {
	return &fakeProvider{charges: map[string]app.ChargeResult{}, refunds: map[string]string{},
		entered: make(chan struct{}), release: make(chan struct{})}
}

func (f *fakeProvider) hold() {
	close(f.entered)
	<-f.release
}

func (f *fakeProvider) Charge(_ context.Context, key string, _ app.ChargeInput) (app.ChargeResult, error) {
	if f.holdBefore {
		f.hold()
	}
	f.mu.Lock()
	if f.down {
		f.mu.Unlock()
		return app.ChargeResult{}, app.ErrUnavailable
	}
	r, ok := f.charges[key]
	if !ok {
		r = app.ChargeResult{ChargeID: fmt.Sprintf("ch_%d", len(f.charges)+1), Captured: true}
		f.charges[key] = r
	}
	f.mu.Unlock()
	if f.holdAfter {
		f.hold()
	}
	if f.lostAnswer {
		return app.ChargeResult{}, fmt.Errorf("%w: the answer was lost", app.ErrUnavailable)
	}
	return r, nil
}

func (f *fakeProvider) Refund(_ context.Context, key, chargeID string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return "", app.ErrUnavailable
	}
	f.refundCalls++
	f.refunds[key] = chargeID
	return "re_" + chargeID, nil
}

func (f *fakeProvider) FindCharge(_ context.Context, key string) (app.ChargeResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return app.ChargeResult{}, app.ErrUnavailable
	}
	r, ok := f.charges[key]
	if !ok {
		return app.ChargeResult{}, app.ErrNoCharge
	}
	for _, id := range f.refunds {
		if id == r.ChargeID {
			r.Refunded, r.RefundID = true, "re_"+id
		}
	}
	return r, nil
}

func newService(t *testing.T, tdb testdb.DB, p app.Provider) (*app.Service, *sqlstore.Store) {
	t.Helper()
	store, err := sqlstore.New(t.Context(), tdb.DB, tdb.Dialect, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := app.New(app.Config{Store: store, Provider: p})
	if err != nil {
		t.Fatal(err)
	}
	return s, store
}

// TestRefundRacesCharge interleaves a Refund with a Charge whose provider
// call is in flight: whether the provider charged before the Refund looked
// (after) or not (before), the money ends refunded, once, and the Charge
// is aborted.
func TestRefundRacesCharge(t *testing.T) {
	for _, tdb := range testdb.All(t) {
		for _, when := range []string{"before", "after"} {
			t.Run(tdb.Name+"/"+when, func(t *testing.T) {
				ctx := t.Context()
				f := newFake()
				f.holdBefore, f.holdAfter = when == "before", when == "after"
				s, store := newService(t, tdb, f)
				k := domain.Key{SagaID: "race-" + when, BranchID: "charge"}

				var chargeErr error
				var wg sync.WaitGroup
				wg.Go(func() {
					_, chargeErr = s.Charge(ctx, app.ChargeCommand{Key: k, OrderID: "o", AmountMinor: 100, Currency: "EUR", PaymentMethod: "tok_visa"})
				})
				<-f.entered
				p, found, err := s.Refund(ctx, k, "compensated")
				if err != nil {
					t.Fatal(err)
				}
				wantFound := when == "after"
				if found != wantFound {
					t.Errorf("Refund found = %v, want %v (payment %+v)", found, wantFound, p)
				}
				close(f.release)
				wg.Wait()
				if !errors.Is(chargeErr, domain.ErrAborted) {
					t.Errorf("Charge = %v, want ErrAborted", chargeErr)
				}
				got, err := store.Get(ctx, k.PaymentID())
				if err != nil {
					t.Fatal(err)
				}
				if got.Status != domain.Refunded || got.ChargeID != "ch_1" || got.RefundID != "re_ch_1" || !got.Compensated {
					t.Errorf("payment = %+v, want REFUNDED ch_1 by re_ch_1", got)
				}
				if len(f.charges) != 1 || len(f.refunds) != 1 || f.refunds[domain.RefundKey(k.PaymentID())] != "ch_1" {
					t.Errorf("provider charges %v, refunds %v; want one of each", f.charges, f.refunds)
				}
			})
		}
	}
}

// TestRefundResumes: a Refund interrupted by the provider's outage
// resumes from the payment's state when the saga retries it.
func TestRefundResumes(t *testing.T) {
	tdb := testdb.SQLite(t)
	ctx := t.Context()
	f := newFake()
	close(f.entered)
	s, _ := newService(t, tdb, f)
	k := domain.Key{SagaID: "resume", BranchID: "charge"}
	p, err := s.Charge(ctx, app.ChargeCommand{Key: k, OrderID: "o", AmountMinor: 100, Currency: "EUR", PaymentMethod: "tok_visa"})
	if err != nil || p.Status != domain.Captured {
		t.Fatalf("Charge = %+v, %v", p, err)
	}
	f.down = true
	if _, _, err := s.Refund(ctx, k, "r"); !errors.Is(err, app.ErrUnavailable) {
		t.Fatalf("Refund with the provider down = %v, want ErrUnavailable", err)
	}
	if got, err := s.Get(ctx, p.ID); err != nil || got.Status != domain.Captured || !got.Compensated {
		t.Errorf("Get = %+v, %v; want CAPTURED and compensated", got, err)
	}
	f.down = false
	got, found, err := s.Refund(ctx, k, "r")
	if err != nil || !found || got.Status != domain.Refunded {
		t.Fatalf("Refund again = %+v, %v, %v; want REFUNDED", got, found, err)
	}
	if _, err := s.Charge(ctx, app.ChargeCommand{Key: k, OrderID: "o", AmountMinor: 100, Currency: "EUR", PaymentMethod: "tok_visa"}); !errors.Is(err, domain.ErrAborted) {
		t.Errorf("Charge after Refund = %v, want ErrAborted", err)
	}
}

func TestNewRequiresPorts(t *testing.T) {
	if _, err := app.New(app.Config{}); err == nil {
		t.Error("New(Config{}) = nil error, want one")
	}
}
