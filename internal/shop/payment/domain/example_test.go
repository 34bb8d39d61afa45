package domain_test

import (
	"fmt"
	"time"

	"github.com/cairnhq/cairn/internal/shop/payment/domain"
)

// Example shows that every delivery of a saga branch, and its
// compensation, name the same payment and the same provider keys.
func Example() {
	k := domain.Key{SagaID: "checkout-42", BranchID: "charge"}
	p := domain.NewPayment(k, "order-42", 1999, "EUR", "tok_visa", time.Unix(0, 0))
	fmt.Println(p.ID == k.PaymentID(), p.Status, p.Status.Terminal())
	fmt.Println(domain.ChargeKey(p.ID) == p.ID, domain.RefundKey(p.ID) == p.ID+"/refund")
	fmt.Println(domain.ValidateCharge(0, "EUR", "tok_visa"))
	fmt.Println(domain.ValidateCharge(100, "XXX", "tok_visa"))
	// Output:
	// true PENDING false
	// true true
	// amount.amount_minor must be positive, got 0
	// amount.currency_code "XXX" is not a known ISO 4217 code
}
