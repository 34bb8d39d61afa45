package shipping_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	shippingv1 "github.com/cairnhq/cairn/api/proto/cairn/shop/shipping/v1"
	typev1 "github.com/cairnhq/cairn/api/proto/cairn/shop/type/v1"
	"github.com/cairnhq/cairn/internal/shop/shipping"
)

// Example serves the shipping service on a loopback port and plays the
// checkout saga's calls: a shipment scheduled twice (a retry) and
// compensated twice; then, for another saga, a compensation that overtakes
// its action.
func Example() {
	ctx := context.Background()
	thursday := time.Date(2026, 3, 5, 9, 0, 0, 0, time.UTC)
	svc, err := shipping.New(ctx, shipping.Config{Now: func() time.Time { return thursday }})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer svc.Close()
	srv := grpc.NewServer()
	svc.Register(srv)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	client := shippingv1.NewShippingServiceClient(conn)

	schedule := func(saga string) (*shippingv1.ScheduleShipmentResponse, error) {
		return client.ScheduleShipment(ctx, &shippingv1.ScheduleShipmentRequest{
			Idempotency: &typev1.Idempotency{SagaId: saga, BranchId: "shipping"},
			OrderId:     "order-1",
			Address: &shippingv1.Address{
				Recipient: "Ada Lovelace", AddressLines: []string{"Hauptstr. 1"},
				Locality: "Berlin", PostalCode: "10115", RegionCode: "DE",
			},
			Lines: []*shippingv1.Line{{Sku: "BOOK-1", Quantity: 2}},
		})
	}
	cancel := func(saga string) (*shippingv1.CancelShipmentResponse, error) {
		return client.CancelShipment(ctx, &shippingv1.CancelShipmentRequest{
			Idempotency: &typev1.Idempotency{SagaId: saga, BranchId: "shipping"},
			OrderId:     "order-1",
		})
	}

	first, err := schedule("saga-1")
	if err != nil {
		fmt.Println(err)
		return
	}
	retry, err := schedule("saga-1")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("due", first.GetEstimatedDeliveryTime().AsTime().Format("Monday 2006-01-02"),
		"retry same:", retry.GetShipmentId() == first.GetShipmentId())
	for range 2 {
		c, err := cancel("saga-1")
		fmt.Println(c.GetShipment().GetStatus(), err)
	}

	c, err := cancel("saga-2") // overtakes its action
	fmt.Println(c.GetShipment() == nil, err)
	_, err = schedule("saga-2")
	fmt.Println(status.Code(err))
	// Output:
	// due Monday 2026-03-09 retry same: true
	// SHIPMENT_STATUS_CANCELLED <nil>
	// SHIPMENT_STATUS_CANCELLED <nil>
	// true <nil>
	// Aborted
}
