package postgres

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/eventstore"
)

func TestTelemetry(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	s, _ := newTestStore(t, WithTracerProvider(tp), WithMeterProvider(mp))
	ctx := t.Context()

	if _, err := s.Append(ctx, "s", eventstore.NoStream, ev("a"), ev("b")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "s", eventstore.NoStream, ev("a"), ev("b")); err != nil { // idempotent
		t.Fatal(err)
	}
	var conflict *eventstore.VersionConflictError
	if _, err := s.Append(ctx, "s", eventstore.NoStream, ev("c")); !errors.As(err, &conflict) {
		t.Fatalf("Append() error = %v, want a *VersionConflictError", err)
	}
	if _, err := s.ReadStream(ctx, "s", 0, eventstore.Forwards, 10); err != nil {
		t.Fatal(err)
	}
	// A ReadAll outside any trace (a follower polling the log) makes no
	// span; one in a trace makes a child span.
	if _, err := s.ReadAll(ctx, 0, 10); err != nil {
		t.Fatal(err)
	}
	caller := trace.ContextWithRemoteSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled}))
	if _, err := s.ReadAll(caller, 0, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Version(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSnapshot(ctx, eventstore.Snapshot{StreamID: "s", Version: 2, Type: "state"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSnapshot(ctx, eventstore.Snapshot{StreamID: "s", Version: 3, Type: "state"}); !errors.Is(err, eventstore.ErrSnapshotAhead) {
		t.Fatalf("SaveSnapshot(ahead) error = %v, want ErrSnapshotAhead", err)
	}
	if _, found, err := s.LoadSnapshot(ctx, "s"); err != nil || !found {
		t.Fatalf("LoadSnapshot() = %v, %v, want a snapshot", found, err)
	}
	if err := s.DeleteStream(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Version(ctx, "s"); !errors.Is(err, eventstore.ErrStreamDeleted) {
		t.Fatalf("Version(deleted) error = %v, want ErrStreamDeleted", err)
	}

	spans := rec.Ended()
	var names []string
	for _, sp := range spans {
		names = append(names, sp.Name())
	}
	wantNames := []string{
		"eventstore.postgres append", "eventstore.postgres append", "eventstore.postgres append",
		"eventstore.postgres read_stream", "eventstore.postgres read_all", "eventstore.postgres version",
		"eventstore.postgres save_snapshot", "eventstore.postgres save_snapshot", "eventstore.postgres load_snapshot",
		"eventstore.postgres delete_stream", "eventstore.postgres version",
	}
	if diff := cmp.Diff(wantNames, names); diff != "" {
		t.Fatalf("span names mismatch (-want +got):\n%s", diff)
	}
	for i, want := range []string{eventstore.OutcomeOK, eventstore.OutcomeIdempotent, eventstore.OutcomeConflict} {
		attrs := map[attribute.Key]string{}
		for _, kv := range spans[i].Attributes() {
			attrs[kv.Key] = kv.Value.String()
		}
		for k, v := range map[attribute.Key]string{
			"db.system.name":        "postgresql",
			SchemaKey:               s.schema,
			eventstore.OperationKey: eventstore.OpAppend,
			eventstore.StreamKey:    "s",
			eventstore.OutcomeKey:   want,
		} {
			if attrs[k] != v {
				t.Errorf("append span %d: %s = %q, want %q", i, k, attrs[k], v)
			}
		}
	}

	for i, want := range map[int]string{6: eventstore.OutcomeOK, 7: eventstore.OutcomeError, 8: eventstore.OutcomeOK} {
		attrs := map[attribute.Key]string{}
		for _, kv := range spans[i].Attributes() {
			attrs[kv.Key] = kv.Value.String()
		}
		for k, v := range map[attribute.Key]string{
			"db.system.name":      "postgresql",
			SchemaKey:             s.schema,
			eventstore.StreamKey:  "s",
			eventstore.OutcomeKey: want,
		} {
			if attrs[k] != v {
				t.Errorf("span %d (%s): %s = %q, want %q", i, spans[i].Name(), k, attrs[k], v)
			}
		}
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					got[m.Name] += p.Value
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					op, _ := p.Attributes.Value(eventstore.OperationKey)
					o, _ := p.Attributes.Value(eventstore.OutcomeKey)
					if sys, _ := p.Attributes.Value("db.system.name"); sys.AsString() != "postgresql" {
						t.Errorf("%s point %v: db.system.name = %q, want postgresql", m.Name, p.Attributes, sys.AsString())
					}
					got[m.Name+"/"+op.AsString()+"/"+o.AsString()] += int64(p.Count)
				}
			}
		}
	}
	const d = eventstore.OperationDurationMetricName
	want := map[string]int64{
		eventstore.AppendedEventsMetricName: 2,
		eventstore.ConflictsMetricName:      1,
		d + "/append/ok":                    1,
		d + "/append/idempotent":            1,
		d + "/append/conflict":              1,
		d + "/read_stream/ok":               1,
		d + "/read_all/ok":                  2, // measured with or without a span
		d + "/version/ok":                   1,
		d + "/delete_stream/ok":             1,
		d + "/version/error":                1,
		d + "/save_snapshot/ok":             1,
		d + "/save_snapshot/error":          1,
		d + "/load_snapshot/ok":             1,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("metrics mismatch (-want +got):\n%s", diff)
	}
}
