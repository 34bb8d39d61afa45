package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/metric"
)

// ErrWriterClosed is returned by [AsyncWriter.Write] after Close or Shutdown.
var ErrWriterClosed = errors.New("telemetry: async writer closed")

// Metric names of the counters [AsyncWriter.RegisterMetrics] reports;
// Prometheus exposes them as cairn_log_dropped_total and
// cairn_log_write_errors_total.
const (
	DroppedMetricName     = "cairn.log.dropped"
	WriteErrorsMetricName = "cairn.log.write_errors"
)

// maxPooledBuffer is the largest buffer AsyncWriter keeps for reuse; larger
// records are copied into a buffer that is left to the garbage collector.
const maxPooledBuffer = 64 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// AsyncWriter is an io.Writer that hands each Write to one background
// goroutine through a bounded queue, so Write never blocks on the underlying
// writer (a slow disk, a full pipe). When the queue is full the record is
// dropped and counted in Dropped. Records are written in the order of the
// Write calls that queued them.
//
// AsyncWriter is safe for concurrent use. Its goroutine starts in
// [NewAsyncWriter] and exits in Close or Shutdown, which must be called once
// the writer is no longer needed.
type AsyncWriter struct {
	w           io.Writer
	queue       chan *[]byte
	done        chan struct{} // closed when run has returned
	dropped     atomic.Uint64
	writeErrors atomic.Uint64

	// mu makes closing the queue exclusive with Write's send; Write holds
	// it for reading so writers do not serialise on each other.
	mu     sync.RWMutex
	closed bool

	err error // first error from w, written by run before done is closed
}

// NewAsyncWriter returns an AsyncWriter that writes to w through a queue of
// size records (a size below 1 means [DefaultFileBufferSize]) and starts its
// goroutine. After the queue is drained on Close or Shutdown, w is closed if
// it is an io.Closer.
func NewAsyncWriter(w io.Writer, size int) *AsyncWriter {
	if size < 1 {
		size = DefaultFileBufferSize
	}
	a := &AsyncWriter{
		w:     w,
		queue: make(chan *[]byte, size),
		done:  make(chan struct{}),
	}
	go a.run()
	return a
}

// Write queues a copy of p (p may be reused as soon as Write returns) and
// returns len(p), nil, also when the queue is full and the record is dropped
// and counted in Dropped; it never waits for the underlying writer. After
// Close it returns [ErrWriterClosed].
func (a *AsyncWriter) Write(p []byte) (int, error) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.closed {
		return 0, ErrWriterClosed
	}
	bp := bufPool.Get().(*[]byte)
	*bp = append((*bp)[:0], p...)
	select {
	case a.queue <- bp:
	default:
		putBuffer(bp)
		a.dropped.Add(1)
	}
	return len(p), nil
}

// Dropped returns how many Write calls have dropped their record because the
// queue was full.
func (a *AsyncWriter) Dropped() uint64 { return a.dropped.Load() }

// WriteErrors returns how many queued records the underlying writer failed
// to write (a full disk, a removed directory). Such records are lost; the
// first error is also returned by Close.
func (a *AsyncWriter) WriteErrors() uint64 { return a.writeErrors.Load() }

// Close stops accepting writes, waits until every queued record has been
// written, closes the underlying writer if it is an io.Closer and stops the
// goroutine. It returns the first error of the underlying writer's Write or
// Close calls. Calling Close again returns the same error.
func (a *AsyncWriter) Close() error {
	return a.Shutdown(context.Background())
}

// Shutdown is Close bounded by ctx: if ctx is done before the queue is
// drained, Shutdown returns ctx's error while the goroutine keeps draining
// and exits when it is done.
func (a *AsyncWriter) Shutdown(ctx context.Context) error {
	a.mu.Lock()
	if !a.closed {
		a.closed = true
		close(a.queue)
	}
	a.mu.Unlock()
	select {
	case <-a.done:
		if a.err != nil {
			return fmt.Errorf("telemetry: async writer: %w", a.err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("telemetry: async writer: %d records still queued: %w", len(a.queue), ctx.Err())
	}
}

// RegisterMetrics reports Dropped and WriteErrors as the monotonic counters
// [DroppedMetricName] and [WriteErrorsMetricName] (unit {record}) on meter.
// Unregister the returned registration to stop reporting.
func (a *AsyncWriter) RegisterMetrics(meter metric.Meter) (metric.Registration, error) {
	dropped, err := meter.Int64ObservableCounter(DroppedMetricName,
		metric.WithUnit("{record}"),
		metric.WithDescription("Log records dropped because the log file writer's queue was full."))
	if err != nil {
		return nil, fmt.Errorf("telemetry: create %s: %w", DroppedMetricName, err)
	}
	failed, err := meter.Int64ObservableCounter(WriteErrorsMetricName,
		metric.WithUnit("{record}"),
		metric.WithDescription("Log records lost because the log file could not be written."))
	if err != nil {
		return nil, fmt.Errorf("telemetry: create %s: %w", WriteErrorsMetricName, err)
	}
	reg, err := meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(dropped, int64(a.Dropped()))
		o.ObserveInt64(failed, int64(a.WriteErrors()))
		return nil
	}, dropped, failed)
	if err != nil {
		return nil, fmt.Errorf("telemetry: register log writer metrics: %w", err)
	}
	return reg, nil
}

func (a *AsyncWriter) run() {
	defer close(a.done)
	for bp := range a.queue {
		if _, err := a.w.Write(*bp); err != nil {
			a.writeErrors.Add(1)
			if a.err == nil {
				a.err = err
			}
		}
		putBuffer(bp)
	}
	if c, ok := a.w.(io.Closer); ok {
		if err := c.Close(); err != nil && a.err == nil {
			a.err = err
		}
	}
}

func putBuffer(bp *[]byte) {
	if cap(*bp) <= maxPooledBuffer {
		bufPool.Put(bp)
	}
}
