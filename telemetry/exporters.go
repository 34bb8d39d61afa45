package telemetry

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// otlpSettings are the Config values every OTLP exporter of one signal
// needs, already resolved against the environment. Empty values leave the
// exporter to read its OTEL_EXPORTER_OTLP_* variables itself.
type otlpSettings struct {
	protocol string
	endpoint string            // full URL for the signal, or ""
	headers  map[string]string // nil: the environment's
}

// resolveOTLP resolves protocol, endpoint and headers for sig. path is the
// signal's http/protobuf path, such as "/v1/traces".
func resolveOTLP(cfg *Config, sig signal, path string) (otlpSettings, error) {
	proto, err := resolveProtocol(cfg.Protocol, sig)
	if err != nil {
		return otlpSettings{}, err
	}
	headers, err := resolveHeaders(cfg.Headers, sig)
	if err != nil {
		return otlpSettings{}, err
	}
	s := otlpSettings{protocol: proto, headers: headers}
	if cfg.Endpoint != "" {
		s.endpoint = cfg.Endpoint
		if proto == ProtocolHTTPProtobuf {
			s.endpoint = strings.TrimSuffix(cfg.Endpoint, "/") + path
		}
	}
	return s, nil
}

// otlpOptions builds one OTLP exporter package's options from s and cfg.
// Each package (trace, metric and log; gRPC and HTTP) declares its own
// option type, so the caller passes that package's constructors.
func otlpOptions[O any](s otlpSettings, cfg *Config,
	insecure func() O,
	endpointURL func(string) O,
	headers func(map[string]string) O,
	timeout func(time.Duration) O,
) []O {
	var opts []O
	if cfg.Insecure {
		opts = append(opts, insecure())
	}
	if s.endpoint != "" {
		opts = append(opts, endpointURL(s.endpoint))
	}
	if s.headers != nil {
		opts = append(opts, headers(s.headers))
	}
	if cfg.ExportTimeout > 0 {
		opts = append(opts, timeout(cfg.ExportTimeout))
	}
	return opts
}

func newOTLPSpanExporter(ctx context.Context, cfg *Config) (sdktrace.SpanExporter, error) {
	s, err := resolveOTLP(cfg, signalTraces, "/v1/traces")
	if err != nil {
		return nil, err
	}
	var exp sdktrace.SpanExporter
	if s.protocol == ProtocolGRPC {
		exp, err = otlptracegrpc.New(ctx, otlpOptions(s, cfg, otlptracegrpc.WithInsecure,
			otlptracegrpc.WithEndpointURL, otlptracegrpc.WithHeaders, otlptracegrpc.WithTimeout)...)
	} else {
		exp, err = otlptracehttp.New(ctx, otlpOptions(s, cfg, otlptracehttp.WithInsecure,
			otlptracehttp.WithEndpointURL, otlptracehttp.WithHeaders, otlptracehttp.WithTimeout)...)
	}
	if err != nil {
		return nil, fmt.Errorf("telemetry: OTLP %s trace exporter: %w", s.protocol, err)
	}
	return exp, nil
}

func newOTLPMetricExporter(ctx context.Context, cfg *Config) (sdkmetric.Exporter, error) {
	s, err := resolveOTLP(cfg, signalMetrics, "/v1/metrics")
	if err != nil {
		return nil, err
	}
	var exp sdkmetric.Exporter
	if s.protocol == ProtocolGRPC {
		exp, err = otlpmetricgrpc.New(ctx, otlpOptions(s, cfg, otlpmetricgrpc.WithInsecure,
			otlpmetricgrpc.WithEndpointURL, otlpmetricgrpc.WithHeaders, otlpmetricgrpc.WithTimeout)...)
	} else {
		exp, err = otlpmetrichttp.New(ctx, otlpOptions(s, cfg, otlpmetrichttp.WithInsecure,
			otlpmetrichttp.WithEndpointURL, otlpmetrichttp.WithHeaders, otlpmetrichttp.WithTimeout)...)
	}
	if err != nil {
		return nil, fmt.Errorf("telemetry: OTLP %s metric exporter: %w", s.protocol, err)
	}
	return exp, nil
}

func newOTLPLogExporter(ctx context.Context, cfg *Config) (sdklog.Exporter, error) {
	s, err := resolveOTLP(cfg, signalLogs, "/v1/logs")
	if err != nil {
		return nil, err
	}
	var exp sdklog.Exporter
	if s.protocol == ProtocolGRPC {
		exp, err = otlploggrpc.New(ctx, otlpOptions(s, cfg, otlploggrpc.WithInsecure,
			otlploggrpc.WithEndpointURL, otlploggrpc.WithHeaders, otlploggrpc.WithTimeout)...)
	} else {
		exp, err = otlploghttp.New(ctx, otlpOptions(s, cfg, otlploghttp.WithInsecure,
			otlploghttp.WithEndpointURL, otlploghttp.WithHeaders, otlploghttp.WithTimeout)...)
	}
	if err != nil {
		return nil, fmt.Errorf("telemetry: OTLP %s log exporter: %w", s.protocol, err)
	}
	return exp, nil
}
