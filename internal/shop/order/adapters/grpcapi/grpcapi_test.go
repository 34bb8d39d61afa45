package grpcapi_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	orderv1 "github.com/cairnhq/cairn/api/proto/cairn/shop/order/v1"
	"github.com/cairnhq/cairn/internal/shop/order/adapters/grpcapi"
	"github.com/cairnhq/cairn/internal/shop/order/domain"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// orders is a fake grpcapi.Orders: 7 orders, newest first, and a watch
// that plays a list of statuses, one per tick.
type orders struct {
	list  []domain.Order
	ticks chan struct{}
	mu    sync.Mutex
	calls []string
}

func newOrders() *orders {
	o := &orders{ticks: make(chan struct{}, 3)}
	for i := 7; i >= 1; i-- {
		o.list = append(o.list, domain.Order{ID: fmt.Sprint("o", i), CustomerID: fmt.Sprint("c", i%2), Status: domain.StatusPlaced,
			Total: 100, Lines: []domain.Line{{SKU: "SKU-1", Quantity: 1, UnitPrice: 100}}})
	}
	return o
}

func (o *orders) GetOrder(_ context.Context, id string) (domain.Order, error) {
	for _, x := range o.list {
		if x.ID == id {
			return x, nil
		}
	}
	return domain.Order{}, fmt.Errorf("get %s: %w", id, domain.ErrNotFound)
}

func (o *orders) FindOrders(_ context.Context, customer string, st domain.Status, offset, limit int) ([]domain.Order, error) {
	o.mu.Lock()
	o.calls = append(o.calls, fmt.Sprintf("%s/%s/%d/%d", customer, st, offset, limit))
	o.mu.Unlock()
	var out []domain.Order
	for _, x := range o.list {
		if (customer == "" || x.CustomerID == customer) && (st == domain.StatusUnknown || x.Status == st) {
			out = append(out, x)
		}
	}
	if offset >= len(out) {
		return nil, nil
	}
	out = out[offset:]
	return out[:min(limit, len(out))], nil
}

func (o *orders) WatchOrder(ctx context.Context, id string, fn func(domain.Order) error) error {
	if _, err := o.GetOrder(ctx, id); err != nil {
		return err
	}
	for _, st := range []domain.Status{domain.StatusPlaced, domain.StatusReserved, domain.StatusCompensating, domain.StatusCancelled} {
		if err := fn(domain.Order{ID: id, Status: st, StatusReason: map[bool]string{true: "declined"}[st == domain.StatusCompensating]}); err != nil {
			return err
		}
		if st.Final() {
			return nil
		}
		select {
		case <-o.ticks:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return errors.New("unreachable")
}

func serve(t *testing.T, o *orders) orderv1.OrderServiceClient {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	grpcapi.New(o).Register(srv)
	go func() { _ = srv.Serve(ln) }()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); srv.Stop() })
	return orderv1.NewOrderServiceClient(conn)
}

func TestGetOrder(t *testing.T) {
	c := serve(t, newOrders())
	resp, err := c.GetOrder(t.Context(), &orderv1.GetOrderRequest{OrderId: "o3"})
	if err != nil {
		t.Fatal(err)
	}
	if o := resp.GetOrder(); o.GetOrderId() != "o3" || o.GetStatus() != orderv1.OrderStatus_ORDER_STATUS_PENDING || o.GetTotal().GetCurrencyCode() != "EUR" {
		t.Errorf("GetOrder = %v", o)
	}
	for _, tc := range []struct {
		id   string
		code codes.Code
	}{{"", codes.InvalidArgument}, {"o99", codes.NotFound}} {
		if _, err := c.GetOrder(t.Context(), &orderv1.GetOrderRequest{OrderId: tc.id}); status.Code(err) != tc.code {
			t.Errorf("GetOrder(%q) = %v, want %s", tc.id, err, tc.code)
		}
	}
}

func TestListOrdersPages(t *testing.T) {
	c := serve(t, newOrders())
	var ids []string
	req := &orderv1.ListOrdersRequest{PageSize: 3}
	for pages := 0; ; pages++ {
		resp, err := c.ListOrders(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range resp.GetOrders() {
			ids = append(ids, o.GetOrderId())
		}
		if resp.GetNextPageToken() == "" {
			if pages != 2 {
				t.Errorf("%d pages, want 3", pages+1)
			}
			break
		}
		req.PageToken = resp.GetNextPageToken()
	}
	if fmt.Sprint(ids) != "[o7 o6 o5 o4 o3 o2 o1]" {
		t.Errorf("pages gave %v", ids)
	}
	// A token is bound to its arguments; a forged one is refused.
	first, _ := c.ListOrders(t.Context(), &orderv1.ListOrdersRequest{PageSize: 2})
	if _, err := c.ListOrders(t.Context(), &orderv1.ListOrdersRequest{PageSize: 2, CustomerId: "c1", PageToken: first.GetNextPageToken()}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("token for other arguments = %v, want INVALID_ARGUMENT", err)
	}
	for _, req := range []*orderv1.ListOrdersRequest{{PageToken: "%%%"}, {PageSize: -1}, {Status: orderv1.OrderStatus(42)}} {
		if _, err := c.ListOrders(t.Context(), req); status.Code(err) != codes.InvalidArgument {
			t.Errorf("ListOrders(%v) = %v, want INVALID_ARGUMENT", req, err)
		}
	}
	resp, err := c.ListOrders(t.Context(), &orderv1.ListOrdersRequest{CustomerId: "c1"})
	if err != nil || len(resp.GetOrders()) != 4 {
		t.Errorf("ListOrders(customer c1) = %d orders, %v; want 4", len(resp.GetOrders()), err)
	}
}

func TestWatchOrderStreamsUntilFinal(t *testing.T) {
	o := newOrders()
	for range 3 { // one per change after the first
		o.ticks <- struct{}{}
	}
	c := serve(t, o)
	stream, err := c.WatchOrder(t.Context(), &orderv1.WatchOrderRequest{OrderId: "o1"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Recv = %v", err)
		}
		got = append(got, msg.GetStatus().String()+":"+msg.GetReason())
	}
	want := "[ORDER_STATUS_PENDING: ORDER_STATUS_RESERVED: ORDER_STATUS_COMPENSATING:declined ORDER_STATUS_CANCELLED:]"
	if fmt.Sprint(got) != want {
		t.Errorf("stream = %v, want %v", got, want)
	}
	stream, err = c.WatchOrder(t.Context(), &orderv1.WatchOrderRequest{OrderId: "o99"})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.NotFound {
		t.Errorf("WatchOrder(o99) = %v, want NOT_FOUND", err)
	}
}

func TestWatchOrderCancelled(t *testing.T) {
	c := serve(t, newOrders())
	ctx, cancel := context.WithCancel(t.Context())
	stream, err := c.WatchOrder(ctx, &orderv1.WatchOrderRequest{OrderId: "o1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := stream.Recv(); status.Code(err) != codes.Canceled {
		t.Errorf("Recv after cancel = %v, want CANCELED", err)
	}
}
