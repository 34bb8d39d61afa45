package domain_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/cairnhq/cairn/internal/shop/shipping/domain"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// monday is a Monday, 10:00 UTC.
var monday = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func addr() domain.Address {
	return domain.Address{Recipient: "Ada Lovelace", Lines: []string{"Hauptstr. 1"}, Locality: "Berlin", PostalCode: "10115", RegionCode: "de"}
}

func lines(n int) []domain.Line {
	ls := make([]domain.Line, n)
	for i := range ls {
		ls[i] = domain.Line{SKU: "SKU-1", Quantity: 1}
	}
	return ls
}

func TestNewShipment(t *testing.T) {
	sh, err := domain.NewShipment("shp-1", "saga-1", "ship", "order-1", addr(), lines(2), domain.DefaultRegions(), monday.In(time.FixedZone("CET", 3600)))
	if err != nil {
		t.Fatalf("NewShipment = %v", err)
	}
	a := addr()
	a.RegionCode = "DE"
	want := domain.Shipment{
		ID: "shp-1", SagaID: "saga-1", BranchID: "ship", OrderID: "order-1", Address: a, Lines: lines(2),
		Status: domain.Scheduled, EstimatedDelivery: monday.AddDate(0, 0, 2), CreatedAt: monday, UpdatedAt: monday,
	}
	if diff := cmp.Diff(want, sh); diff != "" {
		t.Errorf("NewShipment (-want +got):\n%s", diff)
	}
}

func TestNewShipmentInvalid(t *testing.T) {
	type args struct {
		id, saga, branch, order string
		addr                    domain.Address
		lines                   []domain.Line
	}
	ok := func() args { return args{"shp", "saga", "branch", "order", addr(), lines(1)} }
	for _, tc := range []struct {
		name  string
		edit  func(*args)
		field string
	}{
		{"no saga", func(a *args) { a.saga = "" }, "idempotency.saga_id"},
		{"no branch", func(a *args) { a.branch = "" }, "idempotency.branch_id"},
		{"no order", func(a *args) { a.order = "" }, "order_id"},
		{"no recipient", func(a *args) { a.addr.Recipient = " " }, "address.recipient"},
		{"no address lines", func(a *args) { a.addr.Lines = nil }, "address.address_lines"},
		{"empty address line", func(a *args) { a.addr.Lines = []string{"x", ""} }, "address.address_lines[1]"},
		{"no locality", func(a *args) { a.addr.Locality = "" }, "address.locality"},
		{"no region", func(a *args) { a.addr.RegionCode = "" }, "address.region_code"},
		{"bad region", func(a *args) { a.addr.RegionCode = "Germany" }, "address.region_code"},
		{"digit region", func(a *args) { a.addr.RegionCode = "D1" }, "address.region_code"},
		{"no lines", func(a *args) { a.lines = nil }, "lines"},
		{"too many lines", func(a *args) { a.lines = lines(domain.MaxLines + 1) }, "lines"},
		{"no sku", func(a *args) { a.lines = []domain.Line{{SKU: "a", Quantity: 1}, {Quantity: 1}} }, "lines[1].sku"},
		{"zero quantity", func(a *args) { a.lines = []domain.Line{{SKU: "a"}} }, "lines[0].quantity"},
		{"negative quantity", func(a *args) { a.lines = []domain.Line{{SKU: "a", Quantity: -3}} }, "lines[0].quantity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := ok()
			tc.edit(&a)
			_, err := domain.NewShipment(a.id, a.saga, a.branch, a.order, a.addr, a.lines, domain.DefaultRegions(), monday)
			var inv *domain.InvalidError
			if !errors.As(err, &inv) || !errors.Is(err, domain.ErrInvalid) {
				t.Fatalf("NewShipment = %v, want an *InvalidError", err)
			}
			if inv.Field != tc.field {
				t.Errorf("Field = %q, want %q", inv.Field, tc.field)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Errorf("Error() = %q, want it to name %q", err, tc.field)
			}
		})
	}
	if _, err := domain.NewShipment("shp", "s", "b", "o", addr(), lines(domain.MaxLines), domain.DefaultRegions(), monday); err != nil {
		t.Errorf("NewShipment with %d lines = %v, want nil", domain.MaxLines, err)
	}
}

func TestNewShipmentUnservedRegion(t *testing.T) {
	a := addr()
	a.RegionCode = "jp"
	_, err := domain.NewShipment("shp", "s", "b", "o", a, lines(1), domain.DefaultRegions(), monday)
	var un *domain.UnservedRegionError
	if !errors.As(err, &un) || !errors.Is(err, domain.ErrUnservedRegion) {
		t.Fatalf("NewShipment = %v, want an *UnservedRegionError", err)
	}
	if un.RegionCode != "JP" || !strings.Contains(err.Error(), `"JP"`) {
		t.Errorf("error = %v (region %q), want it to name \"JP\"", err, un.RegionCode)
	}
	// Configured regions replace the default ones.
	if _, err := domain.NewShipment("shp", "s", "b", "o", a, lines(1), domain.Regions{"JP": 1}, monday); err != nil {
		t.Errorf("NewShipment to JP with JP served = %v", err)
	}
	if _, err := domain.NewShipment("shp", "s", "b", "o", addr(), lines(1), domain.Regions{"JP": 1}, monday); !errors.Is(err, domain.ErrUnservedRegion) {
		t.Errorf("NewShipment to DE with only JP served = %v, want ErrUnservedRegion", err)
	}
}

func TestDefaultRegions(t *testing.T) {
	r := domain.DefaultRegions()
	eu := []string{"AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK"}
	for _, c := range append(eu, "CH", "GB", "NO", "US") {
		if d, ok := r[c]; !ok || d <= 0 {
			t.Errorf("DefaultRegions()[%q] = %d, %v; want a positive number of days", c, d, ok)
		}
	}
	if len(r) != len(eu)+4 {
		t.Errorf("len(DefaultRegions()) = %d, want %d", len(r), len(eu)+4)
	}
	r["DE"] = 99
	if domain.DefaultRegions()["DE"] != 2 {
		t.Error("DefaultRegions returned a shared map")
	}
}

func TestAddBusinessDays(t *testing.T) {
	day := func(d int, h int) time.Time { return time.Date(2026, 3, d, h, 0, 0, 0, time.UTC) } // March 2 is a Monday
	for _, tc := range []struct {
		from time.Time
		n    int
		want time.Time
	}{
		{day(2, 10), 0, day(2, 10)},
		{day(2, 10), 1, day(3, 10)},
		{day(2, 10), 4, day(6, 10)},  // Friday
		{day(2, 10), 5, day(9, 10)},  // next Monday
		{day(6, 23), 1, day(9, 23)},  // Friday -> Monday
		{day(7, 10), 1, day(10, 10)}, // Saturday counts from Monday
		{day(8, 10), 2, day(11, 10)}, // Sunday too
		{day(2, 10), 10, day(16, 10)},
		{day(2, 10), -1, day(2, 10)},
	} {
		if got := domain.AddBusinessDays(tc.from, tc.n); !got.Equal(tc.want) {
			t.Errorf("AddBusinessDays(%v %v, %d) = %v %v, want %v", tc.from.Weekday(), tc.from, tc.n, got.Weekday(), got, tc.want)
		}
	}
}

func TestCancel(t *testing.T) {
	later := monday.Add(time.Hour)
	for _, tc := range []struct {
		from        domain.Status
		wantStatus  domain.Status
		wantChanged bool
		wantErr     error
	}{
		{domain.Scheduled, domain.Cancelled, true, nil},
		{domain.Cancelled, domain.Cancelled, false, nil},
		{domain.Shipped, domain.Shipped, false, domain.ErrNotCancellable},
		{domain.Delivered, domain.Delivered, false, domain.ErrNotCancellable},
	} {
		t.Run(tc.from.String(), func(t *testing.T) {
			sh := domain.Shipment{ID: "shp-1", Status: tc.from, UpdatedAt: monday}
			changed, err := sh.Cancel(later)
			if changed != tc.wantChanged || !errors.Is(err, tc.wantErr) || sh.Status != tc.wantStatus {
				t.Errorf("Cancel = %v, %v (status %v), want %v, %v (status %v)", changed, err, sh.Status, tc.wantChanged, tc.wantErr, tc.wantStatus)
			}
			if wantAt := map[bool]time.Time{true: later, false: monday}[changed]; !sh.UpdatedAt.Equal(wantAt) {
				t.Errorf("UpdatedAt = %v, want %v", sh.UpdatedAt, wantAt)
			}
			var nc *domain.NotCancellableError
			if errors.As(err, &nc) && (nc.ID != "shp-1" || nc.Status != tc.from) {
				t.Errorf("NotCancellableError = %+v", nc)
			}
		})
	}
}

func TestShip(t *testing.T) {
	for _, from := range []domain.Status{domain.Scheduled, domain.Shipped, domain.Delivered, domain.Cancelled} {
		sh := domain.Shipment{Status: from}
		got := sh.Ship(monday)
		if want := from == domain.Scheduled; got != want || (want && sh.Status != domain.Shipped) || (!want && sh.Status != from) {
			t.Errorf("Ship from %v = %v (status %v)", from, got, sh.Status)
		}
	}
}

func TestStatusString(t *testing.T) {
	for _, s := range []domain.Status{domain.Scheduled, domain.Shipped, domain.Delivered, domain.Cancelled} {
		got, err := domain.ParseStatus(s.String())
		if err != nil || got != s {
			t.Errorf("ParseStatus(%q) = %v, %v; want %v", s.String(), got, err, s)
		}
	}
	if got := domain.Status(0).String(); got != "Status(0)" {
		t.Errorf("Status(0).String() = %q", got)
	}
	if _, err := domain.ParseStatus("lost"); err == nil {
		t.Error(`ParseStatus("lost") = nil error`)
	}
	if _, err := domain.ParseStatus(""); err == nil {
		t.Error(`ParseStatus("") = nil error`)
	}
}
