package inventory_test

import (
	"errors"
	"fmt"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	inventoryv1 "github.com/cairnhq/cairn/api/proto/cairn/shop/inventory/v1"
	typev1 "github.com/cairnhq/cairn/api/proto/cairn/shop/type/v1"
	"github.com/cairnhq/cairn/internal/fault"
	"github.com/cairnhq/cairn/internal/shop/inventory"
	"github.com/cairnhq/cairn/internal/shop/inventory/domain"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestDefaultCatalog(t *testing.T) {
	c := inventory.DefaultCatalog(50, 7)
	if len(c) != 50 || c["SKU-0000"] != 7 || c[fmt.Sprintf("SKU-%04d", 49)] != 7 {
		t.Errorf("DefaultCatalog(50, 7) = %v, want SKU-0000..SKU-0049 with 7 each", c)
	}
}

// TestServe runs the service with its defaults (a private in-memory
// database) behind a real gRPC server.
func TestServe(t *testing.T) {
	ctx := t.Context()
	faults := fault.New("inventory")
	svc, err := inventory.New(ctx, inventory.Config{Seed: inventory.DefaultCatalog(3, 5), Faults: faults})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := svc.Close(); err != nil {
			t.Error(err)
		}
		if err := svc.Close(); err != nil {
			t.Errorf("second Close = %v", err)
		}
	}()
	srv := grpc.NewServer()
	svc.Register(srv)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	defer func() {
		srv.Stop()
		if err := <-done; err != nil {
			t.Errorf("Serve = %v", err)
		}
	}()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := inventoryv1.NewInventoryServiceClient(conn)

	if err := svc.SetStock(ctx, "SKU-0001", 1); err != nil {
		t.Fatal(err)
	}
	_, err = c.Reserve(ctx, &inventoryv1.ReserveRequest{
		Idempotency: &typev1.Idempotency{SagaId: "s1", BranchId: "reserve"}, OrderId: "o1",
		Lines: []*inventoryv1.Line{{Sku: "SKU-0000", Quantity: 2}, {Sku: "SKU-0001", Quantity: 2}},
	})
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("Reserve after a stock-out = %v, want FAILED_PRECONDITION", err)
	}
	res, err := c.Reserve(ctx, &inventoryv1.ReserveRequest{
		Idempotency: &typev1.Idempotency{SagaId: "s1", BranchId: "reserve"}, OrderId: "o1",
		Lines: []*inventoryv1.Line{{Sku: "SKU-0000", Quantity: 2}},
	})
	if err != nil || res.GetReservationId() == "" {
		t.Fatalf("Reserve = %v, %v", res, err)
	}
	if st, err := svc.Stock(ctx, "SKU-0000"); err != nil || st != (domain.Stock{SKU: "SKU-0000", OnHand: 5, Reserved: 2}) {
		t.Errorf("Stock(SKU-0000) = %+v, %v, want 5 on hand, 2 reserved", st, err)
	}
	if _, err := svc.Stock(ctx, "SKU-9999"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("Stock(SKU-9999) = %v, want ErrNotFound", err)
	}
	if err := faults.Set(fault.Settings{ErrorRate: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetStock(ctx, &inventoryv1.GetStockRequest{Skus: []string{"SKU-0000"}}); status.Code(err) != codes.Unavailable {
		t.Errorf("GetStock with faults = %v, want UNAVAILABLE", err)
	}
}

// TestSweeper lets the background sweeper expire a reservation, in a
// bubble whose clock only moves when every goroutine waits.
func TestSweeper(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		svc, err := inventory.New(ctx, inventory.Config{
			Seed: map[string]int{"a": 5}, DefaultTTL: time.Minute, SweepInterval: 20 * time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer svc.Close()
		srv := svc.Server()
		idem := &typev1.Idempotency{SagaId: "s1", BranchId: "reserve"}
		if _, err := srv.Reserve(ctx, &inventoryv1.ReserveRequest{
			Idempotency: idem, OrderId: "o1", Lines: []*inventoryv1.Line{{Sku: "a", Quantity: 3}},
		}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Second) // two sweeps, before the expire time
		synctest.Wait()
		if st, _ := svc.Stock(ctx, "a"); st.Reserved != 3 {
			t.Errorf("reserved after 50s = %d, want 3", st.Reserved)
		}
		time.Sleep(10 * time.Second) // the sweep at the expire time
		synctest.Wait()
		if st, _ := svc.Stock(ctx, "a"); st.Reserved != 0 {
			t.Errorf("reserved after the expire time = %d, want 0", st.Reserved)
		}
		rel, err := srv.Release(ctx, &inventoryv1.ReleaseRequest{Idempotency: idem, OrderId: "o1"})
		if err != nil || rel.GetState() != inventoryv1.ReservationState_RESERVATION_STATE_EXPIRED {
			t.Errorf("Release = %v, %v, want EXPIRED", rel, err)
		}
	})
}
