package telemetry_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/cairnhq/cairn/telemetry"
	"go.opentelemetry.io/otel/propagation"
)

// dropTime removes the time from console records so the output is stable.
func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// A service logs inside a request that arrived with W3C trace context: the
// console record carries the caller's trace and span ids.
func Example() {
	ctx := context.Background()
	tel, err := telemetry.Setup(ctx, telemetry.Config{
		ServiceName:     "order",
		TracesExporter:  telemetry.ExporterNone,
		MetricsExporter: telemetry.ExporterNone,
		LogsExporter:    telemetry.ExporterNone,
		LogFormat:       telemetry.LogFormatJSON,
		LogOutput:       os.Stdout,
		ReplaceAttr:     dropTime,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer tel.Shutdown(ctx)

	// What an incoming request's headers would carry.
	headers := propagation.HeaderCarrier{}
	headers.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	ctx = tel.Propagator().Extract(ctx, headers)

	tel.Logger().InfoContext(ctx, "order placed", "order", "o-1")
	tel.Logger().DebugContext(ctx, "not shown at the default Info level")
	// Output:
	// {"level":"INFO","msg":"order placed","order":"o-1","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7"}
}

// An operator raises the log level of a running service over the admin
// endpoint; the next debug record is written.
func ExampleTelemetry_AdminHandler() {
	ctx := context.Background()
	tel, err := telemetry.Setup(ctx, telemetry.Config{
		Disabled:    true,
		LogOutput:   os.Stdout,
		ReplaceAttr: dropTime,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer tel.Shutdown(ctx)
	admin := tel.AdminHandler()

	req := httptest.NewRequest(http.MethodPut, "/loglevel", strings.NewReader("debug"))
	rec := httptest.NewRecorder()
	admin.ServeHTTP(rec, req)
	fmt.Print(rec.Code, " ", rec.Body)

	tel.Logger().Debug("now visible")

	rec = httptest.NewRecorder()
	admin.ServeHTTP(rec, httptest.NewRequest(http.MethodPut, "/loglevel", strings.NewReader("loud")))
	fmt.Print(rec.Code, " ", rec.Body)
	// Output:
	// level=INFO msg="log level changed" from=INFO to=DEBUG
	// 200 {"level":"DEBUG"}
	// level=DEBUG msg="now visible"
	// level=WARN msg="admin request failed" method=PUT path=/loglevel status=400 error="400 bad log level \"loud\": want debug, info, warn, error or an integer"
	// 400 {"detail":"bad log level \"loud\": want debug, info, warn, error or an integer","status":400,"title":"Bad Request"}
}
