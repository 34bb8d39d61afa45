// Package grpcclients implements the checkout's ports (checkout.Inventory,
// checkout.Payment, checkout.Shipping) with the shop's gRPC APIs. The
// connections they are given carry the interceptors: OpenTelemetry's
// stats handler, so that each call is a client span whose trace context
// travels in the gRPC metadata, and the resilience pipeline of each
// dependency.
//
// Errors are mapped for the saga: the codes a participant returns for a
// request it will never accept (INVALID_ARGUMENT, NOT_FOUND,
// FAILED_PRECONDITION, ABORTED, ALREADY_EXISTS, PERMISSION_DENIED,
// UNIMPLEMENTED) are [saga.Permanent], so the saga compensates at once;
// any other error (UNAVAILABLE, DEADLINE_EXCEEDED, an open breaker) is
// retried by the step's executor and, for a compensation, by the
// orchestrator.
package grpcclients

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	inventoryv1 "github.com/cairnhq/cairn/api/proto/cairn/shop/inventory/v1"
	paymentv1 "github.com/cairnhq/cairn/api/proto/cairn/shop/payment/v1"
	shippingv1 "github.com/cairnhq/cairn/api/proto/cairn/shop/shipping/v1"
	typev1 "github.com/cairnhq/cairn/api/proto/cairn/shop/type/v1"
	"github.com/cairnhq/cairn/internal/shop/order/checkout"
	"github.com/cairnhq/cairn/saga"
)

// permanent maps a participant's error for the saga.
func permanent(call string, err error) error {
	if err == nil {
		return nil
	}
	err = fmt.Errorf("%s: %w", call, err)
	switch status.Code(errors.Unwrap(err)) {
	case codes.InvalidArgument, codes.NotFound, codes.FailedPrecondition, codes.Aborted,
		codes.AlreadyExists, codes.PermissionDenied, codes.Unimplemented, codes.OutOfRange:
		return saga.Permanent(err)
	}
	return err
}

func idem(k checkout.Key) *typev1.Idempotency {
	return &typev1.Idempotency{SagaId: k.SagaID, BranchId: k.BranchID}
}

// Inventory is checkout.Inventory over inventoryv1.
type Inventory struct {
	c inventoryv1.InventoryServiceClient
}

var _ checkout.Inventory = Inventory{}

// NewInventory returns the inventory port over conn.
func NewInventory(conn grpc.ClientConnInterface) Inventory {
	return Inventory{inventoryv1.NewInventoryServiceClient(conn)}
}

// Reserve implements checkout.Inventory.
func (i Inventory) Reserve(ctx context.Context, k checkout.Key, orderID string, lines []checkout.Line) (string, error) {
	req := &inventoryv1.ReserveRequest{Idempotency: idem(k), OrderId: orderID}
	for _, l := range lines {
		req.Lines = append(req.Lines, &inventoryv1.Line{Sku: l.SKU, Quantity: int32(l.Quantity)})
	}
	resp, err := i.c.Reserve(ctx, req)
	if err != nil {
		return "", permanent("inventory Reserve", err)
	}
	return resp.GetReservationId(), nil
}

// Release implements checkout.Inventory.
func (i Inventory) Release(ctx context.Context, k checkout.Key, orderID string) error {
	_, err := i.c.Release(ctx, &inventoryv1.ReleaseRequest{Idempotency: idem(k), OrderId: orderID})
	return permanent("inventory Release", err)
}

// Confirm implements checkout.Inventory.
func (i Inventory) Confirm(ctx context.Context, k checkout.Key, reservationID string) error {
	_, err := i.c.Confirm(ctx, &inventoryv1.ConfirmRequest{Idempotency: idem(k), ReservationId: reservationID})
	return permanent("inventory Confirm", err)
}

// Payment is checkout.Payment over paymentv1.
type Payment struct {
	c paymentv1.PaymentServiceClient
}

var _ checkout.Payment = Payment{}

// NewPayment returns the payment port over conn.
func NewPayment(conn grpc.ClientConnInterface) Payment {
	return Payment{paymentv1.NewPaymentServiceClient(conn)}
}

// Charge implements checkout.Payment.
func (p Payment) Charge(ctx context.Context, k checkout.Key, orderID string, amount int64, currency, method string) (string, string, error) {
	resp, err := p.c.Charge(ctx, &paymentv1.ChargeRequest{
		Idempotency: idem(k), OrderId: orderID,
		Amount:             &typev1.Money{AmountMinor: amount, CurrencyCode: currency},
		PaymentMethodToken: method,
	})
	if err != nil {
		return "", "", permanent("payment Charge", err)
	}
	if resp.GetStatus() == paymentv1.PaymentStatus_PAYMENT_STATUS_DECLINED {
		reason := resp.GetDeclineReason()
		if reason == "" {
			reason = "declined"
		}
		return resp.GetPaymentId(), reason, nil
	}
	return resp.GetPaymentId(), "", nil
}

// Refund implements checkout.Payment.
func (p Payment) Refund(ctx context.Context, k checkout.Key, orderID, reason string) error {
	_, err := p.c.Refund(ctx, &paymentv1.RefundRequest{Idempotency: idem(k), OrderId: orderID, Reason: reason})
	return permanent("payment Refund", err)
}

// Shipping is checkout.Shipping over shippingv1.
type Shipping struct {
	c shippingv1.ShippingServiceClient
}

var _ checkout.Shipping = Shipping{}

// NewShipping returns the shipping port over conn.
func NewShipping(conn grpc.ClientConnInterface) Shipping {
	return Shipping{shippingv1.NewShippingServiceClient(conn)}
}

// Schedule implements checkout.Shipping.
func (s Shipping) Schedule(ctx context.Context, k checkout.Key, orderID string, to checkout.Address, lines []checkout.Line) (string, error) {
	req := &shippingv1.ScheduleShipmentRequest{Idempotency: idem(k), OrderId: orderID, Address: &shippingv1.Address{
		Recipient: to.Recipient, AddressLines: to.Lines, Locality: to.Locality, PostalCode: to.PostalCode, RegionCode: to.RegionCode,
	}}
	for _, l := range lines {
		req.Lines = append(req.Lines, &shippingv1.Line{Sku: l.SKU, Quantity: int32(l.Quantity)})
	}
	resp, err := s.c.ScheduleShipment(ctx, req)
	if err != nil {
		return "", permanent("shipping ScheduleShipment", err)
	}
	return resp.GetShipmentId(), nil
}

// Cancel implements checkout.Shipping. FAILED_PRECONDITION (the shipment
// has left) matches checkout.ErrCannotUndo.
func (s Shipping) Cancel(ctx context.Context, k checkout.Key, orderID string) error {
	_, err := s.c.CancelShipment(ctx, &shippingv1.CancelShipmentRequest{Idempotency: idem(k), OrderId: orderID})
	if status.Code(err) == codes.FailedPrecondition {
		return fmt.Errorf("shipping CancelShipment: %w: %w", checkout.ErrCannotUndo, err)
	}
	return permanent("shipping CancelShipment", err)
}
