package checkout_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cairnhq/cairn/internal/shop/order/checkout"
	"github.com/cairnhq/cairn/internal/shop/order/domain"
	"github.com/cairnhq/cairn/saga"
	"github.com/cairnhq/cairn/saga/sagatest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// shop fakes the participants and the order's status, recording every
// call in order.
type shop struct {
	mu       sync.Mutex
	calls    []string
	statuses []domain.Status
	status   domain.Status
	reasons  []string

	reserveErr, confirmErr, cancelErr error
	declined                          string
}

func (s *shop) record(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, fmt.Sprintf(format, args...))
}

func (s *shop) Reserve(_ context.Context, k checkout.Key, id string, lines []checkout.Line) (string, error) {
	s.record("reserve %s/%s %s %d", k.SagaID, k.BranchID, id, len(lines))
	return "r-" + id, s.reserveErr
}
func (s *shop) Release(_ context.Context, k checkout.Key, id string) error {
	s.record("release %s/%s", k.SagaID, k.BranchID)
	return nil
}
func (s *shop) Confirm(_ context.Context, k checkout.Key, rid string) error {
	s.record("confirm %s", rid)
	return s.confirmErr
}
func (s *shop) Charge(_ context.Context, k checkout.Key, id string, amount int64, cur, method string) (string, string, error) {
	s.record("charge %s/%s %d %s %s", k.SagaID, k.BranchID, amount, cur, method)
	return "p-" + id, s.declined, nil
}
func (s *shop) Refund(_ context.Context, k checkout.Key, id, reason string) error {
	s.record("refund %s/%s", k.SagaID, k.BranchID)
	return nil
}
func (s *shop) Schedule(_ context.Context, k checkout.Key, id string, to checkout.Address, lines []checkout.Line) (string, error) {
	s.record("ship %s/%s %s", k.SagaID, k.BranchID, to.RegionCode)
	return "s-" + id, nil
}
func (s *shop) Cancel(_ context.Context, k checkout.Key, id string) error {
	s.record("cancel %s/%s", k.SagaID, k.BranchID)
	return s.cancelErr
}
func (s *shop) SetStatus(_ context.Context, id string, st domain.Status, reason, sagaID string, _ time.Time) (domain.Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status.CanMove(st) {
		s.status = st
		s.statuses = append(s.statuses, st)
		s.reasons = append(s.reasons, reason)
	}
	return domain.Order{ID: id, Status: s.status, SagaID: sagaID}, nil
}

func run(t *testing.T, s *shop) saga.Instance {
	t.Helper()
	s.status = domain.StatusPlaced
	co, err := checkout.New(checkout.Config{Inventory: s, Payment: s, Shipping: s, Orders: s})
	if err != nil {
		t.Fatal(err)
	}
	orch, err := saga.New(sagatest.NewMemStore(), []saga.Definition[checkout.Data]{co.Definition()})
	if err != nil {
		t.Fatal(err)
	}
	defer orch.Close()
	co.Bind(orch)
	// The order lists SKU-0001 twice: the participants get one line per
	// SKU ("reserve ... 1" in the calls below).
	o, err := domain.NewOrder("o1", "c1", []domain.Line{{SKU: "SKU-0001", Quantity: 1, UnitPrice: 500}, {SKU: "SKU-0001", Quantity: 1, UnitPrice: 500}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	o.PaymentMethod, o.ShipTo = "tok_visa", domain.Address{Recipient: "c1", Lines: []string{"x"}, Locality: "Berlin", RegionCode: "DE"}
	ctx := t.Context()
	if err := co.Start(ctx, o); err != nil {
		t.Fatal(err)
	}
	if err := co.Start(ctx, o); err != nil { // idempotent
		t.Fatalf("second Start: %v", err)
	}
	inst, err := orch.Wait(ctx, checkout.SagaID("o1"))
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

func TestCompletes(t *testing.T) {
	s := &shop{}
	inst := run(t, s)
	if inst.Status != saga.StatusCompleted {
		t.Fatalf("saga %s (%s), want completed", inst.Status, inst.Error)
	}
	want := []string{
		"reserve checkout-o1/reserve o1 1",
		"charge checkout-o1/charge 1000 EUR tok_visa",
		"ship checkout-o1/ship DE",
		"confirm r-o1",
	}
	if !slices.Equal(s.calls, want) {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(s.calls, "\n"), strings.Join(want, "\n"))
	}
	wantSt := []domain.Status{domain.StatusReserved, domain.StatusPaid, domain.StatusScheduled, domain.StatusConfirmed}
	if !slices.Equal(s.statuses, wantSt) {
		t.Errorf("statuses %v, want %v", s.statuses, wantSt)
	}
}

func TestDeclinedCompensates(t *testing.T) {
	s := &shop{declined: "insufficient funds"}
	inst := run(t, s)
	if inst.Status != saga.StatusCompensated {
		t.Fatalf("saga %s, want compensated", inst.Status)
	}
	want := []string{
		"reserve checkout-o1/reserve o1 1",
		"charge checkout-o1/charge 1000 EUR tok_visa",
		"refund checkout-o1/charge",
		"release checkout-o1/reserve",
	}
	if !slices.Equal(s.calls, want) {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(s.calls, "\n"), strings.Join(want, "\n"))
	}
	wantSt := []domain.Status{domain.StatusReserved, domain.StatusCompensating, domain.StatusCancelled}
	if !slices.Equal(s.statuses, wantSt) {
		t.Fatalf("statuses %v, want %v", s.statuses, wantSt)
	}
	if r := s.reasons[1]; !strings.Contains(r, "payment declined: insufficient funds") {
		t.Errorf("compensating reason %q does not name the decline", r)
	}
}

func TestOutOfStockCompensatesTheReservationOnly(t *testing.T) {
	s := &shop{reserveErr: saga.Permanent(errors.New("insufficient stock for SKU-0001"))}
	inst := run(t, s)
	if inst.Status != saga.StatusCompensated {
		t.Fatalf("saga %s, want compensated", inst.Status)
	}
	want := []string{"reserve checkout-o1/reserve o1 1", "release checkout-o1/reserve"}
	if !slices.Equal(s.calls, want) {
		t.Errorf("calls %q, want %q", s.calls, want)
	}
	if s.status != domain.StatusCancelled {
		t.Errorf("order %s, want cancelled", s.status)
	}
}

func TestShipmentThatLeftFailsTheOrder(t *testing.T) {
	s := &shop{
		confirmErr: saga.Permanent(errors.New("reservation expired")),
		cancelErr:  fmt.Errorf("%w: shipment left", checkout.ErrCannotUndo),
	}
	inst := run(t, s)
	if inst.Status != saga.StatusCompensated {
		t.Fatalf("saga %s, want compensated", inst.Status)
	}
	// The other compensations still run.
	want := []string{
		"reserve checkout-o1/reserve o1 1", "charge checkout-o1/charge 1000 EUR tok_visa", "ship checkout-o1/ship DE",
		"confirm r-o1", "cancel checkout-o1/ship", "refund checkout-o1/charge", "release checkout-o1/reserve",
	}
	if !slices.Equal(s.calls, want) {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(s.calls, "\n"), strings.Join(want, "\n"))
	}
	if s.status != domain.StatusFailed {
		t.Errorf("order %s, want failed", s.status)
	}
}
