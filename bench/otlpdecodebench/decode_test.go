// Package otlpdecodebench compares decoders of OTLP/protobuf trace exports:
// google.golang.org/protobuf with the go.opentelemetry.io/proto/otlp types,
// which cairn's console uses, and the OpenTelemetry Collector's pdata,
// which the Collector and Jaeger v2 use. Both decode the same bytes: an
// export of 512 spans from the console benchmark's load generator.
//
//	bench/run.sh OTLPDecode 6
package otlpdecodebench

import (
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/cairnhq/cairn/bench/internal/otlpload"
)

func BenchmarkOTLPDecode(b *testing.B) {
	body, err := proto.Marshal(otlpload.NewGenerator(1, 512, 8).Next(time.Unix(1_700_000_000, 0)))
	if err != nil {
		b.Fatal(err)
	}
	spans := func(b *testing.B) {
		b.ReportMetric(float64(b.N)*512/b.Elapsed().Seconds(), "spans/s")
	}
	b.Run("variant=protobuf-go", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var req coltracepb.ExportTraceServiceRequest
			if err := proto.Unmarshal(body, &req); err != nil {
				b.Fatal(err)
			}
		}
		spans(b)
	})
	b.Run("variant=pdata", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			req := ptraceotlp.NewExportRequest()
			if err := req.UnmarshalProto(body); err != nil {
				b.Fatal(err)
			}
			if n := req.Traces().SpanCount(); n != 512 {
				b.Fatalf("decoded %d spans, want 512", n)
			}
		}
		spans(b)
	})
}
