package telemetry

import (
	"bytes"
	"context"
	"sync"
	"testing"

	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// lumberjack v2.2.1 starts one mill goroutine per Logger on its
		// first write and never stops it (natefinch/lumberjack#56); the
		// rotation tests create Loggers on purpose.
		goleak.IgnoreAnyFunction("gopkg.in/natefinch/lumberjack%2ev2.(*Logger).millRun"),
	)
}

// memLogs is an in-memory sdklog.Processor that keeps a clone of every
// record it is given.
type memLogs struct {
	mu   sync.Mutex
	recs []sdklog.Record
}

var _ sdklog.Processor = (*memLogs)(nil)

func (m *memLogs) OnEmit(_ context.Context, r *sdklog.Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs = append(m.recs, r.Clone())
	return nil
}

func (*memLogs) Enabled(context.Context, sdklog.EnabledParameters) bool { return true }
func (*memLogs) Shutdown(context.Context) error                         { return nil }
func (*memLogs) ForceFlush(context.Context) error                       { return nil }

func (m *memLogs) Records() []sdklog.Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]sdklog.Record(nil), m.recs...)
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of handlers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// harness is a Telemetry whose three signals go to memory only.
type harness struct {
	tel    *Telemetry
	spans  *tracetest.InMemoryExporter
	reader *sdkmetric.ManualReader
	logs   *memLogs
	out    *syncBuffer
}

// newHarness sets up a Telemetry with in-memory exporters, JSON console
// output into h.out and no env-selected exporters; mod may adjust the
// config. Shutdown runs at cleanup.
func newHarness(t *testing.T, mod func(*Config)) *harness {
	t.Helper()
	h := &harness{
		spans:  tracetest.NewInMemoryExporter(),
		reader: sdkmetric.NewManualReader(),
		logs:   &memLogs{},
		out:    &syncBuffer{},
	}
	cfg := Config{
		ServiceName:     "test-service",
		TracesExporter:  ExporterNone,
		MetricsExporter: ExporterNone,
		LogsExporter:    ExporterNone,
		SpanProcessors:  []sdktrace.SpanProcessor{sdktrace.NewSimpleSpanProcessor(h.spans)},
		MetricReaders:   []sdkmetric.Reader{h.reader},
		LogProcessors:   []sdklog.Processor{h.logs},
		LogFormat:       LogFormatJSON,
		LogOutput:       h.out,
	}
	if mod != nil {
		mod(&cfg)
	}
	tel, err := Setup(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	h.tel = tel
	t.Cleanup(func() {
		if err := tel.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return h
}
