package eventstore_test

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cairnhq/cairn/eventstore"
	sqlitestore "github.com/cairnhq/cairn/eventstore/sqlite"
)

type failingWriter struct{ after int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.after <= 0 {
		return 0, errors.New("disk full")
	}
	w.after--
	return len(p), nil
}

func TestArchiveStream(t *testing.T) {
	ctx := t.Context()
	s, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var events []eventstore.Event
	for i := range 2500 { // more than one page
		events = append(events, eventstore.Event{ID: fmt.Sprint("e", i), Type: "order.placed", Data: []byte(`{"n":1}`),
			Metadata: eventstore.Metadata{CorrelationID: "c", Extra: map[string]string{"k": "v"}}})
	}
	if _, err := s.Append(ctx, "order-1", eventstore.NoStream, events...); err != nil {
		t.Fatal(err)
	}
	want, err := s.ReadStream(ctx, "order-1", 0, eventstore.Forwards, 10000)
	if err != nil {
		t.Fatal(err)
	}

	// A writer that fails leaves the stream alone.
	if _, err := eventstore.ArchiveStream(ctx, s, "order-1", &failingWriter{after: 1}); err == nil {
		t.Fatal("ArchiveStream to a failing writer succeeded")
	}
	if v, err := s.Version(ctx, "order-1"); err != nil || v != 2500 {
		t.Fatalf("after a failed archive: Version = %d, %v; want 2500", v, err)
	}

	var buf bytes.Buffer
	n, err := eventstore.ArchiveStream(ctx, s, "order-1", &buf)
	if err != nil || n != 2500 {
		t.Fatalf("ArchiveStream = %d, %v", n, err)
	}
	if _, err := s.ReadStream(ctx, "order-1", 0, eventstore.Forwards, 1); !errors.Is(err, eventstore.ErrStreamDeleted) {
		t.Errorf("reading an archived stream = %v, want ErrStreamDeleted", err)
	}
	got, err := eventstore.ReadArchive(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ReadArchive differs from the stream (-want +got):\n%s", diff)
	}
}

func TestReadArchiveRefusesBadInput(t *testing.T) {
	good := `{"stream_id":"s","version":1,"position":1,"id":"a","type":"t","schema_version":1,"data":"e30=","metadata":{},"recorded_at":"2026-01-01T00:00:00Z"}`
	for _, tc := range []struct{ name, in, want string }{
		{"not JSON", "{", "line 1"},
		{"unknown field", strings.Replace(good, `"id"`, `"idx":1,"id"`, 1), "unknown field"},
		{"gap", good + "\n" + strings.Replace(good, `"version":1`, `"version":3`, 1), "line 2: version 3, want 2"},
		{"two streams", good + "\n" + strings.Replace(strings.Replace(good, `"version":1`, `"version":2`, 1), `"stream_id":"s"`, `"stream_id":"x"`, 1), `stream "x"`},
		{"no ID", strings.Replace(good, `"id":"a"`, `"id":""`, 1), "without an ID"},
		{"two values", good + good, "more than one"},
	} {
		_, err := eventstore.ReadArchive(strings.NewReader(tc.in))
		if !errors.Is(err, eventstore.ErrBadArchive) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: ReadArchive = %v, want ErrBadArchive mentioning %q", tc.name, err, tc.want)
		}
	}
	if got, err := eventstore.ReadArchive(strings.NewReader(good + "\n")); err != nil || len(got) != 1 {
		t.Errorf("ReadArchive(one good line) = %v, %v", got, err)
	}
}

func FuzzReadArchive(f *testing.F) {
	f.Add(`{"stream_id":"s","version":1,"position":1,"id":"a","type":"t","schema_version":1,"data":"e30=","metadata":{},"recorded_at":"2026-01-01T00:00:00Z"}`)
	f.Add("{}\n{}")
	f.Fuzz(func(t *testing.T, in string) {
		events, err := eventstore.ReadArchive(strings.NewReader(in))
		if err != nil {
			if !errors.Is(err, eventstore.ErrBadArchive) {
				t.Fatalf("error %v does not wrap ErrBadArchive", err)
			}
			return
		}
		for i, e := range events {
			if e.Version != int64(i+1) || e.StreamID != events[0].StreamID || e.ID == "" {
				t.Fatalf("accepted event %d: %+v", i, e)
			}
		}
	})
}
