package grpcapi_test

import (
	"database/sql"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"
	_ "modernc.org/sqlite"

	"github.com/google/go-cmp/cmp"

	shippingv1 "github.com/cairnhq/cairn/api/proto/cairn/shop/shipping/v1"
	typev1 "github.com/cairnhq/cairn/api/proto/cairn/shop/type/v1"
	"github.com/cairnhq/cairn/cqrs"
	"github.com/cairnhq/cairn/internal/fault"
	"github.com/cairnhq/cairn/internal/shop/shipping/adapters/grpcapi"
	"github.com/cairnhq/cairn/internal/shop/shipping/adapters/sqlstore"
	"github.com/cairnhq/cairn/internal/shop/shipping/app"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var monday = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.now = c.now.Add(d) }

type fixture struct {
	client shippingv1.ShippingServiceClient
	svc    *app.Service
	faults *fault.Injector
	clock  *clock
}

// newFixture serves the API on a loopback port, on a SQLite store, and
// returns a client; all is closed when t ends.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "shipping.db")+"?_pragma=busy_timeout(10000)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	store, err := sqlstore.New(t.Context(), db, cqrs.SQLite, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{faults: fault.New("shipping"), clock: &clock{now: monday}}
	f.svc, err = app.New(app.Config{Store: store, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	shippingv1.RegisterShippingServiceServer(srv, grpcapi.NewServer(f.svc, f.faults, nil))
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(lis) }()
	t.Cleanup(func() { srv.Stop(); <-served })
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	f.client = shippingv1.NewShippingServiceClient(conn)
	return f
}

func idem(saga string) *typev1.Idempotency {
	return &typev1.Idempotency{SagaId: saga, BranchId: "shipping"}
}

func scheduleReq(saga string) *shippingv1.ScheduleShipmentRequest {
	return &shippingv1.ScheduleShipmentRequest{
		Idempotency: idem(saga),
		OrderId:     "order-" + saga,
		Address: &shippingv1.Address{
			Recipient: "Ada Lovelace", AddressLines: []string{"Hauptstr. 1"}, Locality: "Berlin",
			PostalCode: "10115", RegionCode: "DE",
		},
		Lines: []*shippingv1.Line{{Sku: "BOOK-1", Quantity: 2}},
	}
}

func cancelReq(saga string) *shippingv1.CancelShipmentRequest {
	return &shippingv1.CancelShipmentRequest{Idempotency: idem(saga), OrderId: "order-" + saga}
}

// wantCode fails t unless err has code and a message holding each of
// words.
func wantCode(t *testing.T, call string, err error, code codes.Code, words ...string) {
	t.Helper()
	if got := status.Code(err); got != code {
		t.Fatalf("%s: code = %v (%v), want %v", call, got, err, code)
	}
	for _, w := range words {
		if msg := status.Convert(err).Message(); !strings.Contains(msg, w) {
			t.Errorf("%s: message %q does not name %q", call, msg, w)
		}
	}
}

func TestScheduleInvalidArgument(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name  string
		edit  func(*shippingv1.ScheduleShipmentRequest)
		field string
	}{
		{"no idempotency", func(r *shippingv1.ScheduleShipmentRequest) { r.Idempotency = nil }, "idempotency.saga_id"},
		{"no branch", func(r *shippingv1.ScheduleShipmentRequest) { r.Idempotency.BranchId = "" }, "idempotency.branch_id"},
		{"no order", func(r *shippingv1.ScheduleShipmentRequest) { r.OrderId = "" }, "order_id"},
		{"no address", func(r *shippingv1.ScheduleShipmentRequest) { r.Address = nil }, "address.recipient"},
		{"no recipient", func(r *shippingv1.ScheduleShipmentRequest) { r.Address.Recipient = "" }, "address.recipient"},
		{"no address lines", func(r *shippingv1.ScheduleShipmentRequest) { r.Address.AddressLines = nil }, "address.address_lines"},
		{"no locality", func(r *shippingv1.ScheduleShipmentRequest) { r.Address.Locality = "" }, "address.locality"},
		{"no region", func(r *shippingv1.ScheduleShipmentRequest) { r.Address.RegionCode = "" }, "address.region_code"},
		{"no lines", func(r *shippingv1.ScheduleShipmentRequest) { r.Lines = nil }, "lines"},
		{"101 lines", func(r *shippingv1.ScheduleShipmentRequest) {
			for range 100 {
				r.Lines = append(r.Lines, &shippingv1.Line{Sku: "X", Quantity: 1})
			}
		}, "lines"},
		{"no sku", func(r *shippingv1.ScheduleShipmentRequest) { r.Lines[0].Sku = "" }, "lines[0].sku"},
		{"zero quantity", func(r *shippingv1.ScheduleShipmentRequest) { r.Lines[0].Quantity = 0 }, "lines[0].quantity"},
		{"negative quantity", func(r *shippingv1.ScheduleShipmentRequest) { r.Lines[0].Quantity = -1 }, "lines[0].quantity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := scheduleReq("saga-" + tc.name)
			tc.edit(req)
			_, err := f.client.ScheduleShipment(t.Context(), req)
			wantCode(t, "ScheduleShipment", err, codes.InvalidArgument, tc.field)
		})
	}
}

func TestSchedule(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	resp, err := f.client.ScheduleShipment(ctx, scheduleReq("saga-1"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetShipmentId() == "" || !resp.GetEstimatedDeliveryTime().AsTime().Equal(monday.AddDate(0, 0, 2)) {
		t.Errorf("ScheduleShipment = %v, want an id and delivery on %v", resp, monday.AddDate(0, 0, 2))
	}
	f.clock.Add(time.Hour)
	dup, err := f.client.ScheduleShipment(ctx, scheduleReq("saga-1"))
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(resp, dup) {
		t.Errorf("ScheduleShipment(duplicate) = %v, want %v", dup, resp)
	}

	got, err := f.client.GetShipment(ctx, &shippingv1.GetShipmentRequest{ShipmentId: resp.GetShipmentId()})
	if err != nil {
		t.Fatal(err)
	}
	req := scheduleReq("saga-1")
	want := &shippingv1.Shipment{
		ShipmentId: resp.GetShipmentId(), OrderId: req.GetOrderId(), Address: req.GetAddress(), Lines: req.GetLines(),
		Status:                shippingv1.ShipmentStatus_SHIPMENT_STATUS_SCHEDULED,
		EstimatedDeliveryTime: resp.GetEstimatedDeliveryTime(),
		CreateTime:            timestamppb.New(monday), UpdateTime: timestamppb.New(monday),
	}
	if diff := cmp.Diff(want, got.GetShipment(), protocmp.Transform()); diff != "" {
		t.Errorf("GetShipment (-want +got):\n%s", diff)
	}
}

func TestScheduleUnservedRegion(t *testing.T) {
	f := newFixture(t)
	req := scheduleReq("saga-1")
	req.Address.RegionCode = "jp"
	_, err := f.client.ScheduleShipment(t.Context(), req)
	wantCode(t, "ScheduleShipment(JP)", err, codes.FailedPrecondition, `"JP"`)
}

func TestCancel(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	resp, err := f.client.ScheduleShipment(ctx, scheduleReq("saga-1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, call := range []string{"CancelShipment", "CancelShipment(duplicate)"} {
		c, err := f.client.CancelShipment(ctx, cancelReq("saga-1"))
		if err != nil {
			t.Fatalf("%s = %v", call, err)
		}
		if sh := c.GetShipment(); sh.GetShipmentId() != resp.GetShipmentId() || sh.GetStatus() != shippingv1.ShipmentStatus_SHIPMENT_STATUS_CANCELLED {
			t.Errorf("%s = %v, want %s cancelled", call, sh, resp.GetShipmentId())
		}
	}
	wrong := cancelReq("saga-1")
	wrong.OrderId = "order-other"
	_, err = f.client.CancelShipment(ctx, wrong)
	wantCode(t, "CancelShipment(other order)", err, codes.InvalidArgument, "order_id")
}

func TestCancelInvalidArgument(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name  string
		req   *shippingv1.CancelShipmentRequest
		field string
	}{
		{"no idempotency", &shippingv1.CancelShipmentRequest{OrderId: "o"}, "idempotency.saga_id"},
		{"no branch", &shippingv1.CancelShipmentRequest{Idempotency: &typev1.Idempotency{SagaId: "s"}, OrderId: "o"}, "idempotency.branch_id"},
		{"no order", &shippingv1.CancelShipmentRequest{Idempotency: idem("s")}, "order_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.client.CancelShipment(t.Context(), tc.req)
			wantCode(t, "CancelShipment", err, codes.InvalidArgument, tc.field)
		})
	}
}

func TestCancelBeforeSchedule(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	c, err := f.client.CancelShipment(ctx, cancelReq("saga-1"))
	if err != nil || c.GetShipment() != nil {
		t.Fatalf("CancelShipment before ScheduleShipment = %v, %v; want no shipment and no error", c, err)
	}
	_, err = f.client.ScheduleShipment(ctx, scheduleReq("saga-1"))
	wantCode(t, "ScheduleShipment after CancelShipment", err, codes.Aborted, "compensated")
}

func TestCancelAfterDispatch(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	resp, err := f.client.ScheduleShipment(ctx, scheduleReq("saga-1"))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := f.svc.Dispatch(ctx); err != nil || n != 1 {
		t.Fatalf("Dispatch = %d, %v; want 1", n, err)
	}
	_, err = f.client.CancelShipment(ctx, cancelReq("saga-1"))
	wantCode(t, "CancelShipment after Dispatch", err, codes.FailedPrecondition, resp.GetShipmentId(), "shipped")
	got, err := f.client.GetShipment(ctx, &shippingv1.GetShipmentRequest{ShipmentId: resp.GetShipmentId()})
	if err != nil || got.GetShipment().GetStatus() != shippingv1.ShipmentStatus_SHIPMENT_STATUS_SHIPPED {
		t.Errorf("GetShipment = %v, %v; want shipped", got, err)
	}
}

func TestGetShipmentErrors(t *testing.T) {
	f := newFixture(t)
	_, err := f.client.GetShipment(t.Context(), &shippingv1.GetShipmentRequest{})
	wantCode(t, "GetShipment(no id)", err, codes.InvalidArgument, "shipment_id")
	_, err = f.client.GetShipment(t.Context(), &shippingv1.GetShipmentRequest{ShipmentId: "shp-unknown"})
	wantCode(t, "GetShipment(unknown)", err, codes.NotFound)
}

func TestFaults(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	if err := f.faults.Set(fault.Settings{ErrorRate: 1}); err != nil {
		t.Fatal(err)
	}
	_, err := f.client.ScheduleShipment(ctx, scheduleReq("saga-1"))
	wantCode(t, "ScheduleShipment", err, codes.Unavailable, "injected")
	_, err = f.client.CancelShipment(ctx, cancelReq("saga-1"))
	wantCode(t, "CancelShipment", err, codes.Unavailable, "injected")
	_, err = f.client.GetShipment(ctx, &shippingv1.GetShipmentRequest{ShipmentId: "x"})
	wantCode(t, "GetShipment", err, codes.Unavailable, "injected")

	// The failed calls had no effect: the action runs when retried.
	if err := f.faults.Set(fault.Settings{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.client.ScheduleShipment(ctx, scheduleReq("saga-1")); err != nil {
		t.Errorf("ScheduleShipment after the faults = %v", err)
	}
}
