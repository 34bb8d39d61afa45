package serve

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	orderv1 "github.com/cairnhq/cairn/api/proto/cairn/shop/order/v1"
)

// startParticipant starts the participant name and returns its gRPC
// address; it is stopped, and checked to stop cleanly, when the test ends.
func startParticipant(t *testing.T, name string, cfg ParticipantConfig) string {
	t.Helper()
	t.Setenv("OTEL_SDK_DISABLED", "true")
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	cfg.Addr, cfg.AdminAddr, cfg.Ready = "127.0.0.1:0", "127.0.0.1:0", func(a string) { ready <- a }
	var banner strings.Builder
	cfg.Out = &banner
	done := make(chan error, 1)
	go func() { done <- Participant(ctx, name, cfg) }()
	select {
	case addr := <-ready:
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Participant(%s) = %v", name, err)
			}
		})
		if !strings.Contains(banner.String(), "cairn serve "+name) {
			t.Errorf("banner of %s = %q", name, banner.String())
		}
		return addr
	case err := <-done:
		cancel()
		t.Fatalf("Participant(%s) = %v before it was ready", name, err)
	}
	return ""
}

// placeOrder posts an order and returns its id.
func placeOrder(t *testing.T, base, body string) string {
	t.Helper()
	resp, err := http.Post(base+"/orders", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var placed struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&placed); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /orders = %d, %v", resp.StatusCode, err)
	}
	return placed.ID
}

// finalStatus polls the order until its status is one of the final ones
// (confirmed, cancelled, failed), for at most 30 seconds, and returns it
// with its reason.
func finalStatus(t *testing.T, base, id string) (status, reason string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/orders/" + id)
		if err != nil {
			t.Fatal(err)
		}
		var o struct {
			Status       string `json:"status"`
			StatusReason string `json:"status_reason"`
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			if err := json.Unmarshal(b, &o); err != nil {
				t.Fatalf("GET /orders/%s: %v: %s", id, err, b)
			}
			switch o.Status {
			case "confirmed", "cancelled", "failed":
				return o.Status, o.StatusReason
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /orders/%s = %d %s after 30s, want a final status", id, resp.StatusCode, b)
		}
		time.Sleep(50 * time.Millisecond) // polling an HTTP API, not synchronising goroutines
	}
}

// TestCheckoutAcrossProcesses is the distributed end-to-end test of the
// shop: the inventory, the payment service (with its simulated provider)
// and the shipping service each run as `cairn serve` runs them, on a
// PostgreSQL database of their own, and the order service runs the
// checkout against them over gRPC with its sagas in its own database. An
// order is confirmed; an order paid with a declined card is cancelled, its
// stock released; the order's gRPC API reads the result.
func TestCheckoutAcrossProcesses(t *testing.T) {
	inv := startParticipant(t, ServiceInventory, ParticipantConfig{Store: freshDatabase(t), SeedStock: 100})
	pay := startParticipant(t, ServicePayment, ParticipantConfig{Store: freshDatabase(t), SimulateProvider: "127.0.0.1:0"})
	shp := startParticipant(t, ServiceShipping, ParticipantConfig{Store: freshDatabase(t)})

	grpcReady := make(chan string, 1)
	base, stop := run(t, OrderConfig{
		Store: freshDatabase(t), AdminAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0",
		Inventory: inv, Payment: pay, Shipping: shp,
		GRPCReady: func(a string) { grpcReady <- a },
	})
	defer stop()

	ok := placeOrder(t, base, `{"customer_id":"c-ok","lines":[{"sku":"SKU-0001","quantity":2,"unit_price":250}],"payment_method":"tok_visa"}`)
	if status, reason := finalStatus(t, base, ok); status != "confirmed" {
		t.Errorf("order %s = %s (%s), want confirmed", ok, status, reason)
	}
	declined := placeOrder(t, base, `{"customer_id":"c-decline","lines":[{"sku":"SKU-0002","quantity":1,"unit_price":900}],"payment_method":"tok_decline"}`)
	if status, reason := finalStatus(t, base, declined); status != "cancelled" {
		t.Errorf("order %s = %s (%s), want cancelled", declined, status, reason)
	}
	// More than the stock: the reservation fails and nothing is charged.
	tooMany := placeOrder(t, base, `{"customer_id":"c-stock","lines":[{"sku":"SKU-0003","quantity":101,"unit_price":1}]}`)
	if status, reason := finalStatus(t, base, tooMany); status != "cancelled" {
		t.Errorf("order %s = %s (%s), want cancelled", tooMany, status, reason)
	}

	// The order's gRPC API sees the confirmed order.
	conn, err := grpc.NewClient(<-grpcReady, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	got, err := orderv1.NewOrderServiceClient(conn).GetOrder(t.Context(), &orderv1.GetOrderRequest{OrderId: ok})
	if err != nil {
		t.Fatalf("GetOrder(%s) = %v", ok, err)
	}
	if got.GetOrder().GetStatus() != orderv1.OrderStatus_ORDER_STATUS_CONFIRMED {
		t.Errorf("GetOrder(%s).Status = %v, want CONFIRMED", ok, got.GetOrder().GetStatus())
	}
}

// TestCheckoutOnSQLite runs the same shop on SQLite directories, the
// order's sagas in sagas.db beside its events.
func TestCheckoutOnSQLite(t *testing.T) {
	dir := t.TempDir()
	inv := startParticipant(t, ServiceInventory, ParticipantConfig{Store: dir, SeedStock: 10})
	pay := startParticipant(t, ServicePayment, ParticipantConfig{Store: dir, SimulateProvider: "127.0.0.1:0"})
	shp := startParticipant(t, ServiceShipping, ParticipantConfig{Store: dir})
	orders := filepath.Join(dir, "order")
	base, stop := run(t, OrderConfig{Store: orders, Inventory: inv, Payment: pay, Shipping: shp})
	defer stop()
	id := placeOrder(t, base, `{"customer_id":"c-1","lines":[{"sku":"SKU-0000","quantity":1,"unit_price":100}]}`)
	if status, reason := finalStatus(t, base, id); status != "confirmed" {
		t.Errorf("order %s = %s (%s), want confirmed", id, status, reason)
	}
	for _, f := range []string{"inventory.db", "payment.db", "shipping.db", "order/sagas.db"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestConfigErrorsAreUsageErrors(t *testing.T) {
	t.Setenv("OTEL_SDK_DISABLED", "true")
	dir := t.TempDir()
	participants := []struct {
		name string
		cfg  ParticipantConfig
		want string
	}{
		{"bogus", ParticipantConfig{Store: dir}, `unknown service "bogus"`},
		{ServiceInventory, ParticipantConfig{}, "--store is empty"},
		{ServiceShipping, ParticipantConfig{Store: "mysql://x"}, "unknown scheme"},
		{ServiceInventory, ParticipantConfig{Store: dir, SeedStock: -1}, "--seed-stock -1 is negative"},
		{ServicePayment, ParticipantConfig{Store: dir}, "--provider is empty"},
		{ServicePayment, ParticipantConfig{Store: dir, Provider: "http://x", SimulateProvider: "127.0.0.1:0"}, "not both"},
		{ServicePayment, ParticipantConfig{Store: dir, Provider: "ftp://x"}, "want an http:// or https:// URL"},
		{ServiceShipping, ParticipantConfig{Store: dir, Resilience: filepath.Join(dir, "missing.yaml")}, "--resilience"},
	}
	for _, tt := range participants {
		tt.cfg.Addr = "127.0.0.1:0"
		err := Participant(t.Context(), tt.name, tt.cfg)
		if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Participant(%s, %+v) = %v, want a usage error with %q", tt.name, tt.cfg, err, tt.want)
		}
	}
	orders := []struct {
		cfg  OrderConfig
		want string
	}{
		{OrderConfig{Store: dir, Inventory: "a:1"}, "--payment, --shipping missing"},
		{OrderConfig{Store: dir, Inventory: "a:1", Shipping: "c:3"}, "--payment missing"},
		{OrderConfig{Store: dir, Bus: "kafka://x"}, "want a nats:// URL"},
		{OrderConfig{Store: dir, Inventory: "a:1", Payment: "b:2", Shipping: "c:3", Resilience: filepath.Join(dir, "missing.yaml")}, "--resilience"},
	}
	for _, tt := range orders {
		tt.cfg.Addr = "127.0.0.1:0"
		err := Order(t.Context(), tt.cfg)
		if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Order(%+v) = %v, want a usage error with %q", tt.cfg, err, tt.want)
		}
	}
}
