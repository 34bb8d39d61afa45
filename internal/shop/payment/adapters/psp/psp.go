// Package psp adapts the payment provider's HTTP client
// (internal/shop/payment/provider) to the app.Provider port: it converts
// the provider's charges and errors to the use cases' terms.
package psp

import (
	"context"
	"errors"
	"fmt"

	"github.com/cairnhq/cairn/internal/shop/payment/app"
	"github.com/cairnhq/cairn/internal/shop/payment/provider"
)

// Provider is an app.Provider over a *provider.Client. It is safe for
// concurrent use.
type Provider struct {
	c *provider.Client
}

var _ app.Provider = (*Provider)(nil)

// New returns the app.Provider of c.
func New(c *provider.Client) *Provider { return &Provider{c: c} }

// Charge charges with key.
func (p *Provider) Charge(ctx context.Context, key string, in app.ChargeInput) (app.ChargeResult, error) {
	c, err := p.c.Charge(ctx, key, provider.ChargeRequest{AmountMinor: in.AmountMinor, Currency: in.Currency, PaymentMethod: in.PaymentMethod})
	if err != nil {
		return app.ChargeResult{}, convert(err)
	}
	return result(c), nil
}

// Refund refunds chargeID with key.
func (p *Provider) Refund(ctx context.Context, key, chargeID string) (string, error) {
	r, err := p.c.Refund(ctx, key, chargeID)
	if err != nil {
		return "", convert(err)
	}
	return r.ID, nil
}

// FindCharge looks up the charge made with key.
func (p *Provider) FindCharge(ctx context.Context, key string) (app.ChargeResult, error) {
	c, err := p.c.FindCharge(ctx, key)
	if errors.Is(err, provider.ErrNotFound) {
		return app.ChargeResult{}, fmt.Errorf("%w: %w", app.ErrNoCharge, err)
	}
	if err != nil {
		return app.ChargeResult{}, convert(err)
	}
	return result(c), nil
}

func result(c provider.Charge) app.ChargeResult {
	return app.ChargeResult{ChargeID: c.ID, Captured: c.Status == provider.StatusCaptured, DeclineReason: c.DeclineReason,
		Refunded: c.Refunded, RefundID: c.RefundID}
}

// convert maps a provider error to the port's: retryable ones wrap
// app.ErrUnavailable (and still the provider's error, so errors.Is finds
// an open breaker), others become an *app.RejectedError.
func convert(err error) error {
	pe, ok := errors.AsType[*provider.ProviderError](err)
	switch {
	case !ok:
		return fmt.Errorf("%w: %w", app.ErrUnavailable, err)
	case pe.Retryable():
		return fmt.Errorf("%w: %w", app.ErrUnavailable, err)
	default:
		detail := pe.Detail
		if detail == "" {
			detail = pe.Title
		}
		return &app.RejectedError{Status: pe.Status, Detail: detail}
	}
}
