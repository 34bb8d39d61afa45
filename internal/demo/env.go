package demo

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"google.golang.org/grpc"

	"github.com/cairnhq/cairn/internal/fault"
	"github.com/cairnhq/cairn/internal/scenario"
	"github.com/cairnhq/cairn/internal/shop/order"
	"github.com/cairnhq/cairn/problem"
	"github.com/cairnhq/cairn/saga"
	sagasqlite "github.com/cairnhq/cairn/saga/sqlite"
)

// SagaLease is the checkout sagas' lease in the demo: after the order
// service is killed, its sagas resume this long after their last write.
const SagaLease = 5 * time.Second

// The demo is the environment of the fault scenarios.
var _ scenario.Env = (*Demo)(nil)

// serveOrder serves the order API of the running order service, or 503
// while a scenario has killed it. (A killed process would refuse the
// connection; the demo's listener stays open, so it answers instead.)
func (d *Demo) serveOrder(w http.ResponseWriter, r *http.Request) {
	h := d.orderHTTP.Load()
	if h == nil {
		w.Header().Set("Retry-After", "1")
		problem.Write(w, r, problem.Errorf(http.StatusServiceUnavailable, "the order service is down (killed by a fault scenario); it restarts when the scenario says"))
		return
	}
	(*h).ServeHTTP(w, r)
}

// orderRPC registers the running order service's gRPC API.
type orderRPC struct{ d *Demo }

func (o orderRPC) Register(r grpc.ServiceRegistrar) {
	o.d.orderMu.Lock()
	defer o.d.orderMu.Unlock()
	if o.d.order != nil {
		o.d.order.RegisterGRPC(r)
	}
}

func (orderRPC) Close() error { return nil }

// injectors returns every fault injector of the demo.
func (d *Demo) injectors() []*fault.Injector {
	out := []*fault.Injector{d.faults}
	if d.shop != nil {
		for _, name := range []string{ServiceInventory, ServicePayment, ServiceShipping} {
			out = append(out, d.shop.parts[name].faults)
		}
		out = append(out, d.shop.provFlt)
	}
	return out
}

// Injector returns the fault injector named target ("orders-db",
// "inventory", "payment", "shipping" or "payment-provider"), or nil.
func (d *Demo) Injector(target string) *fault.Injector {
	for _, in := range d.injectors() {
		if in != nil && in.Name() == target {
			return in
		}
	}
	return nil
}

// SetFault implements scenario.Env.
func (d *Demo) SetFault(target string, s fault.Settings) error {
	in := d.Injector(target)
	if in == nil {
		return fmt.Errorf("demo: no fault target %q", target)
	}
	return in.Set(s)
}

// Kill implements scenario.Env: the service stops as a crashed process
// would. Killing the order service stops its HTTP and gRPC APIs and its
// saga orchestrator, whose sagas another start resumes once their leases
// expire.
func (d *Demo) Kill(service string) error {
	if service == ServiceOrder {
		d.orderHTTP.Store(nil)
		err := d.orderGRPC.kill()
		d.orderMu.Lock()
		defer d.orderMu.Unlock()
		if d.order == nil {
			return err
		}
		err = errors.Join(err, d.order.Close())
		d.order = nil
		d.orderTel.Logger().Warn("order service killed by a fault scenario")
		return err
	}
	p, err := d.part(service)
	if err != nil {
		return err
	}
	p.tel.Logger().Warn("service killed by a fault scenario", "service", service)
	return p.kill()
}

// Restart implements scenario.Env: a killed service starts again on its
// databases and address. The order service restarts as another saga
// owner, as a new process would.
func (d *Demo) Restart(service string) error {
	if service == ServiceOrder {
		d.orderMu.Lock()
		if d.order != nil {
			d.orderMu.Unlock()
			return nil
		}
		d.restarts++
		cfg := d.orderCfg
		cc := *cfg.Checkout
		cc.Owner = "order-" + strconv.Itoa(d.restarts+1)
		cfg.Checkout = &cc
		o, err := order.New(d.ctx, cfg)
		if err != nil {
			d.orderMu.Unlock()
			return fmt.Errorf("demo: restart order service: %w", err)
		}
		d.order = o
		d.orderMu.Unlock()
		h := o.Handler()
		d.orderHTTP.Store(&h)
		d.orderTel.Logger().Info("order service restarted", "owner", cc.Owner)
		return d.orderGRPC.start(d.ctx)
	}
	p, err := d.part(service)
	if err != nil {
		return err
	}
	if err := p.start(d.ctx); err != nil {
		return err
	}
	p.tel.Logger().Info("service restarted", "service", service)
	return nil
}

func (d *Demo) part(service string) (*participant, error) {
	if d.shop != nil {
		if p := d.shop.parts[service]; p != nil {
			return p, nil
		}
	}
	return nil, fmt.Errorf("demo: no service %q (want order, inventory, payment or shipping)", service)
}

// Broker implements scenario.Env: it stops or starts the embedded NATS
// server.
func (d *Demo) Broker(up bool) error {
	return d.bus.SetEmbedded(d.ctx, up)
}

// SetLoad implements scenario.Env.
func (d *Demo) SetLoad(rps float64) { d.rate.Set(rps) }

// Probe implements scenario.Env: telemetry as the demo's console received
// it, over its JSON API, and the shop's state from its databases.
func (d *Demo) Probe() scenario.Probe {
	return scenario.NewProbe(scenario.NewConsoleProbe("http://"+d.addrs.Console, &http.Client{Timeout: 10 * time.Second}, ""), stateProbe{d})
}

// stateProbe reads the shop's state for the scenarios' assertions.
type stateProbe struct{ d *Demo }

// Sagas counts the checkout sagas by status, from the saga store.
func (p stateProbe) Sagas(ctx context.Context) (scenario.SagaCounts, error) {
	rows, err := p.d.sagaDB.QueryContext(ctx, `SELECT status, COUNT(*) FROM `+sagasqlite.DefaultTable+` GROUP BY status`)
	if err != nil {
		return scenario.SagaCounts{}, fmt.Errorf("demo: count sagas: %w", err)
	}
	defer rows.Close()
	var c scenario.SagaCounts
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return scenario.SagaCounts{}, fmt.Errorf("demo: count sagas: %w", err)
		}
		switch saga.Status(st) {
		case saga.StatusCompleted:
			c.Completed += n
		case saga.StatusCompensated:
			c.Compensated += n
		default:
			c.Running += n
		}
	}
	return c, rows.Err()
}

// DoubleCharges counts the checkouts the provider captured more than
// once: an idempotency key captured twice (the provider's own guarantee),
// or two captured charges for one order's saga.
func (p stateProbe) DoubleCharges(context.Context) (int, error) {
	if p.d.shop == nil || p.d.shop.provider == nil {
		return 0, nil
	}
	perKey := map[string]int{}
	for _, c := range p.d.shop.provider.Charges() {
		if c.Status == "captured" {
			perKey[c.IdempotencyKey]++
		}
	}
	n := 0
	for k, captured := range perKey {
		if captured > 1 || p.d.shop.provider.CaptureCount(k) > 1 {
			n++
		}
	}
	return n, nil
}

// openSagaProbe opens a second handle on the order service's saga store,
// which outlives the order service when a scenario kills it.
func openSagaProbe(dataDir string) (*sql.DB, error) {
	db, err := openSQLite(dataDir, "sagas")
	if err != nil {
		return nil, err
	}
	return db, nil
}
