package sqlitestore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/eventstore"
	sqlitestore "github.com/cairnhq/cairn/eventstore/sqlite"
)

func open(t *testing.T, path string, opts ...sqlitestore.Option) *sqlitestore.Store {
	t.Helper()
	s, err := sqlitestore.Open(t.Context(), path, opts...)
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

func tempDB(t *testing.T) string { return filepath.Join(t.TempDir(), "events.db") }

func ev(id string) eventstore.Event {
	return eventstore.Event{ID: id, Type: "thing.happened", Data: []byte(`{"id":"` + id + `"}`)}
}

func mustAppend(t *testing.T, s eventstore.Store, stream string, expected eventstore.ExpectedVersion, events ...eventstore.Event) eventstore.AppendResult {
	t.Helper()
	res, err := s.Append(t.Context(), stream, expected, events...)
	if err != nil {
		t.Fatalf("Append(%s, %s) error = %v", stream, expected, err)
	}
	return res
}

func TestRoundTrip(t *testing.T) {
	for _, path := range []string{"file", sqlitestore.MemoryPath} {
		t.Run(path, func(t *testing.T) {
			if path == "file" {
				path = tempDB(t)
			}
			s := open(t, path)
			in := []eventstore.Event{
				{
					ID: "e1", Type: "order.placed", SchemaVersion: 2, Data: []byte{0, 1, 2, 0xff},
					Metadata: eventstore.Metadata{
						CorrelationID: "c", CausationID: "cmd", TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
						TraceState: "k=v", Extra: map[string]string{"tenant": "t1", "": "empty key"},
					},
				},
				{ID: "e2", Type: "order.paid"}, // no data, schema version 0
				{ID: "e3", Type: "order.shipped", Data: []byte{}, Metadata: eventstore.Metadata{Extra: map[string]string{}}}, // empty, normalised
			}
			before := time.Now()
			res := mustAppend(t, s, "order-1", eventstore.NoStream, in...)
			after := time.Now()
			if res.NextExpectedVersion != 3 || res.LastPosition-res.FirstPosition != 2 || res.FirstPosition < 1 {
				t.Errorf("Append() = %+v, want version 3 and three consecutive positions", res)
			}

			got, err := s.ReadStream(t.Context(), "order-1", 0, eventstore.Forwards, 10)
			if err != nil {
				t.Fatalf("ReadStream() error = %v", err)
			}
			want := make([]eventstore.RecordedEvent, len(in))
			for i, e := range in {
				if e.SchemaVersion == 0 {
					e.SchemaVersion = 1
				}
				if len(e.Data) == 0 {
					e.Data = nil
				}
				if len(e.Metadata.Extra) == 0 {
					e.Metadata.Extra = nil
				}
				want[i] = eventstore.RecordedEvent{Event: e, StreamID: "order-1", Version: int64(i + 1), Position: res.FirstPosition + eventstore.Position(i)}
			}
			if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(eventstore.RecordedEvent{}, "RecordedAt")); diff != "" {
				t.Errorf("ReadStream() mismatch (-want +got):\n%s", diff)
			}
			for _, e := range got {
				if e.RecordedAt.Location() != time.UTC {
					t.Errorf("RecordedAt location = %v, want UTC", e.RecordedAt.Location())
				}
				if e.RecordedAt.Before(before.Truncate(time.Microsecond)) || e.RecordedAt.After(after) {
					t.Errorf("RecordedAt = %v, want between %v and %v", e.RecordedAt, before, after)
				}
			}

			all, err := s.ReadAll(t.Context(), 0, 10)
			if err != nil {
				t.Fatalf("ReadAll() error = %v", err)
			}
			if diff := cmp.Diff(got, all); diff != "" {
				t.Errorf("ReadAll() differs from ReadStream() (-stream +all):\n%s", diff)
			}
			v, err := s.Version(t.Context(), "order-1")
			if v != 3 || err != nil {
				t.Errorf("Version() = %d, %v, want 3, nil", v, err)
			}
			v, err = s.Version(t.Context(), "none")
			if v != 0 || err != nil {
				t.Errorf("Version(none) = %d, %v, want 0, nil", v, err)
			}
		})
	}
}

func TestReopen(t *testing.T) {
	path := tempDB(t)
	s1, err := sqlitestore.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s1, "s", eventstore.NoStream, ev("a"), ev("b"))
	first, err := s1.ReadAll(t.Context(), 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if err := s1.Close(); err != nil {
		t.Fatalf("Close() error = %v", err)
	}
	s2 := open(t, path)
	second, err := s2.ReadAll(t.Context(), 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("ReadAll() after reopening mismatch (-before +after):\n%s", diff) // RecordedAt compared exactly
	}
	res := mustAppend(t, s2, "s", eventstore.Exact(2), ev("c"))
	if res.NextExpectedVersion != 3 || res.FirstPosition <= second[1].Position {
		t.Errorf("Append() after reopening = %+v, want version 3 after position %d", res, second[1].Position)
	}
}

func TestOpenErrors(t *testing.T) {
	for _, path := range []string{"", "x.db?mode=ro", filepath.Join(t.TempDir(), "missing", "dir", "x.db")} {
		if s, err := sqlitestore.Open(t.Context(), path); err == nil {
			s.Close()
			t.Errorf("Open(%q) error = nil, want an error", path)
		}
	}
}

func TestExpectedVersion(t *testing.T) {
	tests := []struct {
		name     string
		existing int // events in the stream before the append
		expected eventstore.ExpectedVersion
		wantErr  bool
	}{
		{"any on new", 0, eventstore.Any, false},
		{"any on existing", 2, eventstore.Any, false},
		{"no stream on new", 0, eventstore.NoStream, false},
		{"no stream on existing", 1, eventstore.NoStream, true},
		{"stream exists on new", 0, eventstore.StreamExists, true},
		{"stream exists on existing", 1, eventstore.StreamExists, false},
		{"exact match", 2, eventstore.Exact(2), false},
		{"exact behind", 2, eventstore.Exact(1), true},
		{"exact ahead", 2, eventstore.Exact(3), true},
		{"exact on new", 0, eventstore.Exact(1), true},
	}
	s := open(t, sqlitestore.MemoryPath)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream := fmt.Sprintf("s-%d", i)
			for j := range tt.existing {
				mustAppend(t, s, stream, eventstore.Any, ev(fmt.Sprintf("%s-old-%d", stream, j)))
			}
			res, err := s.Append(t.Context(), stream, tt.expected, ev(stream+"-new"))
			if !tt.wantErr {
				if err != nil || res.NextExpectedVersion != int64(tt.existing+1) {
					t.Errorf("Append(%s) = %+v, %v, want version %d, nil", tt.expected, res, err, tt.existing+1)
				}
				return
			}
			var ce *eventstore.VersionConflictError
			if !errors.As(err, &ce) || !errors.Is(err, eventstore.ErrVersionConflict) {
				t.Fatalf("Append(%s) error = %v, want a *VersionConflictError", tt.expected, err)
			}
			want := eventstore.VersionConflictError{Stream: stream, Expected: tt.expected, Actual: int64(tt.existing)}
			if *ce != want {
				t.Errorf("Append(%s) error = %+v, want %+v", tt.expected, *ce, want)
			}
			if v, _ := s.Version(t.Context(), stream); v != int64(tt.existing) {
				t.Errorf("Version() after conflict = %d, want %d", v, tt.existing)
			}
		})
	}
}

func TestInvalid(t *testing.T) {
	s := open(t, sqlitestore.MemoryPath)
	tests := []struct {
		name     string
		stream   string
		expected eventstore.ExpectedVersion
		events   []eventstore.Event
	}{
		{"no stream", "", eventstore.Any, []eventstore.Event{ev("a")}},
		{"no events", "s", eventstore.Any, nil},
		{"no id", "s", eventstore.Any, []eventstore.Event{{Type: "t"}}},
		{"no type", "s", eventstore.Any, []eventstore.Event{{ID: "x"}}},
		{"repeated id", "s", eventstore.Any, []eventstore.Event{ev("a"), ev("a")}},
		{"too big", "s", eventstore.Any, []eventstore.Event{{ID: "x", Type: "t", Data: make([]byte, eventstore.MaxEventSize+1)}}},
		{"metadata not UTF-8", "s", eventstore.Any, []eventstore.Event{{ID: "x", Type: "t", Metadata: eventstore.Metadata{CausationID: "\xff"}}}},
		{"extra not UTF-8", "s", eventstore.Any, []eventstore.Event{{ID: "x", Type: "t", Metadata: eventstore.Metadata{Extra: map[string]string{"k": "\xfe"}}}}},
		{"bad expected version", "s", eventstore.ExpectedVersion(-3), []eventstore.Event{ev("a")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Append(t.Context(), tt.stream, tt.expected, tt.events...)
			if !errors.Is(err, eventstore.ErrInvalidEvent) {
				t.Errorf("Append() error = %v, want ErrInvalidEvent", err)
			}
		})
	}
	if all, _ := s.ReadAll(t.Context(), 0, 10); len(all) != 0 {
		t.Errorf("ReadAll() after invalid appends = %d events, want 0", len(all))
	}
	for _, limit := range []int{0, -1} {
		if got, err := s.ReadAll(t.Context(), 0, limit); err != nil || got == nil || len(got) != 0 {
			t.Errorf("ReadAll(limit %d) = %v, %v, want an empty slice, nil", limit, got, err)
		}
		if got, err := s.ReadStream(t.Context(), "s", 0, eventstore.Forwards, limit); err != nil || got == nil || len(got) != 0 {
			t.Errorf("ReadStream(limit %d) = %v, %v, want an empty slice, nil", limit, got, err)
		}
	}
	if _, err := s.ReadStream(t.Context(), "s", 0, eventstore.Direction(7), 1); err == nil {
		t.Error("ReadStream(direction 7) error = nil, want an error")
	}
}

func TestIdempotency(t *testing.T) {
	s := open(t, tempDB(t))
	mustAppend(t, s, "other", eventstore.NoStream, ev("o1"))
	orig := mustAppend(t, s, "s", eventstore.NoStream, ev("a"), ev("b"), ev("c"))
	mustAppend(t, s, "s", eventstore.Exact(3), ev("d")) // the stream moves on

	t.Run("same append", func(t *testing.T) {
		for _, expected := range []eventstore.ExpectedVersion{eventstore.NoStream, eventstore.Any, eventstore.Exact(3)} {
			got, err := s.Append(t.Context(), "s", expected, ev("a"), ev("b"), ev("c"))
			if err != nil || got != orig {
				t.Errorf("Append(retry, %s) = %+v, %v, want %+v, nil", expected, got, err, orig)
			}
		}
	})
	t.Run("leading part", func(t *testing.T) {
		got, err := s.Append(t.Context(), "s", eventstore.NoStream, ev("a"), ev("b"))
		want := eventstore.AppendResult{NextExpectedVersion: 2, FirstPosition: orig.FirstPosition, LastPosition: orig.FirstPosition + 1}
		if err != nil || got != want {
			t.Errorf("Append(a, b) = %+v, %v, want %+v, nil", got, err, want)
		}
	})
	dups := []struct {
		name   string
		stream string
		events []eventstore.Event
	}{
		{"other data", "s", []eventstore.Event{{ID: "a", Type: "thing.happened", Data: []byte("x")}}},
		{"other type", "s", []eventstore.Event{{ID: "a", Type: "other", Data: ev("a").Data}}},
		{"other schema version", "s", []eventstore.Event{{ID: "a", Type: "thing.happened", SchemaVersion: 2, Data: ev("a").Data}}},
		{"other stream", "s2", []eventstore.Event{ev("a")}},
		{"partly new", "s", []eventstore.Event{ev("c"), ev("new")}},
		{"new then stored", "s", []eventstore.Event{ev("new"), ev("d")}},
		{"out of order", "s", []eventstore.Event{ev("b"), ev("a")}},
		{"not consecutive", "s", []eventstore.Event{ev("a"), ev("c")}},
	}
	for _, tt := range dups {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Append(t.Context(), tt.stream, eventstore.Any, tt.events...)
			if !errors.Is(err, eventstore.ErrDuplicateEvent) {
				t.Fatalf("Append() error = %v, want ErrDuplicateEvent", err)
			}
		})
	}
	t.Run("ID not UTF-8", func(t *testing.T) {
		e := eventstore.Event{ID: "bad\xff", Type: "t"}
		mustAppend(t, s, "utf", eventstore.NoStream, e)
		_, err := s.Append(t.Context(), "utf2", eventstore.Any, e)
		if !errors.Is(err, eventstore.ErrDuplicateEvent) {
			t.Errorf("Append(stored ID not UTF-8, other stream) error = %v, want ErrDuplicateEvent", err)
		}
		res, err := s.Append(t.Context(), "utf", eventstore.NoStream, e)
		if err != nil || res.NextExpectedVersion != 1 {
			t.Errorf("Append(stored ID not UTF-8, retry) = %+v, %v, want version 1, nil", res, err)
		}
	})
	if v, _ := s.Version(t.Context(), "s"); v != 4 {
		t.Errorf("Version(s) = %d, want 4", v)
	}
	if all, _ := s.ReadAll(t.Context(), 0, 100); len(all) != 6 {
		t.Errorf("ReadAll() = %d events, want 6", len(all))
	}
}

func TestReadStream(t *testing.T) {
	s := open(t, tempDB(t))
	for i := 1; i <= 5; i++ {
		mustAppend(t, s, "s", eventstore.Any, ev(fmt.Sprint("s", i)))
		mustAppend(t, s, "t", eventstore.Any, ev(fmt.Sprint("t", i)))
	}
	tests := []struct {
		from  int64
		dir   eventstore.Direction
		limit int
		want  []int64
	}{
		{0, eventstore.Forwards, 10, []int64{1, 2, 3, 4, 5}},
		{1, eventstore.Forwards, 2, []int64{1, 2}},
		{4, eventstore.Forwards, 10, []int64{4, 5}},
		{6, eventstore.Forwards, 10, []int64{}},
		{0, eventstore.Backwards, 10, []int64{5, 4, 3, 2, 1}},
		{0, eventstore.Backwards, 2, []int64{5, 4}},
		{3, eventstore.Backwards, 10, []int64{3, 2, 1}},
		{9, eventstore.Backwards, 1, []int64{5}},
		{-1, eventstore.Forwards, 2, []int64{1, 2}},
		{-1, eventstore.Backwards, 2, []int64{5, 4}},
		{0, eventstore.Forwards, 0, []int64{}},
	}
	for _, tt := range tests {
		got, err := s.ReadStream(t.Context(), "s", tt.from, tt.dir, tt.limit)
		if err != nil {
			t.Fatalf("ReadStream(%d, %d, %d) error = %v", tt.from, tt.dir, tt.limit, err)
		}
		versions := []int64{}
		for _, e := range got {
			if e.StreamID != "s" {
				t.Errorf("ReadStream(s) returned an event of %s", e.StreamID)
			}
			versions = append(versions, e.Version)
		}
		if diff := cmp.Diff(tt.want, versions); diff != "" {
			t.Errorf("ReadStream(%d, %d, %d) versions mismatch (-want +got):\n%s", tt.from, tt.dir, tt.limit, diff)
		}
	}
	got, err := s.ReadStream(t.Context(), "none", 0, eventstore.Forwards, 10)
	if err != nil || got == nil || len(got) != 0 {
		t.Errorf("ReadStream(none) = %v, %v, want an empty slice, nil", got, err)
	}
}

func TestReadAllPaging(t *testing.T) {
	s := open(t, tempDB(t))
	for i := range 10 {
		mustAppend(t, s, fmt.Sprint("s", i%3), eventstore.Any, ev(fmt.Sprint(i)), ev(fmt.Sprint(i, "b")))
	}
	var after eventstore.Position
	var n int
	for {
		page, err := s.ReadAll(t.Context(), after, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		if len(page) > 3 {
			t.Fatalf("ReadAll(limit 3) = %d events", len(page))
		}
		for _, e := range page {
			if e.Position <= after {
				t.Fatalf("ReadAll() position %d after %d", e.Position, after)
			}
			after = e.Position
			n++
		}
	}
	if n != 20 {
		t.Errorf("ReadAll() pages = %d events, want 20", n)
	}
}

func TestDeleteStream(t *testing.T) {
	s := open(t, tempDB(t))
	mustAppend(t, s, "s", eventstore.NoStream, ev("a"), ev("b"))
	mustAppend(t, s, "keep", eventstore.NoStream, ev("k"))
	if err := s.DeleteStream(t.Context(), "s"); err != nil {
		t.Fatalf("DeleteStream() error = %v", err)
	}
	if err := s.DeleteStream(t.Context(), "s"); err != nil {
		t.Errorf("DeleteStream() again error = %v, want nil", err)
	}
	if _, err := s.ReadStream(t.Context(), "s", 0, eventstore.Forwards, 10); !errors.Is(err, eventstore.ErrStreamDeleted) {
		t.Errorf("ReadStream(deleted) error = %v, want ErrStreamDeleted", err)
	}
	if _, err := s.Append(t.Context(), "s", eventstore.Any, ev("c")); !errors.Is(err, eventstore.ErrStreamDeleted) {
		t.Errorf("Append(deleted) error = %v, want ErrStreamDeleted", err)
	}
	if _, err := s.Append(t.Context(), "s", eventstore.Any, ev("a"), ev("b")); !errors.Is(err, eventstore.ErrStreamDeleted) {
		t.Errorf("Append(deleted, retry) error = %v, want ErrStreamDeleted", err)
	}
	if _, err := s.Version(t.Context(), "s"); !errors.Is(err, eventstore.ErrStreamDeleted) {
		t.Errorf("Version(deleted) error = %v, want ErrStreamDeleted", err)
	}
	if _, err := s.Append(t.Context(), "other", eventstore.Any, ev("a")); !errors.Is(err, eventstore.ErrDuplicateEvent) {
		t.Errorf("Append(ID of a deleted event) error = %v, want ErrDuplicateEvent", err)
	}
	all, err := s.ReadAll(t.Context(), 0, 10)
	if err != nil || len(all) != 3 {
		t.Errorf("ReadAll() = %d events, %v, want 3 (deleted events stay in the log)", len(all), err)
	}
	if v, err := s.Version(t.Context(), "keep"); v != 1 || err != nil {
		t.Errorf("Version(keep) = %d, %v, want 1, nil", v, err)
	}

	if err := s.DeleteStream(t.Context(), "never"); err != nil {
		t.Fatalf("DeleteStream(never) error = %v", err)
	}
	if _, err := s.Append(t.Context(), "never", eventstore.NoStream, ev("n")); !errors.Is(err, eventstore.ErrStreamDeleted) {
		t.Errorf("Append(never, after delete) error = %v, want ErrStreamDeleted", err)
	}
}

func TestContextCanceled(t *testing.T) {
	s := open(t, tempDB(t))
	mustAppend(t, s, "s", eventstore.NoStream, ev("a"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Append(ctx, "s", eventstore.Any, ev("b")); !errors.Is(err, context.Canceled) {
		t.Errorf("Append(canceled) error = %v, want context.Canceled", err)
	}
	if _, err := s.ReadStream(ctx, "s", 0, eventstore.Forwards, 10); !errors.Is(err, context.Canceled) {
		t.Errorf("ReadStream(canceled) error = %v, want context.Canceled", err)
	}
	if _, err := s.ReadAll(ctx, 0, 10); !errors.Is(err, context.Canceled) {
		t.Errorf("ReadAll(canceled) error = %v, want context.Canceled", err)
	}
	if _, err := s.Version(ctx, "s"); !errors.Is(err, context.Canceled) {
		t.Errorf("Version(canceled) error = %v, want context.Canceled", err)
	}
	if err := s.DeleteStream(ctx, "s"); !errors.Is(err, context.Canceled) {
		t.Errorf("DeleteStream(canceled) error = %v, want context.Canceled", err)
	}
	if v, err := s.Version(t.Context(), "s"); v != 1 || err != nil {
		t.Errorf("Version() = %d, %v, want 1, nil", v, err)
	}
}

// TestConcurrent has 16 goroutines append to one stream with optimistic
// retries and to their own streams, while a reader follows the global log.
// Exactly one append per version wins, and the follower sees every event, in
// order, without gaps.
func TestConcurrent(t *testing.T) {
	for _, path := range []string{"file", sqlitestore.MemoryPath} {
		t.Run(path, func(t *testing.T) {
			if path == "file" {
				path = tempDB(t)
			}
			s := open(t, path)
			const writers, perWriter = 16, 8
			ctx := t.Context()

			done := make(chan struct{})
			followed := make(chan []eventstore.RecordedEvent, 1)
			go func() { // follower: exits when done is closed and it has caught up
				var seen []eventstore.RecordedEvent
				var after eventstore.Position
				finished := false
				for {
					page, err := s.ReadAll(ctx, after, 7)
					if err != nil {
						t.Errorf("ReadAll() error = %v", err)
						break
					}
					for _, e := range page {
						if e.Position <= after {
							t.Errorf("ReadAll() position %d after %d", e.Position, after)
						}
						after = e.Position
					}
					seen = append(seen, page...)
					if len(page) == 0 {
						if finished {
							break
						}
						select {
						case <-done:
							finished = true
						default:
						}
					}
				}
				followed <- seen
			}()

			var wg sync.WaitGroup
			var mu sync.Mutex
			conflicts := 0
			for w := range writers {
				wg.Go(func() {
					for i := range perWriter {
						id := fmt.Sprintf("w%d-%d", w, i)
						if _, err := s.Append(ctx, fmt.Sprint("own-", w), eventstore.Exact(int64(i)), ev(id+"-own")); err != nil {
							t.Errorf("Append(own-%d) error = %v", w, err)
							return
						}
						for {
							v, err := s.Version(ctx, "shared")
							if err != nil {
								t.Errorf("Version() error = %v", err)
								return
							}
							_, err = s.Append(ctx, "shared", eventstore.Exact(v), ev(id))
							if err == nil {
								break
							}
							if !errors.Is(err, eventstore.ErrVersionConflict) {
								t.Errorf("Append(shared) error = %v", err)
								return
							}
							mu.Lock()
							conflicts++
							mu.Unlock()
						}
					}
				})
			}
			wg.Wait()
			close(done)
			seen := <-followed
			t.Logf("%d conflicts", conflicts)

			shared, err := s.ReadStream(ctx, "shared", 0, eventstore.Forwards, 10000)
			if err != nil {
				t.Fatal(err)
			}
			if len(shared) != writers*perWriter {
				t.Fatalf("shared stream has %d events, want %d", len(shared), writers*perWriter)
			}
			for i, e := range shared {
				if e.Version != int64(i+1) {
					t.Fatalf("shared event %d has version %d", i, e.Version)
				}
			}
			all, err := s.ReadAll(ctx, 0, 10000)
			if err != nil {
				t.Fatal(err)
			}
			if len(all) != 2*writers*perWriter {
				t.Errorf("ReadAll() = %d events, want %d", len(all), 2*writers*perWriter)
			}
			if diff := cmp.Diff(all, seen); diff != "" {
				t.Errorf("follower saw other events than ReadAll (-all +followed):\n%s", diff)
			}
		})
	}
}

func TestTelemetry(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	s := open(t, sqlitestore.MemoryPath, sqlitestore.WithTracerProvider(tp), sqlitestore.WithMeterProvider(mp))

	mustAppend(t, s, "s", eventstore.NoStream, ev("a"), ev("b"))
	mustAppend(t, s, "s", eventstore.NoStream, ev("a"), ev("b")) // idempotent
	if _, err := s.Append(t.Context(), "s", eventstore.NoStream, ev("c")); err == nil {
		t.Fatal("Append() conflict error = nil")
	}
	if _, err := s.ReadStream(t.Context(), "s", 0, eventstore.Forwards, 10); err != nil {
		t.Fatal(err)
	}
	// A ReadAll outside any trace (a follower polling the log) makes no
	// span; one in a trace makes a child span.
	if _, err := s.ReadAll(t.Context(), 0, 10); err != nil {
		t.Fatal(err)
	}
	caller := trace.ContextWithRemoteSpanContext(t.Context(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled}))
	if _, err := s.ReadAll(caller, 0, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Version(t.Context(), "s"); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSnapshot(t.Context(), eventstore.Snapshot{StreamID: "s", Version: 2, Type: "state"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSnapshot(t.Context(), eventstore.Snapshot{StreamID: "s", Version: 3, Type: "state"}); !errors.Is(err, eventstore.ErrSnapshotAhead) {
		t.Fatalf("SaveSnapshot(ahead) error = %v, want ErrSnapshotAhead", err)
	}
	if _, found, err := s.LoadSnapshot(t.Context(), "s"); err != nil || !found {
		t.Fatalf("LoadSnapshot() = %v, %v, want a snapshot", found, err)
	}
	if err := s.DeleteStream(t.Context(), "s"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Version(t.Context(), "s"); !errors.Is(err, eventstore.ErrStreamDeleted) {
		t.Fatalf("Version(deleted) error = %v, want ErrStreamDeleted", err)
	}

	spans := rec.Ended()
	var names []string
	for _, sp := range spans {
		names = append(names, sp.Name())
	}
	wantNames := []string{"append events", "append events", "append events", "read_stream events", "read_all events", "version events",
		"save_snapshot snapshots", "save_snapshot snapshots", "load_snapshot snapshots",
		"delete_stream events", "version events"}
	if diff := cmp.Diff(wantNames, names); diff != "" {
		t.Errorf("span names mismatch (-want +got):\n%s", diff)
	}
	attrs := map[attribute.Key]attribute.Value{}
	for _, kv := range spans[2].Attributes() {
		attrs[kv.Key] = kv.Value
	}
	for k, want := range map[attribute.Key]string{
		"db.system.name":        "sqlite",
		eventstore.OperationKey: eventstore.OpAppend,
		eventstore.StreamKey:    "s",
		eventstore.OutcomeKey:   eventstore.OutcomeConflict,
	} {
		if got := attrs[k].String(); got != want {
			t.Errorf("conflict span %s = %q, want %q", k, got, want)
		}
	}
	for i, want := range map[int]string{6: eventstore.OutcomeOK, 7: eventstore.OutcomeError, 8: eventstore.OutcomeOK} {
		sp := spans[i]
		attrs := map[attribute.Key]string{}
		for _, kv := range sp.Attributes() {
			attrs[kv.Key] = kv.Value.String()
		}
		for k, v := range map[attribute.Key]string{
			"db.system.name":      "sqlite",
			"db.collection.name":  "snapshots",
			eventstore.StreamKey:  "s",
			eventstore.OutcomeKey: want,
		} {
			if attrs[k] != v {
				t.Errorf("span %d (%s) %s = %q, want %q", i, sp.Name(), k, attrs[k], v)
			}
		}
		// A snapshot ahead of its stream is an answer, not a failure.
		if sp.Status().Code == codes.Error {
			t.Errorf("span %d (%s) status = %v, want unset", i, sp.Name(), sp.Status())
		}
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(t.Context(), &rm); err != nil {
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
					if sys, _ := p.Attributes.Value("db.system.name"); sys.AsString() != "sqlite" {
						t.Errorf("%s point %v: db.system.name = %q, want sqlite", m.Name, p.Attributes, sys.AsString())
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

func TestLimits(t *testing.T) {
	s := open(t, tempDB(t))
	big := eventstore.Event{ID: "big", Type: "t", Data: make([]byte, eventstore.MaxEventSize)}
	for i := range big.Data {
		big.Data[i] = byte(i)
	}
	mustAppend(t, s, "big", eventstore.NoStream, big)
	got, err := s.ReadStream(t.Context(), "big", 0, eventstore.Backwards, 1)
	if err != nil || len(got) != 1 || !bytes.Equal(got[0].Data, big.Data) {
		t.Errorf("ReadStream(big) = %d events, %v, want the event with its data", len(got), err)
	}

	// An append of MaxAppendEvents is in the conformance suite; this checks
	// that a large one is retried idempotently, with one ID look-up.
	const n = 2000
	events := make([]eventstore.Event, n)
	for i := range events {
		events[i] = ev(fmt.Sprint("many-", i))
	}
	res := mustAppend(t, s, "many", eventstore.NoStream, events...)
	if res.NextExpectedVersion != n || int(res.LastPosition-res.FirstPosition) != n-1 {
		t.Errorf("Append(%d events) = %+v", n, res)
	}
	again, err := s.Append(t.Context(), "many", eventstore.NoStream, events...)
	if err != nil || again != res {
		t.Errorf("Append(%d events, retry) = %+v, %v, want %+v, nil", n, again, err, res)
	}
}
