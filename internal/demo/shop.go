package demo

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/cairnhq/cairn/cqrs"
	"github.com/cairnhq/cairn/internal/fault"
	"github.com/cairnhq/cairn/internal/shop/inventory"
	"github.com/cairnhq/cairn/internal/shop/payment"
	"github.com/cairnhq/cairn/internal/shop/payment/provider"
	"github.com/cairnhq/cairn/internal/shop/shipping"
	"github.com/cairnhq/cairn/internal/shop/shoprpc"
	"github.com/cairnhq/cairn/resilience"
	"github.com/cairnhq/cairn/resilience/resilienceconfig"
	"github.com/cairnhq/cairn/resilience/resiliencegrpc"
	"github.com/cairnhq/cairn/resilience/resiliencehttp"
	"github.com/cairnhq/cairn/resilience/retry"
	"github.com/cairnhq/cairn/saga"
	"github.com/cairnhq/cairn/telemetry"
)

// The shop's participants, as the demo names them in its fault targets,
// its telemetry (service.name) and its scenarios.
const (
	ServiceInventory = "inventory"
	ServicePayment   = "payment"
	ServiceShipping  = "shipping"
	ServiceOrder     = "order"
	// TargetProvider is the fault target of the simulated payment
	// provider.
	TargetProvider = "payment-provider"
)

// Default addresses of the shop's gRPC services and of the simulated
// payment provider.
const (
	DefaultOrderGRPCAddr = "127.0.0.1:9090"
	DefaultInventoryAddr = "127.0.0.1:9091"
	DefaultPaymentAddr   = "127.0.0.1:9092"
	DefaultShippingAddr  = "127.0.0.1:9093"
	DefaultProviderAddr  = "127.0.0.1:8089"
)

// StockPerSKU is the stock of each of the catalog's SKUs when the demo
// creates its inventory: enough for hours of load, so that only a
// scenario makes stock run out.
const StockPerSKU = 1_000_000

// catalogSize is the number of SKUs the load generator orders from.
const catalogSize = 50

// grpcService is a participant's service as the demo runs it.
type grpcService interface {
	Register(grpc.ServiceRegistrar)
	Close() error
}

// participant is one of the shop's gRPC services in the demo's process,
// with its own telemetry, database and fault injector, which can be
// killed and restarted on the same database and address, as a process
// would be.
type participant struct {
	name     string
	tel      *telemetry.Telemetry
	faults   *fault.Injector
	pipeline resilience.Executor[struct{}]
	build    func(ctx context.Context) (grpcService, error)

	mu   sync.Mutex
	addr string
	ln   net.Listener // bound at Start, consumed by the first start
	srv  *grpc.Server
	svc  grpcService
	done chan struct{}
}

// start builds the service and serves it. It is a no-op while it runs.
func (p *participant) start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.srv != nil {
		return nil
	}
	ln := p.ln
	p.ln = nil
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", p.addr); err != nil {
			return fmt.Errorf("demo: restart %s on %s: %w", p.name, p.addr, err)
		}
	}
	svc, err := p.build(ctx)
	if err != nil {
		ln.Close()
		return fmt.Errorf("demo: %s service: %w", p.name, err)
	}
	srv := shoprpc.NewServer(p.tel, p.pipeline)
	svc.Register(srv)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln) // returns when stopped
	}()
	p.srv, p.svc, p.done = srv, svc, done
	return nil
}

// kill stops the service abruptly: connections close, in-flight calls
// fail, nothing drains. It is a no-op when it is not running.
func (p *participant) kill() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.srv == nil {
		return nil
	}
	p.srv.Stop()
	<-p.done
	err := p.svc.Close()
	p.srv, p.svc, p.done = nil, nil, nil
	return err
}

// stop shuts the service down gracefully, for the demo's end.
func (p *participant) stop(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	if p.srv == nil {
		return nil
	}
	stopped := make(chan struct{})
	go func() { p.srv.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-ctx.Done():
		p.srv.Stop()
		<-stopped
	}
	<-p.done
	err := p.svc.Close()
	p.srv, p.svc, p.done = nil, nil, nil
	return err
}

// shop is the demo's checkout participants: their services, databases,
// the simulated payment provider and the order service's connections to
// them.
type shop struct {
	parts    map[string]*participant
	dbs      []*sql.DB
	provider *provider.Server
	provCli  *provider.Client
	provFlt  *fault.Injector
	conns    map[string]*grpc.ClientConn
	reloader []*resilienceconfig.Reloader
}

// openSQLite opens a participant's SQLite database in dir, as the
// barrier needs it: WAL, a busy timeout and immediate transactions.
func openSQLite(dir, name string) (*sql.DB, error) {
	path := filepath.Join(dir, name+".db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("demo: open %s: %w", path, err)
	}
	// One connection: SQLite has one writer at a time, and writers that
	// wait in Go's pool queue in order, where writers on many connections
	// wait in SQLite's busy handler, which sleeps and retries (up to 100ms
	// at a time): at 200 orders/s that made checkouts take seconds.
	db.SetMaxOpenConns(1)
	return db, nil
}

// startShop starts the participants (on the listeners given, by name)
// and the payment provider, and dials them for the order service.
func (d *Demo) startShop(ctx context.Context, lns map[string]net.Listener, rfile *resilienceconfig.File,
	newTel func(string, bool) (*telemetry.Telemetry, error)) (err error) {
	s := &shop{parts: map[string]*participant{}, conns: map[string]*grpc.ClientConn{}}
	d.shop = s
	for _, name := range []string{ServiceInventory, ServicePayment, ServiceShipping} {
		tel, err := newTel(name, true)
		if err != nil {
			return fmt.Errorf("demo: %s telemetry: %w", name, err)
		}
		d.extraTel = append(d.extraTel, tel)
		res, err := newReloader(rfile, tel, resilienceconfig.WithRetryConfig(func(name string, p *retry.Policy) {
			if name == "payment-provider" {
				p.Pushback = resiliencehttp.RetryAfterPushback
			}
		}))
		if err != nil {
			return fmt.Errorf("demo: %s resilience: %w", name, err)
		}
		s.reloader = append(s.reloader, res)
		api, err := resilienceconfig.NewLive[struct{}](res, name+"-api")
		if err != nil {
			return fmt.Errorf("demo: %s resilience: %w", name, err)
		}
		db, err := openSQLite(d.dataDir, name)
		if err != nil {
			return err
		}
		s.dbs = append(s.dbs, db)
		ln := lns[name]
		p := &participant{name: name, tel: tel, faults: fault.New(name), pipeline: api, ln: ln, addr: ln.Addr().String()}
		switch name {
		case ServiceInventory:
			p.build = func(ctx context.Context) (grpcService, error) {
				return inventory.New(ctx, inventory.Config{
					DB: db, Dialect: cqrs.SQLite, Faults: p.faults, Seed: inventory.DefaultCatalog(catalogSize, StockPerSKU),
					TracerProvider: tel.TracerProvider(), MeterProvider: tel.MeterProvider(), Logger: tel.Logger(),
				})
			}
		case ServiceShipping:
			p.build = func(ctx context.Context) (grpcService, error) {
				return shipping.New(ctx, shipping.Config{
					DB: db, Dialect: cqrs.SQLite, Faults: p.faults,
					TracerProvider: tel.TracerProvider(), MeterProvider: tel.MeterProvider(), Logger: tel.Logger(),
				})
			}
		case ServicePayment:
			// The provider is someone else's system: it has no telemetry
			// of its own here, and the payment service's client spans
			// show its calls.
			s.provFlt = fault.New(TargetProvider)
			s.provider = provider.NewServer(provider.ServerConfig{Faults: s.provFlt, RetryAfter: time.Second, Logger: tel.Logger()})
			d.serve("payment provider", lns[TargetProvider], s.provider.Handler())
			writes, err1 := resilienceconfig.NewLive[*http.Response](res, "payment-provider-write")
			reads, err2 := resilienceconfig.NewLive[*http.Response](res, "payment-provider-read")
			if err := errors.Join(err1, err2); err != nil {
				return fmt.Errorf("demo: payment provider resilience: %w", err)
			}
			s.provCli, err = provider.NewClient(provider.ClientConfig{
				BaseURL: "http://" + lns[TargetProvider].Addr().String(), Writes: writes, Reads: reads,
				HTTPClient:     &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone(), Timeout: 10 * time.Second},
				TracerProvider: tel.TracerProvider(), MeterProvider: tel.MeterProvider(),
			})
			if err != nil {
				return fmt.Errorf("demo: payment provider client: %w", err)
			}
			p.build = func(ctx context.Context) (grpcService, error) {
				return payment.New(ctx, payment.Config{
					DB: db, Dialect: cqrs.SQLite, Provider: s.provCli, Faults: p.faults,
					TracerProvider: tel.TracerProvider(), MeterProvider: tel.MeterProvider(), Logger: tel.Logger(),
				})
			}
		}
		s.parts[name] = p
		if err := p.start(ctx); err != nil {
			return err
		}
	}
	return nil
}

// dialShop connects the order service to the participants through the
// order service's client pipelines (inventory-client, payment-client,
// shipping-client), and returns the checkout step's executor.
func (d *Demo) dialShop(res *resilienceconfig.Reloader) (resilience.Executor[struct{}], error) {
	for _, name := range []string{ServiceInventory, ServicePayment, ServiceShipping} {
		pl, err := resilienceconfig.NewLive[struct{}](res, name+"-client")
		if err != nil {
			return nil, fmt.Errorf("demo: %s client resilience: %w", name, err)
		}
		conn, err := shoprpc.Dial(d.shop.parts[name].addr, d.orderTel, pl)
		if err != nil {
			return nil, err
		}
		d.shop.conns[name] = conn
	}
	step, err := resilienceconfig.NewLive[struct{}](res, "checkout-step")
	if err != nil {
		return nil, fmt.Errorf("demo: checkout step resilience: %w", err)
	}
	return step, nil
}

// shopRetryConfig sets the retry policies of the order service's
// pipelines that need code: the gRPC clients retry only what the server
// says may be retried, with its pushback; the checkout's steps retry only
// what saga.Retryable allows.
func shopRetryConfig(name string, p *retry.Policy) {
	switch name {
	case "shop-clients":
		p.Pushback = resiliencegrpc.Pushback
	case "checkout-step":
		p.RetryIf = saga.Retryable
	}
}

// closeShop stops the participants and the provider's client, and
// closes the connections and databases.
func (d *Demo) closeShop(ctx context.Context) error {
	s := d.shop
	if s == nil {
		return nil
	}
	var errs []error
	for _, c := range s.conns {
		errs = append(errs, c.Close())
	}
	for _, name := range []string{ServiceInventory, ServicePayment, ServiceShipping} {
		if p := s.parts[name]; p != nil {
			if err := p.stop(ctx); err != nil {
				errs = append(errs, fmt.Errorf("demo: stop %s: %w", name, err))
			}
		}
	}
	if s.provCli != nil {
		s.provCli.CloseIdleConnections()
	}
	for _, db := range s.dbs {
		errs = append(errs, db.Close())
	}
	return errors.Join(errs...)
}
