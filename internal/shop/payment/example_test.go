package payment_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"google.golang.org/grpc/status"

	paymentv1 "github.com/cairnhq/cairn/api/proto/cairn/shop/payment/v1"
	typev1 "github.com/cairnhq/cairn/api/proto/cairn/shop/type/v1"
	"github.com/cairnhq/cairn/internal/shop/payment"
	"github.com/cairnhq/cairn/internal/shop/payment/provider"
)

// Example runs the payment service on a private in-memory database against
// a simulated provider, and calls it in-process as the checkout saga
// would: a charge delivered twice charges once, its compensation refunds
// it, and a late copy of the charge is aborted.
func Example() {
	ctx := context.Background()
	psp := provider.NewServer(provider.ServerConfig{})
	hs := httptest.NewServer(psp.Handler())
	defer hs.Close()
	client, err := provider.NewClient(provider.ClientConfig{BaseURL: hs.URL})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.CloseIdleConnections()
	svc, err := payment.New(ctx, payment.Config{Provider: client})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer svc.Close()
	api := svc.Server()

	key := &typev1.Idempotency{SagaId: "checkout-1", BranchId: "payment"}
	charge := &paymentv1.ChargeRequest{
		Idempotency: key, OrderId: "order-1",
		Amount:             &typev1.Money{AmountMinor: 4999, CurrencyCode: "EUR"},
		PaymentMethodToken: provider.TokenVisa,
	}
	for range 2 {
		c, err := api.Charge(ctx, charge)
		fmt.Println(c.GetStatus(), err)
	}
	fmt.Println("captures at the provider:", len(psp.Charges()))

	r, err := api.Refund(ctx, &paymentv1.RefundRequest{Idempotency: key, OrderId: "order-1", Reason: "out of stock"})
	fmt.Println(r.GetPayment().GetStatus(), err)

	_, err = api.Charge(ctx, charge)
	fmt.Println(status.Code(err))
	// Output:
	// PAYMENT_STATUS_CAPTURED <nil>
	// PAYMENT_STATUS_CAPTURED <nil>
	// captures at the provider: 1
	// PAYMENT_STATUS_REFUNDED <nil>
	// Aborted
}
