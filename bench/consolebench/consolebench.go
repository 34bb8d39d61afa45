// Package consolebench benchmarks trace search in cairn's console over
// 1,000,000 stored spans, and the same searches against Jaeger v2's memory
// store when bench/peers/build.sh has built Jaeger. The benchmarks live in
// its test file; this file holds the fixture that loads the spans.
package consolebench

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/cairnhq/cairn/bench/internal/otlpload"
	"github.com/cairnhq/cairn/console"
	"google.golang.org/protobuf/proto"
)

// Shape of the loaded data: Exports requests of TracesPerExport traces of
// SpansPerTrace spans, 1,000,000 spans in 125,000 traces.
const (
	SpansPerTrace   = 8
	TracesPerExport = 100
	Exports         = 1250
	TotalSpans      = SpansPerTrace * TracesPerExport * Exports
)

// Dataset is what the queries look for: an order.id and the id of its
// trace, taken from the middle of the load so that neither end of the
// store's arrival order favours it.
type Dataset struct {
	OrderID string
	TraceID string // 32 hex digits
	// Service is the service of that trace.
	Service string
	// LastOrderID is the order.id of a trace in the last export: once it
	// can be found, a peer that stores asynchronously holds every span.
	LastOrderID string
}

// Bodies returns the Exports protobuf-encoded OTLP/HTTP request bodies of
// the data set, and the Dataset they hold. Every body has fresh ids; the
// spans end at now, as if just received.
func Bodies() ([][]byte, Dataset, error) {
	gen := otlpload.NewGenerator(0, SpansPerTrace*TracesPerExport, SpansPerTrace)
	bodies := make([][]byte, Exports)
	var ds Dataset
	for i := range bodies {
		b, err := proto.Marshal(gen.Next(time.Now()))
		if err != nil {
			return nil, ds, fmt.Errorf("consolebench: marshal export %d: %w", i, err)
		}
		bodies[i] = b
		if i == Exports/2 {
			order, tid := gen.LastOrderID()
			ds.OrderID, ds.TraceID, ds.Service = order, hex.EncodeToString(tid), otlpload.Services[0]
		}
		if i == Exports-1 {
			ds.LastOrderID, _ = gen.LastOrderID()
		}
	}
	return bodies, ds, nil
}

// LoadConsole posts bodies to c's OTLP/HTTP handler, the receiver's real
// decode and store path, and fails on the first export not answered 200.
func LoadConsole(c *console.Console, bodies [][]byte) error {
	h := c.OTLPHandler()
	for i, b := range bodies {
		req := httptest.NewRequest(http.MethodPost, "/v1/traces", bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/x-protobuf")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			return fmt.Errorf("consolebench: export %d answered %d: %s", i, rec.Code, rec.Body)
		}
	}
	return nil
}
