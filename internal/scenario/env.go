package scenario

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/cairnhq/cairn/internal/fault"
)

// Fault targets: the names of the injectors [Env.SetFault] drives.
const (
	TargetPaymentProvider = "payment-provider" // the simulated external payment provider
	TargetInventory       = "inventory"        // the inventory service, as its callers see it
	TargetPayment         = "payment"          // the payment service, as its callers see it
	TargetShipping        = "shipping"         // the shipping service, as its callers see it
	TargetOrdersDB        = "orders-db"        // the order service's database
)

// Services: the names [Env.Kill] and [Env.Restart] take.
const (
	ServiceOrder     = "order"
	ServiceInventory = "inventory"
	ServicePayment   = "payment"
	ServiceShipping  = "shipping"
)

// Env is the shop a scenario acts on; the demo implements it. Its methods
// are called from the one goroutine that runs the scenario, but the demo
// may call them elsewhere too, so they must be safe for concurrent use.
// None of them may block for long: Kill and Restart return once the
// service is stopped or serving again.
type Env interface {
	// SetFault replaces the settings of the fault injector target (one of
	// the Target constants); the zero Settings inject nothing. It returns
	// an error for an unknown target or invalid settings.
	SetFault(target string, s fault.Settings) error
	// Kill stops service (one of the Service constants) abruptly, as a
	// crash would: in-flight work is abandoned, nothing is drained.
	Kill(service string) error
	// Restart starts a killed service again, on the same stores, so that
	// it recovers what it had in flight. Restarting a running service is
	// a no-op.
	Restart(service string) error
	// Broker makes the message broker reachable (up) or not.
	Broker(up bool) error
	// SetLoad sets the load generator's arrival rate in requests per
	// second; zero stops the load.
	SetLoad(rps float64)
	// Probe returns what assertions read. It is called once per run.
	Probe() Probe
}

// Probe is what assertions read: telemetry as the console received it,
// and the shop's state from its databases. [NewProbe] joins the two
// halves. Implementations must be safe for concurrent use.
type Probe interface {
	TelemetryProbe
	StateProbe
}

// TelemetryProbe reads telemetry as the console stored it. [ConsoleProbe]
// implements it over the console's JSON API.
type TelemetryProbe interface {
	// CounterTotal returns the total of a cumulative counter: over the
	// series of metric reported by service (every service when empty)
	// whose attributes include attrs, the sum of each series' latest
	// value, with counter resets (a process restarted) added back. A
	// metric never received is 0.
	CounterTotal(ctx context.Context, service, metric string, attrs map[string]string) (float64, error)
	// GaugeValue returns the sum, over the same series, of each series'
	// latest value: the current value of a gauge or up-down counter. A
	// metric never received is 0.
	GaugeValue(ctx context.Context, service, metric string, attrs map[string]string) (float64, error)
	// Logs returns how many log records match q.
	Logs(ctx context.Context, q LogQuery) (int, error)
	// ErrorTraces returns how many traces that started at or after since
	// have a span of service (any service when empty) with status error.
	ErrorTraces(ctx context.Context, service string, since time.Time) (int, error)
}

// StateProbe reads facts that live in the shop's databases rather than in
// its telemetry. The demo implements it.
type StateProbe interface {
	// Sagas counts the checkout saga instances by status.
	Sagas(ctx context.Context) (SagaCounts, error)
	// DoubleCharges counts the orders the payment provider charged more
	// than once.
	DoubleCharges(ctx context.Context) (int, error)
}

// SagaCounts counts saga instances by status.
type SagaCounts struct {
	// Running counts the unfinished instances: started, compensating or
	// stuck.
	Running int `json:"running"`
	// Completed counts the instances that ran every step.
	Completed int `json:"completed"`
	// Compensated counts the instances that failed a step and undid the
	// steps before it.
	Compensated int `json:"compensated"`
	// Failed counts the instances whose compensation failed.
	Failed int `json:"failed"`
}

// LogQuery selects log records, as the console's /api/logs does. Zero
// fields match everything.
type LogQuery struct {
	// Service keeps records of that service.name.
	Service string
	// MinSeverity keeps records of at least this severity: "trace",
	// "debug", "info", "warn", "error", "fatal" or a number 1 to 24.
	MinSeverity string
	// Text keeps records whose body, event name or severity text contains
	// it, ignoring case.
	Text string
	// Since keeps records at or after it.
	Since time.Time
}

// NewProbe returns the Probe that reads telemetry from t and state from
// s.
func NewProbe(t TelemetryProbe, s StateProbe) Probe {
	return joinedProbe{t, s}
}

type joinedProbe struct {
	TelemetryProbe
	StateProbe
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
