package provider_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/cairnhq/cairn/internal/shop/payment/provider"
)

// Example charges twice with one idempotency key: the provider makes one
// charge, and the second call returns it.
func Example() {
	srv := provider.NewServer(provider.ServerConfig{})
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	client, err := provider.NewClient(provider.ClientConfig{BaseURL: hs.URL})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.CloseIdleConnections()

	ctx := context.Background()
	req := provider.ChargeRequest{AmountMinor: 4200, Currency: "EUR", PaymentMethod: provider.TokenVisa}
	for range 2 {
		c, err := client.Charge(ctx, "order-7/pay", req)
		fmt.Println(c.ID, c.Status, c.AmountMinor, c.Currency, err)
	}
	fmt.Println("captures:", srv.CaptureCount("order-7/pay"))

	d, err := client.Charge(ctx, "order-8/pay", provider.ChargeRequest{AmountMinor: 100, Currency: "EUR", PaymentMethod: provider.TokenDecline})
	fmt.Println(d.Status, d.DeclineReason, err)
	// Output:
	// ch_000001 captured 4200 EUR <nil>
	// ch_000001 captured 4200 EUR <nil>
	// captures: 1
	// declined card declined <nil>
}
