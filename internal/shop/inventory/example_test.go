package inventory_test

import (
	"context"
	"fmt"

	"google.golang.org/grpc/status"

	inventoryv1 "github.com/cairnhq/cairn/api/proto/cairn/shop/inventory/v1"
	typev1 "github.com/cairnhq/cairn/api/proto/cairn/shop/type/v1"
	"github.com/cairnhq/cairn/internal/shop/inventory"
)

// Example runs the inventory's side of two checkout sagas: the first
// reserves stock, is retried, and is compensated; the second's
// compensation overtakes its Reserve, which is then refused.
func Example() {
	ctx := context.Background()
	svc, err := inventory.New(ctx, inventory.Config{Seed: inventory.DefaultCatalog(2, 5), SweepInterval: -1})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer svc.Close()
	srv := svc.Server() // what Register serves over gRPC
	available := func() int {
		st, _ := svc.Stock(ctx, "SKU-0001")
		return st.Available()
	}
	reserve := func(saga string, qty int32) error {
		res, err := srv.Reserve(ctx, &inventoryv1.ReserveRequest{
			Idempotency: &typev1.Idempotency{SagaId: saga, BranchId: "reserve"},
			OrderId:     "order-" + saga,
			Lines:       []*inventoryv1.Line{{Sku: "SKU-0001", Quantity: qty}},
		})
		if err == nil {
			fmt.Printf("reserved %s, available %d\n", res.GetReservationId()[:4], available())
		}
		return err
	}
	release := func(saga string) {
		res, err := srv.Release(ctx, &inventoryv1.ReleaseRequest{
			Idempotency: &typev1.Idempotency{SagaId: saga, BranchId: "reserve"}, OrderId: "order-" + saga,
		})
		fmt.Println(res.GetState(), err, "available", available())
	}

	_ = reserve("saga-1", 2)
	_ = reserve("saga-1", 2) // a retry: the same reservation
	err = reserve("saga-2", 4)
	fmt.Println(status.Code(err), status.Convert(err).Message())
	release("saga-1")

	release("saga-3") // overtook its Reserve
	err = reserve("saga-3", 1)
	fmt.Println(status.Code(err))
	// Output:
	// reserved rsv_, available 3
	// reserved rsv_, available 3
	// FailedPrecondition inventory: insufficient stock of SKU-0001: 4 requested, 3 available (5 on hand, 2 reserved)
	// RESERVATION_STATE_RELEASED <nil> available 5
	// RESERVATION_STATE_UNSPECIFIED <nil> available 5
	// Aborted
}
