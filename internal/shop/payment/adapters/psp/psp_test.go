package psp_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.uber.org/goleak"

	"github.com/cairnhq/cairn/internal/fault"
	"github.com/cairnhq/cairn/internal/shop/payment/adapters/psp"
	"github.com/cairnhq/cairn/internal/shop/payment/app"
	"github.com/cairnhq/cairn/internal/shop/payment/provider"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestProvider(t *testing.T) {
	inj := fault.New("provider")
	hs := httptest.NewServer(provider.NewServer(provider.ServerConfig{Faults: inj}).Handler())
	t.Cleanup(hs.Close)
	c, err := provider.NewClient(provider.ClientConfig{HTTPClient: &http.Client{Transport: &http.Transport{}}, BaseURL: hs.URL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	p := psp.New(c)
	ctx := t.Context()

	in := app.ChargeInput{AmountMinor: 10, Currency: "EUR", PaymentMethod: provider.TokenVisa}
	r, err := p.Charge(ctx, "k1", in)
	if err != nil || !r.Captured || r.ChargeID == "" {
		t.Errorf("Charge = %+v, %v; want captured", r, err)
	}
	if f, err := p.FindCharge(ctx, "k1"); err != nil || f != r {
		t.Errorf("FindCharge = %+v, %v; want %+v", f, err, r)
	}
	if id, err := p.Refund(ctx, "k1/refund", r.ChargeID); err != nil || id == "" {
		t.Errorf("Refund = %q, %v", id, err)
	}
	in.PaymentMethod = provider.TokenDecline
	if r, err := p.Charge(ctx, "k2", in); err != nil || r.Captured || r.DeclineReason != "card declined" {
		t.Errorf("Charge(decline) = %+v, %v; want declined", r, err)
	}
	if _, err := p.FindCharge(ctx, "none"); !errors.Is(err, app.ErrNoCharge) {
		t.Errorf("FindCharge(none) = %v, want ErrNoCharge", err)
	}
	in.PaymentMethod = provider.TokenExpired
	_, err = p.Charge(ctx, "k3", in)
	if rej, ok := errors.AsType[*app.RejectedError](err); !ok || rej.Status != http.StatusPaymentRequired || rej.InvalidRequest() {
		t.Errorf("Charge(expired) = %v, want a 402 RejectedError", err)
	}
	in.PaymentMethod = "4242"
	_, err = p.Charge(ctx, "k4", in)
	if rej, ok := errors.AsType[*app.RejectedError](err); !ok || !rej.InvalidRequest() {
		t.Errorf("Charge(not a token) = %v, want an invalid-request RejectedError", err)
	}
	if err := inj.Set(fault.Settings{ErrorRate: 1}); err != nil {
		t.Fatal(err)
	}
	in.PaymentMethod = provider.TokenVisa
	if _, err := p.Charge(ctx, "k5", in); !errors.Is(err, app.ErrUnavailable) {
		t.Errorf("Charge(provider down) = %v, want ErrUnavailable", err)
	}
	if _, err := p.FindCharge(ctx, "k1"); !errors.Is(err, app.ErrUnavailable) {
		t.Errorf("FindCharge(provider down) = %v, want ErrUnavailable", err)
	}
}
