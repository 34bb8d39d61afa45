package crashtest_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/goleak"
	"google.golang.org/grpc"

	_ "modernc.org/sqlite"

	"github.com/cairnhq/cairn/cqrs"
	"github.com/cairnhq/cairn/internal/shop/inventory"
	"github.com/cairnhq/cairn/internal/shop/order"
	"github.com/cairnhq/cairn/internal/shop/order/checkout"
	"github.com/cairnhq/cairn/internal/shop/payment"
	"github.com/cairnhq/cairn/internal/shop/payment/provider"
	"github.com/cairnhq/cairn/internal/shop/shipping"
	shipdomain "github.com/cairnhq/cairn/internal/shop/shipping/domain"
	"github.com/cairnhq/cairn/internal/shop/shoprpc"
	"github.com/cairnhq/cairn/resilience/retry"
	sagasqlite "github.com/cairnhq/cairn/saga/sqlite"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The environment of the order service's child process.
const (
	envChild     = "CAIRN_CRASHTEST_CHILD"     // "order" or "payment" in a child
	envDataDir   = "CAIRN_CRASHTEST_DATA"      // the order service's DataDir
	envInventory = "CAIRN_CRASHTEST_INVENTORY" // participants' gRPC addresses
	envPayment   = "CAIRN_CRASHTEST_PAYMENT"
	envShipping  = "CAIRN_CRASHTEST_SHIPPING"
	envBoundary  = "CAIRN_CRASHTEST_BOUNDARY" // "before:<method>" or "after:<method>", or empty
	// The payment service's child ("payment" in envChild).
	envPaymentDB   = "CAIRN_CRASHTEST_PAYMENT_DB"
	envProviderURL = "CAIRN_CRASHTEST_PROVIDER"
	envListen      = "CAIRN_CRASHTEST_LISTEN"
)

// boundaryCapture stops the payment service after the provider answered
// a charge and before the payment service recorded the answer.
const boundaryCapture = "after:provider-charge"

// The lines the child prints on its stdout.
const (
	lineAddr     = "CRASHTEST-ADDR "
	lineBoundary = "CRASHTEST-BOUNDARY "
)

// The participants' methods, as the boundaries name them.
const (
	mReserve  = "/cairn.shop.inventory.v1.InventoryService/Reserve"
	mRelease  = "/cairn.shop.inventory.v1.InventoryService/Release"
	mConfirm  = "/cairn.shop.inventory.v1.InventoryService/Confirm"
	mCharge   = "/cairn.shop.payment.v1.PaymentService/Charge"
	mRefund   = "/cairn.shop.payment.v1.PaymentService/Refund"
	mSchedule = "/cairn.shop.shipping.v1.ShippingService/ScheduleShipment"
	mCancel   = "/cairn.shop.shipping.v1.ShippingService/CancelShipment"
)

// The order every subtest places.
const (
	sku       = "SKU-CRASH"
	stock     = 10
	quantity  = 2
	unitPrice = 1299
)

// waitLimit bounds every wait of the test: a child's line, the end of a
// saga. It is a bound against hangs, never an assertion on duration.
const waitLimit = 45 * time.Second

// noTelemetry is shoprpc.Telemetry with no-op providers.
type noTelemetry struct{}

func (noTelemetry) TracerProvider() trace.TracerProvider      { return tracenoop.NewTracerProvider() }
func (noTelemetry) MeterProvider() metric.MeterProvider       { return metricnoop.NewMeterProvider() }
func (noTelemetry) Propagator() propagation.TextMapPropagator { return propagation.TraceContext{} }

// TestHelperOrderProcess is the order service's process that
// TestCrashAtStepBoundaries starts and kills; it is skipped unless run as
// that child. It serves the order service's HTTP API on a loopback port it
// prints, runs the checkout saga against the participants the parent
// gives, and, if a boundary is named, stops forever at that boundary
// after printing it, waiting for its SIGKILL. It stops when its stdin
// closes.
func TestHelperOrderProcess(t *testing.T) {
	if os.Getenv(envChild) != "order" {
		t.Skip("the order service's process of the crash tests; runs only as their child")
	}
	ctx := context.Background()
	boundary := os.Getenv(envBoundary)
	block := func(at string) {
		if at != boundary {
			return
		}
		fmt.Printf("%s%s\n", lineBoundary, at)
		select {} // until SIGKILL
	}
	intercept := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		block("before:" + method)
		err := invoker(ctx, method, req, reply, cc, opts...)
		block("after:" + method)
		return err
	}
	var conns []*grpc.ClientConn
	dial := func(env string) *grpc.ClientConn {
		conn, err := shoprpc.Dial(os.Getenv(env), noTelemetry{}, nil, grpc.WithChainUnaryInterceptor(intercept))
		if err != nil {
			t.Fatalf("dial %s: %v", env, err)
		}
		conns = append(conns, conn)
		return conn
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	svc, err := order.New(ctx, order.Config{
		DataDir: os.Getenv(envDataDir),
		Checkout: &order.CheckoutConfig{
			Inventory: dial(envInventory), Payment: dial(envPayment), Shipping: dial(envShipping),
			Lease:               time.Second,
			Owner:               fmt.Sprintf("crashtest-%d", os.Getpid()),
			CompensationBackoff: retry.Backoff{Kind: "constant", Initial: 50 * time.Millisecond},
			Reconcile:           200 * time.Millisecond,
			// Look for sagas whose lease expired often, so that a saga
			// of the killed process resumes quickly.
			PollInterval: 100 * time.Millisecond,
		},
	})
	if err != nil {
		t.Fatalf("order.New: %v", err)
	}
	defer svc.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: svc.Handler(), ReadHeaderTimeout: 5 * time.Second}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { _ = srv.Serve(ln) })
	defer srv.Close()
	fmt.Printf("%s%s\n", lineAddr, ln.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin) // until the parent closes it
}

// shop is the checkout's participants, in the test's process, on SQLite
// files that outlive the order service's children.
type shop struct {
	inv      *inventory.Service
	ship     *shipping.Service
	shipDB   *sql.DB
	provider *provider.Server
	// providerURL is the simulated provider's base URL.
	providerURL string
	addrs       map[string]string // env name -> address
}

// openSQLite opens a participant's database as the barrier needs it.
func openSQLite(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// serve serves register's service on a loopback port until the test ends.
func serve(t *testing.T, register func(grpc.ServiceRegistrar), closeSvc func() error) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := shoprpc.NewServer(noTelemetry{}, nil)
	register(srv)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Stop()
		<-done
		if err := closeSvc(); err != nil {
			t.Errorf("close service: %v", err)
		}
	})
	return ln.Addr().String()
}

// newShop starts the participants and the simulated payment provider; the
// payment service too if withPayment, else its address is to be set.
func newShop(t *testing.T, withPayment bool) *shop {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	s := &shop{addrs: map[string]string{}}

	inv, err := inventory.New(ctx, inventory.Config{DB: openSQLite(t, filepath.Join(dir, "inventory.db")), Dialect: cqrs.SQLite,
		Seed: map[string]int{sku: stock}, SweepInterval: -1})
	if err != nil {
		t.Fatalf("inventory.New: %v", err)
	}
	s.inv = inv
	s.addrs[envInventory] = serve(t, inv.Register, inv.Close)

	s.provider = provider.NewServer(provider.ServerConfig{})
	psrv := httptest.NewServer(s.provider.Handler())
	t.Cleanup(psrv.Close)
	s.providerURL = psrv.URL
	if withPayment {
		s.addrs[envPayment] = servePayment(t, s.providerURL, openSQLite(t, filepath.Join(dir, "payment.db")))
	}
	s.shipDB = openSQLite(t, filepath.Join(dir, "shipping.db"))
	ship, err := shipping.New(ctx, shipping.Config{DB: s.shipDB, Dialect: cqrs.SQLite})
	if err != nil {
		t.Fatalf("shipping.New: %v", err)
	}
	s.ship = ship
	s.addrs[envShipping] = serve(t, ship.Register, ship.Close)
	return s
}

// servePayment serves the payment service on db, with the provider at
// providerURL, until the test ends, and returns its address.
func servePayment(t *testing.T, providerURL string, db *sql.DB) string {
	t.Helper()
	transport := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(transport.CloseIdleConnections)
	cli, err := provider.NewClient(provider.ClientConfig{BaseURL: providerURL, HTTPClient: &http.Client{Transport: transport, Timeout: 10 * time.Second}})
	if err != nil {
		t.Fatalf("provider.NewClient: %v", err)
	}
	t.Cleanup(cli.CloseIdleConnections)
	pay, err := payment.New(t.Context(), payment.Config{DB: db, Dialect: cqrs.SQLite, Provider: cli})
	if err != nil {
		t.Fatalf("payment.New: %v", err)
	}
	return serve(t, pay.Register, pay.Close)
}

// child is a running order service process.
type child struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string   // the protocol lines of its stdout
	done   chan struct{} // closed when its stdout is at EOF
	mu     sync.Mutex
	output bytes.Buffer // everything it wrote, for failure messages
	addr   string
}

// startChild starts the order service on dataDir, stopping at boundary
// if it is not empty, and waits for its HTTP address.
func startChild(t *testing.T, s *shop, dataDir, boundary, name string) *child {
	t.Helper()
	env := []string{envChild + "=order", envDataDir + "=" + dataDir, envBoundary + "=" + boundary}
	for k, v := range s.addrs {
		env = append(env, k+"="+v)
	}
	return startProcess(t, "TestHelperOrderProcess", env, name)
}

// startProcess runs the test binary's helper test in a child process with
// env added to the environment, and waits for the address it prints.
func startProcess(t *testing.T, helper string, env []string, name string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+helper+"$", "-test.count=1", "-test.v=false")
	cmd.Env = append(os.Environ(), env...)
	c := &child{t: t, name: name, cmd: cmd, lines: make(chan string, 16), done: make(chan struct{})}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = writerFunc(func(p []byte) (int, error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.output.Write(p)
	})
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the order service's process: %v", err)
	}
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			c.mu.Lock()
			c.output.WriteString(line + "\n")
			c.mu.Unlock()
			if strings.HasPrefix(line, "CRASHTEST-") {
				select {
				case c.lines <- line:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	t.Cleanup(c.kill)
	c.addr = strings.TrimPrefix(c.waitLine(lineAddr), lineAddr)
	return c
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// waitLine returns the child's next protocol line, which must start with
// prefix.
func (c *child) waitLine(prefix string) string {
	c.t.Helper()
	timer := time.NewTimer(waitLimit)
	defer timer.Stop()
	select {
	case line := <-c.lines:
		if !strings.HasPrefix(line, prefix) {
			c.t.Fatalf("%s: got line %q, want one starting with %q; output:\n%s", c.name, line, prefix, c.out())
		}
		return line
	case <-c.done:
		c.t.Fatalf("%s exited before printing %q; output:\n%s", c.name, prefix, c.out())
	case <-timer.C:
		c.t.Fatalf("%s printed no %q line within %v; output:\n%s", c.name, prefix, waitLimit, c.out())
	}
	return ""
}

func (c *child) out() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.output.String()
}

// kill SIGKILLs the child and reaps it; a no-op once done.
func (c *child) kill() {
	if c.cmd.ProcessState != nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
	c.stdin.Close()
	err := c.cmd.Wait()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return
		}
	}
	c.t.Errorf("%s: exit %v, want killed by SIGKILL; output:\n%s", c.name, err, c.out())
}

// orderView is what GET /orders/{id} answers that the test reads.
type orderView struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	SagaID string `json:"saga_id"`
}

// place places the subtest's order through c's HTTP API.
func place(t *testing.T, c *child, method, region string) string {
	t.Helper()
	body := map[string]any{
		"customer_id":    "crash-customer",
		"lines":          []map[string]any{{"sku": sku, "quantity": quantity, "unit_price": unitPrice}},
		"payment_method": method,
		"ship_to":        map[string]any{"recipient": "Ada Lovelace", "lines": []string{"1 Crash Street"}, "locality": "Bruxelles", "postal_code": "1000", "region_code": region},
	}
	b, _ := json.Marshal(body)
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+c.addr+"/orders", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("POST /orders: %v; output:\n%s", err, c.out())
	}
	defer resp.Body.Close()
	var o orderView
	if resp.StatusCode != http.StatusCreated {
		msg, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST /orders status = %d, want 201: %s", resp.StatusCode, msg)
	}
	if err := json.NewDecoder(resp.Body).Decode(&o); err != nil || o.ID == "" {
		t.Fatalf("POST /orders answer: id %q, error %v", o.ID, err)
	}
	return o.ID
}

// httpClient has no keep-alive, so that no connection to a killed child
// lingers (goleak).
var httpClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}

// getOrder returns the order id as c serves it.
func getOrder(ctx context.Context, c *child, id string) (orderView, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.addr+"/orders/"+id, nil)
	if err != nil {
		return orderView{}, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return orderView{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return orderView{}, fmt.Errorf("GET /orders/%s: status %d", id, resp.StatusCode)
	}
	var o orderView
	err = json.NewDecoder(resp.Body).Decode(&o)
	return o, err
}

// sagaStatus reads the checkout saga's status of order id from sagas.db.
func sagaStatus(ctx context.Context, db *sql.DB, id string) (string, error) {
	var st string
	err := db.QueryRowContext(ctx, `SELECT status FROM `+sagasqlite.DefaultTable+` WHERE id = ?`, checkout.SagaID(id)).Scan(&st)
	if errors.Is(err, sql.ErrNoRows) {
		return "(none)", nil
	}
	return st, err
}

// waitFinal waits until the order's saga is completed or compensated and
// the order confirmed or cancelled (or failed), and returns both.
func waitFinal(t *testing.T, c *child, dataDir, id string) (orderStatus, sagaSt string) {
	t.Helper()
	db := openSQLite(t, filepath.Join(dataDir, "sagas.db"))
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		o, err := getOrder(ctx, c, id)
		if err == nil {
			orderStatus = o.Status
			sagaSt, err = sagaStatus(ctx, db, id)
		}
		lastErr = err
		if err == nil && (sagaSt == "completed" || sagaSt == "compensated") &&
			(orderStatus == "confirmed" || orderStatus == "cancelled" || orderStatus == "failed") {
			return orderStatus, sagaSt
		}
		select {
		case <-ctx.Done():
			t.Fatalf("order %s not final within %v after the restart: order %q, saga %q, last error %v; restarted process output:\n%s",
				id, waitLimit, orderStatus, sagaSt, lastErr, c.out())
		case <-tick.C:
		}
	}
}

// crashCase is one SIGKILL of the order service.
type crashCase struct {
	name     string
	method   string // payment method token
	region   string // the ship-to region
	boundary string // where the first process stops; "" kills it right after the 201
	want     string // the order's final status
}

func crashCases() []crashCase {
	var cases []crashCase
	add := func(path, method, region, want string, boundaries ...string) {
		for _, b := range boundaries {
			short := b[:strings.Index(b, ":")+1] + b[strings.LastIndex(b, "/")+1:]
			cases = append(cases, crashCase{name: path + "/" + short, method: method, region: region, boundary: b, want: want})
		}
	}
	both := func(ms ...string) []string {
		var out []string
		for _, m := range ms {
			out = append(out, "before:"+m, "after:"+m)
		}
		return out
	}
	cases = append(cases, crashCase{name: "confirmed/after-201", method: provider.TokenVisa, region: "BE", want: "confirmed"})
	add("confirmed", provider.TokenVisa, "BE", "confirmed", both(mReserve, mCharge, mSchedule, mConfirm)...)
	add("declined", provider.TokenDecline, "BE", "cancelled", append([]string{"after:" + mCharge}, both(mRefund, mRelease)...)...)
	add("unshippable", provider.TokenVisa, "JP", "cancelled", append([]string{"after:" + mSchedule}, both(mCancel, mRefund, mRelease)...)...)
	return cases
}

// TestCrashAtStepBoundaries kills the order service with SIGKILL at every
// step boundary of the checkout saga, restarts it on the same data, and
// checks that the saga ends, that the payment was captured at most once
// (and refunded once if the saga compensated), that the stock was
// reserved once, and that the shipment matches the outcome.
func TestCrashAtStepBoundaries(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills processes")
	}
	for _, tc := range crashCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newShop(t, true)
			dataDir := t.TempDir()
			first := startChild(t, s, dataDir, tc.boundary, "first order process")
			id := place(t, first, tc.method, tc.region)
			if tc.boundary != "" {
				if got := first.waitLine(lineBoundary); got != lineBoundary+tc.boundary {
					t.Fatalf("first process stopped at %q, want %q", got, lineBoundary+tc.boundary)
				}
			}
			first.kill()
			second := startChild(t, s, dataDir, "", "restarted order process")
			orderSt, sagaSt := waitFinal(t, second, dataDir, id)
			second.kill()
			check(t, s, tc, id, orderSt, sagaSt)
		})
	}
}

// check asserts the participants' state after the order's saga ended.
func check(t *testing.T, s *shop, tc crashCase, id, orderSt, sagaSt string) {
	t.Helper()
	ctx := t.Context()
	if tc.want == "" { // either outcome is correct
		tc.want = orderSt
	}
	confirmed := tc.want == "confirmed"
	wantSaga := map[bool]string{true: "completed", false: "compensated"}[confirmed]
	if orderSt != tc.want || sagaSt != wantSaga {
		t.Errorf("order %s ended %q with saga %q, want %q with saga %q", id, orderSt, sagaSt, tc.want, wantSaga)
	}

	// Payment: at most one capture; refunded once if compensated.
	var captured []provider.Charge
	for _, ch := range s.provider.Charges() {
		if n := s.provider.CaptureCount(ch.IdempotencyKey); n > 1 {
			t.Errorf("provider: key %q captured %d times, want at most 1", ch.IdempotencyKey, n)
		}
		if ch.Status == provider.StatusCaptured {
			captured = append(captured, ch)
		}
	}
	switch {
	case len(captured) > 1:
		t.Errorf("provider: %d captured charges for order %s, want at most 1: %+v", len(captured), id, captured)
	case confirmed && len(captured) != 1:
		t.Errorf("provider: %d captured charges for confirmed order %s, want 1", len(captured), id)
	case tc.method == provider.TokenDecline && len(captured) != 0:
		t.Errorf("provider: declined order %s has a captured charge: %+v", id, captured)
	}
	for _, ch := range captured {
		n := s.provider.RefundCount(ch.ID)
		if confirmed && (n != 0 || ch.Refunded) {
			t.Errorf("provider: charge %s of confirmed order %s refunded %d times, want 0", ch.ID, id, n)
		}
		if !confirmed && (n != 1 || !ch.Refunded) {
			t.Errorf("provider: charge %s of cancelled order %s refunded %d times (refunded=%v), want exactly 1", ch.ID, id, n, ch.Refunded)
		}
	}

	// Inventory: nothing held; sold once if confirmed, untouched if not.
	st, err := s.inv.Stock(ctx, sku)
	if err != nil {
		t.Fatalf("inventory Stock(%s): %v", sku, err)
	}
	wantOnHand := stock
	if confirmed {
		wantOnHand -= quantity
	}
	if st.Reserved != 0 || st.OnHand != wantOnHand {
		t.Errorf("inventory %s: on hand %d, reserved %d; want on hand %d, reserved 0", sku, st.OnHand, st.Reserved, wantOnHand)
	}

	// Shipping: one scheduled shipment if confirmed; none live otherwise.
	rows, err := s.shipDB.QueryContext(ctx, `SELECT status FROM shipping_shipments WHERE order_id = ?`, id)
	if err != nil {
		t.Fatalf("shipping: list shipments: %v", err)
	}
	defer rows.Close()
	var shipments []shipdomain.Status
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		sst, err := shipdomain.ParseStatus(name)
		if err != nil {
			t.Fatalf("shipping: status %q: %v", name, err)
		}
		shipments = append(shipments, sst)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if confirmed && (len(shipments) != 1 || shipments[0] != shipdomain.Scheduled) {
		t.Errorf("shipping: confirmed order %s has shipments %v, want one scheduled", id, shipments)
	}
	if !confirmed && (len(shipments) > 1 || len(shipments) == 1 && shipments[0] != shipdomain.Cancelled) {
		t.Errorf("shipping: cancelled order %s has shipments %v, want none or one cancelled", id, shipments)
	}
}

// TestHelperPaymentProcess is the payment service's process that
// TestCrashPaymentAfterCapture starts and kills; it is skipped unless run
// as that child. It serves the payment service on the address given, with
// its database file and the parent's provider; with boundaryCapture, it
// stops forever after the provider answered the first charge, before the
// service records it.
func TestHelperPaymentProcess(t *testing.T) {
	if os.Getenv(envChild) != "payment" {
		t.Skip("the payment service's process of the crash tests; runs only as their child")
	}
	stopAfterCharge := os.Getenv(envBoundary) == boundaryCapture
	base := http.DefaultTransport.(*http.Transport).Clone()
	defer base.CloseIdleConnections()
	rt := roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := base.RoundTrip(req)
		if stopAfterCharge && err == nil && req.Method == http.MethodPost && req.URL.Path == "/v1/charges" && resp.StatusCode < 300 {
			fmt.Printf("%s%s\n", lineBoundary, boundaryCapture)
			select {} // until SIGKILL
		}
		return resp, err
	})
	cli, err := provider.NewClient(provider.ClientConfig{BaseURL: os.Getenv(envProviderURL), HTTPClient: &http.Client{Transport: rt, Timeout: 10 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+os.Getenv(envPaymentDB)+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	pay, err := payment.New(t.Context(), payment.Config{DB: db, Dialect: cqrs.SQLite, Provider: cli})
	if err != nil {
		t.Fatal(err)
	}
	defer pay.Close()
	ln, err := net.Listen("tcp", os.Getenv(envListen))
	if err != nil {
		t.Fatal(err)
	}
	srv := shoprpc.NewServer(noTelemetry{}, nil)
	pay.Register(srv)
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Serve(ln) })
	defer wg.Wait()
	defer srv.Stop()
	fmt.Printf("%s%s\n", lineAddr, ln.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin) // until the parent closes it
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestCrashPaymentAfterCapture kills the payment service (a child process,
// as the order service is) after the provider captured the charge and
// before the payment service recorded it, restarts it on the same
// database and address, and checks that the saga ends with the charge
// captured once, and refunded once if the saga compensated.
func TestCrashPaymentAfterCapture(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills processes")
	}
	t.Parallel()
	s := newShop(t, false)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String() // the restarted process listens here again
	ln.Close()
	s.addrs[envPayment] = addr
	payDB := filepath.Join(t.TempDir(), "payment.db")
	payEnv := func(boundary string) []string {
		return []string{envChild + "=payment", envPaymentDB + "=" + payDB, envProviderURL + "=" + s.providerURL,
			envListen + "=" + addr, envBoundary + "=" + boundary}
	}
	pay := startProcess(t, "TestHelperPaymentProcess", payEnv(boundaryCapture), "first payment process")
	dataDir := t.TempDir()
	ord := startChild(t, s, dataDir, "", "order process")
	id := place(t, ord, provider.TokenVisa, "BE")
	if got := pay.waitLine(lineBoundary); got != lineBoundary+boundaryCapture {
		t.Fatalf("payment process stopped at %q, want %q", got, lineBoundary+boundaryCapture)
	}
	if n := len(s.provider.Charges()); n != 1 {
		t.Fatalf("provider holds %d charges at the boundary, want 1", n)
	}
	pay.kill()
	startProcess(t, "TestHelperPaymentProcess", payEnv(""), "restarted payment process")
	orderSt, sagaSt := waitFinal(t, ord, dataDir, id)
	t.Logf("order %s ended %s (saga %s)", id, orderSt, sagaSt)
	check(t, s, crashCase{name: "payment-after-capture", method: provider.TokenVisa, region: "BE"}, id, orderSt, sagaSt)
}
