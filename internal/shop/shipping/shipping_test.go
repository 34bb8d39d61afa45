package shipping_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"testing"
	"testing/synctest"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	shippingv1 "github.com/cairnhq/cairn/api/proto/cairn/shop/shipping/v1"
	typev1 "github.com/cairnhq/cairn/api/proto/cairn/shop/type/v1"
	"github.com/cairnhq/cairn/cqrs"
	"github.com/cairnhq/cairn/internal/fault"
	"github.com/cairnhq/cairn/internal/shop/shipping"
	"github.com/cairnhq/cairn/internal/shop/shipping/domain"
	"github.com/cairnhq/cairn/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func scheduleReq(saga, region string) *shippingv1.ScheduleShipmentRequest {
	return &shippingv1.ScheduleShipmentRequest{
		Idempotency: &typev1.Idempotency{SagaId: saga, BranchId: "shipping"},
		OrderId:     "order-" + saga,
		Address:     &shippingv1.Address{Recipient: "Ada", AddressLines: []string{"Main St 1"}, Locality: "Springfield", RegionCode: region},
		Lines:       []*shippingv1.Line{{Sku: "A", Quantity: 1}},
	}
}

func get(t *testing.T, svc *shipping.Service, id string) shippingv1.ShipmentStatus {
	t.Helper()
	resp, err := svc.Server().GetShipment(t.Context(), &shippingv1.GetShipmentRequest{ShipmentId: id})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetShipment().GetStatus()
}

// TestBackgroundDispatcher runs the dispatcher on fake time: a shipment
// ships between DispatchAfter and DispatchAfter plus an interval after it
// was scheduled, and can no longer be cancelled.
func TestBackgroundDispatcher(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc, err := shipping.New(t.Context(), shipping.Config{DispatchAfter: time.Minute, DispatchInterval: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := svc.Close(); err != nil {
				t.Error(err)
			}
		}()
		srv := svc.Server()
		resp, err := srv.ScheduleShipment(t.Context(), scheduleReq("saga-1", "US"))
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(55 * time.Second)
		synctest.Wait()
		if got := get(t, svc, resp.GetShipmentId()); got != shippingv1.ShipmentStatus_SHIPMENT_STATUS_SCHEDULED {
			t.Errorf("after 55s: status %v, want SCHEDULED", got)
		}
		time.Sleep(10 * time.Second) // the pass at 60s
		synctest.Wait()
		if got := get(t, svc, resp.GetShipmentId()); got != shippingv1.ShipmentStatus_SHIPMENT_STATUS_SHIPPED {
			t.Errorf("after 65s: status %v, want SHIPPED", got)
		}
		_, err = srv.CancelShipment(t.Context(), &shippingv1.CancelShipmentRequest{
			Idempotency: &typev1.Idempotency{SagaId: "saga-1", BranchId: "shipping"}, OrderId: "order-saga-1",
		})
		if status.Code(err) != codes.FailedPrecondition {
			t.Errorf("CancelShipment after dispatch = %v, want FailedPrecondition", err)
		}
	})
}

func TestConfig(t *testing.T) {
	injector := fault.New("shipping")
	svc, err := shipping.New(t.Context(), shipping.Config{Regions: domain.Regions{"JP": 3}, Faults: injector})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	srv := svc.Server()
	if _, err := srv.ScheduleShipment(t.Context(), scheduleReq("s1", "DE")); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("ScheduleShipment(DE) = %v, want FailedPrecondition", err)
	}
	if _, err := srv.ScheduleShipment(t.Context(), scheduleReq("s2", "JP")); err != nil {
		t.Errorf("ScheduleShipment(JP) = %v", err)
	}
	if err := injector.Set(fault.Settings{ErrorRate: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.ScheduleShipment(t.Context(), scheduleReq("s3", "JP")); status.Code(err) != codes.Unavailable {
		t.Errorf("ScheduleShipment with faults = %v, want Unavailable", err)
	}
	if err := svc.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	if err := svc.Close(); err != nil {
		t.Errorf("Close again = %v", err)
	}
}

// TestPostgres runs the wired service on the caller's PostgreSQL database.
func TestPostgres(t *testing.T) {
	addr := testenv.Require(t, testenv.Postgres)
	if addr == "" {
		return
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "shipping_" + hex.EncodeToString(b[:])
	admin, err := sql.Open("pgx", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.ExecContext(t.Context(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE") }()
	u, err := url.Parse(addr)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	db, err := sql.Open("pgx", u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	svc, err := shipping.New(t.Context(), shipping.Config{DB: db, Dialect: cqrs.Postgres, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := svc.Server().ScheduleShipment(t.Context(), scheduleReq("saga-1", "DE"))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := svc.Dispatch(t.Context()); err != nil || n != 1 {
		t.Errorf("Dispatch = %d, %v; want 1", n, err)
	}
	if got := get(t, svc, resp.GetShipmentId()); got != shippingv1.ShipmentStatus_SHIPMENT_STATUS_SHIPPED {
		t.Errorf("status %v, want SHIPPED", got)
	}
	if err := svc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.PingContext(t.Context()); err != nil {
		t.Errorf("Close closed the caller's DB: %v", err)
	}
}
