// Package loadgen generates the demo's traffic against the order service's
// HTTP API: an open-loop, constant-arrival-rate mix of order placements
// (POST /orders) and reads of previously placed orders (GET /orders/{id}).
//
// Every request is the root of its own trace: a "loadgen place-order",
// "loadgen get-order" or "loadgen list-orders" span whose context the
// caller's HTTP client carries, so with an otelhttp-instrumented client a
// trace reads loadgen span -> HTTP client span -> server span -> database
// span.
//
// The rate may be fixed ([Config].RPS) or changed while Run goes
// ([Config].Rate, a [Rate]). With [Config].Watch, Run also follows each
// placed order's checkout to its final status and measures the end-to-end
// checkout latency; [Config].DeclineRatio makes a share of the placements
// pay with a card the payment provider declines.
package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

const instrumentationName = "github.com/cairnhq/cairn/internal/loadgen"

// Defaults of [Config].
const (
	DefaultRPS            = 10
	DefaultReadRatio      = 0.5
	DefaultListRatio      = 0.1
	ListLimit             = 50 // orders a list request asks for
	DefaultMaxInFlight    = 256
	DefaultRequestTimeout = 10 * time.Second
	DefaultWatchTimeout   = 30 * time.Second
)

// Payment methods a placement sends (see [Config].DeclineRatio): test
// tokens of the simulated payment provider.
const (
	PaymentMethodVisa    = "tok_visa"    // charged successfully
	PaymentMethodDecline = "tok_decline" // declined
)

// Final order statuses that [Config].Watch may report, and the outcome
// recorded for a watch that does not report one of them.
const (
	StatusConfirmed   = "confirmed"  // the checkout completed
	StatusCancelled   = "cancelled"  // the checkout undid every completed step
	StatusFailed      = "failed"     // the checkout could neither complete nor fully undo
	OutcomeUnfinished = "unfinished" // Watch failed, timed out or reported no final status
)

// Catalog the generator picks from.
const (
	numCustomers = 100
	numSKUs      = 50
	maxLines     = 3
	maxQuantity  = 5
	knownIDs     = 1024 // most recent placed IDs kept for reads
	maxSamples   = 10000
	maxBodyBytes = 1 << 20
)

// Config configures [Run]. Only BaseURL is required; the zero value of every
// other field selects the documented default.
type Config struct {
	// BaseURL is the order service's base URL, such as
	// "http://127.0.0.1:8080". Required; it must be absolute http or https.
	BaseURL string
	// RPS is the arrival rate in requests per second, when Rate is nil.
	// Default: 10.
	RPS float64
	// Rate, if not nil, is the arrival rate, and RPS is ignored. Run reads
	// it continuously: when it changes, the schedule is re-based at the
	// change, so the next arrival comes one interval of the new rate after
	// the last one (or at once, if that time has passed) and no arrivals
	// "missed" under the new rate fire in a burst. A rate of 0 pauses the
	// load, idle, until the next change. Default nil: the fixed RPS.
	Rate *Rate
	// ReadRatio is the share of requests, in [0,1], that read a previously
	// placed order rather than place a new one. Zero selects the default 0.5;
	// a negative value means no reads. Until an order has been placed every
	// request is a placement.
	ReadRatio float64
	// ListRatio is the share of requests, in [0,1], that list the newest
	// orders (GET /orders?limit=50), drawn before ReadRatio applies to the
	// rest. Zero selects the default 0.1; a negative value means no lists.
	ListRatio float64
	// MaxInFlight bounds the requests outstanding at once. An arrival that
	// finds the bound reached is skipped and counted in Stats.Skipped.
	// Default: 256.
	MaxInFlight int
	// RequestTimeout bounds each request, including the ones still in flight
	// when Run's context is done. Default: 10s.
	RequestTimeout time.Duration
	// Client sends the requests. Pass one whose Transport is
	// otelhttp-instrumented to get HTTP client spans and trace propagation.
	// Default: http.DefaultClient.
	Client *http.Client
	// TracerProvider provides the tracer of the per-request root spans.
	// Default: the OpenTelemetry global TracerProvider.
	TracerProvider trace.TracerProvider
	// MeterProvider provides the meter of the generator's metrics.
	// Default: the OpenTelemetry global MeterProvider.
	MeterProvider metric.MeterProvider
	// Logger receives a warning per failed request and per unfinished
	// checkout (see Watch), logged with the request's context. Default:
	// logs are discarded.
	Logger *slog.Logger
	// Seed seeds the choice of operations, customers, SKUs, quantities,
	// payment methods and orders to read. Every seed, zero included, is
	// valid; the same seed gives the same choices for the same sequence of
	// responses.
	Seed int64
	// DeclineRatio is the share of placements, in [0,1], that pay with
	// PaymentMethodDecline ("tok_decline"), which the payment provider
	// declines, so their checkout is cancelled; the others pay with
	// PaymentMethodVisa ("tok_visa"). Default 0: every placement pays with
	// tok_visa.
	DeclineRatio float64
	// Watch, if not nil, follows the checkout of a placed order: it returns
	// the order's final status (StatusConfirmed, StatusCancelled or
	// StatusFailed) once the order has one, or an error. After each
	// successful placement Run calls Watch, in a goroutine of its own, with
	// the order's id and a context that carries the placement's root span
	// (so spans Watch starts join the order's trace) and is done after
	// WatchTimeout, also when Run's context is done first. Watch must
	// return soon after its context is done; Run waits for the watches in
	// flight before it returns. Watches do not count against MaxInFlight.
	// Run records the checkout latency, from just before the placement was
	// sent to Watch's return, in Stats.Checkouts and the
	// cairn.loadgen.checkout.duration histogram, by final status; an error,
	// or a status that is not final, counts as unfinished. Watch must be
	// safe for concurrent use. Default nil: checkouts are not followed.
	Watch func(ctx context.Context, orderID string) (final string, err error)
	// WatchTimeout bounds each call of Watch. Default: 30s.
	WatchTimeout time.Duration
}

// Validate reports the first invalid field of c, if any.
func (c Config) Validate() error {
	u, err := url.Parse(c.BaseURL)
	switch {
	case c.BaseURL == "":
		return errors.New("loadgen: BaseURL is required")
	case err != nil:
		return fmt.Errorf("loadgen: BaseURL %q: %w", c.BaseURL, err)
	case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Errorf("loadgen: BaseURL %q is not an absolute http(s) URL", c.BaseURL)
	case math.IsNaN(c.RPS) || math.IsInf(c.RPS, 0) || c.RPS < 0:
		return fmt.Errorf("loadgen: RPS %v is not a finite non-negative number", c.RPS)
	case math.IsNaN(c.ReadRatio) || c.ReadRatio > 1:
		return fmt.Errorf("loadgen: ReadRatio %v is not at most 1", c.ReadRatio)
	case math.IsNaN(c.ListRatio) || c.ListRatio > 1:
		return fmt.Errorf("loadgen: ListRatio %v is not at most 1", c.ListRatio)
	case c.MaxInFlight < 0:
		return fmt.Errorf("loadgen: MaxInFlight %d is negative", c.MaxInFlight)
	case c.RequestTimeout < 0:
		return fmt.Errorf("loadgen: RequestTimeout %v is negative", c.RequestTimeout)
	case math.IsNaN(c.DeclineRatio) || c.DeclineRatio < 0 || c.DeclineRatio > 1:
		return fmt.Errorf("loadgen: DeclineRatio %v is not in [0,1]", c.DeclineRatio)
	case c.WatchTimeout < 0:
		return fmt.Errorf("loadgen: WatchTimeout %v is negative", c.WatchTimeout)
	}
	return nil
}

// Stats summarizes a run. Sent == Succeeded + Failed once Run has returned.
type Stats struct {
	// Sent counts the requests issued.
	Sent int64
	// Succeeded counts the requests answered as expected: 201 for a
	// placement, 200 for a read.
	Succeeded int64
	// Failed counts the requests that got another status or no response.
	Failed int64
	// Skipped counts the arrivals not issued because MaxInFlight requests
	// were outstanding.
	Skipped int64
	// P50, P95 and P99 are latency percentiles over the sent requests
	// (over a uniform sample of up to 10000 of them); zero if none was sent.
	P50, P95, P99 time.Duration
	// Checkouts summarizes the checkouts followed with Config.Watch.
	Checkouts CheckoutStats
}

// CheckoutStats summarizes the checkouts a run followed (see
// [Config].Watch). Watched == Confirmed + Cancelled + Failed + Unfinished
// once Run has returned.
type CheckoutStats struct {
	// Watched counts the placed orders whose checkout was followed.
	Watched int64
	// Confirmed, Cancelled and Failed count the checkouts by the final
	// status Watch reported.
	Confirmed, Cancelled, Failed int64
	// Unfinished counts the watches that returned an error, timed out, or
	// reported a status that is not final.
	Unfinished int64
	// P50 and P99 are percentiles of the end-to-end checkout latency, from
	// just before the placement was sent to Watch's return, over the
	// checkouts that ended confirmed or cancelled (over a uniform sample of
	// up to 10000 of them); zero if there were none.
	P50, P99 time.Duration
}

// Run sends requests to cfg.BaseURL at cfg.RPS (or cfg.Rate) until ctx is
// done, then waits for the requests in flight (each bounded by
// cfg.RequestTimeout) and the checkout watches in flight (each bounded by
// cfg.WatchTimeout) and returns what happened. It returns an error, and
// sends nothing, only if cfg is invalid or the metric instruments cannot be
// created; failed requests and checkouts are counted, not returned. Run
// starts no goroutine that outlives it.
func Run(ctx context.Context, cfg Config) (Stats, error) {
	g, err := newGenerator(cfg)
	if err != nil {
		return Stats{}, err
	}
	// Requests in flight finish after ctx is done, within their timeout.
	reqCtx := context.WithoutCancel(ctx)
	rate := g.cfg.Rate
	if rate == nil {
		rate = NewRate(g.cfg.RPS)
	}
	pace(ctx, rate, func() { g.fire(reqCtx) })
	g.wg.Wait()
	return g.stats.snapshot(), nil
}

// operation is one kind of request.
type operation string

const (
	opPlace operation = "place-order"
	opGet   operation = "get-order"
	opList  operation = "list-orders"
)

// generator holds the state of one Run.
//
// rng is used only by the pacing goroutine (in fire). ids and stats guard
// themselves; they are never locked together.
type generator struct {
	cfg      Config
	base     string
	client   *http.Client
	tracer   trace.Tracer
	log      *slog.Logger
	rng      *rand.Rand
	sem      chan struct{}
	wg       sync.WaitGroup
	ids      idRing
	stats    recorder
	requests metric.Int64Counter
	duration metric.Float64Histogram
	checkout metric.Float64Histogram
}

func newGenerator(cfg Config) (*generator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.RPS == 0 {
		cfg.RPS = DefaultRPS
	}
	switch {
	case cfg.ReadRatio == 0:
		cfg.ReadRatio = DefaultReadRatio
	case cfg.ReadRatio < 0:
		cfg.ReadRatio = 0
	}
	switch {
	case cfg.ListRatio == 0:
		cfg.ListRatio = DefaultListRatio
	case cfg.ListRatio < 0:
		cfg.ListRatio = 0
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.WatchTimeout == 0 {
		cfg.WatchTimeout = DefaultWatchTimeout
	}
	g := &generator{
		cfg:    cfg,
		base:   strings.TrimRight(cfg.BaseURL, "/"),
		client: cfg.Client,
		log:    cfg.Logger,
		rng:    rand.New(rand.NewPCG(uint64(cfg.Seed), 0x6361_6972_6e)),
		sem:    make(chan struct{}, cfg.MaxInFlight),
		ids:    idRing{ids: make([]string, 0, knownIDs)},
		stats: recorder{
			rng:  rand.New(rand.NewPCG(uint64(cfg.Seed), 0x7374_6174_73)),
			crng: rand.New(rand.NewPCG(uint64(cfg.Seed), 0x6368_6563_6b)),
		},
	}
	if g.client == nil {
		g.client = http.DefaultClient
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	tp := cfg.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	g.tracer = tp.Tracer(instrumentationName)
	mp := cfg.MeterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	meter := mp.Meter(instrumentationName)
	var err error
	g.requests, err = meter.Int64Counter("cairn.loadgen.requests",
		metric.WithDescription("Requests the load generator issued or skipped, by operation and outcome."),
		metric.WithUnit("{request}"))
	if err != nil {
		return nil, fmt.Errorf("loadgen: create counter cairn.loadgen.requests: %w", err)
	}
	g.duration, err = meter.Float64Histogram("cairn.loadgen.request.duration",
		metric.WithDescription("Latency of the load generator's requests, by operation and outcome."),
		metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
	if err != nil {
		return nil, fmt.Errorf("loadgen: create histogram cairn.loadgen.request.duration: %w", err)
	}
	g.checkout, err = meter.Float64Histogram("cairn.loadgen.checkout.duration",
		metric.WithDescription("End-to-end latency of the checkouts the load generator followed, from placing the order to its final status, by outcome."),
		metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30))
	if err != nil {
		return nil, fmt.Errorf("loadgen: create histogram cairn.loadgen.checkout.duration: %w", err)
	}
	return g, nil
}

// request is one planned request; fire plans it on the pacing goroutine so
// the choices depend only on the seed and on the IDs known so far.
type request struct {
	op   operation
	id   string // opGet
	body []byte // opPlace
}

// fire plans one request and starts it, or counts it skipped when
// MaxInFlight requests are outstanding. It never blocks.
func (g *generator) fire(ctx context.Context) {
	req := g.plan()
	select {
	case g.sem <- struct{}{}:
	default:
		g.stats.skip()
		g.requests.Add(ctx, 1, metric.WithAttributes(opAttr(req.op), outcomeAttr("skipped")))
		return
	}
	g.stats.send()
	g.wg.Go(func() {
		defer func() { <-g.sem }()
		g.do(ctx, req)
	})
}

// plan picks the next request.
func (g *generator) plan() request {
	if g.cfg.ListRatio > 0 && g.rng.Float64() < g.cfg.ListRatio {
		return request{op: opList}
	}
	if g.rng.Float64() < g.cfg.ReadRatio {
		if id, ok := g.ids.pick(g.rng); ok {
			return request{op: opGet, id: id}
		}
	}
	type line struct {
		SKU       string `json:"sku"`
		Quantity  int    `json:"quantity"`
		UnitPrice int64  `json:"unit_price"`
	}
	body := struct {
		CustomerID    string `json:"customer_id"`
		Lines         []line `json:"lines"`
		PaymentMethod string `json:"payment_method"`
	}{CustomerID: fmt.Sprintf("customer-%03d", g.rng.IntN(numCustomers)), PaymentMethod: PaymentMethodVisa}
	for range 1 + g.rng.IntN(maxLines) {
		sku := g.rng.IntN(numSKUs)
		body.Lines = append(body.Lines, line{
			SKU:       fmt.Sprintf("SKU-%04d", sku),
			Quantity:  1 + g.rng.IntN(maxQuantity),
			UnitPrice: 199 + int64(sku*7919%9800),
		})
	}
	// Drawn only when declines are asked for, so a seed's other choices
	// stay what they were without them.
	if g.cfg.DeclineRatio > 0 && g.rng.Float64() < g.cfg.DeclineRatio {
		body.PaymentMethod = PaymentMethodDecline
	}
	b, _ := json.Marshal(body) // cannot fail: plain strings and integers
	return request{op: opPlace, body: b}
}

// do sends req under a new root span and records the outcome.
func (g *generator) do(ctx context.Context, req request) {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.RequestTimeout)
	defer cancel()
	ctx, span := g.tracer.Start(ctx, "loadgen "+string(req.op),
		trace.WithNewRoot(),
		trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(opAttr(req.op)))
	defer span.End()

	start := time.Now()
	var (
		err error
		id  string // of the order placed
	)
	switch req.op {
	case opPlace:
		id, err = g.place(ctx, req.body)
		if err == nil {
			g.ids.add(id)
			span.SetAttributes(attribute.String("cairn.order.id", id))
		}
	case opGet:
		span.SetAttributes(attribute.String("cairn.order.id", req.id))
		err = g.get(ctx, req.id)
	case opList:
		var degraded string
		degraded, err = g.list(ctx)
		if degraded != "" {
			span.SetAttributes(attribute.String("cairn.degraded", degraded))
		}
	}
	latency := time.Since(start)

	outcome := "success"
	if err != nil {
		outcome = "failure"
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		g.log.WarnContext(ctx, "loadgen request failed",
			slog.String("operation", string(req.op)),
			slog.Duration("latency", latency),
			slog.Any("error", err))
	}
	g.stats.done(err == nil, latency)
	attrs := metric.WithAttributes(opAttr(req.op), outcomeAttr(outcome))
	g.requests.Add(ctx, 1, attrs)
	g.duration.Record(ctx, latency.Seconds(), attrs)

	if req.op == opPlace && err == nil && g.cfg.Watch != nil {
		g.stats.watch()
		// The watch outlives the request, but keeps its root span.
		wctx := context.WithoutCancel(ctx)
		g.wg.Go(func() { g.watch(wctx, id, start) })
	}
}

// watch follows the checkout of the order placed at start with Config.Watch
// and records its outcome.
func (g *generator) watch(ctx context.Context, id string, start time.Time) {
	wctx, cancel := context.WithTimeout(ctx, g.cfg.WatchTimeout)
	final, err := g.cfg.Watch(wctx, id)
	cancel()
	latency := time.Since(start)

	outcome := final
	switch {
	case err != nil:
		outcome = OutcomeUnfinished
		err = fmt.Errorf("watch order %s: %w", id, err)
	case final != StatusConfirmed && final != StatusCancelled && final != StatusFailed:
		outcome = OutcomeUnfinished
		err = fmt.Errorf("watch order %s: status %q is not final", id, final)
	}
	if err != nil {
		g.log.WarnContext(ctx, "loadgen checkout unfinished",
			slog.String("order_id", id),
			slog.Duration("latency", latency),
			slog.Any("error", err))
	}
	g.stats.checkoutDone(outcome, latency)
	g.checkout.Record(ctx, latency.Seconds(), metric.WithAttributes(attribute.String("outcome", outcome)))
}

// place posts an order and returns its ID.
func (g *generator) place(ctx context.Context, body []byte) (string, error) {
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, g.base+"/orders", bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("place order: %w", err)
	}
	r.Header.Set("Content-Type", "application/json")
	resp, err := g.client.Do(r)
	if err != nil {
		return "", fmt.Errorf("place order: %w", err)
	}
	defer drain(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("place order: %w", statusError(resp))
	}
	var o struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBodyBytes)).Decode(&o); err != nil {
		return "", fmt.Errorf("place order: decode response: %w", err)
	}
	if o.ID == "" {
		return "", errors.New("place order: response has no id")
	}
	return o.ID, nil
}

// get reads the order with the given ID.
func (g *generator) get(ctx context.Context, id string) error {
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, g.base+"/orders/"+url.PathEscape(id), nil)
	if err != nil {
		return fmt.Errorf("get order %s: %w", id, err)
	}
	resp, err := g.client.Do(r)
	if err != nil {
		return fmt.Errorf("get order %s: %w", id, err)
	}
	defer drain(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("get order %s: %w", id, statusError(resp))
	}
	return nil
}

// list reads the newest orders. It returns the value of the response's
// Cairn-Degraded header: what the server left out, if anything.
func (g *generator) list(ctx context.Context) (string, error) {
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/orders?limit=%d", g.base, ListLimit), nil)
	if err != nil {
		return "", fmt.Errorf("list orders: %w", err)
	}
	resp, err := g.client.Do(r)
	if err != nil {
		return "", fmt.Errorf("list orders: %w", err)
	}
	defer drain(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("list orders: %w", statusError(resp))
	}
	return resp.Header.Get("Cairn-Degraded"), nil
}

// statusError describes an unexpected response, with the start of its body
// (a problem detail, usually).
func statusError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return fmt.Errorf("status %s: %s", resp.Status, bytes.TrimSpace(b))
}

// drain reads what is left of body, up to a limit, and closes it, so the
// connection can be reused.
func drain(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, maxBodyBytes))
	_ = body.Close()
}

func opAttr(op operation) attribute.KeyValue {
	return attribute.String("cairn.loadgen.operation", string(op))
}

func outcomeAttr(outcome string) attribute.KeyValue {
	return attribute.String("cairn.loadgen.outcome", outcome)
}

// idRing keeps the most recently placed order IDs. It is safe for
// concurrent use.
type idRing struct {
	mu   sync.Mutex
	ids  []string
	next int // where add writes once ids is full
}

func (r *idRing) add(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.ids) < cap(r.ids) {
		r.ids = append(r.ids, id)
		return
	}
	r.ids[r.next] = id
	r.next = (r.next + 1) % len(r.ids)
}

// pick returns a uniformly chosen known ID, or false if none is known.
func (r *idRing) pick(rng *rand.Rand) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.ids) == 0 {
		return "", false
	}
	return r.ids[rng.IntN(len(r.ids))], true
}

// recorder accumulates Stats. It is safe for concurrent use.
type recorder struct {
	mu      sync.Mutex
	s       Stats
	rng     *rand.Rand      // reservoir sampling; guarded by mu
	seen    int64           // latencies offered to the reservoir
	samples []time.Duration // uniform sample of at most maxSamples latencies

	crng     *rand.Rand      // reservoir sampling of checkout latencies; guarded by mu
	cseen    int64           // checkout latencies offered to the reservoir
	csamples []time.Duration // uniform sample of at most maxSamples checkout latencies
}

func (r *recorder) skip() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.s.Skipped++
}

func (r *recorder) send() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.s.Sent++
}

func (r *recorder) done(ok bool, latency time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ok {
		r.s.Succeeded++
	} else {
		r.s.Failed++
	}
	r.seen++
	r.samples = sample(r.samples, r.rng, r.seen, latency)
}

func (r *recorder) watch() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.s.Checkouts.Watched++
}

// checkoutDone records a finished watch; outcome is a final status or
// OutcomeUnfinished.
func (r *recorder) checkoutDone(outcome string, latency time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := &r.s.Checkouts
	switch outcome {
	case StatusConfirmed:
		c.Confirmed++
	case StatusCancelled:
		c.Cancelled++
	case StatusFailed:
		c.Failed++
		return
	default:
		c.Unfinished++
		return
	}
	r.cseen++
	r.csamples = sample(r.csamples, r.crng, r.cseen, latency)
}

// sample offers v, the seen-th value, to the reservoir s of at most
// maxSamples values, and returns s.
func sample(s []time.Duration, rng *rand.Rand, seen int64, v time.Duration) []time.Duration {
	if len(s) < maxSamples {
		return append(s, v)
	}
	if i := rng.Int64N(seen); i < maxSamples {
		s[i] = v
	}
	return s
}

func (r *recorder) snapshot() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.s
	sorted := slices.Clone(r.samples)
	slices.Sort(sorted)
	s.P50 = percentile(sorted, 0.50)
	s.P95 = percentile(sorted, 0.95)
	s.P99 = percentile(sorted, 0.99)
	sorted = slices.Clone(r.csamples)
	slices.Sort(sorted)
	s.Checkouts.P50 = percentile(sorted, 0.50)
	s.Checkouts.P99 = percentile(sorted, 0.99)
	return s
}

// percentile returns the nearest-rank p-quantile of sorted, or 0 if it is
// empty.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
