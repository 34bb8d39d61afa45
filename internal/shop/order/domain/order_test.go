package domain_test

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/cairnhq/cairn/internal/shop/order/domain"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestNewOrderValidation(t *testing.T) {
	ok := domain.Line{SKU: "SKU-1", Quantity: 1, UnitPrice: 100}
	tests := []struct {
		name     string
		id       string
		customer string
		lines    []domain.Line
		wantMsg  string // "" means valid
	}{
		{"valid", "o1", "c1", []domain.Line{ok}, ""},
		{"max quantity", "o1", "c1", []domain.Line{{SKU: "S", Quantity: 1000, UnitPrice: 1}}, ""},
		{"free item", "o1", "c1", []domain.Line{{SKU: "S", Quantity: 1, UnitPrice: 0}}, ""},
		{"empty id", "", "c1", []domain.Line{ok}, `order: id "" must not be empty`},
		{"empty customer", "o1", "", []domain.Line{ok}, `order: customer_id "" must not be empty`},
		{"no lines", "o1", "c1", nil, `order: lines 0 lines given, want at least 1`},
		{"empty sku", "o1", "c1", []domain.Line{ok, {Quantity: 1}}, `order: line 2: sku "" must not be empty`},
		{"zero quantity", "o1", "c1", []domain.Line{ok, {SKU: "S", Quantity: 0}}, `order: line 2: quantity 0 out of range [1,1000]`},
		{"negative quantity", "o1", "c1", []domain.Line{{SKU: "S", Quantity: -3}}, `order: line 1: quantity -3 out of range [1,1000]`},
		{"quantity too large", "o1", "c1", []domain.Line{{SKU: "S", Quantity: 1001}}, `order: line 1: quantity 1001 out of range [1,1000]`},
		{"negative price", "o1", "c1", []domain.Line{{SKU: "S", Quantity: 1, UnitPrice: -1}}, `order: line 1: unit_price -1 must not be negative`},
		{"line overflow", "o1", "c1", []domain.Line{{SKU: "S", Quantity: 2, UnitPrice: math.MaxInt64/2 + 1}},
			`order: line 1: unit_price 4611686018427387904 times quantity 2 overflows the order total`},
		{"total overflow", "o1", "c1", []domain.Line{{SKU: "A", Quantity: 1, UnitPrice: math.MaxInt64}, {SKU: "B", Quantity: 1, UnitPrice: 1}},
			`order: line 2: unit_price 1 times quantity 1 overflows the order total`},
		{"total exactly max", "o1", "c1", []domain.Line{{SKU: "A", Quantity: 1, UnitPrice: math.MaxInt64 - 1}, {SKU: "B", Quantity: 1, UnitPrice: 1}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := domain.NewOrder(tt.id, tt.customer, tt.lines, now)
			if tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("NewOrder(...) error = %v, want nil", err)
				}
				return
			}
			if err == nil || err.Error() != tt.wantMsg {
				t.Fatalf("NewOrder(...) error = %v, want %s", err, tt.wantMsg)
			}
			if !errors.Is(err, domain.ErrInvalid) {
				t.Errorf("errors.Is(%v, ErrInvalid) = false, want true", err)
			}
			var ve *domain.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("errors.As(%v, *ValidationError) = false, want true", err)
			}
		})
	}
}

func TestNewOrderDerivesFields(t *testing.T) {
	lines := []domain.Line{{SKU: "A", Quantity: 2, UnitPrice: 1299}, {SKU: "B", Quantity: 3, UnitPrice: 100}}
	local := time.Date(2026, 3, 1, 13, 0, 0, 5, time.FixedZone("CET", 3600))
	got, err := domain.NewOrder("o1", "c1", lines, local)
	if err != nil {
		t.Fatalf("NewOrder(...) error = %v, want nil", err)
	}
	want := domain.Order{
		ID: "o1", CustomerID: "c1",
		Lines:     []domain.Line{{SKU: "A", Quantity: 2, UnitPrice: 1299}, {SKU: "B", Quantity: 3, UnitPrice: 100}},
		Total:     2898,
		Status:    domain.StatusPlaced,
		CreatedAt: time.Date(2026, 3, 1, 12, 0, 0, 5, time.UTC),
		UpdatedAt: time.Date(2026, 3, 1, 12, 0, 0, 5, time.UTC),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("NewOrder(...) mismatch (-want +got):\n%s", diff)
	}
	lines[0].Quantity = 99
	if got.Lines[0].Quantity != 2 {
		t.Errorf("NewOrder kept the caller's slice: Lines[0].Quantity = %d, want 2", got.Lines[0].Quantity)
	}
}

func TestStatus(t *testing.T) {
	tests := []struct {
		s    domain.Status
		want string
	}{
		{domain.StatusUnknown, "unknown"},
		{domain.StatusPlaced, "placed"},
		{domain.Status(42), "Status(42)"},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("Status(%d).String() = %q, want %q", int(tt.s), got, tt.want)
		}
	}
	if got, err := domain.ParseStatus("placed"); got != domain.StatusPlaced || err != nil {
		t.Errorf("ParseStatus(placed) = %v, %v, want placed, nil", got, err)
	}
	if _, err := domain.ParseStatus("unknown"); !errors.Is(err, domain.ErrInvalid) {
		t.Errorf("ParseStatus(unknown) error = %v, want ErrInvalid", err)
	}
}
