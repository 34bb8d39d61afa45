package logfilebench

import (
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"gopkg.in/natefinch/lumberjack.v2"

	"github.com/cairnhq/cairn/telemetry"
)

// record is one JSON log line of the size the demo's order service writes.
var record = []byte(`{"time":"2026-11-25T19:07:19.451544029Z","level":"INFO","msg":"order placed",` +
	`"order_id":"9c1f6f1e0d6a4b59a4f1f0b2a5c3d7e8","customer_id":"customer-042","lines":2,"total":2598,` +
	`"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7"}` + "\n")

// newFile returns a rotating file with the demo's settings (16 MB, three
// backups) in a fresh directory.
func newFile(b *testing.B) (*lumberjack.Logger, string) {
	dir := b.TempDir()
	path := filepath.Join(dir, "app.log")
	return &lumberjack.Logger{Filename: path, MaxSize: 16, MaxBackups: 3}, dir
}

// written returns the bytes in the log file and its backups.
func written(b *testing.B, dir string) int64 {
	files, err := filepath.Glob(filepath.Join(dir, "app*.log"))
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			b.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}

// BenchmarkLogFileWrite is one Write of a log record as the caller sees it.
// Variants:
//
//   - lumberjack: straight into the rotating file; the caller waits for
//     the write system call (and for a rotation when one is due);
//   - async: through telemetry.AsyncWriter with the default queue of 8192
//     records in front of the same file; the caller only copies the record
//     into the queue, or drops it when the queue is full. drops/op is the
//     share of records dropped because the writer goroutine could not keep
//     up with a caller that does nothing but log;
//   - async-discard: AsyncWriter in front of io.Discard, a disk that is
//     never slow, so the queue rarely fills: the cost of handing a record
//     to the writer goroutine when it is not dropped.
func BenchmarkLogFileWrite(b *testing.B) {
	b.Run("variant=lumberjack", func(b *testing.B) {
		lj, dir := newFile(b)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := lj.Write(record); err != nil {
				b.Fatal(err)
			}
		}
		if err := lj.Close(); err != nil {
			b.Fatal(err)
		}
		if n := written(b, dir); n == 0 {
			b.Fatal("nothing written")
		}
		b.ReportMetric(0, "drops/op")
	})
	b.Run("variant=async", func(b *testing.B) {
		lj, dir := newFile(b)
		w := telemetry.NewAsyncWriter(lj, 0)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := w.Write(record); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		if err := w.Close(); err != nil { // drains the queue and closes lj
			b.Fatal(err)
		}
		dropped := w.Dropped()
		// Every record is either in the files or counted as dropped; the
		// files may hold less than the total when rotation removed an old
		// backup.
		if n := written(b, dir); n == 0 || dropped > uint64(b.N) {
			b.Fatalf("wrote %d bytes, dropped %d of %d records", n, dropped, b.N)
		}
		b.ReportMetric(float64(dropped)/float64(b.N), "drops/op")
	})
	b.Run("variant=async-discard", func(b *testing.B) {
		var sink countingWriter
		w := telemetry.NewAsyncWriter(&sink, 0)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := w.Write(record); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		dropped := w.Dropped()
		if got, want := sink.n.Load(), (uint64(b.N)-dropped)*uint64(len(record)); got != want {
			b.Fatalf("wrote %d bytes, want %d (%d records, %d dropped)", got, want, b.N, dropped)
		}
		b.ReportMetric(float64(dropped)/float64(b.N), "drops/op")
	})
}

// countingWriter discards what it is given and counts the bytes.
type countingWriter struct{ n atomic.Uint64 }

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n.Add(uint64(len(p)))
	return len(p), nil
}
