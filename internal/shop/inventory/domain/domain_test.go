package domain

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestStockReserve(t *testing.T) {
	st := Stock{SKU: "SKU-0001", OnHand: 10, Reserved: 7}
	if got := st.Available(); got != 3 {
		t.Fatalf("Available() = %d, want 3", got)
	}
	got, err := st.Reserve(3)
	if err != nil || got.Reserved != 10 || got.OnHand != 10 {
		t.Fatalf("Reserve(3) = %+v, %v, want reserved 10 of 10", got, err)
	}
	_, err = st.Reserve(4)
	var short *InsufficientStockError
	if !errors.As(err, &short) || !errors.Is(err, ErrInsufficientStock) {
		t.Fatalf("Reserve(4) error = %v, want an InsufficientStockError", err)
	}
	if want := "inventory: insufficient stock of SKU-0001: 4 requested, 3 available (10 on hand, 7 reserved)"; err.Error() != want {
		t.Errorf("Reserve(4) error = %q, want %q", err, want)
	}
	if _, err := st.Reserve(0); !errors.Is(err, ErrInvalid) {
		t.Errorf("Reserve(0) error = %v, want ErrInvalid", err)
	}
}

func TestStockMoves(t *testing.T) {
	st := Stock{SKU: "a", OnHand: 10, Reserved: 4}
	if got := st.Release(3); got.Reserved != 1 || got.OnHand != 10 {
		t.Errorf("Release(3) = %+v, want reserved 1, on hand 10", got)
	}
	if got := st.Release(9); got.Reserved != 0 {
		t.Errorf("Release(9) = %+v, want reserved 0", got)
	}
	if got := st.Sell(4); got.Reserved != 0 || got.OnHand != 6 {
		t.Errorf("Sell(4) = %+v, want reserved 0, on hand 6", got)
	}
	for _, tc := range []struct{ set, want int }{{20, 20}, {5, 5}, {0, 4}} {
		got, err := st.SetOnHand(tc.set)
		if err != nil || got.OnHand != tc.want || got.Reserved != 4 {
			t.Errorf("SetOnHand(%d) = %+v, %v, want on hand %d", tc.set, got, err, tc.want)
		}
	}
	if _, err := st.SetOnHand(-1); !errors.Is(err, ErrInvalid) {
		t.Errorf("SetOnHand(-1) error = %v, want ErrInvalid", err)
	}
}

func TestValidation(t *testing.T) {
	key := Key{SagaID: "s", BranchID: "b"}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	many := make([]Line, MaxLines+1)
	for i := range many {
		many[i] = Line{SKU: string(rune('a'+i%26)) + strings.Repeat("x", i/26), Quantity: 1}
	}
	tests := []struct {
		name, field string
		key         Key
		order       string
		lines       []Line
		ttl         time.Duration
	}{
		{"no saga", "idempotency.saga_id", Key{BranchID: "b"}, "o", []Line{{"a", 1}}, 0},
		{"no branch", "idempotency.branch_id", Key{SagaID: "s"}, "o", []Line{{"a", 1}}, 0},
		{"no order", "order_id", key, "", []Line{{"a", 1}}, 0},
		{"no lines", "lines", key, "o", nil, 0},
		{"too many lines", "lines", key, "o", many, 0},
		{"empty sku", "lines[1].sku", key, "o", []Line{{"a", 1}, {"", 1}}, 0},
		{"zero quantity", "lines[0].quantity", key, "o", []Line{{"a", 0}}, 0},
		{"negative quantity", "lines[0].quantity", key, "o", []Line{{"a", -2}}, 0},
		{"repeated sku", "lines[1].sku", key, "o", []Line{{"a", 1}, {"a", 2}}, 0},
		{"negative ttl", "ttl", key, "o", []Line{{"a", 1}}, -time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewReservation("r", tc.key, tc.order, tc.lines, tc.ttl, now)
			var v *ValidationError
			if !errors.As(err, &v) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("NewReservation error = %v, want a ValidationError", err)
			}
			if v.Field != tc.field {
				t.Errorf("NewReservation error field = %q (%v), want %q", v.Field, err, tc.field)
			}
		})
	}
	r, err := NewReservation("r", key, "o", []Line{{"a", 2}, {"b", 3}}, 0, now)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != StateActive || !r.ExpireTime.Equal(now.Add(DefaultTTL)) || r.Units() != 5 {
		t.Errorf("NewReservation = %+v, want active, expiring at now+%v, 5 units", r, DefaultTTL)
	}
	for _, skus := range [][]string{nil, make([]string, MaxSKUs+1), {"a", ""}} {
		if err := ValidateSKUs(skus); !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidateSKUs(%d skus) = %v, want ErrInvalid", len(skus), err)
		}
	}
}

func TestReservationLife(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r, err := NewReservation("r", Key{"s", "b"}, "o", []Line{{"a", 1}}, time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	later, overdue := now.Add(30*time.Second), now.Add(time.Minute)
	tests := []struct {
		name        string
		state       State
		at          time.Time
		op          func(Reservation, time.Time) (Reservation, bool, error)
		want        State
		wantChanged bool
		wantErr     bool
	}{
		{"release active", StateActive, later, Reservation.Release, StateReleased, true, false},
		{"release overdue", StateActive, overdue, Reservation.Release, StateExpired, true, false},
		{"release released", StateReleased, later, Reservation.Release, StateReleased, false, false},
		{"release expired", StateExpired, later, Reservation.Release, StateExpired, false, false},
		{"release confirmed", StateConfirmed, later, Reservation.Release, StateConfirmed, false, true},
		{"confirm active", StateActive, later, Reservation.Confirm, StateConfirmed, true, false},
		{"confirm overdue", StateActive, overdue, Reservation.Confirm, StateExpired, true, false},
		{"confirm confirmed", StateConfirmed, overdue, Reservation.Confirm, StateConfirmed, false, false},
		{"confirm released", StateReleased, later, Reservation.Confirm, StateReleased, false, true},
		{"confirm expired", StateExpired, later, Reservation.Confirm, StateExpired, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := r
			in.State = tc.state
			got, changed, err := tc.op(in, tc.at)
			if got.State != tc.want || changed != tc.wantChanged || (err != nil) != tc.wantErr {
				t.Errorf("got %v, %v, %v; want %v, %v, error %v", got.State, changed, err, tc.want, tc.wantChanged, tc.wantErr)
			}
			if err != nil && !errors.Is(err, ErrState) {
				t.Errorf("error %v does not match ErrState", err)
			}
		})
	}
	if r.Overdue(later) || !r.Overdue(overdue) {
		t.Errorf("Overdue(later, overdue) = %v, %v, want false, true", r.Overdue(later), r.Overdue(overdue))
	}
	if err := r.ConfirmErr(); !errors.Is(err, ErrState) || !strings.Contains(err.Error(), "it is active") {
		t.Errorf("ConfirmErr() of an active reservation = %v, want a StateError", err)
	}
}

func TestParseState(t *testing.T) {
	for st := StateActive; st <= StateExpired; st++ {
		if got, err := ParseState(st.String()); got != st || err != nil {
			t.Errorf("ParseState(%q) = %v, %v, want %v", st.String(), got, err, st)
		}
	}
	if _, err := ParseState("none"); err == nil {
		t.Error(`ParseState("none") succeeded, want an error`)
	}
}
