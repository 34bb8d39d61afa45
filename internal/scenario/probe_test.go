package scenario

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otellog "go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/metric"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/cairnhq/cairn/console"
)

const testToken = "s3cret"

// newTestConsole starts a real console: its OTLP receiver and, behind a
// bearer token check, its UI and API.
func newTestConsole(t *testing.T) (otlpURL, apiURL string) {
	t.Helper()
	c := console.New(console.Options{})
	otlp := httptest.NewServer(c.OTLPHandler())
	t.Cleanup(otlp.Close)
	ui := c.UIHandler()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+testToken {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		ui.ServeHTTP(w, r)
	}))
	t.Cleanup(api.Close)
	return otlp.URL, api.URL
}

func serviceResource(service string) *resource.Resource {
	return resource.NewSchemaless(attribute.String("service.name", service))
}

// exporter is one process's metrics SDK exporting over OTLP/HTTP to the
// console, flushed by hand.
type exporter struct {
	mp    *sdkmetric.MeterProvider
	meter metric.Meter
}

func newExporter(t *testing.T, otlpURL, service string) *exporter {
	t.Helper()
	exp, err := otlpmetrichttp.New(t.Context(), otlpmetrichttp.WithEndpointURL(otlpURL+"/v1/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(
		sdkmetric.WithResource(serviceResource(service)),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour))))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return &exporter{mp: mp, meter: mp.Meter("scenario-test")}
}

func (e *exporter) flush(t *testing.T) {
	t.Helper()
	if err := e.mp.ForceFlush(t.Context()); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

func TestConsoleProbeCounters(t *testing.T) {
	otlpURL, apiURL := newTestConsole(t)
	ctx := t.Context()
	opened := metric.WithAttributes(attribute.String("resilience.policy.name", "payment-provider"), attribute.String("resilience.circuitbreaker.to", "open"))
	closed := metric.WithAttributes(attribute.String("resilience.policy.name", "payment-provider"), attribute.String("resilience.circuitbreaker.to", "closed"))
	other := metric.WithAttributes(attribute.String("resilience.policy.name", "inventory"), attribute.String("resilience.circuitbreaker.to", "open"))

	// The payment service counts 3, then 5 openings, then restarts and
	// counts 4 more from zero: 9 in all.
	pay := newExporter(t, otlpURL, "payment")
	c, err := pay.meter.Int64Counter("resilience.circuitbreaker.transitions")
	if err != nil {
		t.Fatal(err)
	}
	c.Add(ctx, 3, opened)
	c.Add(ctx, 1, closed)
	c.Add(ctx, 7, other)
	pay.flush(t)
	c.Add(ctx, 2, opened)
	pay.flush(t)
	if err := pay.mp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	restarted := newExporter(t, otlpURL, "payment")
	c2, _ := restarted.meter.Int64Counter("resilience.circuitbreaker.transitions")
	c2.Add(ctx, 4, opened)
	restarted.flush(t)

	// Another service reports the same metric.
	gw := newExporter(t, otlpURL, "gateway")
	c3, _ := gw.meter.Int64Counter("resilience.circuitbreaker.transitions")
	c3.Add(ctx, 10, opened)
	depth, _ := gw.meter.Int64UpDownCounter("cairn.outbox.depth")
	depth.Add(ctx, 12, metric.WithAttributes(attribute.String("cairn.outbox.name", "orders")))
	depth.Add(ctx, 1, metric.WithAttributes(attribute.String("cairn.outbox.name", "stock")))
	hist, _ := gw.meter.Float64Histogram("cairn.saga.step.duration")
	hist.Record(ctx, 0.5)
	gw.flush(t)
	depth.Add(ctx, -5, metric.WithAttributes(attribute.String("cairn.outbox.name", "orders")))
	gw.flush(t)

	p := NewConsoleProbe(apiURL+"/", nil, testToken)
	openAttrs := map[string]string{"resilience.policy.name": "payment-provider", "resilience.circuitbreaker.to": "open"}
	for _, tc := range []struct {
		name    string
		service string
		metric  string
		attrs   map[string]string
		want    float64
	}{
		{"one service, reset added back", "payment", "resilience.circuitbreaker.transitions", openAttrs, 9},
		{"every service", "", "resilience.circuitbreaker.transitions", openAttrs, 19},
		{"every attribute set", "payment", "resilience.circuitbreaker.transitions", nil, 9 + 1 + 7},
		{"by one attribute", "", "resilience.circuitbreaker.transitions", map[string]string{"resilience.circuitbreaker.to": "open"}, 26},
		{"no such metric", "", "cairn.saga.compensated", nil, 0},
		{"no such metric of the service", "nobody", "resilience.circuitbreaker.transitions", nil, 0},
		{"no matching series", "payment", "resilience.circuitbreaker.transitions", map[string]string{"resilience.policy.name": "shipping"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := p.CounterTotal(ctx, tc.service, tc.metric, tc.attrs)
			if err != nil || got != tc.want {
				t.Errorf("CounterTotal(%q, %q, %v) = %v, %v; want %v", tc.service, tc.metric, tc.attrs, got, err, tc.want)
			}
		})
	}

	if got, err := p.GaugeValue(ctx, "", "cairn.outbox.depth", nil); err != nil || got != 8 {
		t.Errorf("GaugeValue(outbox depth) = %v, %v; want 8 (7 + 1, the latest values)", got, err)
	}
	if got, err := p.GaugeValue(ctx, "gateway", "cairn.outbox.depth", map[string]string{"cairn.outbox.name": "stock"}); err != nil || got != 1 {
		t.Errorf("GaugeValue(stock depth) = %v, %v; want 1", got, err)
	}
	if _, err := p.CounterTotal(ctx, "gateway", "cairn.saga.step.duration", nil); err == nil || !strings.Contains(err.Error(), "is a histogram, not a counter") {
		t.Errorf("CounterTotal(histogram) error = %v, want one naming the kind", err)
	}

	bad := NewConsoleProbe(apiURL, nil, "wrong")
	if _, err := bad.CounterTotal(ctx, "payment", "resilience.circuitbreaker.transitions", nil); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("CounterTotal with a wrong token: error = %v, want a 401", err)
	}
	if _, err := p.CounterTotal(ctx, "payment", "x", map[string]string{"": "v"}); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("CounterTotal with an empty attribute key: error = %v, want the console's 400", err)
	}
}

func TestConsoleProbeLogsAndTraces(t *testing.T) {
	otlpURL, apiURL := newTestConsole(t)
	ctx := t.Context()
	since := time.Now().Add(-time.Second)

	texp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(otlpURL+"/v1/traces"))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(serviceResource("payment")), sdktrace.WithSyncer(texp))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	tr := tp.Tracer("scenario-test")
	for i := range 3 {
		_, span := tr.Start(ctx, "charge")
		if i < 2 {
			span.SetStatus(codes.Error, "timeout")
		}
		span.End()
	}

	lexp, err := otlploghttp.New(ctx, otlploghttp.WithEndpointURL(otlpURL+"/v1/logs"))
	if err != nil {
		t.Fatal(err)
	}
	lp := sdklog.NewLoggerProvider(sdklog.WithResource(serviceResource("payment")), sdklog.WithProcessor(sdklog.NewSimpleProcessor(lexp)))
	defer func() { _ = lp.Shutdown(context.Background()) }()
	logger := lp.Logger("scenario-test")
	for _, l := range []struct {
		sev  otellog.Severity
		body string
	}{{otellog.SeverityWarn, "charge timed out"}, {otellog.SeverityInfo, "charged"}, {otellog.SeverityError, "charge TIMED OUT again"}} {
		var rec otellog.Record
		rec.SetTimestamp(time.Now())
		rec.SetSeverity(l.sev)
		rec.SetBody(attribute.StringValue(l.body))
		logger.Emit(ctx, rec)
	}

	p := NewConsoleProbe(apiURL, &http.Client{Timeout: 10 * time.Second}, testToken)
	for _, tc := range []struct {
		q    LogQuery
		want int
	}{
		{LogQuery{}, 3},
		{LogQuery{Text: "timed out"}, 2},
		{LogQuery{Service: "payment", MinSeverity: "error"}, 1},
		{LogQuery{Service: "order"}, 0},
		{LogQuery{Since: time.Now().Add(time.Hour)}, 0},
	} {
		if got, err := p.Logs(ctx, tc.q); err != nil || got != tc.want {
			t.Errorf("Logs(%+v) = %v, %v; want %d", tc.q, got, err, tc.want)
		}
	}
	if _, err := p.Logs(ctx, LogQuery{MinSeverity: "loud"}); err == nil || !strings.Contains(err.Error(), "min_severity") {
		t.Errorf("Logs with a bad severity: error = %v, want the console's detail naming min_severity", err)
	}

	for _, tc := range []struct {
		service string
		since   time.Time
		want    int
	}{
		{"payment", since, 2},
		{"", since, 2},
		{"order", since, 0},
		{"payment", time.Now().Add(time.Hour), 0},
	} {
		if got, err := p.ErrorTraces(ctx, tc.service, tc.since); err != nil || got != tc.want {
			t.Errorf("ErrorTraces(%q, %v) = %v, %v; want %d", tc.service, tc.since, got, err, tc.want)
		}
	}
}

// TestRunWithConsoleProbe runs a scenario whose event makes a service
// export a counter, and whose assertion reads it back from the console.
func TestRunWithConsoleProbe(t *testing.T) {
	otlpURL, apiURL := newTestConsole(t)
	exp := newExporter(t, otlpURL, "payment")
	refunds, err := exp.meter.Int64Counter(PaymentChargesMetric)
	if err != nil {
		t.Fatal(err)
	}
	refunded := metric.WithAttributes(attribute.String(PaymentOutcomeKey, PaymentRefunded))
	refunds.Add(t.Context(), 5, refunded) // before the run: not the run's effect
	exp.flush(t)

	env := newFakeEnv()
	probe := NewConsoleProbe(apiURL, nil, testToken)
	s := &Scenario{
		Name: "refunds", Summary: "an event refunds two payments", RPS: 1, Duration: 100 * time.Millisecond,
		Timeline: []Event{{At: 0, Name: "refund", Do: func(ctx context.Context, _ Env, _ Params) error {
			refunds.Add(ctx, 2, refunded)
			return exp.mp.ForceFlush(ctx)
		}}},
		Assertions: []Assertion{{Name: "payments are refunded", Kind: AtEnd,
			Check: grew(Counter{Metric: PaymentChargesMetric, Attrs: map[string]string{PaymentOutcomeKey: PaymentRefunded}},
				func(Params) float64 { return 2 }, func(n float64) string { return times(n, "payment") + " refunded" })}},
	}
	rep, err := Run(t.Context(), consoleEnv{env, probe}, s, Params{}, Options{Drain: -1})
	if err != nil {
		t.Fatal(err)
	}
	if got := rep.Assertions[0]; got.State != Passed || got.Observed != "2 payments refunded" {
		t.Errorf("result = %+v, want passed with 2 payments refunded", got)
	}
}

// consoleEnv is a fakeEnv whose probe reads telemetry from the console.
type consoleEnv struct {
	*fakeEnv
	probe *ConsoleProbe
}

func (e consoleEnv) Probe() Probe { return NewProbe(e.probe, fakeProbe{e.fakeEnv}) }
