package cqrs_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/cairnhq/cairn/cqrs"
)

type placeOrder struct {
	ID     string
	Amount int
}

func (c placeOrder) CommandID() string { return c.ID }

func (c placeOrder) Validate() error {
	if c.Amount <= 0 {
		return errors.New("amount must be positive")
	}
	return nil
}

type cancelOrder struct{ ID string }

func (c *cancelOrder) CommandID() string   { return c.ID }
func (c *cancelOrder) CommandName() string { return "orders.cancel" }

type orderTotal struct{ Order string }

func TestDispatch(t *testing.T) {
	bus := cqrs.NewCommandBus()
	var got []string
	cqrs.Handle(bus, func(_ context.Context, c placeOrder) error { got = append(got, "place "+c.ID); return nil })
	cqrs.Handle(bus, func(_ context.Context, c *cancelOrder) error { got = append(got, "cancel "+c.ID); return nil })
	if err := cqrs.Dispatch(t.Context(), bus, placeOrder{ID: "1", Amount: 1}); err != nil {
		t.Fatalf("Dispatch(placeOrder) = %v", err)
	}
	if err := cqrs.Dispatch(t.Context(), bus, &cancelOrder{ID: "2"}); err != nil {
		t.Fatalf("Dispatch(cancelOrder) = %v", err)
	}
	if want := "place 1,cancel 2"; strings.Join(got, ",") != want {
		t.Errorf("handled %q, want %q", strings.Join(got, ","), want)
	}
}

func TestDispatchErrors(t *testing.T) {
	bus := cqrs.NewCommandBus()
	err := cqrs.Dispatch(t.Context(), bus, placeOrder{ID: "1"})
	if !errors.Is(err, cqrs.ErrNoHandler) || !strings.Contains(err.Error(), "cqrs_test.placeOrder") {
		t.Errorf("Dispatch(unregistered) = %v, want ErrNoHandler naming cqrs_test.placeOrder", err)
	}
	errHandler := errors.New("refused")
	cqrs.Handle(bus, func(context.Context, placeOrder) error { return errHandler })
	if err := cqrs.Dispatch(t.Context(), bus, placeOrder{ID: "1"}); !errors.Is(err, errHandler) {
		t.Errorf("Dispatch() = %v, want %v", err, errHandler)
	}
	defer func() {
		r := recover()
		if r == nil || !strings.Contains(r.(string), "already has a handler") {
			t.Errorf("second Handle: recover() = %v, want a panic about a duplicate handler", r)
		}
	}()
	cqrs.Handle(bus, func(context.Context, placeOrder) error { return nil })
}

func TestAsk(t *testing.T) {
	qb := cqrs.NewQueryBus()
	if _, err := cqrs.Ask[orderTotal, int](t.Context(), qb, orderTotal{"1"}); !errors.Is(err, cqrs.ErrNoHandler) || !strings.Contains(err.Error(), "query cqrs_test.orderTotal") {
		t.Errorf("Ask(unregistered) = %v, want ErrNoHandler naming the query", err)
	}
	cqrs.HandleQuery(qb, func(_ context.Context, q orderTotal) (int, error) { return len(q.Order) * 10, nil })
	got, err := cqrs.Ask[orderTotal, int](t.Context(), qb, orderTotal{"abc"})
	if got != 30 || err != nil {
		t.Errorf("Ask() = %d, %v; want 30, nil", got, err)
	}
	if _, err := cqrs.Ask[orderTotal, string](t.Context(), qb, orderTotal{"abc"}); err == nil || !strings.Contains(err.Error(), "answers int, not string") {
		t.Errorf("Ask[..., string]() = %v, want a type mismatch error", err)
	}
}

func TestMiddlewareOrder(t *testing.T) {
	var trail []string
	mw := func(name string) cqrs.Middleware {
		return func(next cqrs.HandlerFunc) cqrs.HandlerFunc {
			return func(ctx context.Context, m cqrs.Message) (any, error) {
				trail = append(trail, name+">")
				res, err := next(ctx, m)
				trail = append(trail, "<"+name)
				return res, err
			}
		}
	}
	bus := cqrs.NewCommandBus(mw("a"), mw("b"))
	cqrs.Handle(bus, func(context.Context, placeOrder) error { trail = append(trail, "handler"); return nil })
	if err := cqrs.Dispatch(t.Context(), bus, placeOrder{ID: "1"}); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(trail, " "), "a> b> handler <b <a"; got != want {
		t.Errorf("trail = %q, want %q", got, want)
	}
}

func TestValidation(t *testing.T) {
	bus := cqrs.NewCommandBus(cqrs.Validation())
	ran := false
	cqrs.Handle(bus, func(context.Context, placeOrder) error { ran = true; return nil })
	err := cqrs.Dispatch(t.Context(), bus, placeOrder{ID: "1", Amount: 0})
	if !errors.Is(err, cqrs.ErrInvalidCommand) || !strings.Contains(err.Error(), "amount must be positive") {
		t.Errorf("Dispatch(invalid) = %v, want ErrInvalidCommand with the reason", err)
	}
	if ran {
		t.Error("handler ran for an invalid command")
	}
	if err := cqrs.Dispatch(t.Context(), bus, placeOrder{ID: "1", Amount: 1}); err != nil || !ran {
		t.Errorf("Dispatch(valid) = %v, ran %v; want nil, true", err, ran)
	}
}

func TestTelemetryMiddleware(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	metrics, err := cqrs.Metrics(mp)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	bus := cqrs.NewCommandBus(cqrs.Logging(logger), cqrs.Tracing(tp), metrics, cqrs.Validation())
	cqrs.Handle(bus, func(context.Context, placeOrder) error { return nil })
	_ = cqrs.Dispatch(t.Context(), bus, placeOrder{ID: "c1", Amount: 1})
	_ = cqrs.Dispatch(t.Context(), bus, placeOrder{ID: "c2"})

	spans := rec.Ended()
	if len(spans) != 2 || spans[0].Name() != "command cqrs_test.placeOrder" {
		t.Fatalf("spans %v, want two named %q", spans, "command cqrs_test.placeOrder")
	}
	attrs := attribute.NewSet(spans[0].Attributes()...)
	if v, _ := attrs.Value(cqrs.CommandIDKey); v.AsString() != "c1" {
		t.Errorf("span attribute %s = %q, want c1", cqrs.CommandIDKey, v.AsString())
	}
	if spans[1].Status().Code.String() != "Error" {
		t.Errorf("span of a refused command has status %v, want Error", spans[1].Status())
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	outcomes := map[string]uint64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != cqrs.CommandDurationMetricName {
				continue
			}
			for _, dp := range m.Data.(metricdata.Histogram[float64]).DataPoints {
				v, _ := dp.Attributes.Value(cqrs.OutcomeKey)
				outcomes[v.AsString()] += dp.Count
			}
		}
	}
	if outcomes[cqrs.OutcomeOK] != 1 || outcomes[cqrs.OutcomeInvalid] != 1 {
		t.Errorf("%s counts by outcome %v, want ok:1 invalid:1", cqrs.CommandDurationMetricName, outcomes)
	}

	out := logs.String()
	if !strings.Contains(out, "level=DEBUG msg=\"command handled\"") || !strings.Contains(out, "level=WARN msg=\"command failed\"") || !strings.Contains(out, "id=c2") {
		t.Errorf("logs = %q, want a DEBUG line for c1 and a WARN line for c2", out)
	}
}
