// Package grpcapi serves the shipping service's use cases as
// shippingv1.ShippingServiceServer (api/proto/cairn/shop/shipping/v1): it
// turns requests into the use cases' inputs, and their errors into the
// gRPC status codes the .proto lists, with a message naming the field or
// the fact at fault:
//
//	INVALID_ARGUMENT     a missing or invalid field (*domain.InvalidError)
//	FAILED_PRECONDITION  a region the shop does not ship to, or cancelling
//	                     a shipment that has left the warehouse
//	ABORTED              ScheduleShipment after its CancelShipment
//	NOT_FOUND            GetShipment of an unknown shipment
//	UNAVAILABLE          an injected fault (see package internal/fault)
//	DEADLINE_EXCEEDED,   the caller's context ended
//	CANCELED
//	INTERNAL             anything else, logged; the message says no more
package grpcapi

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	shippingv1 "github.com/cairnhq/cairn/api/proto/cairn/shop/shipping/v1"
	"github.com/cairnhq/cairn/internal/fault"
	"github.com/cairnhq/cairn/internal/shop/shipping/app"
	"github.com/cairnhq/cairn/internal/shop/shipping/domain"
)

// Server is the gRPC server of the shipping service. It is safe for
// concurrent use.
type Server struct {
	shippingv1.UnimplementedShippingServiceServer
	svc    *app.Service
	faults *fault.Injector
	log    *slog.Logger
}

var _ shippingv1.ShippingServiceServer = (*Server)(nil)

// NewServer returns the server of svc. faults, if not nil, is called first
// by every RPC, which answers UNAVAILABLE with the injected error's message
// when it returns one. logger receives the unexpected errors answered as
// INTERNAL; nil discards them.
func NewServer(svc *app.Service, faults *fault.Injector, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Server{svc: svc, faults: faults, log: logger}
}

// ScheduleShipment implements shippingv1.ShippingServiceServer.
func (s *Server) ScheduleShipment(ctx context.Context, req *shippingv1.ScheduleShipmentRequest) (*shippingv1.ScheduleShipmentResponse, error) {
	if err := s.inject(ctx); err != nil {
		return nil, err
	}
	if n := len(req.GetLines()); n > domain.MaxLines {
		return nil, status.Errorf(codes.InvalidArgument, "invalid lines: has %d lines, more than %d", n, domain.MaxLines)
	}
	in := app.Schedule{
		Key:     key(req.GetIdempotency().GetSagaId(), req.GetIdempotency().GetBranchId()),
		OrderID: req.GetOrderId(),
		Address: addressFromProto(req.GetAddress()),
		Lines:   make([]domain.Line, len(req.GetLines())),
	}
	for i, l := range req.GetLines() {
		in.Lines[i] = domain.Line{SKU: l.GetSku(), Quantity: l.GetQuantity()}
	}
	sh, err := s.svc.ScheduleShipment(ctx, in)
	if err != nil {
		return nil, s.status(ctx, "ScheduleShipment", err)
	}
	return &shippingv1.ScheduleShipmentResponse{
		ShipmentId:            sh.ID,
		EstimatedDeliveryTime: timestamppb.New(sh.EstimatedDelivery),
	}, nil
}

// CancelShipment implements shippingv1.ShippingServiceServer.
func (s *Server) CancelShipment(ctx context.Context, req *shippingv1.CancelShipmentRequest) (*shippingv1.CancelShipmentResponse, error) {
	if err := s.inject(ctx); err != nil {
		return nil, err
	}
	sh, err := s.svc.CancelShipment(ctx, app.Cancel{
		Key:     key(req.GetIdempotency().GetSagaId(), req.GetIdempotency().GetBranchId()),
		OrderID: req.GetOrderId(),
	})
	if err != nil {
		return nil, s.status(ctx, "CancelShipment", err)
	}
	resp := &shippingv1.CancelShipmentResponse{}
	if sh != nil {
		resp.Shipment = ShipmentToProto(*sh)
	}
	return resp, nil
}

// GetShipment implements shippingv1.ShippingServiceServer.
func (s *Server) GetShipment(ctx context.Context, req *shippingv1.GetShipmentRequest) (*shippingv1.GetShipmentResponse, error) {
	if err := s.inject(ctx); err != nil {
		return nil, err
	}
	sh, err := s.svc.GetShipment(ctx, req.GetShipmentId())
	if err != nil {
		return nil, s.status(ctx, "GetShipment", err)
	}
	return &shippingv1.GetShipmentResponse{Shipment: ShipmentToProto(sh)}, nil
}

// inject returns the UNAVAILABLE status of an injected fault, or nil.
func (s *Server) inject(ctx context.Context) error {
	if s.faults == nil {
		return nil
	}
	if err := s.faults.Inject(ctx); err != nil {
		return status.Error(codes.Unavailable, err.Error())
	}
	return nil
}

// status returns the gRPC status of a use case's error.
func (s *Server) status(ctx context.Context, rpc string, err error) error {
	var (
		invalid   *domain.InvalidError
		unserved  *domain.UnservedRegionError
		notCancel *domain.NotCancellableError
	)
	switch {
	case errors.As(err, &invalid):
		return status.Error(codes.InvalidArgument, "invalid "+invalid.Field+": "+invalid.Reason)
	case errors.As(err, &unserved):
		return status.Errorf(codes.FailedPrecondition, "the shop does not ship to region %q", unserved.RegionCode)
	case errors.As(err, &notCancel):
		return status.Errorf(codes.FailedPrecondition, "shipment %s is %s: it has left the warehouse and can no longer be cancelled", notCancel.ID, notCancel.Status)
	case errors.Is(err, app.ErrAborted):
		return status.Error(codes.Aborted, "the shipment's branch was already compensated (CancelShipment came first): nothing was scheduled; do not retry")
	case errors.Is(err, domain.ErrNotFound):
		return status.Error(codes.NotFound, "shipment not found")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	}
	s.log.ErrorContext(ctx, "shipping: rpc failed", slog.String("rpc", rpc), slog.String("error", err.Error()))
	return status.Error(codes.Internal, "internal error")
}

// key returns the use cases' idempotency key.
func key(sagaID, branchID string) app.Key { return app.Key{SagaID: sagaID, BranchID: branchID} }

// addressFromProto returns a's domain address; a nil a is the zero
// address, which fails validation.
func addressFromProto(a *shippingv1.Address) domain.Address {
	return domain.Address{
		Recipient:          a.GetRecipient(),
		Lines:              a.GetAddressLines(),
		Locality:           a.GetLocality(),
		PostalCode:         a.GetPostalCode(),
		AdministrativeArea: a.GetAdministrativeArea(),
		RegionCode:         a.GetRegionCode(),
	}
}

// statuses maps the domain's statuses to the API's.
var statuses = map[domain.Status]shippingv1.ShipmentStatus{
	domain.Scheduled: shippingv1.ShipmentStatus_SHIPMENT_STATUS_SCHEDULED,
	domain.Shipped:   shippingv1.ShipmentStatus_SHIPMENT_STATUS_SHIPPED,
	domain.Delivered: shippingv1.ShipmentStatus_SHIPMENT_STATUS_DELIVERED,
	domain.Cancelled: shippingv1.ShipmentStatus_SHIPMENT_STATUS_CANCELLED,
}

// ShipmentToProto returns the API's message of sh.
func ShipmentToProto(sh domain.Shipment) *shippingv1.Shipment {
	lines := make([]*shippingv1.Line, len(sh.Lines))
	for i, l := range sh.Lines {
		lines[i] = &shippingv1.Line{Sku: l.SKU, Quantity: l.Quantity}
	}
	return &shippingv1.Shipment{
		ShipmentId: sh.ID,
		OrderId:    sh.OrderID,
		Address: &shippingv1.Address{
			Recipient:          sh.Address.Recipient,
			AddressLines:       sh.Address.Lines,
			Locality:           sh.Address.Locality,
			PostalCode:         sh.Address.PostalCode,
			AdministrativeArea: sh.Address.AdministrativeArea,
			RegionCode:         sh.Address.RegionCode,
		},
		Lines:                 lines,
		Status:                statuses[sh.Status],
		EstimatedDeliveryTime: timestamppb.New(sh.EstimatedDelivery),
		CreateTime:            timestamppb.New(sh.CreatedAt),
		UpdateTime:            timestamppb.New(sh.UpdatedAt),
	}
}
