package telemetry

import (
	"context"
	"fmt"
	"strings"

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

func newOTLPSpanExporter(ctx context.Context, cfg *Config) (sdktrace.SpanExporter, error) {
	s, err := resolveOTLP(cfg, signalTraces, "/v1/traces")
	if err != nil {
		return nil, err
	}
	var exp sdktrace.SpanExporter
	if s.protocol == ProtocolGRPC {
		var opts []otlptracegrpc.Option
		if cfg.Insecure {
			opts = append(opts, otlptracegrpc.WithInsecure())
		}
		if s.endpoint != "" {
			opts = append(opts, otlptracegrpc.WithEndpointURL(s.endpoint))
		}
		if s.headers != nil {
			opts = append(opts, otlptracegrpc.WithHeaders(s.headers))
		}
		if cfg.ExportTimeout > 0 {
			opts = append(opts, otlptracegrpc.WithTimeout(cfg.ExportTimeout))
		}
		exp, err = otlptracegrpc.New(ctx, opts...)
	} else {
		var opts []otlptracehttp.Option
		if cfg.Insecure {
			opts = append(opts, otlptracehttp.WithInsecure())
		}
		if s.endpoint != "" {
			opts = append(opts, otlptracehttp.WithEndpointURL(s.endpoint))
		}
		if s.headers != nil {
			opts = append(opts, otlptracehttp.WithHeaders(s.headers))
		}
		if cfg.ExportTimeout > 0 {
			opts = append(opts, otlptracehttp.WithTimeout(cfg.ExportTimeout))
		}
		exp, err = otlptracehttp.New(ctx, opts...)
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
		var opts []otlpmetricgrpc.Option
		if cfg.Insecure {
			opts = append(opts, otlpmetricgrpc.WithInsecure())
		}
		if s.endpoint != "" {
			opts = append(opts, otlpmetricgrpc.WithEndpointURL(s.endpoint))
		}
		if s.headers != nil {
			opts = append(opts, otlpmetricgrpc.WithHeaders(s.headers))
		}
		if cfg.ExportTimeout > 0 {
			opts = append(opts, otlpmetricgrpc.WithTimeout(cfg.ExportTimeout))
		}
		exp, err = otlpmetricgrpc.New(ctx, opts...)
	} else {
		var opts []otlpmetrichttp.Option
		if cfg.Insecure {
			opts = append(opts, otlpmetrichttp.WithInsecure())
		}
		if s.endpoint != "" {
			opts = append(opts, otlpmetrichttp.WithEndpointURL(s.endpoint))
		}
		if s.headers != nil {
			opts = append(opts, otlpmetrichttp.WithHeaders(s.headers))
		}
		if cfg.ExportTimeout > 0 {
			opts = append(opts, otlpmetrichttp.WithTimeout(cfg.ExportTimeout))
		}
		exp, err = otlpmetrichttp.New(ctx, opts...)
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
		var opts []otlploggrpc.Option
		if cfg.Insecure {
			opts = append(opts, otlploggrpc.WithInsecure())
		}
		if s.endpoint != "" {
			opts = append(opts, otlploggrpc.WithEndpointURL(s.endpoint))
		}
		if s.headers != nil {
			opts = append(opts, otlploggrpc.WithHeaders(s.headers))
		}
		if cfg.ExportTimeout > 0 {
			opts = append(opts, otlploggrpc.WithTimeout(cfg.ExportTimeout))
		}
		exp, err = otlploggrpc.New(ctx, opts...)
	} else {
		var opts []otlploghttp.Option
		if cfg.Insecure {
			opts = append(opts, otlploghttp.WithInsecure())
		}
		if s.endpoint != "" {
			opts = append(opts, otlploghttp.WithEndpointURL(s.endpoint))
		}
		if s.headers != nil {
			opts = append(opts, otlploghttp.WithHeaders(s.headers))
		}
		if cfg.ExportTimeout > 0 {
			opts = append(opts, otlploghttp.WithTimeout(cfg.ExportTimeout))
		}
		exp, err = otlploghttp.New(ctx, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("telemetry: OTLP %s log exporter: %w", s.protocol, err)
	}
	return exp, nil
}
