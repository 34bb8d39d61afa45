package console_test

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/cairnhq/cairn/console"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// Example mounts the receiver and the UI on two test servers, exports one
// span over OTLP/HTTP and lists the services the console has seen.
func Example() {
	c := console.New(console.Options{})
	otlp := httptest.NewServer(c.OTLPHandler())
	defer otlp.Close()
	ui := httptest.NewServer(c.UIHandler())
	defer ui.Close()

	body, err := proto.Marshal(&coltracepb.ExportTraceServiceRequest{
		ResourceSpans: []*tracepb.ResourceSpans{{
			Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{{
				Key:   "service.name",
				Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "checkout"}},
			}}},
			ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{{
				TraceId:           bytes.Repeat([]byte{0x4b}, 16),
				SpanId:            bytes.Repeat([]byte{0x01}, 8),
				Name:              "POST /orders",
				StartTimeUnixNano: 1_700_000_000_000_000_000,
				EndTimeUnixNano:   1_700_000_000_025_000_000,
			}}}},
		}},
	})
	if err != nil {
		log.Fatal(err)
	}
	resp, err := http.Post(otlp.URL+"/v1/traces", "application/x-protobuf", bytes.NewReader(body))
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println("export:", resp.Status)

	resp, err = http.Get(ui.URL + "/api/services")
	if err != nil {
		log.Fatal(err)
	}
	services, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("services: %s", services)
	fmt.Println("spans stored:", c.Stats().Spans.Stored)
	// Output:
	// export: 200 OK
	// services: {"services":["checkout"]}
	// spans stored: 1
}

// ExampleOpen keeps the console's telemetry in a directory: what was
// accepted before Close is back after the next Open.
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "console-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	c, err := console.Open(console.Options{DataDir: dir})
	if err != nil {
		log.Fatal(err)
	}
	body, err := proto.Marshal(&coltracepb.ExportTraceServiceRequest{
		ResourceSpans: []*tracepb.ResourceSpans{{ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{{
			TraceId:           bytes.Repeat([]byte{0x4b}, 16),
			SpanId:            bytes.Repeat([]byte{0x01}, 8),
			Name:              "POST /orders",
			StartTimeUnixNano: 1_700_000_000_000_000_000,
			EndTimeUnixNano:   1_700_000_000_025_000_000,
		}}}}}},
	})
	if err != nil {
		log.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/v1/traces", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-protobuf")
	rec := httptest.NewRecorder()
	c.OTLPHandler().ServeHTTP(rec, req)
	fmt.Println("export:", rec.Code)
	if err := c.Close(); err != nil {
		log.Fatal(err)
	}

	c, err = console.Open(console.Options{DataDir: dir})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Println("spans after restart:", c.Stats().Spans.Stored)
	// Output:
	// export: 200
	// spans after restart: 1
}
