package telemetry

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	lognoop "go.opentelemetry.io/otel/log/noop"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

func resourceValue(tel *Telemetry, key string) (string, bool) {
	v, ok := tel.Resource().Set().Value(attribute.Key(key))
	return v.String(), ok
}

func TestResource(t *testing.T) {
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=test,team=core,service.version=0.0.1")
	h := newHarness(t, func(c *Config) {
		c.ServiceVersion = "1.2.3"
		c.ResourceAttributes = []attribute.KeyValue{attribute.String("team", "platform")}
	})
	for key, want := range map[string]string{
		"service.name":                "test-service",
		"service.version":             "1.2.3",    // Config wins over env
		"team":                        "platform", // ResourceAttributes win over env
		"deployment.environment.name": "test",
		"telemetry.sdk.language":      "go",
		"process.runtime.name":        "go",
	} {
		if got, _ := resourceValue(h.tel, key); got != want {
			t.Errorf("resource %s = %q, want %q", key, got, want)
		}
	}
	for _, key := range []string{"service.instance.id", "host.name", "process.pid", "process.executable.name"} {
		if got, ok := resourceValue(h.tel, key); !ok || got == "" {
			t.Errorf("resource %s missing", key)
		}
	}
}

func TestResourceDefaults(t *testing.T) {
	t.Setenv("OTEL_SERVICE_NAME", "from-env")
	h1 := newHarness(t, func(c *Config) { c.ServiceName = "" })
	h2 := newHarness(t, func(c *Config) { c.ServiceName = "" })
	if got, _ := resourceValue(h1.tel, "service.name"); got != "from-env" {
		t.Errorf("service.name = %q, want from-env", got)
	}
	id1, _ := resourceValue(h1.tel, "service.instance.id")
	id2, _ := resourceValue(h2.tel, "service.instance.id")
	if id1 == id2 || len(id1) != 36 {
		t.Errorf("service.instance.id = %q and %q, want two distinct UUIDs", id1, id2)
	}
}

func TestResourceBadEnv(t *testing.T) {
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "ok=1,broken")
	_, err := Setup(t.Context(), Config{TracesExporter: "none", MetricsExporter: "none", LogsExporter: "none", LogOutput: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "OTEL_RESOURCE_ATTRIBUTES") || !strings.Contains(err.Error(), "broken") {
		t.Fatalf("Setup error = %v, want one naming OTEL_RESOURCE_ATTRIBUTES and the bad pair", err)
	}
}

func TestSamplerFromEnv(t *testing.T) {
	tests := []struct {
		sampler, arg string
		want         string // Description, or the text the error must contain
		wantErr      bool
	}{
		{"", "", "ParentBased{root:AlwaysOnSampler,", false},
		{"always_on", "", "AlwaysOnSampler", false},
		{"always_off", "", "AlwaysOffSampler", false},
		{"traceidratio", "0.25", "TraceIDRatioBased{0.25}", false},
		{"traceidratio", "", "TraceIDRatioBased{1}", false},
		{"parentbased_traceidratio", "0.5", "ParentBased{root:TraceIDRatioBased{0.5},", false},
		{"parentbased_always_off", "", "ParentBased{root:AlwaysOffSampler,", false},
		{"PARENTBASED_ALWAYS_ON", "", "ParentBased{root:AlwaysOnSampler,", false},
		{"traceidratio", "1.5", `OTEL_TRACES_SAMPLER_ARG="1.5"`, true},
		{"traceidratio", "half", `OTEL_TRACES_SAMPLER_ARG="half"`, true},
		{"jaeger_remote", "", `OTEL_TRACES_SAMPLER="jaeger_remote"`, true},
	}
	for _, tt := range tests {
		t.Run(tt.sampler+"/"+tt.arg, func(t *testing.T) {
			t.Setenv(envSampler, tt.sampler)
			t.Setenv(envSamplerArg, tt.arg)
			s, err := samplerFromEnv()
			if tt.wantErr {
				if !errors.Is(err, ErrBadSampler) || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("samplerFromEnv() error = %v, want ErrBadSampler naming %s", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("samplerFromEnv() error = %v", err)
			}
			if got := s.Description(); !strings.HasPrefix(got, tt.want) {
				t.Errorf("sampler = %s, want prefix %s", got, tt.want)
			}
		})
	}
}

func TestSetupSamplerFromEnv(t *testing.T) {
	t.Run("always_off", func(t *testing.T) {
		t.Setenv(envSampler, "always_off")
		h := newHarness(t, nil)
		_, span := h.tel.TracerProvider().Tracer("test").Start(t.Context(), "dropped")
		span.End()
		if got := len(h.spans.GetSpans()); got != 0 {
			t.Errorf("exported %d spans with always_off, want 0", got)
		}
	})
	t.Run("bad", func(t *testing.T) {
		t.Setenv(envSampler, "sometimes")
		_, err := Setup(t.Context(), Config{TracesExporter: "none", SpanProcessors: []sdktrace.SpanProcessor{sdktrace.NewSimpleSpanProcessor(tracetest.NewInMemoryExporter())}, MetricsExporter: "none", LogsExporter: "none", LogOutput: io.Discard})
		if !errors.Is(err, ErrBadSampler) || !strings.Contains(err.Error(), `"sometimes"`) {
			t.Fatalf("Setup error = %v, want ErrBadSampler naming \"sometimes\"", err)
		}
	})
}

func TestDisabled(t *testing.T) {
	check := func(t *testing.T, cfg Config) {
		t.Helper()
		out := &syncBuffer{}
		cfg.LogOutput = out
		tel, err := Setup(t.Context(), cfg)
		if err != nil {
			t.Fatalf("Setup: %v", err)
		}
		defer tel.Shutdown(context.Background())
		if _, ok := tel.TracerProvider().(tracenoop.TracerProvider); !ok {
			t.Errorf("TracerProvider = %T, want noop", tel.TracerProvider())
		}
		if _, ok := tel.MeterProvider().(metricnoop.MeterProvider); !ok {
			t.Errorf("MeterProvider = %T, want noop", tel.MeterProvider())
		}
		if _, ok := tel.LoggerProvider().(lognoop.LoggerProvider); !ok {
			t.Errorf("LoggerProvider = %T, want noop", tel.LoggerProvider())
		}
		mfs, err := tel.Gatherer().Gather()
		if err != nil || len(mfs) != 0 {
			t.Errorf("Gather() = %d families, %v; want none", len(mfs), err)
		}
		tel.Logger().Info("still logs")
		if !strings.Contains(out.String(), "still logs") {
			t.Errorf("console output %q lacks the record", out)
		}
	}
	t.Run("config", func(t *testing.T) {
		check(t, Config{Disabled: true, SpanProcessors: []sdktrace.SpanProcessor{sdktrace.NewSimpleSpanProcessor(tracetest.NewInMemoryExporter())}})
	})
	t.Run("env", func(t *testing.T) {
		t.Setenv(envSDKDisabled, "TRUE")
		check(t, Config{})
	})
	t.Run("env bad", func(t *testing.T) {
		t.Setenv(envSDKDisabled, "yes")
		_, err := Setup(t.Context(), Config{LogOutput: io.Discard})
		if err == nil || !strings.Contains(err.Error(), `OTEL_SDK_DISABLED="yes"`) {
			t.Fatalf("Setup error = %v, want one naming OTEL_SDK_DISABLED=\"yes\"", err)
		}
	})
}

func TestNoneIsNoop(t *testing.T) {
	tel, err := Setup(t.Context(), Config{
		TracesExporter: "none", MetricsExporter: "none", LogsExporter: "none",
		NoPrometheus: true, LogOutput: io.Discard,
	})
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	defer tel.Shutdown(context.Background())
	if _, ok := tel.TracerProvider().(tracenoop.TracerProvider); !ok {
		t.Errorf("TracerProvider = %T, want noop", tel.TracerProvider())
	}
	if _, ok := tel.MeterProvider().(metricnoop.MeterProvider); !ok {
		t.Errorf("MeterProvider = %T, want noop", tel.MeterProvider())
	}
	if _, ok := tel.LoggerProvider().(lognoop.LoggerProvider); !ok {
		t.Errorf("LoggerProvider = %T, want noop", tel.LoggerProvider())
	}
}

func TestResolveProtocol(t *testing.T) {
	tests := []struct {
		name             string
		cfg, env, sigEnv string
		want             string
		wantErr          string
	}{
		{name: "default", want: ProtocolHTTPProtobuf},
		{name: "env grpc", env: "grpc", want: ProtocolGRPC},
		{name: "env http", env: "http/protobuf", want: ProtocolHTTPProtobuf},
		{name: "signal env wins", env: "http/protobuf", sigEnv: "grpc", want: ProtocolGRPC},
		{name: "config wins", cfg: "http/protobuf", env: "grpc", sigEnv: "grpc", want: ProtocolHTTPProtobuf},
		{name: "env bad", env: "http/json", wantErr: `OTEL_EXPORTER_OTLP_PROTOCOL: unsupported OTLP protocol "http/json"`},
		{name: "signal env bad", sigEnv: "udp", wantErr: `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: unsupported OTLP protocol "udp"`},
		{name: "config bad", cfg: "carrier-pigeon", wantErr: `Config.Protocol: unsupported OTLP protocol "carrier-pigeon"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(envProtocol, tt.env)
			t.Setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", tt.sigEnv)
			got, err := resolveProtocol(tt.cfg, signalTraces)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("resolveProtocol() error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("resolveProtocol() = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestSetupBadProtocolEnv(t *testing.T) {
	t.Setenv(envProtocol, "http/json")
	_, err := Setup(t.Context(), Config{MetricsExporter: "none", LogsExporter: "none", LogOutput: io.Discard})
	if err == nil || !strings.Contains(err.Error(), `"http/json"`) {
		t.Fatalf("Setup error = %v, want one naming \"http/json\"", err)
	}
}

func TestResolveExporters(t *testing.T) {
	tests := []struct {
		cfg, env string
		sig      signal
		want     exporters
		wantErr  string
	}{
		{sig: signalTraces, want: exporters{otlp: true}},
		{env: "console", sig: signalTraces, want: exporters{console: true}},
		{env: "stdout", sig: signalLogs, want: exporters{console: true}},
		{env: "otlp, console", sig: signalTraces, want: exporters{otlp: true, console: true}},
		{env: "none", sig: signalTraces, want: exporters{}},
		{cfg: "none", env: "otlp", sig: signalTraces, want: exporters{}},
		{env: "prometheus", sig: signalMetrics, want: exporters{}},
		{env: "prometheus", sig: signalTraces, wantErr: `OTEL_TRACES_EXPORTER: exporter "prometheus": only valid for metrics`},
		{env: "zipkin", sig: signalTraces, wantErr: `OTEL_TRACES_EXPORTER: unknown exporter "zipkin"`},
		{cfg: "jaeger", sig: signalLogs, wantErr: `Config: unknown exporter "jaeger"`},
		{env: "none,otlp", sig: signalMetrics, wantErr: "none cannot be combined"},
	}
	for _, tt := range tests {
		t.Run(string(tt.sig)+"/"+tt.cfg+"/"+tt.env, func(t *testing.T) {
			t.Setenv("OTEL_"+tt.sig.upper()+"_EXPORTER", tt.env)
			got, err := resolveExporters(tt.cfg, tt.sig)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("resolveExporters() error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("resolveExporters() = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestResolveHeaders(t *testing.T) {
	t.Setenv(envHeaders, "a=1,b=two%20words")
	t.Setenv("OTEL_EXPORTER_OTLP_LOGS_HEADERS", "b=3")
	got, err := resolveHeaders(map[string]string{"c": "4"}, signalLogs)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": "1", "b": "3", "c": "4"}
	if len(got) != len(want) {
		t.Fatalf("resolveHeaders() = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("header %s = %q, want %q", k, got[k], v)
		}
	}
	if h, _ := resolveHeaders(nil, signalLogs); h != nil {
		t.Errorf("resolveHeaders(nil) = %v, want nil (exporters read the env)", h)
	}
	t.Setenv(envHeaders, "novalue")
	if _, err := resolveHeaders(map[string]string{"c": "4"}, signalLogs); err == nil || !strings.Contains(err.Error(), `"novalue"`) {
		t.Errorf("resolveHeaders() error = %v, want one naming \"novalue\"", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "zero", cfg: Config{}},
		{name: "full", cfg: Config{TracesExporter: "otlp,console", MetricsExporter: "prometheus", Protocol: "grpc", Endpoint: "https://collector:4317", LogFormat: "json", LogFile: &FileConfig{Path: "x.log"}}},
		{name: "exporter", cfg: Config{LogsExporter: "kafka"}, wantErr: `LogsExporter: unknown exporter "kafka"`},
		{name: "protocol", cfg: Config{Protocol: "http/json"}, wantErr: `Protocol: unsupported OTLP protocol "http/json"`},
		{name: "endpoint", cfg: Config{Endpoint: "collector:4317"}, wantErr: `Endpoint: "collector:4317"`},
		{name: "format", cfg: Config{LogFormat: "xml"}, wantErr: `LogFormat: "xml"`},
		{name: "duration", cfg: Config{BatchTimeout: -time.Second}, wantErr: "BatchTimeout: -1s"},
		{name: "file", cfg: Config{LogFile: &FileConfig{}}, wantErr: "LogFile.Path: required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "telemetry: ") {
				t.Fatalf("Validate() = %v, want telemetry: ...%s", err, tt.wantErr)
			}
			if _, serr := Setup(t.Context(), tt.cfg); serr == nil {
				t.Errorf("Setup accepted a config Validate rejects")
			}
		})
	}
}

func TestShutdownFlushes(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tel, err := Setup(t.Context(), Config{
		TracesExporter: "none", MetricsExporter: "none", LogsExporter: "none",
		// A batch processor with the default 5s delay: only Shutdown's
		// flush can export the span in time for the check below.
		SpanProcessors: []sdktrace.SpanProcessor{sdktrace.NewBatchSpanProcessor(keepSpans{exp})},
		LogOutput:      io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	_, span := tel.TracerProvider().Tracer("test").Start(t.Context(), "last words")
	span.End()
	if err := tel.Shutdown(t.Context()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if spans := exp.GetSpans(); len(spans) != 1 || spans[0].Name != "last words" {
		t.Errorf("exported %v, want the span ended before Shutdown", spans.Snapshots())
	}
	if err := tel.Shutdown(t.Context()); err != nil {
		t.Errorf("second Shutdown = %v, want the first result (nil)", err)
	}
}

// keepSpans keeps the exported spans on Shutdown, which the in-memory
// exporter would clear.
type keepSpans struct{ *tracetest.InMemoryExporter }

func (keepSpans) Shutdown(context.Context) error { return nil }

// stuckProcessor is a span processor whose Shutdown never finishes on its
// own.
type stuckProcessor struct{ sdktrace.SpanProcessor }

func (stuckProcessor) Shutdown(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

func TestShutdownDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tel, err := Setup(t.Context(), Config{
			TracesExporter: "none", MetricsExporter: "none", LogsExporter: "none",
			SpanProcessors: []sdktrace.SpanProcessor{stuckProcessor{sdktrace.NewSimpleSpanProcessor(tracetest.NewInMemoryExporter())}},
			LogOutput:      io.Discard,
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		defer cancel()
		start := time.Now()
		err = tel.Shutdown(ctx)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown = %v, want DeadlineExceeded", err)
		}
		if d := time.Since(start); d != 3*time.Second {
			t.Errorf("Shutdown took %v, want exactly the 3s deadline", d)
		}
		if err2 := tel.Shutdown(context.Background()); err2 != err {
			t.Errorf("second Shutdown = %v, want the first result %v", err2, err)
		}
	})
}

func TestCoexist(t *testing.T) {
	a := newHarness(t, func(c *Config) { c.ServiceName = "a" })
	b := newHarness(t, func(c *Config) { c.ServiceName = "b" })
	_, span := a.tel.TracerProvider().Tracer("t").Start(t.Context(), "in a")
	span.End()
	if n := len(b.spans.GetSpans()); n != 0 {
		t.Errorf("b got %d spans of a", n)
	}
	spans := a.spans.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("a got %d spans, want 1", len(spans))
	}
	if v, _ := spans[0].Resource.Set().Value("service.name"); v.AsString() != "a" {
		t.Errorf("span service.name = %q, want a", v.AsString())
	}
}

func TestConsoleExporters(t *testing.T) {
	var out syncBuffer
	tel, err := Setup(t.Context(), Config{
		ServiceName:           "console",
		TracesExporter:        "console",
		MetricsExporter:       "stdout",
		LogsExporter:          "console",
		ConsoleExporterOutput: &out,
		LogOutput:             io.Discard,
		NoRuntimeMetrics:      true,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, span := tel.TracerProvider().Tracer("t").Start(t.Context(), "console-span")
	tel.Logger().InfoContext(ctx, "console-log")
	c, _ := tel.MeterProvider().Meter("t").Int64Counter("console.count")
	c.Add(ctx, 1)
	span.End()
	if err := tel.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"Name":"console-span"`, `"console-log"`, `"Name":"console.count"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("console exporter output lacks %s", want)
		}
	}
}

func TestSetGlobal(t *testing.T) {
	prevTP, prevMP, prevLP, prevProp, prevLog := otel.GetTracerProvider(), otel.GetMeterProvider(), otel.GetLoggerProvider(), otel.GetTextMapPropagator(), slog.Default()
	t.Cleanup(func() {
		otel.SetTracerProvider(prevTP)
		otel.SetMeterProvider(prevMP)
		otel.SetLoggerProvider(prevLP)
		otel.SetTextMapPropagator(prevProp)
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(error) {}))
		slog.SetDefault(prevLog)
	})
	h := newHarness(t, nil)
	h.tel.SetGlobal()
	if otel.GetTracerProvider() != h.tel.TracerProvider() || otel.GetLoggerProvider() != h.tel.LoggerProvider() {
		t.Error("globals not installed")
	}
	slog.Info("via default")
	otel.Handle(errors.New("exporter trouble"))
	if out := h.out.String(); !strings.Contains(out, "via default") || !strings.Contains(out, "exporter trouble") {
		t.Errorf("console = %s, want the default logger's record and the OTel error", out)
	}
}
