package sqlitestore_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	sqlitestore "github.com/cairnhq/cairn/internal/shop/order/adapters/sqlite"
	"github.com/cairnhq/cairn/internal/shop/order/domain"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func open(t *testing.T, path string, tp trace.TracerProvider) *sqlitestore.Store {
	t.Helper()
	s, err := sqlitestore.Open(t.Context(), path, tp)
	if err != nil {
		t.Fatalf("Open(%q) error = %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close() error = %v", err)
		}
	})
	return s
}

func mustOrder(t *testing.T, id string, at time.Time, lines ...domain.Line) domain.Order {
	t.Helper()
	if len(lines) == 0 {
		lines = []domain.Line{{SKU: "SKU-1", Quantity: 2, UnitPrice: 1299}, {SKU: "SKU-2", Quantity: 1, UnitPrice: 5}}
	}
	o, err := domain.NewOrder(id, "c-"+id, lines, at)
	if err != nil {
		t.Fatalf("NewOrder(%s) error = %v", id, err)
	}
	return o
}

func TestRoundTrip(t *testing.T) {
	for _, path := range []string{"file", sqlitestore.MemoryPath} {
		t.Run(path, func(t *testing.T) {
			if path == "file" {
				path = filepath.Join(t.TempDir(), "orders.db")
			}
			s := open(t, path, nil)
			a := mustOrder(t, "a", base)
			b := mustOrder(t, "b", base.Add(time.Second), domain.Line{SKU: "X", Quantity: 3, UnitPrice: 7})
			c := mustOrder(t, "c", base.Add(time.Second)) // same time as b, saved later
			for _, o := range []domain.Order{a, b, c} {
				if err := s.Save(t.Context(), o); err != nil {
					t.Fatalf("Save(%s) error = %v", o.ID, err)
				}
			}
			got, err := s.Get(t.Context(), "b")
			if err != nil {
				t.Fatalf("Get(b) error = %v", err)
			}
			if diff := cmp.Diff(b, got); diff != "" {
				t.Errorf("Get(b) mismatch (-want +got):\n%s", diff)
			}
			list, err := s.List(t.Context(), 10)
			if err != nil {
				t.Fatalf("List(10) error = %v", err)
			}
			if diff := cmp.Diff([]domain.Order{c, b, a}, list); diff != "" {
				t.Errorf("List(10) mismatch (-want +got):\n%s", diff)
			}
			list, err = s.List(t.Context(), 2)
			if err != nil || len(list) != 2 || list[0].ID != "c" || list[1].ID != "b" {
				t.Errorf("List(2) = %v, %v, want [c b]", list, err)
			}
		})
	}
}

func TestEmptyAndErrors(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "orders.db"), nil)
	list, err := s.List(t.Context(), 10)
	if err != nil || list == nil || len(list) != 0 {
		t.Errorf("List on empty store = %#v, %v, want [], nil", list, err)
	}
	if _, err := s.Get(t.Context(), "missing"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("Get(missing) error = %v, want ErrNotFound", err)
	}
	if _, err := s.List(t.Context(), 0); err == nil {
		t.Errorf("List(0) error = nil, want error")
	}
	o := mustOrder(t, "dup", base)
	if err := s.Save(t.Context(), o); err != nil {
		t.Fatalf("Save(dup) error = %v", err)
	}
	if err := s.Save(t.Context(), o); !errors.Is(err, domain.ErrAlreadyExists) {
		t.Errorf("Save(dup) again error = %v, want ErrAlreadyExists", err)
	}
	// The failed save left nothing behind: the stored order is intact.
	if got, err := s.Get(t.Context(), "dup"); err != nil || !cmp.Equal(got, o) {
		t.Errorf("Get(dup) = %v, %v, want %v", got, err, o)
	}
	for _, bad := range []string{"", "x.db?mode=ro"} {
		if s, err := sqlitestore.Open(t.Context(), bad, nil); err == nil {
			s.Close()
			t.Errorf("Open(%q) error = nil, want error", bad)
		}
	}
}

func TestReopenKeepsDataAndSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "orders.db")
	s, err := sqlitestore.Open(t.Context(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	o := mustOrder(t, "kept", base)
	if err := s.Save(t.Context(), o); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, nil) // migrations must be a no-op now
	if got, err := s.Get(t.Context(), "kept"); err != nil || !cmp.Equal(got, o) {
		t.Errorf("Get(kept) after reopen = %v, %v, want %v", got, err, o)
	}
}

// TestConcurrentWriters proves that concurrent saves, mixed with reads, never
// fail with SQLITE_BUSY and that every order lands.
func TestConcurrentWriters(t *testing.T) {
	const writers, perWriter = 8, 50
	s := open(t, filepath.Join(t.TempDir(), "orders.db"), nil)

	var wg sync.WaitGroup
	errs := make(chan error, writers*perWriter*2)
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				o := mustOrder(t, fmt.Sprintf("w%d-%d", w, i), base.Add(time.Duration(i)*time.Millisecond))
				if err := s.Save(t.Context(), o); err != nil {
					errs <- err
					continue
				}
				if _, err := s.Get(t.Context(), o.ID); err != nil {
					errs <- err
				}
				if i%10 == 0 {
					if _, err := s.List(t.Context(), 20); err != nil {
						errs <- err
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent call error = %v", err)
	}
	all, err := s.List(t.Context(), writers*perWriter+10)
	if err != nil {
		t.Fatalf("List error = %v", err)
	}
	if len(all) != writers*perWriter {
		t.Errorf("List returned %d orders, want %d", len(all), writers*perWriter)
	}
	for _, o := range all {
		if len(o.Lines) != 2 {
			t.Errorf("order %s has %d lines, want 2", o.ID, len(o.Lines))
		}
	}
}

func TestSpans(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	s := open(t, filepath.Join(t.TempDir(), "orders.db"), tp)

	ctx, parent := tp.Tracer("test").Start(t.Context(), "parent")
	o := mustOrder(t, "o1", base)
	if err := s.Save(ctx, o); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "o1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "missing"); err == nil {
		t.Fatal("Get(missing) error = nil")
	}
	if _, err := s.List(ctx, 5); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(ctx, o); err == nil {
		t.Fatal("Save(duplicate) error = nil")
	}
	parent.End()

	type want struct {
		name, op string
		status   codes.Code
	}
	wants := []want{
		{"INSERT orders", "INSERT", codes.Unset},
		{"SELECT orders", "SELECT", codes.Unset},
		{"SELECT orders", "SELECT", codes.Unset}, // not found is an answer, not an error
		{"SELECT orders", "SELECT", codes.Unset},
		{"INSERT orders", "INSERT", codes.Error},
	}
	spans := exp.GetSpans()
	if len(spans) != len(wants)+1 {
		t.Fatalf("got %d spans, want %d", len(spans), len(wants)+1)
	}
	for i, w := range wants {
		sp := spans[i]
		if sp.Name != w.name || sp.SpanKind != trace.SpanKindClient || sp.Status.Code != w.status {
			t.Errorf("span %d = %q %v %v, want %q client %v", i, sp.Name, sp.SpanKind, sp.Status.Code, w.name, w.status)
		}
		if sp.Parent.SpanID() != parent.SpanContext().SpanID() {
			t.Errorf("span %d parent = %s, want %s", i, sp.Parent.SpanID(), parent.SpanContext().SpanID())
		}
		attrs := map[attribute.Key]string{}
		for _, kv := range sp.Attributes {
			attrs[kv.Key] = kv.Value.String()
		}
		for k, v := range map[attribute.Key]string{
			"db.system.name":     "sqlite",
			"db.operation.name":  w.op,
			"db.collection.name": "orders",
		} {
			if attrs[k] != v {
				t.Errorf("span %d %s = %q, want %q", i, k, attrs[k], v)
			}
		}
		if q := attrs["db.query.text"]; q == "" || !containsAll(q, w.op, "?") {
			t.Errorf("span %d db.query.text = %q, want parameterized %s", i, q, w.op)
		}
		if w.status == codes.Error {
			if len(sp.Events) == 0 || sp.Events[0].Name != "exception" {
				t.Errorf("span %d events = %v, want an exception event", i, sp.Events)
			}
			if attrs["db.response.status_code"] != "2067" {
				t.Errorf("span %d db.response.status_code = %q, want 2067 (SQLITE_CONSTRAINT_UNIQUE)", i, attrs["db.response.status_code"])
			}
			if attrs["error.type"] == "" {
				t.Errorf("span %d has no error.type", i)
			}
		}
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
