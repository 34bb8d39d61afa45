// Package grpcapi serves the payment use cases as the gRPC service
// cairn.shop.payment.v1.PaymentService: it validates requests, turns them
// into use-case calls, and turns the use cases' errors into the status
// codes that api/proto/cairn/shop/payment/v1/payment.proto lists, with
// google.rpc error details (BadRequest, PreconditionFailure, ResourceInfo)
// naming the field, payment method or payment.
//
// An unreachable provider (or its open circuit breaker) and an injected
// fault become UNAVAILABLE, which the saga retries with the same key; an
// ended context becomes CANCELLED or DEADLINE_EXCEEDED; any other error
// INTERNAL with a generic message, its cause logged with the request's
// context.
package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/timestamppb"

	paymentv1 "github.com/cairnhq/cairn/api/proto/cairn/shop/payment/v1"
	typev1 "github.com/cairnhq/cairn/api/proto/cairn/shop/type/v1"
	"github.com/cairnhq/cairn/internal/fault"
	"github.com/cairnhq/cairn/internal/shop/payment/app"
	"github.com/cairnhq/cairn/internal/shop/payment/domain"
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

// Server implements paymentv1.PaymentServiceServer on the use cases. It is
// safe for concurrent use.
type Server struct {
	paymentv1.UnimplementedPaymentServiceServer
	uc     *app.Service
	faults *fault.Injector
	log    *slog.Logger
}

var _ paymentv1.PaymentServiceServer = (*Server)(nil)

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

// invalid returns INVALID_ARGUMENT naming field.
func invalid(field, msg string) error {
	return withDetails(codes.InvalidArgument, msg, &errdetails.BadRequest{
		FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: field, Description: msg}},
	})
}

// key validates an idempotency message and returns its domain key.
func key(id *typev1.Idempotency) (domain.Key, error) {
	switch {
	case id.GetSagaId() == "":
		return domain.Key{}, invalid("idempotency.saga_id", "idempotency.saga_id is required")
	case id.GetBranchId() == "":
		return domain.Key{}, invalid("idempotency.branch_id", "idempotency.branch_id is required")
	}
	return domain.Key{SagaID: id.GetSagaId(), BranchID: id.GetBranchId()}, nil
}

// Charge implements PaymentService.Charge.
func (s *Server) Charge(ctx context.Context, req *paymentv1.ChargeRequest) (*paymentv1.ChargeResponse, error) {
	if err := s.inject(ctx); err != nil {
		return nil, err
	}
	k, err := key(req.GetIdempotency())
	if err != nil {
		return nil, err
	}
	if req.GetOrderId() == "" {
		return nil, invalid("order_id", "order_id is required")
	}
	if req.GetAmount() == nil {
		return nil, invalid("amount", "amount is required")
	}
	amount, currency, method := req.GetAmount().GetAmountMinor(), req.GetAmount().GetCurrencyCode(), req.GetPaymentMethodToken()
	if err := domain.ValidateCharge(amount, currency, method); err != nil {
		field := "payment_method_token"
		switch {
		case amount <= 0:
			field = "amount.amount_minor"
		case !domain.KnownCurrency(currency):
			field = "amount.currency_code"
		}
		return nil, invalid(field, err.Error())
	}
	p, err := s.uc.Charge(ctx, app.ChargeCommand{Key: k, OrderID: req.GetOrderId(), AmountMinor: amount, Currency: currency, PaymentMethod: method})
	if err != nil {
		return nil, s.status(ctx, err, method)
	}
	return &paymentv1.ChargeResponse{PaymentId: p.ID, Status: Status(p.Status), DeclineReason: p.DeclineReason}, nil
}

// Refund implements PaymentService.Refund.
func (s *Server) Refund(ctx context.Context, req *paymentv1.RefundRequest) (*paymentv1.RefundResponse, error) {
	if err := s.inject(ctx); err != nil {
		return nil, err
	}
	k, err := key(req.GetIdempotency())
	if err != nil {
		return nil, err
	}
	if req.GetOrderId() == "" {
		return nil, invalid("order_id", "order_id is required")
	}
	p, found, err := s.uc.Refund(ctx, k, req.GetReason())
	if err != nil {
		return nil, s.status(ctx, err, "")
	}
	if !found {
		return &paymentv1.RefundResponse{}, nil
	}
	return &paymentv1.RefundResponse{Payment: Payment(p)}, nil
}

// GetPayment implements PaymentService.GetPayment.
func (s *Server) GetPayment(ctx context.Context, req *paymentv1.GetPaymentRequest) (*paymentv1.GetPaymentResponse, error) {
	if err := s.inject(ctx); err != nil {
		return nil, err
	}
	if req.GetPaymentId() == "" {
		return nil, invalid("payment_id", "payment_id is required")
	}
	p, err := s.uc.Get(ctx, req.GetPaymentId())
	if err != nil {
		if errors.Is(err, domain.ErrNotFound) {
			msg := fmt.Sprintf("payment %q not found", req.GetPaymentId())
			return nil, withDetails(codes.NotFound, msg, &errdetails.ResourceInfo{
				ResourceType: "payment", ResourceName: req.GetPaymentId(), Description: msg,
			})
		}
		return nil, s.status(ctx, err, "")
	}
	return &paymentv1.GetPaymentResponse{Payment: Payment(p)}, nil
}

// Status returns the wire value of a payment status. Canceled, a charge
// compensated before the provider took anything, is REFUNDED (compensated
// in full); Pending is UNSPECIFIED, which the service never returns.
func Status(s domain.Status) paymentv1.PaymentStatus {
	switch s {
	case domain.Captured:
		return paymentv1.PaymentStatus_PAYMENT_STATUS_CAPTURED
	case domain.Declined:
		return paymentv1.PaymentStatus_PAYMENT_STATUS_DECLINED
	case domain.Refunded, domain.Canceled:
		return paymentv1.PaymentStatus_PAYMENT_STATUS_REFUNDED
	}
	return paymentv1.PaymentStatus_PAYMENT_STATUS_UNSPECIFIED
}

// Payment returns the wire form of p.
func Payment(p domain.Payment) *paymentv1.Payment {
	return &paymentv1.Payment{
		PaymentId:     p.ID,
		OrderId:       p.OrderID,
		Amount:        &typev1.Money{AmountMinor: p.AmountMinor, CurrencyCode: p.Currency},
		Status:        Status(p.Status),
		DeclineReason: p.DeclineReason,
		CreateTime:    timestamppb.New(p.Created),
		UpdateTime:    timestamppb.New(p.Updated),
	}
}

// status returns the gRPC status error of a use case's error, as the
// .proto documents it. method is the payment method token of a Charge.
func (s *Server) status(ctx context.Context, err error, method string) error {
	if rej, ok := errors.AsType[*app.RejectedError](err); ok {
		if rej.InvalidRequest() {
			return invalid("payment_method_token", "payment_method_token: the payment provider refused the charge: "+rej.Detail)
		}
		msg := "the payment provider refused the charge: " + rej.Detail
		return withDetails(codes.FailedPrecondition, msg, &errdetails.PreconditionFailure{
			Violations: []*errdetails.PreconditionFailure_Violation{{Type: "PAYMENT_METHOD", Subject: method, Description: rej.Detail}},
		})
	}
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		if ctxErr := ctx.Err(); ctxErr != nil {
			return status.FromContextError(ctxErr).Err()
		}
		if errors.Is(err, app.ErrUnavailable) { // a timeout of the provider call
			return status.Error(codes.Unavailable, err.Error())
		}
	case errors.Is(err, domain.ErrAborted):
		return status.Error(codes.Aborted, err.Error())
	case errors.Is(err, app.ErrUnavailable), errors.Is(err, domain.ErrPending):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, domain.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	}
	s.log.ErrorContext(ctx, "payment: internal error", "err", err)
	return status.Error(codes.Internal, "payment: internal error")
}

// withDetails returns a status error of code and msg carrying detail.
func withDetails(code codes.Code, msg string, detail protoadapt.MessageV1) error {
	st, err := status.New(code, msg).WithDetails(detail)
	if err != nil {
		return status.Error(code, msg)
	}
	return st.Err()
}
