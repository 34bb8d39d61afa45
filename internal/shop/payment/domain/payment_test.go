package domain

import (
	"slices"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestPaymentID(t *testing.T) {
	a := Key{SagaID: "s", BranchID: "b"}.PaymentID()
	if b := (Key{SagaID: "s", BranchID: "b"}).PaymentID(); a != b {
		t.Errorf("PaymentID not deterministic: %s != %s", a, b)
	}
	// The separator keeps ("sb", "") and ("s", "b") apart.
	if b := (Key{SagaID: "sb"}).PaymentID(); a == b {
		t.Errorf("PaymentID(s, b) = PaymentID(sb, ) = %s", a)
	}
	if len(a) != len("pay_")+24 {
		t.Errorf("PaymentID = %q, want pay_ and 24 hex digits", a)
	}
}

func TestCurrencies(t *testing.T) {
	if !slices.IsSorted(currencies) {
		t.Fatal("currencies are not sorted")
	}
	for _, c := range []struct {
		code string
		want bool
	}{{"EUR", true}, {"JPY", true}, {"eur", false}, {"", false}, {"XXX", false}} {
		if got := KnownCurrency(c.code); got != c.want {
			t.Errorf("KnownCurrency(%q) = %v, want %v", c.code, got, c.want)
		}
	}
}
