package telemetry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// gateWriter blocks every Write until the test releases it, and tells the
// test when a Write has started.
type gateWriter struct {
	entered chan struct{} // receives once per Write call
	release chan struct{} // each Write waits for one value (or close)
	mu      sync.Mutex
	buf     bytes.Buffer
	closed  bool
}

func newGateWriter() *gateWriter {
	return &gateWriter{entered: make(chan struct{}, 1024), release: make(chan struct{})}
}

func (g *gateWriter) Write(p []byte) (int, error) {
	g.entered <- struct{}{}
	<-g.release
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.buf.Write(p)
}

func (g *gateWriter) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	return nil
}

func (g *gateWriter) String() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.buf.String()
}

func TestAsyncWriterDrops(t *testing.T) {
	const size, overflow = 4, 3
	g := newGateWriter()
	w := NewAsyncWriter(g, size)

	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	if _, err := w.RegisterMetrics(mp.Meter("test")); err != nil {
		t.Fatal(err)
	}

	// The first record is taken by the goroutine, which then blocks in
	// the underlying Write; the next size records fill the queue and the
	// rest overflow. Write returns immediately every time (the test would
	// deadlock otherwise).
	buf := []byte("rec-0\n")
	if _, err := w.Write(buf); err != nil {
		t.Fatal(err)
	}
	<-g.entered
	for i := 1; i <= size+overflow; i++ {
		// Reuse one buffer, as slog does: the writer must have copied it.
		buf = fmt.Appendf(buf[:0], "rec-%d\n", i)
		n, err := w.Write(buf)
		if n != len(buf) || err != nil {
			t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(buf))
		}
	}
	if got := w.Dropped(); got != overflow {
		t.Errorf("Dropped() = %d, want %d", got, overflow)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	if got := droppedMetric(t, rm); got != overflow {
		t.Errorf("%s = %d, want %d", DroppedMetricName, got, overflow)
	}

	close(g.release) // unblock the disk
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	var want strings.Builder
	for i := 0; i <= size; i++ {
		fmt.Fprintf(&want, "rec-%d\n", i)
	}
	if got := g.String(); got != want.String() {
		t.Errorf("written = %q, want %q (queued records in order, overflow dropped)", got, want.String())
	}
	if !g.closed {
		t.Error("underlying writer not closed")
	}
	if _, err := w.Write([]byte("late")); !errors.Is(err, ErrWriterClosed) {
		t.Errorf("Write after Close = %v, want ErrWriterClosed", err)
	}
}

func droppedMetric(t *testing.T, rm metricdata.ResourceMetrics) int64 {
	t.Helper()
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != DroppedMetricName {
				continue
			}
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok || !sum.IsMonotonic || len(sum.DataPoints) != 1 || m.Unit != "{record}" {
				t.Fatalf("%s = %+v (unit %q), want one monotonic int64 point in {record}", m.Name, m.Data, m.Unit)
			}
			return sum.DataPoints[0].Value
		}
	}
	t.Fatalf("no %s metric", DroppedMetricName)
	return 0
}

func TestAsyncWriterShutdownDeadline(t *testing.T) {
	g := newGateWriter()
	w := NewAsyncWriter(g, 8)
	w.Write([]byte("stuck"))
	<-g.entered
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := w.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown = %v, want context.Canceled", err)
	}
	close(g.release)
	if err := w.Close(); err != nil { // waits for the goroutine to exit
		t.Errorf("Close = %v", err)
	}
	if g.String() != "stuck" {
		t.Errorf("written = %q, want the queued record", g.String())
	}
}

type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestAsyncWriterError(t *testing.T) {
	w := NewAsyncWriter(errWriter{}, 0)
	w.Write([]byte("x"))
	w.Write([]byte("y"))
	if err := w.Close(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Close = %v, want the write error", err)
	}
	if got := w.WriteErrors(); got != 2 {
		t.Errorf("WriteErrors() = %d, want 2", got)
	}
}

func TestAsyncWriterConcurrent(t *testing.T) {
	var buf syncBuffer
	w := NewAsyncWriter(&buf, 10000)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 100 {
				fmt.Fprintf(w, "%d-%d\n", i, j)
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "\n"); n != 800 || w.Dropped() != 0 {
		t.Errorf("wrote %d lines, dropped %d; want 800, 0", n, w.Dropped())
	}
}

func TestLogFileRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	h := newHarness(t, func(c *Config) {
		c.LogFile = &FileConfig{Path: path, MaxSizeMB: 1, MaxBackups: 3, BufferSize: 4096}
	})
	ctx, span := h.tel.TracerProvider().Tracer("t").Start(t.Context(), "s")
	pad := strings.Repeat("x", 1000)
	const records = 1200 // about 1.3 MB: one rotation at 1 MB
	for i := range records {
		h.tel.Logger().InfoContext(ctx, "fill", "i", i, "pad", pad)
	}
	span.End()
	if err := h.tel.Shutdown(t.Context()); err != nil { // flushes the file
		t.Fatal(err)
	}
	backups, err := filepath.Glob(filepath.Join(dir, "app-*.log"))
	if err != nil || len(backups) != 1 {
		t.Fatalf("backups = %v, %v; want one", backups, err)
	}
	var lines int
	for _, f := range append(backups, path) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines += len(jsonLines(t, string(b)))
		if f == path && !strings.Contains(string(b), `"trace_id":"`+span.SpanContext().TraceID().String()) {
			t.Errorf("file records lack the trace id")
		}
	}
	if lines != records {
		t.Errorf("files hold %d records, want %d", lines, records)
	}
}

func TestLogFileBadPath(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Setup(t.Context(), Config{
		TracesExporter: "none", MetricsExporter: "none", LogsExporter: "none",
		LogFile: &FileConfig{Path: filepath.Join(blocker, "app.log")}, LogOutput: os.Stderr,
	})
	if err == nil || !strings.HasPrefix(err.Error(), "telemetry: log file:") {
		t.Errorf("Setup error = %v, want telemetry: log file: ...", err)
	}
}
