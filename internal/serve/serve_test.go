package serve

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/cairnhq/cairn/internal/testenv"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// freshDatabase creates a database of its own on the machine's PostgreSQL
// and returns its URL; it is dropped when the test ends.
func freshDatabase(t *testing.T) string {
	t.Helper()
	url := testenv.Require(t, testenv.Postgres)
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "cairn_serve_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(t.Context(), "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = conn.Exec(context.Background(), "DROP DATABASE "+name+" WITH (FORCE)")
		_ = conn.Close(context.Background())
	})
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", cfg.User, cfg.Host, cfg.Port, name)
}

// run starts the order service and returns its base URL and a function
// that stops it and checks that it stopped cleanly.
func run(t *testing.T, cfg OrderConfig) (string, func()) {
	t.Helper()
	t.Setenv("OTEL_SDK_DISABLED", "true")
	ctx, cancel := context.WithCancel(t.Context())
	ready := make(chan string, 1)
	cfg.Addr, cfg.Ready = "127.0.0.1:0", func(a string) { ready <- a }
	done := make(chan error, 1)
	go func() { done <- Order(ctx, cfg) }()
	select {
	case addr := <-ready:
		return "http://" + addr, func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Order = %v", err)
			}
		}
	case err := <-done:
		cancel()
		t.Fatalf("Order = %v before it was ready", err)
	}
	return "", nil
}

func placeAndRead(t *testing.T, base, customer string) {
	t.Helper()
	body := `{"customer_id":"` + customer + `","lines":[{"sku":"SKU-1","quantity":3,"unit_price":250}]}`
	resp, err := http.Post(base+"/orders", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var placed struct {
		ID string `json:"id"`
	}
	err = json.NewDecoder(resp.Body).Decode(&placed)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /orders = %d, %v", resp.StatusCode, err)
	}
	resp, err = http.Get(base + "/orders/" + placed.ID)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /orders/%s = %d", placed.ID, resp.StatusCode)
	}
}

func eventuallyGet(t *testing.T, url string, ok func(body string) bool) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && ok(string(b)) {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s = %d %s", url, resp.StatusCode, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestOrderOnPostgresAndNATS runs the order service on the machine's
// PostgreSQL and NATS: an order is placed, read back, listed from the
// read model, and counted by the customer statistics that follow the bus.
func TestOrderOnPostgresAndNATS(t *testing.T) {
	store := freshDatabase(t)
	bus := testenv.Require(t, testenv.NATS)
	base, stop := run(t, OrderConfig{Store: store, Bus: bus})
	defer stop()
	customer := "serve-" + time.Now().Format("150405.000000")
	placeAndRead(t, base, customer)
	eventuallyGet(t, base+"/orders", func(b string) bool { return strings.Contains(b, customer) })
	body := eventuallyGet(t, base+"/customers/"+customer+"/stats", func(string) bool { return true })
	if !strings.Contains(body, `"orders":1,"total":750`) {
		t.Errorf("stats = %s, want 1 order of 750", body)
	}
}

func TestOrderOnSQLiteWithoutBus(t *testing.T) {
	base, stop := run(t, OrderConfig{Store: t.TempDir()})
	defer stop()
	placeAndRead(t, base, "c-1")
	eventuallyGet(t, base+"/orders", func(b string) bool { return strings.Contains(b, "c-1") })
	resp, err := http.Get(base + "/customers/c-1/stats")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("stats without a bus = %d, want 404 (no such route)", resp.StatusCode)
	}
}

func TestOrderRefusesBadFlags(t *testing.T) {
	t.Setenv("OTEL_SDK_DISABLED", "true")
	for _, cfg := range []OrderConfig{
		{Addr: "127.0.0.1:0", Store: ""},
		{Addr: "127.0.0.1:0", Store: "mysql://x"},
		{Addr: "127.0.0.1:0", Store: t.TempDir(), Bus: "kafka://x"},
	} {
		if err := Order(t.Context(), cfg); err == nil {
			t.Errorf("Order(%+v) succeeded", cfg)
		}
	}
}

func TestRedact(t *testing.T) {
	if got := redact("postgres://u:secret@h:5432/db"); got != "postgres://u:xxxxx@h:5432/db" {
		t.Errorf("redact = %q", got)
	}
	if got := redact("postgres://u@h/db"); got != "postgres://u@h/db" {
		t.Errorf("redact = %q", got)
	}
}
