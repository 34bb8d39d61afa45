package resilient

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/fault"
	sqlitestore "github.com/cairnhq/cairn/internal/shop/order/adapters/sqlite"
	"github.com/cairnhq/cairn/internal/shop/order/app"
	"github.com/cairnhq/cairn/internal/shop/order/domain"
	"github.com/cairnhq/cairn/resilience"
	"github.com/cairnhq/cairn/resilience/circuitbreaker"
	"github.com/cairnhq/cairn/resilience/retry"
)

func newStore(t *testing.T) *sqlitestore.Store {
	t.Helper()
	s, err := sqlitestore.Open(t.Context(), sqlitestore.MemoryPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newBreakerPipeline(t *testing.T) (*resilience.Pipeline[struct{}], *circuitbreaker.Breaker) {
	t.Helper()
	b, err := circuitbreaker.New(circuitbreaker.Config{Name: "orders-db", WindowSize: 10, MinimumCalls: 4, OpenDuration: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	p, err := resilience.New[struct{}](resilience.CircuitBreaker(b))
	if err != nil {
		t.Fatal(err)
	}
	return p, b
}

func order(t *testing.T, id string) domain.Order {
	t.Helper()
	o, err := domain.NewOrder(id, "c1", []domain.Line{{SKU: "SKU-1", Quantity: 1, UnitPrice: 100}}, time.Unix(0, 0).UTC())
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestDomainOutcomesDoNotTripTheBreaker(t *testing.T) {
	p, b := newBreakerPipeline(t)
	r := New(newStore(t), p, p, nil)
	for range 20 {
		if _, err := r.Get(t.Context(), "missing"); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("Get(missing) = %v, want ErrNotFound", err)
		}
	}
	if err := r.Save(t.Context(), order(t, "o1")); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if err := r.Save(t.Context(), order(t, "o1")); !errors.Is(err, domain.ErrAlreadyExists) {
			t.Fatalf("Save(o1 again) = %v, want ErrAlreadyExists", err)
		}
	}
	if s := b.State(); s != circuitbreaker.StateClosed {
		t.Errorf("breaker state = %v after domain outcomes only, want closed", s)
	}
	got, err := r.List(t.Context(), 10)
	if err != nil || len(got) != 1 || got[0].ID != "o1" {
		t.Errorf("List = %v, %v; want [o1]", got, err)
	}
}

func TestInjectedFaultsOpenTheBreaker(t *testing.T) {
	p, b := newBreakerPipeline(t)
	faults := fault.New("orders-db")
	r := New(newStore(t), p, p, faults)
	_ = faults.Set(fault.Settings{ErrorRate: 1})
	for range 4 {
		if _, err := r.Get(t.Context(), "x"); !errors.Is(err, fault.ErrInjected) {
			t.Fatalf("Get = %v, want an injected fault", err)
		}
	}
	_, err := r.Get(t.Context(), "x")
	var ue *app.UnavailableError
	if !errors.Is(err, circuitbreaker.ErrOpen) || !errors.As(err, &ue) || ue.RetryAfter <= 0 {
		t.Fatalf("Get after 4 faults = %v, want an app.UnavailableError wrapping ErrOpen with a RetryAfter", err)
	}
	if s := b.State(); s != circuitbreaker.StateOpen {
		t.Errorf("breaker state = %v, want open", s)
	}
	if failed, _ := faults.Counts(); failed != 4 {
		t.Errorf("faults injected = %d, want 4: an open breaker must not reach the store", failed)
	}
}

// lostAck stores the order but reports a failure the first time, as a
// database whose answer was lost after the commit.
type lostAck struct {
	*sqlitestore.Store
	calls int
}

func (l *lostAck) Save(ctx context.Context, o domain.Order) error {
	l.calls++
	err := l.Store.Save(ctx, o)
	if l.calls == 1 && err == nil {
		return errors.New("connection reset after commit")
	}
	return err
}

func TestRetriedSaveThatFindsItsOrderSucceeds(t *testing.T) {
	p, err := resilience.New[struct{}](resilience.Retry(retry.Policy{MaxAttempts: 3, Backoff: retry.Backoff{Kind: retry.KindConstant, Initial: time.Nanosecond}}))
	if err != nil {
		t.Fatal(err)
	}
	next := &lostAck{Store: newStore(t)}
	r := New(next, nil, p, nil)
	if err := r.Save(t.Context(), order(t, "o1")); err != nil {
		t.Fatalf("Save = %v, want nil: the first attempt stored the order", err)
	}
	if next.calls != 2 {
		t.Errorf("store calls = %d, want 2", next.calls)
	}
	// Without a retry, a duplicate is still reported.
	if err := New(next, nil, nil, nil).Save(t.Context(), order(t, "o1")); !errors.Is(err, domain.ErrAlreadyExists) {
		t.Errorf("first-attempt duplicate Save = %v, want ErrAlreadyExists", err)
	}
}
