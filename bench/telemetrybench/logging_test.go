package telemetrybench

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"

	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/telemetry"
)

// sinkWriter discards what it is given, like io.Discard, except that it can
// keep one record for a check. telemetry.Setup treats io.Discard itself as
// "console off" and builds no console handler, so the benchmark needs a
// writer of its own to measure the console output.
type sinkWriter struct {
	mu   sync.Mutex
	keep bool
	last bytes.Buffer
}

func (w *sinkWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.keep {
		w.last.Reset()
		w.last.Write(p)
	}
	return len(p), nil
}

// record returns what one call of log wrote.
func (w *sinkWriter) record(log func()) string {
	w.mu.Lock()
	w.keep = true
	w.mu.Unlock()
	log()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.keep = false
	return w.last.String()
}

// requestContext is what a handler's context holds inside a traced request:
// a valid, sampled span context.
func requestContext() context.Context {
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	return trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled,
	}))
}

// BenchmarkLogRecord is one "order placed" record, with the attributes the
// order service logs, written inside a traced request. Variants:
//
//   - slog: slog.NewJSONHandler on a discarding writer, the standard
//     library alone (no trace correlation);
//   - cairn: telemetry.Setup's Logger with JSON console output to the same
//     writer, adding trace_id and span_id; no OpenTelemetry logs;
//   - cairn+otel: the same, and the record also goes through the otelslog
//     bridge into a batch log processor whose exporter discards, as in a
//     service that exports its logs over OTLP.
func BenchmarkLogRecord(b *testing.B) {
	ctx := requestContext()
	run := func(b *testing.B, l *slog.Logger, w *sinkWriter, want string) {
		log := func() {
			l.InfoContext(ctx, "order placed",
				slog.String("order_id", "9c1f6f1e0d6a4b59a4f1f0b2a5c3d7e8"),
				slog.String("customer_id", "customer-042"),
				slog.Int("lines", 2),
				slog.Int64("total", 2598))
		}
		if got := w.record(log); !bytes.Contains([]byte(got), []byte(want)) {
			b.Fatalf("record = %q, want it to contain %q", got, want)
		}
		b.ReportAllocs()
		for b.Loop() {
			log()
		}
	}
	b.Run("variant=slog", func(b *testing.B) {
		w := &sinkWriter{}
		run(b, slog.New(slog.NewJSONHandler(w, nil)), w, `"msg":"order placed"`)
	})
	newLogger := func(b *testing.B, w *sinkWriter, otelLogs bool) *slog.Logger {
		cfg := telemetry.Config{
			ServiceName:     "bench",
			TracesExporter:  telemetry.ExporterNone,
			MetricsExporter: telemetry.ExporterNone,
			LogsExporter:    telemetry.ExporterNone,
			NoPrometheus:    true,
			LogFormat:       telemetry.LogFormatJSON,
			LogOutput:       w,
		}
		if otelLogs {
			cfg.LogProcessors = []sdklog.Processor{sdklog.NewBatchProcessor(discardLogs{})}
		}
		tel, err := telemetry.Setup(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { tel.Shutdown(context.Background()) })
		return tel.Logger()
	}
	const ids = `"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7"`
	b.Run("variant=cairn", func(b *testing.B) {
		w := &sinkWriter{}
		run(b, newLogger(b, w, false), w, ids)
	})
	b.Run("variant=cairn+otel", func(b *testing.B) {
		w := &sinkWriter{}
		run(b, newLogger(b, w, true), w, ids)
	})
}
