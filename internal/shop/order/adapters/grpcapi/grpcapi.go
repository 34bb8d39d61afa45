// Package grpcapi serves the order service's read API over gRPC
// (cairn.shop.order.v1.OrderService): getting and listing orders, and
// WatchOrder, a server-streaming call that sends an order's status each
// time the checkout saga changes it.
//
// Errors follow the API's contract (AIP-193): INVALID_ARGUMENT naming the
// field, NOT_FOUND for an unknown order, UNAVAILABLE when the store is,
// CANCELLED or DEADLINE_EXCEEDED when the client's context ends.
package grpcapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	orderv1 "github.com/cairnhq/cairn/api/proto/cairn/shop/order/v1"
	typev1 "github.com/cairnhq/cairn/api/proto/cairn/shop/type/v1"
	"github.com/cairnhq/cairn/internal/shop/order/app"
	"github.com/cairnhq/cairn/internal/shop/order/domain"
)

// Page sizes of ListOrders.
const (
	// DefaultPageSize is the page size of a request that gives none.
	DefaultPageSize = 50
	// MaxPageSize is the largest page; larger requests get this many.
	MaxPageSize = 1000
)

// Currency is the currency of the order totals and prices.
const Currency = "EUR"

// Orders is what the server needs of the order service.
type Orders interface {
	// GetOrder returns an order, or an error matching domain.ErrNotFound.
	GetOrder(ctx context.Context, id string) (domain.Order, error)
	// FindOrders returns at most limit orders of a customer (all when
	// empty) in a status (any when StatusUnknown), newest first, after
	// skipping offset.
	FindOrders(ctx context.Context, customer string, st domain.Status, offset, limit int) ([]domain.Order, error)
	// WatchOrder calls fn with the order now and after each status
	// change, until a final status.
	WatchOrder(ctx context.Context, id string, fn func(domain.Order) error) error
}

// Server implements orderv1.OrderServiceServer.
type Server struct {
	orderv1.UnimplementedOrderServiceServer
	orders Orders
}

// New returns the server of orders.
func New(orders Orders) *Server { return &Server{orders: orders} }

// Register registers s with r.
func (s *Server) Register(r grpc.ServiceRegistrar) { orderv1.RegisterOrderServiceServer(r, s) }

// GetOrder implements orderv1.OrderServiceServer.
func (s *Server) GetOrder(ctx context.Context, req *orderv1.GetOrderRequest) (*orderv1.GetOrderResponse, error) {
	if req.GetOrderId() == "" {
		return nil, status.Error(codes.InvalidArgument, "order_id is required")
	}
	o, err := s.orders.GetOrder(ctx, req.GetOrderId())
	if err != nil {
		return nil, toStatus(ctx, err, req.GetOrderId())
	}
	return &orderv1.GetOrderResponse{Order: ToProto(o)}, nil
}

// pageToken is the decoded page_token of ListOrders: where the next page
// starts, and the arguments it was issued for.
type pageToken struct {
	Offset   int    `json:"o"`
	Customer string `json:"c,omitempty"`
	Status   int32  `json:"s,omitempty"`
}

// ListOrders implements orderv1.OrderServiceServer.
func (s *Server) ListOrders(ctx context.Context, req *orderv1.ListOrdersRequest) (*orderv1.ListOrdersResponse, error) {
	size := int(req.GetPageSize())
	switch {
	case size < 0:
		return nil, status.Errorf(codes.InvalidArgument, "page_size %d is negative", size)
	case size == 0:
		size = DefaultPageSize
	case size > MaxPageSize:
		size = MaxPageSize
	}
	var st domain.Status
	if req.GetStatus() != orderv1.OrderStatus_ORDER_STATUS_UNSPECIFIED {
		var ok bool
		if st, ok = fromProtoStatus(req.GetStatus()); !ok {
			return nil, status.Errorf(codes.InvalidArgument, "status %d is not a known order status", req.GetStatus())
		}
	}
	tok := pageToken{Customer: req.GetCustomerId(), Status: int32(req.GetStatus())}
	if t := req.GetPageToken(); t != "" {
		var got pageToken
		raw, err := base64.RawURLEncoding.DecodeString(t)
		if err == nil {
			err = json.Unmarshal(raw, &got)
		}
		if err != nil || got.Offset < 0 {
			return nil, status.Errorf(codes.InvalidArgument, "page_token %q was not issued by this service", t)
		}
		if got.Customer != tok.Customer || got.Status != tok.Status {
			return nil, status.Error(codes.InvalidArgument, "page_token was issued for another customer_id or status")
		}
		tok.Offset = got.Offset
	}
	// One more than the page tells whether there is a next one.
	orders, err := s.orders.FindOrders(ctx, tok.Customer, st, tok.Offset, size+1)
	if err != nil {
		return nil, toStatus(ctx, err, "")
	}
	resp := &orderv1.ListOrdersResponse{}
	if len(orders) > size {
		orders = orders[:size]
		next := tok
		next.Offset += size
		raw, _ := json.Marshal(next)
		resp.NextPageToken = base64.RawURLEncoding.EncodeToString(raw)
	}
	for _, o := range orders {
		resp.Orders = append(resp.Orders, ToProto(o))
	}
	return resp, nil
}

// WatchOrder implements orderv1.OrderServiceServer.
func (s *Server) WatchOrder(req *orderv1.WatchOrderRequest, stream grpc.ServerStreamingServer[orderv1.WatchOrderResponse]) error {
	if req.GetOrderId() == "" {
		return status.Error(codes.InvalidArgument, "order_id is required")
	}
	ctx := stream.Context()
	err := s.orders.WatchOrder(ctx, req.GetOrderId(), func(o domain.Order) error {
		return stream.Send(&orderv1.WatchOrderResponse{
			OrderId: o.ID, Status: toProtoStatus(o.Status), Reason: o.StatusReason, ChangeTime: timestamppb.New(o.UpdatedAt),
		})
	})
	if err != nil {
		return toStatus(ctx, err, req.GetOrderId())
	}
	return nil
}

// toStatus maps a use case's error to a gRPC status.
func toStatus(ctx context.Context, err error, id string) error {
	if _, ok := status.FromError(err); ok && !errors.Is(err, domain.ErrNotFound) {
		return err
	}
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return status.Errorf(codes.NotFound, "order %q not found", id)
	case errors.Is(err, domain.ErrInvalid):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, app.ErrUnavailable):
		return status.Errorf(codes.Unavailable, "orders are temporarily unavailable: %v", err)
	case errors.Is(err, context.Canceled) || errors.Is(ctx.Err(), context.Canceled):
		return status.Error(codes.Canceled, "the client cancelled the call")
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	}
	return status.Errorf(codes.Internal, "internal error: %v", err)
}

var statuses = map[domain.Status]orderv1.OrderStatus{
	domain.StatusPlaced:       orderv1.OrderStatus_ORDER_STATUS_PENDING,
	domain.StatusReserved:     orderv1.OrderStatus_ORDER_STATUS_RESERVED,
	domain.StatusPaid:         orderv1.OrderStatus_ORDER_STATUS_PAID,
	domain.StatusScheduled:    orderv1.OrderStatus_ORDER_STATUS_SCHEDULED,
	domain.StatusConfirmed:    orderv1.OrderStatus_ORDER_STATUS_CONFIRMED,
	domain.StatusCompensating: orderv1.OrderStatus_ORDER_STATUS_COMPENSATING,
	domain.StatusCancelled:    orderv1.OrderStatus_ORDER_STATUS_CANCELLED,
	domain.StatusFailed:       orderv1.OrderStatus_ORDER_STATUS_FAILED,
}

func toProtoStatus(s domain.Status) orderv1.OrderStatus { return statuses[s] }

func fromProtoStatus(s orderv1.OrderStatus) (domain.Status, bool) {
	for d, p := range statuses {
		if p == s {
			return d, true
		}
	}
	return domain.StatusUnknown, false
}

// ToProto converts an order to its API form.
func ToProto(o domain.Order) *orderv1.Order {
	p := &orderv1.Order{
		OrderId: o.ID, CustomerId: o.CustomerID, Status: toProtoStatus(o.Status), StatusReason: o.StatusReason,
		SagaId: o.SagaID, Total: &typev1.Money{AmountMinor: o.Total, CurrencyCode: Currency},
		CreateTime: timestamppb.New(o.CreatedAt), UpdateTime: timestamppb.New(o.UpdatedAt),
	}
	for _, l := range o.Lines {
		p.Lines = append(p.Lines, &orderv1.Line{Sku: l.SKU, Quantity: int32(l.Quantity),
			UnitPrice: &typev1.Money{AmountMinor: l.UnitPrice, CurrencyCode: Currency}})
	}
	return p
}
