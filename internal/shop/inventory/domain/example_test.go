package domain_test

import (
	"fmt"
	"time"

	"github.com/cairnhq/cairn/internal/shop/inventory/domain"
)

// Example reserves stock for an order, fails to reserve more than is
// available, and lets the reservation expire.
func Example() {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	st := domain.Stock{SKU: "SKU-0001", OnHand: 5}
	r, err := domain.NewReservation("rsv_1", domain.Key{SagaID: "saga-1", BranchID: "reserve"}, "order-1",
		[]domain.Line{{SKU: "SKU-0001", Quantity: 4}}, time.Minute, now)
	if err != nil {
		fmt.Println(err)
		return
	}
	st, _ = st.Reserve(r.Lines[0].Quantity)
	fmt.Println("available:", st.Available())
	_, err = st.Reserve(2)
	fmt.Println(err)
	r, changed, _ := r.Confirm(now.Add(2 * time.Minute))
	fmt.Println(r.State, changed, r.ConfirmErr())
	// Output:
	// available: 1
	// inventory: insufficient stock of SKU-0001: 2 requested, 1 available (5 on hand, 4 reserved)
	// expired true inventory: cannot confirm reservation rsv_1: it is expired
}
