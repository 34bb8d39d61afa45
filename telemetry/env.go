package telemetry

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Environment variables read by Setup itself. The OTLP exporters, batch
// processors and resource detection read the rest of the OTEL_* variables.
const (
	envSDKDisabled     = "OTEL_SDK_DISABLED"
	envTracesExporter  = "OTEL_TRACES_EXPORTER"
	envMetricsExporter = "OTEL_METRICS_EXPORTER"
	envLogsExporter    = "OTEL_LOGS_EXPORTER"
	envProtocol        = "OTEL_EXPORTER_OTLP_PROTOCOL"
	envHeaders         = "OTEL_EXPORTER_OTLP_HEADERS"
	envSampler         = "OTEL_TRACES_SAMPLER"
	envSamplerArg      = "OTEL_TRACES_SAMPLER_ARG"
)

// signal is one of the three OpenTelemetry signals.
type signal string

const (
	signalTraces  signal = "traces"
	signalMetrics signal = "metrics"
	signalLogs    signal = "logs"
)

// upper returns the signal's name as used in per-signal variables.
func (s signal) upper() string { return strings.ToUpper(string(s)) }

// exporters is the parsed set of exporter names for one signal.
type exporters struct {
	otlp, console bool
}

func (e exporters) none() bool { return !e.otlp && !e.console }

// parseExporters parses a comma-separated exporter list. metrics allows
// "prometheus", which selects nothing here.
func parseExporters(s string, metrics bool) (exporters, error) {
	var e exporters
	none := false
	for name := range strings.SplitSeq(s, ",") {
		switch strings.ToLower(strings.TrimSpace(name)) {
		case ExporterOTLP:
			e.otlp = true
		case ExporterConsole, "stdout":
			e.console = true
		case ExporterNone:
			none = true
		case "prometheus":
			if !metrics {
				return exporters{}, fmt.Errorf("exporter %q: only valid for metrics", name)
			}
		default:
			return exporters{}, fmt.Errorf("unknown exporter %q: want otlp, console or none", name)
		}
	}
	if none && !e.none() {
		return exporters{}, fmt.Errorf("exporters %q: none cannot be combined with other exporters", s)
	}
	return e, nil
}

// resolveExporters returns the exporters for sig from the Config value or the
// environment, defaulting to otlp.
func resolveExporters(cfgVal string, sig signal) (exporters, error) {
	key := "OTEL_" + sig.upper() + "_EXPORTER"
	val, src := cfgVal, "Config"
	if val == "" {
		val, src = strings.TrimSpace(os.Getenv(key)), key
	}
	if val == "" {
		return exporters{otlp: true}, nil
	}
	e, err := parseExporters(val, sig == signalMetrics)
	if err != nil {
		return exporters{}, fmt.Errorf("telemetry: %s: %w", src, err)
	}
	return e, nil
}

func parseProtocol(s string) (string, error) {
	switch p := strings.ToLower(strings.TrimSpace(s)); p {
	case ProtocolGRPC, ProtocolHTTPProtobuf:
		return p, nil
	default:
		return "", fmt.Errorf("unsupported OTLP protocol %q: want %q or %q", s, ProtocolGRPC, ProtocolHTTPProtobuf)
	}
}

// resolveProtocol returns the OTLP protocol for sig: Config, then the
// per-signal variable, then OTEL_EXPORTER_OTLP_PROTOCOL, then http/protobuf.
func resolveProtocol(cfgVal string, sig signal) (string, error) {
	if cfgVal != "" {
		p, err := parseProtocol(cfgVal)
		if err != nil {
			return "", fmt.Errorf("telemetry: Config.Protocol: %w", err)
		}
		return p, nil
	}
	for _, key := range []string{"OTEL_EXPORTER_OTLP_" + sig.upper() + "_PROTOCOL", envProtocol} {
		if v := os.Getenv(key); v != "" {
			p, err := parseProtocol(v)
			if err != nil {
				return "", fmt.Errorf("telemetry: %s: %w", key, err)
			}
			return p, nil
		}
	}
	return ProtocolHTTPProtobuf, nil
}

// resolveHeaders merges cfg over OTEL_EXPORTER_OTLP_HEADERS and the
// per-signal variable (which wins over the general one). It returns nil when
// cfg is empty so the exporters keep reading the environment themselves.
func resolveHeaders(cfg map[string]string, sig signal) (map[string]string, error) {
	if len(cfg) == 0 {
		return nil, nil
	}
	h := make(map[string]string)
	for _, key := range []string{envHeaders, "OTEL_EXPORTER_OTLP_" + sig.upper() + "_HEADERS"} {
		if err := parseHeaders(os.Getenv(key), h); err != nil {
			return nil, fmt.Errorf("telemetry: %s: %w", key, err)
		}
	}
	for k, v := range cfg {
		h[k] = v
	}
	return h, nil
}

// parseHeaders parses the W3C-baggage-like "k1=v1,k2=v2" format of
// OTEL_EXPORTER_OTLP_HEADERS, with URL-encoded values, into h.
func parseHeaders(s string, h map[string]string) error {
	for pair := range strings.SplitSeq(s, ",") {
		if strings.TrimSpace(pair) == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return fmt.Errorf("header %q: want key=value", pair)
		}
		val, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("header %q: %w", k, err)
		}
		h[k] = val
	}
	return nil
}

// resolveDisabled reports whether the SDK is disabled by cfg or
// OTEL_SDK_DISABLED.
func resolveDisabled(cfg bool) (bool, error) {
	if cfg {
		return true, nil
	}
	switch v := strings.TrimSpace(os.Getenv(envSDKDisabled)); strings.ToLower(v) {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	default:
		return false, fmt.Errorf("telemetry: %s=%q: want true or false", envSDKDisabled, v)
	}
}

// ErrBadSampler is wrapped by the error Setup returns when
// OTEL_TRACES_SAMPLER or OTEL_TRACES_SAMPLER_ARG cannot be used.
var ErrBadSampler = errors.New("telemetry: bad sampler")

// samplerFromEnv builds the sampler named by OTEL_TRACES_SAMPLER and
// OTEL_TRACES_SAMPLER_ARG, defaulting to parentbased_always_on.
func samplerFromEnv() (sdktrace.Sampler, error) {
	name := strings.ToLower(strings.TrimSpace(os.Getenv(envSampler)))
	arg := strings.TrimSpace(os.Getenv(envSamplerArg))
	ratio := func() (float64, error) {
		if arg == "" {
			return 1, nil
		}
		f, err := strconv.ParseFloat(arg, 64)
		if err != nil || f < 0 || f > 1 {
			return 0, fmt.Errorf("%w: %s=%q: want a number from 0 to 1", ErrBadSampler, envSamplerArg, arg)
		}
		return f, nil
	}
	switch name {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "traceidratio":
		r, err := ratio()
		if err != nil {
			return nil, err
		}
		return sdktrace.TraceIDRatioBased(r), nil
	case "parentbased_traceidratio":
		r, err := ratio()
		if err != nil {
			return nil, err
		}
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(r)), nil
	default:
		return nil, fmt.Errorf("%w: %s=%q: want always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio",
			ErrBadSampler, envSampler, name)
	}
}

// ParseLevel parses a log level the way the /loglevel endpoint and
// CAIRN_LOG_LEVEL do: a name (debug, info, warn, warning, error; any case),
// a name with an offset as slog prints it ("INFO+2"), or an integer ("-4").
// The error names the bad value.
func ParseLevel(s string) (slog.Level, error) {
	l, err := parseLevel(s)
	if err != nil {
		return 0, fmt.Errorf("telemetry: %w", err)
	}
	return l, nil
}

func parseLevel(s string) (slog.Level, error) {
	t := strings.TrimSpace(s)
	if n, err := strconv.Atoi(t); err == nil {
		return slog.Level(n), nil
	}
	if strings.EqualFold(t, "warning") {
		return slog.LevelWarn, nil
	}
	var l slog.Level
	if t == "" || l.UnmarshalText([]byte(t)) != nil {
		return 0, fmt.Errorf("bad log level %q: want debug, info, warn, error or an integer", s)
	}
	return l, nil
}

// levelFromEnv returns the level in CAIRN_LOG_LEVEL, or Info when unset.
func levelFromEnv() (slog.Level, error) {
	v := os.Getenv(LevelEnv)
	if v == "" {
		return slog.LevelInfo, nil
	}
	l, err := parseLevel(v)
	if err != nil {
		return 0, fmt.Errorf("telemetry: %s: %w", LevelEnv, err)
	}
	return l, nil
}
