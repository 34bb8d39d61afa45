package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/contrib/bridges/otelslog"
	"go.opentelemetry.io/contrib/instrumentation/runtime"
	"go.opentelemetry.io/otel"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutlog"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/log"
	lognoop "go.opentelemetry.io/otel/log/noop"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"gopkg.in/natefinch/lumberjack.v2"
)

// ScopeName is the instrumentation scope of the telemetry this package
// produces itself: the slog bridge's log records and cairn.log.dropped.
const ScopeName = "github.com/cairnhq/cairn/telemetry"

// Telemetry owns one service's OpenTelemetry providers, its slog logger and
// its Prometheus registry. Build it with [Setup] and release it with
// [Telemetry.Shutdown].
//
// Nothing in a Telemetry is global: several may coexist in one process, each
// with its own service.name, and none touches the OpenTelemetry or slog
// globals unless [Telemetry.SetGlobal] is called. All methods are safe for
// concurrent use.
type Telemetry struct {
	res      *resource.Resource
	tp       trace.TracerProvider
	mp       metric.MeterProvider
	lp       log.LoggerProvider
	prop     propagation.TextMapPropagator
	level    *slog.LevelVar
	logger   *slog.Logger
	registry *prometheus.Registry
	tracing  bool // tp is an SDK provider
	metering bool // mp is an SDK provider
	otelLogs bool // lp is an SDK provider

	// closers run in order on Shutdown.
	closers []closer

	shutdownOnce sync.Once
	shutdownErr  error
}

// closer is one step of Shutdown.
type closer struct {
	name string
	fn   func(context.Context) error
}

// Setup builds the telemetry for one service from cfg and the environment:
// the resource; a TracerProvider, MeterProvider and LoggerProvider with the
// exporters cfg selects; the Prometheus exporter into cfg.Registry; the Go
// runtime metrics; a W3C tracecontext and baggage propagator; and the slog
// Logger. Setup changes no globals and starts the exporters' goroutines,
// which Shutdown stops.
//
// Setup returns an error, and holds nothing, if cfg is invalid, an
// environment variable it reads has a bad value (the error names it) or an
// exporter cannot be built. ctx bounds resource detection and exporter
// construction only; it is not retained.
func Setup(ctx context.Context, cfg Config) (*Telemetry, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t, err := setup(ctx, &cfg)
	if err != nil {
		// Release whatever was built before the failure.
		if t != nil {
			_ = t.Shutdown(context.WithoutCancel(ctx))
		}
		return nil, err
	}
	return t, nil
}

func setup(ctx context.Context, cfg *Config) (*Telemetry, error) {
	disabled, err := resolveDisabled(cfg.Disabled)
	if err != nil {
		return nil, err
	}
	level := cfg.Level
	if level == nil {
		l, err := levelFromEnv()
		if err != nil {
			return nil, err
		}
		level = new(slog.LevelVar)
		level.Set(l)
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	res, err := newResource(ctx, cfg)
	if err != nil {
		return nil, err
	}
	t := &Telemetry{
		res:      res,
		tp:       tracenoop.NewTracerProvider(),
		mp:       metricnoop.NewMeterProvider(),
		lp:       lognoop.NewLoggerProvider(),
		prop:     propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
		level:    level,
		registry: reg,
	}
	consoleOut := cfg.ConsoleExporterOutput
	if consoleOut == nil {
		consoleOut = os.Stdout
	}
	if !disabled {
		if err := t.setupTraces(ctx, cfg, consoleOut); err != nil {
			return t, err
		}
		if err := t.setupMetrics(ctx, cfg, consoleOut); err != nil {
			return t, err
		}
		if err := t.setupLogs(ctx, cfg, consoleOut); err != nil {
			return t, err
		}
	}
	if err := t.setupLogger(cfg); err != nil {
		return t, err
	}
	return t, nil
}

func (t *Telemetry) addCloser(name string, fn func(context.Context) error) {
	t.closers = append(t.closers, closer{name, fn})
}

func (t *Telemetry) setupTraces(ctx context.Context, cfg *Config, consoleOut io.Writer) error {
	exps, err := resolveExporters(cfg.TracesExporter, signalTraces)
	if err != nil {
		return err
	}
	if exps.none() && len(cfg.SpanProcessors) == 0 {
		return nil
	}
	sampler := cfg.Sampler
	if sampler == nil {
		if sampler, err = samplerFromEnv(); err != nil {
			return err
		}
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(t.res), sdktrace.WithSampler(sampler)}
	var batchOpts []sdktrace.BatchSpanProcessorOption
	if cfg.BatchTimeout > 0 {
		batchOpts = append(batchOpts, sdktrace.WithBatchTimeout(cfg.BatchTimeout))
	}
	// Processors are owned by the provider from here on; exporters built
	// but not yet handed over are shut down on error.
	var owned []sdktrace.SpanProcessor
	if exps.otlp {
		exp, err := newOTLPSpanExporter(ctx, cfg)
		if err != nil {
			return shutdownSpanProcessors(ctx, owned, err)
		}
		owned = append(owned, sdktrace.NewBatchSpanProcessor(exp, batchOpts...))
	}
	if exps.console {
		exp, err := stdouttrace.New(stdouttrace.WithWriter(consoleOut))
		if err != nil {
			return shutdownSpanProcessors(ctx, owned, fmt.Errorf("telemetry: console trace exporter: %w", err))
		}
		owned = append(owned, sdktrace.NewBatchSpanProcessor(exp, batchOpts...))
	}
	for _, sp := range append(owned, cfg.SpanProcessors...) {
		opts = append(opts, sdktrace.WithSpanProcessor(sp))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	t.tp = tp
	t.tracing = true
	t.addCloser("traces", tp.Shutdown)
	return nil
}

func shutdownSpanProcessors(ctx context.Context, sps []sdktrace.SpanProcessor, err error) error {
	for _, sp := range sps {
		err = errors.Join(err, sp.Shutdown(context.WithoutCancel(ctx)))
	}
	return err
}

func (t *Telemetry) setupMetrics(ctx context.Context, cfg *Config, consoleOut io.Writer) error {
	exps, err := resolveExporters(cfg.MetricsExporter, signalMetrics)
	if err != nil {
		return err
	}
	if exps.none() && cfg.NoPrometheus && len(cfg.MetricReaders) == 0 {
		return nil
	}
	var periodicOpts []sdkmetric.PeriodicReaderOption
	if cfg.ExportInterval > 0 {
		periodicOpts = append(periodicOpts, sdkmetric.WithInterval(cfg.ExportInterval))
	}
	var readers []sdkmetric.Reader
	fail := func(err error) error {
		for _, r := range readers {
			err = errors.Join(err, r.Shutdown(context.WithoutCancel(ctx)))
		}
		return err
	}
	if !cfg.NoPrometheus {
		exp, err := otelprom.New(otelprom.WithRegisterer(t.registry))
		if err != nil {
			return fail(fmt.Errorf("telemetry: prometheus exporter: %w", err))
		}
		readers = append(readers, exp)
	}
	if exps.otlp {
		exp, err := newOTLPMetricExporter(ctx, cfg)
		if err != nil {
			return fail(err)
		}
		readers = append(readers, sdkmetric.NewPeriodicReader(exp, periodicOpts...))
	}
	if exps.console {
		exp, err := stdoutmetric.New(stdoutmetric.WithWriter(consoleOut))
		if err != nil {
			return fail(fmt.Errorf("telemetry: console metric exporter: %w", err))
		}
		readers = append(readers, sdkmetric.NewPeriodicReader(exp, periodicOpts...))
	}
	opts := []sdkmetric.Option{sdkmetric.WithResource(t.res)}
	for _, r := range append(readers, cfg.MetricReaders...) {
		opts = append(opts, sdkmetric.WithReader(r))
	}
	mp := sdkmetric.NewMeterProvider(opts...)
	t.mp = mp
	t.metering = true
	t.addCloser("metrics", mp.Shutdown)
	if !cfg.NoRuntimeMetrics {
		if err := runtime.Start(runtime.WithMeterProvider(mp)); err != nil {
			return fmt.Errorf("telemetry: runtime metrics: %w", err)
		}
	}
	return nil
}

func (t *Telemetry) setupLogs(ctx context.Context, cfg *Config, consoleOut io.Writer) error {
	exps, err := resolveExporters(cfg.LogsExporter, signalLogs)
	if err != nil {
		return err
	}
	if exps.none() && len(cfg.LogProcessors) == 0 {
		return nil
	}
	var batchOpts []sdklog.BatchProcessorOption
	if cfg.BatchTimeout > 0 {
		batchOpts = append(batchOpts, sdklog.WithExportInterval(cfg.BatchTimeout))
	}
	var owned []sdklog.Processor
	fail := func(err error) error {
		for _, p := range owned {
			err = errors.Join(err, p.Shutdown(context.WithoutCancel(ctx)))
		}
		return err
	}
	if exps.otlp {
		exp, err := newOTLPLogExporter(ctx, cfg)
		if err != nil {
			return fail(err)
		}
		owned = append(owned, sdklog.NewBatchProcessor(exp, batchOpts...))
	}
	if exps.console {
		exp, err := stdoutlog.New(stdoutlog.WithWriter(consoleOut))
		if err != nil {
			return fail(fmt.Errorf("telemetry: console log exporter: %w", err))
		}
		owned = append(owned, sdklog.NewBatchProcessor(exp, batchOpts...))
	}
	opts := []sdklog.LoggerProviderOption{sdklog.WithResource(t.res)}
	for _, p := range append(owned, cfg.LogProcessors...) {
		opts = append(opts, sdklog.WithProcessor(p))
	}
	lp := sdklog.NewLoggerProvider(opts...)
	t.lp = lp
	t.otelLogs = true
	t.addCloser("logs", lp.Shutdown)
	return nil
}

// setupLogger builds the fan-out slog handler: console, file and the
// OpenTelemetry bridge (when logs are exported at all).
func (t *Telemetry) setupLogger(cfg *Config) error {
	format := cfg.LogFormat
	h := &fanout{level: t.level}
	out := cfg.LogOutput
	if out == nil {
		out = os.Stderr
	}
	if out != io.Discard {
		h.console = newFormatHandler(format, out, cfg.AddSource, cfg.ReplaceAttr)
	}
	if fc := cfg.LogFile; fc != nil {
		w, err := openLogFile(fc)
		if err != nil {
			return err
		}
		t.addCloser("log file", w.Shutdown)
		if _, err := w.RegisterMetrics(t.mp.Meter(ScopeName)); err != nil {
			return err
		}
		h.file = newFormatHandler(format, w, cfg.AddSource, cfg.ReplaceAttr)
	}
	if t.otelLogs {
		h.otel = otelslog.NewHandler(ScopeName,
			otelslog.WithLoggerProvider(t.lp),
			otelslog.WithSource(cfg.AddSource))
	}
	t.logger = slog.New(h)
	return nil
}

// openLogFile checks that fc.Path can be written, so a bad path fails Setup
// rather than every later record, and returns the rotating writer behind an
// AsyncWriter.
func openLogFile(fc *FileConfig) (*AsyncWriter, error) {
	if err := os.MkdirAll(filepath.Dir(fc.Path), 0o755); err != nil {
		return nil, fmt.Errorf("telemetry: log file: %w", err)
	}
	f, err := os.OpenFile(fc.Path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("telemetry: log file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("telemetry: log file: %w", err)
	}
	lj := &lumberjack.Logger{
		Filename:   fc.Path,
		MaxSize:    fc.MaxSizeMB,
		MaxAge:     fc.MaxAgeDays,
		MaxBackups: fc.MaxBackups,
		Compress:   fc.Compress,
	}
	return NewAsyncWriter(lj, fc.BufferSize), nil
}

// Shutdown flushes and stops, in order, the traces, metrics and logs
// pipelines and then the log file, all within ctx's deadline, and returns
// their errors joined. Spans ended and records logged before Shutdown are
// exported unless ctx ends first. Shutdown runs once: later calls return the
// first call's result. After Shutdown the providers are inert and Logger
// writes only to the console.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	t.shutdownOnce.Do(func() {
		var errs []error
		for _, c := range t.closers {
			if err := c.fn(ctx); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", c.name, err))
			}
		}
		if err := errors.Join(errs...); err != nil {
			t.shutdownErr = fmt.Errorf("telemetry: shutdown: %w", err)
		}
	})
	return t.shutdownErr
}

// TracerProvider returns the instance's tracer provider: an SDK provider, or
// a no-op one when traces are disabled or exported nowhere.
func (t *Telemetry) TracerProvider() trace.TracerProvider { return t.tp }

// MeterProvider returns the instance's meter provider: an SDK provider, or a
// no-op one when metrics are disabled or read by nothing.
func (t *Telemetry) MeterProvider() metric.MeterProvider { return t.mp }

// LoggerProvider returns the instance's OpenTelemetry logger provider: an
// SDK provider, or a no-op one when logs are disabled or exported nowhere.
func (t *Telemetry) LoggerProvider() log.LoggerProvider { return t.lp }

// Propagator returns the composite W3C tracecontext and baggage propagator.
func (t *Telemetry) Propagator() propagation.TextMapPropagator { return t.prop }

// Logger returns the instance's logger. Each record at or above Level goes
// to the console (with trace_id and span_id when its context holds a valid
// span), to the log file if configured, and to the LoggerProvider with its
// trace context. Pass the request context (InfoContext and friends) to get
// the correlation.
func (t *Telemetry) Logger() *slog.Logger { return t.logger }

// Level returns the shared level that gates Logger; setting it takes effect
// for the next record.
func (t *Telemetry) Level() *slog.LevelVar { return t.level }

// Resource returns the resource describing this service instance.
func (t *Telemetry) Resource() *resource.Resource { return t.res }

// Gatherer returns the Prometheus exposition of the instance's metrics: the
// registry (Config.Registry or a private one), with the few names the
// OpenTelemetry translation gets wrong for Prometheus renamed
// (go_goroutine_count becomes go_goroutines), so the output passes promlint.
// Do not register a Prometheus Go collector in the same registry; the Go
// runtime metrics come from OpenTelemetry.
func (t *Telemetry) Gatherer() prometheus.Gatherer { return lintedGatherer{t.registry} }

// SetGlobal installs the instance's providers and propagator as the
// OpenTelemetry globals, its Logger as slog's default (which also redirects
// the standard log package), and routes OpenTelemetry's internal errors to
// Logger at Warn. It is for a process with one main service; libraries take
// providers as parameters instead. SetGlobal is not undone by Shutdown.
func (t *Telemetry) SetGlobal() {
	otel.SetTracerProvider(t.tp)
	otel.SetMeterProvider(t.mp)
	otel.SetLoggerProvider(t.lp)
	otel.SetTextMapPropagator(t.prop)
	logger := t.logger
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		logger.Warn("opentelemetry error", "error", err)
	}))
	slog.SetDefault(logger)
}
