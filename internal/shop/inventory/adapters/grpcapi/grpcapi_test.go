package grpcapi_test

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	_ "modernc.org/sqlite"

	inventoryv1 "github.com/cairnhq/cairn/api/proto/cairn/shop/inventory/v1"
	typev1 "github.com/cairnhq/cairn/api/proto/cairn/shop/type/v1"
	"github.com/cairnhq/cairn/cqrs"
	"github.com/cairnhq/cairn/internal/fault"
	"github.com/cairnhq/cairn/internal/shop/inventory/adapters/grpcapi"
	"github.com/cairnhq/cairn/internal/shop/inventory/adapters/sqlstore"
	"github.com/cairnhq/cairn/internal/shop/inventory/app"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// start serves the inventory on a SQLite database with skus a (10 units)
// and c (3) over a loopback gRPC server, and returns a client and the
// fault injector the server consults.
func start(t *testing.T) (inventoryv1.InventoryServiceClient, *fault.Injector) {
	t.Helper()
	ctx := t.Context()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "inventory.db")+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	store, err := sqlstore.New(ctx, db, cqrs.SQLite, nil)
	if err != nil {
		t.Fatal(err)
	}
	uc, err := app.New(store, app.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = uc.Close() })
	if _, err := uc.Seed(ctx, map[string]int{"a": 10, "c": 3}); err != nil {
		t.Fatal(err)
	}
	faults := fault.New("inventory")
	srv := grpc.NewServer()
	inventoryv1.RegisterInventoryServiceServer(srv, grpcapi.New(uc, grpcapi.Config{Faults: faults}))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	t.Cleanup(func() {
		srv.Stop()
		if err := <-done; err != nil {
			t.Errorf("Serve = %v", err)
		}
	})
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return inventoryv1.NewInventoryServiceClient(conn), faults
}

func idem(saga, branch string) *typev1.Idempotency {
	return &typev1.Idempotency{SagaId: saga, BranchId: branch}
}

func lines(kv ...any) []*inventoryv1.Line {
	var out []*inventoryv1.Line
	for i := 0; i < len(kv); i += 2 {
		out = append(out, &inventoryv1.Line{Sku: kv[i].(string), Quantity: int32(kv[i+1].(int))})
	}
	return out
}

func TestHappyPath(t *testing.T) {
	c, _ := start(t)
	ctx := t.Context()
	req := &inventoryv1.ReserveRequest{Idempotency: idem("s1", "reserve"), OrderId: "o1", Lines: lines("a", 2, "c", 1), Ttl: durationpb.New(time.Minute)}
	before := time.Now()
	res, err := c.Reserve(ctx, req)
	if err != nil {
		t.Fatalf("Reserve = %v", err)
	}
	if exp := res.GetExpireTime().AsTime(); res.GetReservationId() == "" || exp.Before(before.Add(time.Minute)) || exp.After(time.Now().Add(time.Minute)) {
		t.Errorf("Reserve = %v, want an id and an expire time a minute from now", res)
	}
	dup, err := c.Reserve(ctx, req)
	if err != nil || dup.GetReservationId() != res.GetReservationId() || !dup.GetExpireTime().AsTime().Equal(res.GetExpireTime().AsTime()) {
		t.Errorf("duplicate Reserve = %v, %v, want %v", dup, err, res)
	}
	st, err := c.GetStock(ctx, &inventoryv1.GetStockRequest{Skus: []string{"c", "a"}})
	if err != nil {
		t.Fatalf("GetStock = %v", err)
	}
	var got []string
	for _, s := range st.GetStock() {
		got = append(got, fmt.Sprintf("%s %d/%d/%d", s.GetSku(), s.GetOnHand(), s.GetReserved(), s.GetAvailable()))
	}
	if want := "c 3/1/2 a 10/2/8"; strings.Join(got, " ") != want {
		t.Errorf("GetStock = %q, want %q", strings.Join(got, " "), want)
	}
	cf, err := c.Confirm(ctx, &inventoryv1.ConfirmRequest{Idempotency: idem("s1", "confirm"), ReservationId: res.GetReservationId()})
	if err != nil || cf.GetState() != inventoryv1.ReservationState_RESERVATION_STATE_CONFIRMED {
		t.Errorf("Confirm = %v, %v, want CONFIRMED", cf, err)
	}
	if _, err := c.Reserve(ctx, &inventoryv1.ReserveRequest{Idempotency: idem("s2", "reserve"), OrderId: "o2", Lines: lines("a", 1)}); err != nil {
		t.Fatal(err)
	}
	rl, err := c.Release(ctx, &inventoryv1.ReleaseRequest{Idempotency: idem("s2", "reserve"), OrderId: "o2"})
	if err != nil || rl.GetState() != inventoryv1.ReservationState_RESERVATION_STATE_RELEASED {
		t.Errorf("Release = %v, %v, want RELEASED", rl, err)
	}
	rl, err = c.Release(ctx, &inventoryv1.ReleaseRequest{Idempotency: idem("s3", "reserve"), OrderId: "o3"})
	if err != nil || rl.GetState() != inventoryv1.ReservationState_RESERVATION_STATE_UNSPECIFIED {
		t.Errorf("Release before Reserve = %v, %v, want UNSPECIFIED", rl, err)
	}
}

// TestCodes checks the status code of each error the .proto documents.
func TestCodes(t *testing.T) {
	c, faults := start(t)
	ctx := t.Context()
	ok := func(saga string) *inventoryv1.ReserveRequest {
		return &inventoryv1.ReserveRequest{Idempotency: idem(saga, "reserve"), OrderId: "o-" + saga, Lines: lines("a", 1)}
	}
	confirmed, err := c.Reserve(ctx, ok("confirmed"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Confirm(ctx, &inventoryv1.ConfirmRequest{Idempotency: idem("confirmed", "confirm"), ReservationId: confirmed.GetReservationId()}); err != nil {
		t.Fatal(err)
	}
	released, err := c.Reserve(ctx, ok("released"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Release(ctx, &inventoryv1.ReleaseRequest{Idempotency: idem("released", "reserve"), OrderId: "o-released"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Release(ctx, &inventoryv1.ReleaseRequest{Idempotency: idem("hanging", "reserve"), OrderId: "o-hanging"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Release(ctx, &inventoryv1.ReleaseRequest{Idempotency: idem("confirm-hanging", "confirm"), OrderId: "o"}); err != nil {
		t.Fatal(err)
	}
	many := make([]string, 101)
	for i := range many {
		many[i] = "a"
	}
	mod := func(f func(r *inventoryv1.ReserveRequest)) *inventoryv1.ReserveRequest {
		r := ok("x")
		f(r)
		return r
	}
	reserve := func(r *inventoryv1.ReserveRequest) func() error {
		return func() error { _, err := c.Reserve(ctx, r); return err }
	}
	release := func(r *inventoryv1.ReleaseRequest) func() error {
		return func() error { _, err := c.Release(ctx, r); return err }
	}
	confirm := func(r *inventoryv1.ConfirmRequest) func() error {
		return func() error { _, err := c.Confirm(ctx, r); return err }
	}
	getStock := func(skus ...string) func() error {
		return func() error { _, err := c.GetStock(ctx, &inventoryv1.GetStockRequest{Skus: skus}); return err }
	}
	tests := []struct {
		name     string
		call     func() error
		want     codes.Code
		wantText string
	}{
		{"reserve without idempotency", reserve(mod(func(r *inventoryv1.ReserveRequest) { r.Idempotency = nil })), codes.InvalidArgument, "idempotency.saga_id"},
		{"reserve without branch", reserve(mod(func(r *inventoryv1.ReserveRequest) { r.Idempotency.BranchId = "" })), codes.InvalidArgument, "idempotency.branch_id"},
		{"reserve without order", reserve(mod(func(r *inventoryv1.ReserveRequest) { r.OrderId = "" })), codes.InvalidArgument, "order_id"},
		{"reserve without lines", reserve(mod(func(r *inventoryv1.ReserveRequest) { r.Lines = nil })), codes.InvalidArgument, "lines"},
		{"reserve zero quantity", reserve(mod(func(r *inventoryv1.ReserveRequest) { r.Lines = lines("a", 0) })), codes.InvalidArgument, "lines[0].quantity"},
		{"reserve repeated sku", reserve(mod(func(r *inventoryv1.ReserveRequest) { r.Lines = lines("a", 1, "a", 1) })), codes.InvalidArgument, "lines[1].sku"},
		{"reserve negative ttl", reserve(mod(func(r *inventoryv1.ReserveRequest) { r.Ttl = durationpb.New(-time.Second) })), codes.InvalidArgument, "ttl"},
		{"reserve unknown sku", reserve(mod(func(r *inventoryv1.ReserveRequest) { r.Lines = lines("a", 1, "zz", 1) })), codes.NotFound, `"zz"`},
		{"reserve beyond stock", reserve(mod(func(r *inventoryv1.ReserveRequest) { r.Lines = lines("c", 4) })), codes.FailedPrecondition, "insufficient stock of c: 4 requested, 3 available"},
		{"reserve after release", reserve(ok("hanging")), codes.Aborted, "compensated"},
		{"release without idempotency", release(&inventoryv1.ReleaseRequest{OrderId: "o"}), codes.InvalidArgument, "idempotency.saga_id"},
		{"release without order", release(&inventoryv1.ReleaseRequest{Idempotency: idem("s", "b")}), codes.InvalidArgument, "order_id"},
		{"release confirmed", release(&inventoryv1.ReleaseRequest{Idempotency: idem("confirmed", "reserve"), OrderId: "o-confirmed"}), codes.FailedPrecondition, "it is confirmed"},
		{"confirm without idempotency", confirm(&inventoryv1.ConfirmRequest{ReservationId: "r"}), codes.InvalidArgument, "idempotency.saga_id"},
		{"confirm without reservation", confirm(&inventoryv1.ConfirmRequest{Idempotency: idem("s", "confirm")}), codes.InvalidArgument, "reservation_id"},
		{"confirm unknown", confirm(&inventoryv1.ConfirmRequest{Idempotency: idem("s", "confirm"), ReservationId: "rsv_404"}), codes.NotFound, "rsv_404"},
		{"confirm released", confirm(&inventoryv1.ConfirmRequest{Idempotency: idem("released", "confirm"), ReservationId: released.GetReservationId()}), codes.FailedPrecondition, "it is released"},
		{"confirm compensated", confirm(&inventoryv1.ConfirmRequest{Idempotency: idem("confirm-hanging", "confirm"), ReservationId: confirmed.GetReservationId()}), codes.Aborted, "compensated"},
		{"stock of nothing", getStock(), codes.InvalidArgument, "skus"},
		{"stock of too many", getStock(many...), codes.InvalidArgument, "at most 100"},
		{"stock of unknown", getStock("a", "zz"), codes.NotFound, `"zz"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if got := status.Code(err); got != tc.want || !strings.Contains(status.Convert(err).Message(), tc.wantText) {
				t.Errorf("error = %v (%v), want %v with a message containing %q", err, got, tc.want, tc.wantText)
			}
		})
	}

	t.Run("details", func(t *testing.T) {
		_, err := c.Reserve(ctx, mod(func(r *inventoryv1.ReserveRequest) { r.Lines = lines("a", 1, "c", 4) }))
		var pf *errdetails.PreconditionFailure
		for _, d := range status.Convert(err).Details() {
			if d, ok := d.(*errdetails.PreconditionFailure); ok {
				pf = d
			}
		}
		if len(pf.GetViolations()) != 1 || pf.GetViolations()[0].GetSubject() != "c" || pf.GetViolations()[0].GetType() != "STOCK" {
			t.Errorf("details of %v = %v, want a PreconditionFailure naming sku c", err, pf)
		}
		_, err = c.Reserve(ctx, mod(func(r *inventoryv1.ReserveRequest) { r.Lines = lines("a", -1) }))
		var br *errdetails.BadRequest
		for _, d := range status.Convert(err).Details() {
			if d, ok := d.(*errdetails.BadRequest); ok {
				br = d
			}
		}
		if len(br.GetFieldViolations()) != 1 || br.GetFieldViolations()[0].GetField() != "lines[0].quantity" {
			t.Errorf("details of %v = %v, want a BadRequest naming lines[0].quantity", err, br)
		}
	})

	t.Run("faults", func(t *testing.T) {
		if err := faults.Set(fault.Settings{ErrorRate: 1}); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = faults.Set(fault.Settings{}) }()
		for name, call := range map[string]func() error{
			"Reserve": reserve(ok("f")), "Release": release(&inventoryv1.ReleaseRequest{Idempotency: idem("f", "reserve"), OrderId: "o-f"}),
			"Confirm": confirm(&inventoryv1.ConfirmRequest{Idempotency: idem("f", "confirm"), ReservationId: "r"}), "GetStock": getStock("a"),
		} {
			if err := call(); status.Code(err) != codes.Unavailable {
				t.Errorf("%s with an injected fault = %v, want UNAVAILABLE", name, err)
			}
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := c.GetStock(ctx, &inventoryv1.GetStockRequest{Skus: []string{"a"}}); status.Code(err) != codes.Canceled {
			t.Errorf("GetStock with a cancelled context = %v, want CANCELLED", err)
		}
	})
}
