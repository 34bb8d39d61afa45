// Package grpcapi serves the inventory use cases as the gRPC service
// cairn.shop.inventory.v1.InventoryService: it turns requests into use-case
// calls and the use cases' errors into the status codes that
// api/proto/cairn/shop/inventory/v1/inventory.proto lists, with
// google.rpc error details (BadRequest, ResourceInfo, PreconditionFailure)
// naming the field, sku or reservation.
//
// Errors not listed there become INTERNAL with a generic message (the
// cause is logged with the request's context), an injected fault becomes
// UNAVAILABLE, and an ended context CANCELLED or DEADLINE_EXCEEDED.
package grpcapi

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/timestamppb"

	inventoryv1 "github.com/cairnhq/cairn/api/proto/cairn/shop/inventory/v1"
	typev1 "github.com/cairnhq/cairn/api/proto/cairn/shop/type/v1"
	"github.com/cairnhq/cairn/internal/fault"
	"github.com/cairnhq/cairn/internal/shop/inventory/app"
	"github.com/cairnhq/cairn/internal/shop/inventory/domain"
)

// Config configures a [Server]. The zero value is valid.
type Config struct {
	// Faults, if set, runs before every RPC: an injected error is answered
	// with UNAVAILABLE and its message, injected latency delays the call.
	// Default nil: no faults.
	Faults *fault.Injector
	// Logger receives a record per INTERNAL error, with its cause.
	// Default: logs are discarded.
	Logger *slog.Logger
}

// Server implements inventoryv1.InventoryServiceServer on the use cases.
// It is safe for concurrent use.
type Server struct {
	inventoryv1.UnimplementedInventoryServiceServer
	uc     *app.Service
	faults *fault.Injector
	log    *slog.Logger
}

var _ inventoryv1.InventoryServiceServer = (*Server)(nil)

// New returns the gRPC server of uc.
func New(uc *app.Service, cfg Config) *Server {
	s := &Server{uc: uc, faults: cfg.Faults, log: cfg.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// inject runs the fault injector, if any, and returns the status error of
// an injected fault.
func (s *Server) inject(ctx context.Context) error {
	if s.faults == nil {
		return nil
	}
	if err := s.faults.Inject(ctx); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return status.FromContextError(ctxErr).Err()
		}
		return status.Error(codes.Unavailable, err.Error())
	}
	return nil
}

// key returns the domain key of an idempotency message (nil gives the
// zero key, which fails validation naming idempotency.saga_id).
func key(id *typev1.Idempotency) domain.Key {
	return domain.Key{SagaID: id.GetSagaId(), BranchID: id.GetBranchId()}
}

// Reserve implements InventoryService.Reserve.
func (s *Server) Reserve(ctx context.Context, req *inventoryv1.ReserveRequest) (*inventoryv1.ReserveResponse, error) {
	if err := s.inject(ctx); err != nil {
		return nil, err
	}
	in := app.ReserveInput{Key: key(req.GetIdempotency()), OrderID: req.GetOrderId()}
	if ttl := req.GetTtl(); ttl != nil {
		if err := ttl.CheckValid(); err != nil {
			return nil, s.status(ctx, &domain.ValidationError{Field: "ttl", Reason: "is not a valid duration: " + err.Error()})
		}
		in.TTL = ttl.AsDuration()
	}
	in.Lines = make([]domain.Line, len(req.GetLines()))
	for i, l := range req.GetLines() {
		in.Lines[i] = domain.Line{SKU: l.GetSku(), Quantity: int(l.GetQuantity())}
	}
	r, err := s.uc.Reserve(ctx, in)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &inventoryv1.ReserveResponse{ReservationId: r.ID, ExpireTime: timestamppb.New(r.ExpireTime)}, nil
}

// Release implements InventoryService.Release.
func (s *Server) Release(ctx context.Context, req *inventoryv1.ReleaseRequest) (*inventoryv1.ReleaseResponse, error) {
	if err := s.inject(ctx); err != nil {
		return nil, err
	}
	st, err := s.uc.Release(ctx, key(req.GetIdempotency()), req.GetOrderId())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &inventoryv1.ReleaseResponse{State: State(st)}, nil
}

// Confirm implements InventoryService.Confirm.
func (s *Server) Confirm(ctx context.Context, req *inventoryv1.ConfirmRequest) (*inventoryv1.ConfirmResponse, error) {
	if err := s.inject(ctx); err != nil {
		return nil, err
	}
	st, err := s.uc.Confirm(ctx, key(req.GetIdempotency()), req.GetReservationId())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &inventoryv1.ConfirmResponse{State: State(st)}, nil
}

// GetStock implements InventoryService.GetStock.
func (s *Server) GetStock(ctx context.Context, req *inventoryv1.GetStockRequest) (*inventoryv1.GetStockResponse, error) {
	if err := s.inject(ctx); err != nil {
		return nil, err
	}
	stock, err := s.uc.GetStock(ctx, req.GetSkus())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	resp := &inventoryv1.GetStockResponse{Stock: make([]*inventoryv1.Stock, len(stock))}
	for i, st := range stock {
		resp.Stock[i] = &inventoryv1.Stock{
			Sku: st.SKU, OnHand: clamp32(st.OnHand), Reserved: clamp32(st.Reserved), Available: clamp32(st.Available()),
		}
	}
	return resp, nil
}

// clamp32 returns n as an int32, saturated.
func clamp32(n int) int32 {
	return int32(min(max(n, -1<<31), 1<<31-1))
}

// State returns the wire value of a reservation state; StateNone is
// RESERVATION_STATE_UNSPECIFIED.
func State(s domain.State) inventoryv1.ReservationState {
	switch s {
	case domain.StateActive:
		return inventoryv1.ReservationState_RESERVATION_STATE_ACTIVE
	case domain.StateConfirmed:
		return inventoryv1.ReservationState_RESERVATION_STATE_CONFIRMED
	case domain.StateReleased:
		return inventoryv1.ReservationState_RESERVATION_STATE_RELEASED
	case domain.StateExpired:
		return inventoryv1.ReservationState_RESERVATION_STATE_EXPIRED
	}
	return inventoryv1.ReservationState_RESERVATION_STATE_UNSPECIFIED
}

// status returns the gRPC status error of a use case's error, as the
// .proto documents it.
func (s *Server) status(ctx context.Context, err error) error {
	var (
		invalid  *domain.ValidationError
		notFound *domain.NotFoundError
		short    *domain.InsufficientStockError
		state    *domain.StateError
	)
	switch {
	case errors.As(err, &invalid):
		return withDetails(codes.InvalidArgument, invalid.Error(), &errdetails.BadRequest{
			FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: invalid.Field, Description: invalid.Error()}},
		})
	case errors.As(err, &notFound):
		return withDetails(codes.NotFound, notFound.Error(), &errdetails.ResourceInfo{
			ResourceType: notFound.Kind, ResourceName: notFound.ID, Description: notFound.Error(),
		})
	case errors.As(err, &short):
		return withDetails(codes.FailedPrecondition, short.Error(), &errdetails.PreconditionFailure{
			Violations: []*errdetails.PreconditionFailure_Violation{{Type: "STOCK", Subject: short.SKU, Description: short.Error()}},
		})
	case errors.As(err, &state):
		return withDetails(codes.FailedPrecondition, state.Error(), &errdetails.PreconditionFailure{
			Violations: []*errdetails.PreconditionFailure_Violation{{Type: "STATE", Subject: state.ID, Description: state.Error()}},
		})
	case errors.Is(err, domain.ErrCompensated):
		return status.Error(codes.Aborted, err.Error())
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		if ctxErr := ctx.Err(); ctxErr != nil {
			return status.FromContextError(ctxErr).Err()
		}
	}
	s.log.ErrorContext(ctx, "inventory: internal error", "err", err)
	return status.Error(codes.Internal, "inventory: internal error")
}

// withDetails returns a status error of code and msg carrying detail.
func withDetails(code codes.Code, msg string, detail protoadapt.MessageV1) error {
	st, err := status.New(code, msg).WithDetails(detail)
	if err != nil {
		return status.Error(code, msg)
	}
	return st.Err()
}
