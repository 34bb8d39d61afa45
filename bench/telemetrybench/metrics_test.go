package telemetrybench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/cairnhq/cairn/internal/shop/order/adapters/httpapi"
	"github.com/cairnhq/cairn/internal/shop/order/app"
	"github.com/cairnhq/cairn/internal/shop/order/domain"
	"github.com/cairnhq/cairn/telemetry"
)

// memRepo is an in-memory app.Repository: the order service's metrics come
// from the use cases and the HTTP layer, not from the store, so SQLite is
// left out.
type memRepo struct {
	mu     sync.Mutex
	orders map[string]domain.Order
}

var _ app.Repository = (*memRepo)(nil)

func (r *memRepo) Save(_ context.Context, o domain.Order) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.orders[o.ID]; ok {
		return domain.ErrAlreadyExists
	}
	r.orders[o.ID] = o
	return nil
}

func (r *memRepo) Get(_ context.Context, id string) (domain.Order, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	o, ok := r.orders[id]
	if !ok {
		return domain.Order{}, domain.ErrNotFound
	}
	return o, nil
}

func (r *memRepo) List(context.Context, int) ([]domain.Order, error) { return nil, nil }

// demoLikeTelemetry builds what the demo's admin listener exposes: the order
// service's telemetry (sampled spans, so histograms carry exemplars; Go
// runtime metrics; the Prometheus exporter) after it has served placements,
// reads, a missing order and a bad request through telemetry.Handler, so
// every cairn.shop.* and http.server.* series the demo shows exists.
func demoLikeTelemetry(b *testing.B) *telemetry.Telemetry {
	b.Helper()
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{
		ServiceName:     "order",
		TracesExporter:  telemetry.ExporterNone,
		MetricsExporter: telemetry.ExporterNone,
		LogsExporter:    telemetry.ExporterNone,
		Sampler:         sdktrace.AlwaysSample(),
		SpanProcessors:  []sdktrace.SpanProcessor{sdktrace.NewBatchSpanProcessor(discardSpans{})},
		LogOutput:       io.Discard,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tel.Shutdown(context.Background()) })
	svc, err := app.New(&memRepo{orders: map[string]domain.Order{}}, app.Config{MeterProvider: tel.MeterProvider()})
	if err != nil {
		b.Fatal(err)
	}
	h := tel.Handler(httpapi.NewHandler(svc, nil), "order")
	do := func(method, target, body string, want int) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, target, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			b.Fatalf("%s %s = %d, want %d: %s", method, target, rec.Code, want, rec.Body)
		}
		return rec
	}
	for i := range 200 {
		body := fmt.Sprintf(`{"customer_id":"customer-%03d","lines":[{"sku":"SKU-%04d","quantity":%d,"unit_price":%d}]}`,
			i%100, i%50, 1+i%5, 199+i*37%9800)
		loc := do("POST", "/orders", body, http.StatusCreated).Header().Get("Location")
		do("GET", loc, "", http.StatusOK)
	}
	do("GET", "/orders/missing", "", http.StatusNotFound)
	do("POST", "/orders", `{"customer_id":"c","lines":[]}`, http.StatusBadRequest)
	return tel
}

// BenchmarkMetricsScrape is one Prometheus scrape of a demo-like order
// service. Variants:
//
//   - gather: Telemetry.Gatherer().Gather() alone, the collection from the
//     OpenTelemetry SDK into Prometheus metric families, without encoding;
//   - text: GET /metrics on the admin handler as Prometheus asks by
//     default, the text format 0.0.4;
//   - openmetrics: the same with Accept: application/openmetrics-text,
//     which adds exemplars.
func BenchmarkMetricsScrape(b *testing.B) {
	b.Run("variant=gather", func(b *testing.B) {
		g := demoLikeTelemetry(b).Gatherer()
		b.ReportAllocs()
		for b.Loop() {
			mfs, err := g.Gather()
			if err != nil || len(mfs) == 0 {
				b.Fatalf("Gather() = %d families, %v", len(mfs), err)
			}
		}
	})
	scrape := func(b *testing.B, accept, wantType string) {
		admin := demoLikeTelemetry(b).AdminHandler()
		req := httptest.NewRequest("GET", "/metrics", nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		var size int
		b.ReportAllocs()
		for b.Loop() {
			rec := httptest.NewRecorder()
			admin.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), wantType) ||
				!strings.Contains(rec.Body.String(), "cairn_shop_orders_placed_total") {
				b.Fatalf("GET /metrics = %d %q", rec.Code, rec.Header().Get("Content-Type"))
			}
			size = rec.Body.Len()
		}
		b.ReportMetric(float64(size), "B/scrape")
	}
	b.Run("variant=text", func(b *testing.B) { scrape(b, "", "text/plain; version=0.0.4") })
	b.Run("variant=openmetrics", func(b *testing.B) {
		scrape(b, "application/openmetrics-text; version=1.0.0", "application/openmetrics-text")
	})
}
