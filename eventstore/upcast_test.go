package eventstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cairnhq/cairn/eventstore"
)

// sliceReader is an eventstore.Reader over a fixed log, whose positions
// are the index plus one; its events belong to the stream "s".
type sliceReader struct{ log []eventstore.RecordedEvent }

func newSliceReader(events ...eventstore.Event) *sliceReader {
	r := &sliceReader{}
	for i, e := range events {
		r.log = append(r.log, eventstore.RecordedEvent{Event: e, StreamID: "s", Version: int64(i + 1), Position: eventstore.Position(i + 1)})
	}
	return r
}

func (r *sliceReader) ReadStream(_ context.Context, stream string, from int64, dir eventstore.Direction, limit int) ([]eventstore.RecordedEvent, error) {
	out := []eventstore.RecordedEvent{}
	if stream != "s" {
		return out, nil
	}
	if dir == eventstore.Backwards {
		if from <= 0 || from > int64(len(r.log)) {
			from = int64(len(r.log))
		}
		for v := from; v >= 1 && len(out) < limit; v-- {
			out = append(out, r.log[v-1])
		}
		return out, nil
	}
	for v := max(from, 1); v <= int64(len(r.log)) && len(out) < limit; v++ {
		out = append(out, r.log[v-1])
	}
	return out, nil
}

func (r *sliceReader) ReadAll(_ context.Context, after eventstore.Position, limit int) ([]eventstore.RecordedEvent, error) {
	out := []eventstore.RecordedEvent{}
	for i := max(int(after), 0); i < len(r.log) && len(out) < limit; i++ {
		out = append(out, r.log[i])
	}
	return out, nil
}

// orderUpcasters lifts "order.placed" from 1 to 4: v2 renames total to
// amount, v3 adds a currency, v4 reads the currency from metadata.
func orderUpcasters(t *testing.T) *eventstore.Upcasters {
	t.Helper()
	edit := func(f func(m map[string]any, md eventstore.Metadata) error) func([]byte, eventstore.Metadata) ([]byte, error) {
		return func(data []byte, md eventstore.Metadata) ([]byte, error) {
			var m map[string]any
			if err := json.Unmarshal(data, &m); err != nil {
				return nil, err
			}
			if err := f(m, md); err != nil {
				return nil, err
			}
			return json.Marshal(m)
		}
	}
	u, err := eventstore.NewUpcasters(
		// Out of order on purpose: the registry orders the chain.
		eventstore.Upcaster{Type: "order.placed", From: 3, Up: edit(func(m map[string]any, md eventstore.Metadata) error {
			if c := md.Extra["currency"]; c != "" {
				m["currency"] = c
			}
			return nil
		})},
		eventstore.Upcaster{Type: "order.placed", From: 1, Up: edit(func(m map[string]any, _ eventstore.Metadata) error {
			total, ok := m["total"]
			if !ok {
				return errors.New("no total")
			}
			m["amount"] = total
			delete(m, "total")
			return nil
		})},
		eventstore.Upcaster{Type: "order.placed", From: 2, Up: edit(func(m map[string]any, _ eventstore.Metadata) error {
			m["currency"] = "EUR"
			return nil
		})},
	)
	if err != nil {
		t.Fatalf("NewUpcasters() error = %v", err)
	}
	return u
}

func TestUpcast(t *testing.T) {
	u := orderUpcasters(t)
	usd := eventstore.Metadata{Extra: map[string]string{"currency": "USD"}}
	tests := []struct {
		name     string
		in       eventstore.Event
		wantData string
		wantSV   int
	}{
		{"from 1", eventstore.Event{Type: "order.placed", SchemaVersion: 1, Data: []byte(`{"total":12}`)}, `{"amount":12,"currency":"EUR"}`, 4},
		{"0 counts as 1", eventstore.Event{Type: "order.placed", Data: []byte(`{"total":12}`)}, `{"amount":12,"currency":"EUR"}`, 4},
		{"from 2", eventstore.Event{Type: "order.placed", SchemaVersion: 2, Data: []byte(`{"amount":3}`)}, `{"amount":3,"currency":"EUR"}`, 4},
		{"from 3 with metadata", eventstore.Event{Type: "order.placed", SchemaVersion: 3, Data: []byte(`{"amount":3,"currency":"EUR"}`), Metadata: usd}, `{"amount":3,"currency":"USD"}`, 4},
		{"current", eventstore.Event{Type: "order.placed", SchemaVersion: 4, Data: []byte(`not even JSON`)}, `not even JSON`, 4},
		{"newer than the chain", eventstore.Event{Type: "order.placed", SchemaVersion: 9, Data: []byte(`x`)}, `x`, 9},
		{"unknown type", eventstore.Event{Type: "order.shipped", SchemaVersion: 1, Data: []byte(`{"total":1}`)}, `{"total":1}`, 1},
		{"unknown type, version 0", eventstore.Event{Type: "order.shipped", Data: []byte(`y`)}, `y`, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := eventstore.RecordedEvent{Event: tc.in, StreamID: "s", Version: 7, Position: 70, RecordedAt: time.Unix(1, 0).UTC()}
			in.ID = "e1"
			got, err := u.Upcast(in)
			if err != nil {
				t.Fatalf("Upcast() error = %v", err)
			}
			if string(got.Data) != tc.wantData || got.SchemaVersion != tc.wantSV {
				t.Errorf("Upcast() = %s at schema version %d, want %s at %d", got.Data, got.SchemaVersion, tc.wantData, tc.wantSV)
			}
			// Everything else is kept.
			want := in
			want.Data, want.SchemaVersion = got.Data, got.SchemaVersion
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Upcast() changed more than data and schema version (-want +got):\n%s", diff)
			}
		})
	}
	if got := u.Current("order.placed"); got != 4 {
		t.Errorf("Current(order.placed) = %d, want 4", got)
	}
	if got := u.Current("order.shipped"); got != 1 {
		t.Errorf("Current(order.shipped) = %d, want 1", got)
	}
}

func TestUpcastError(t *testing.T) {
	u := orderUpcasters(t)
	in := eventstore.RecordedEvent{Event: eventstore.Event{ID: "e9", Type: "order.placed", SchemaVersion: 1, Data: []byte(`{"amount":1}`)}, StreamID: "order-1", Version: 3}
	_, err := u.Upcast(in)
	var ue *eventstore.UpcastError
	if !errors.As(err, &ue) || !errors.Is(err, eventstore.ErrUpcast) {
		t.Fatalf("Upcast(bad data) = %v, want an *UpcastError", err)
	}
	want := eventstore.UpcastError{EventID: "e9", StreamID: "order-1", Version: 3, Type: "order.placed", SchemaVersion: 1}
	if ue.EventID != want.EventID || ue.StreamID != want.StreamID || ue.Version != want.Version || ue.Type != want.Type || ue.SchemaVersion != want.SchemaVersion {
		t.Errorf("Upcast(bad data) = %+v, want %+v", *ue, want)
	}
	if ue.Err == nil || ue.Err.Error() != "no total" {
		t.Errorf("UpcastError.Err = %v, want the upcaster's error", ue.Err)
	}
	for _, s := range []string{"e9", "order.placed", "schema version 1", "no total"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("Upcast(bad data) error %q does not contain %q", err, s)
		}
	}

	// Bad JSON deeper in the chain: the error names the version it failed at.
	in.SchemaVersion, in.Data = 2, []byte(`{`)
	if _, err := u.Upcast(in); !errors.As(err, &ue) || ue.SchemaVersion != 2 {
		t.Errorf("Upcast(bad JSON at version 2) = %v, want an *UpcastError at schema version 2", err)
	}
}

func TestUpcastersZero(t *testing.T) {
	e := eventstore.RecordedEvent{Event: eventstore.Event{ID: "e", Type: "t", Data: []byte("d")}}
	for _, u := range []*eventstore.Upcasters{nil, {}} {
		got, err := u.Upcast(e)
		if err != nil || string(got.Data) != "d" || got.SchemaVersion != 0 {
			t.Errorf("(%v).Upcast() = %+v, %v, want the event unchanged", u, got, err)
		}
		if c := u.Current("t"); c != 1 {
			t.Errorf("(%v).Current() = %d, want 1", u, c)
		}
	}
}

func TestNewUpcastersErrors(t *testing.T) {
	up := func([]byte, eventstore.Metadata) ([]byte, error) { return nil, nil }
	tests := []struct {
		name string
		ups  []eventstore.Upcaster
		want string
	}{
		{"no type", []eventstore.Upcaster{{From: 1, Up: up}}, "no type"},
		{"from 0", []eventstore.Upcaster{{Type: "t", From: 0, Up: up}}, "from schema version 0"},
		{"no Up", []eventstore.Upcaster{{Type: "t", From: 1}}, "no Up"},
		{"duplicate", []eventstore.Upcaster{{Type: "t", From: 1, Up: up}, {Type: "u", From: 1, Up: up}, {Type: "t", From: 1, Up: up}}, `upcaster 2: another upcaster lifts "t" from schema version 1`},
		{"hole", []eventstore.Upcaster{{Type: "t", From: 1, Up: up}, {Type: "t", From: 3, Up: up}}, "none from schema version 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := eventstore.NewUpcasters(tc.ups...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewUpcasters() = %v, %v, want an error containing %q", u, err, tc.want)
			}
		})
	}
	// A chain may start above 1, once the oldest events are gone.
	if _, err := eventstore.NewUpcasters(eventstore.Upcaster{Type: "t", From: 3, Up: up}, eventstore.Upcaster{Type: "t", From: 4, Up: up}); err != nil {
		t.Errorf("NewUpcasters(from 3 and 4) = %v, want success", err)
	}
}

func TestUpcasting(t *testing.T) {
	ctx := t.Context()
	u := orderUpcasters(t)
	r := eventstore.Upcasting(newSliceReader(
		eventstore.Event{ID: "a", Type: "order.placed", SchemaVersion: 1, Data: []byte(`{"total":1}`)},
		eventstore.Event{ID: "b", Type: "order.paid", Data: []byte(`{}`)},
		eventstore.Event{ID: "c", Type: "order.placed", SchemaVersion: 4, Data: []byte(`{"amount":3,"currency":"EUR"}`)},
	), u)
	want := []string{`a 4 {"amount":1,"currency":"EUR"}`, `b 0 {}`, `c 4 {"amount":3,"currency":"EUR"}`}
	show := func(events []eventstore.RecordedEvent) []string {
		var out []string
		for _, e := range events {
			out = append(out, fmt.Sprintf("%s %d %s", e.ID, e.SchemaVersion, e.Data))
		}
		return out
	}

	all, err := r.ReadAll(ctx, 0, 10)
	if err != nil {
		t.Fatalf("ReadAll() error = %v", err)
	}
	if diff := cmp.Diff(want, show(all)); diff != "" {
		t.Errorf("ReadAll() (-want +got):\n%s", diff)
	}
	back, err := r.ReadStream(ctx, "s", 0, eventstore.Backwards, 10)
	if err != nil {
		t.Fatalf("ReadStream() error = %v", err)
	}
	if diff := cmp.Diff([]string{want[2], want[1], want[0]}, show(back)); diff != "" {
		t.Errorf("ReadStream(backwards) (-want +got):\n%s", diff)
	}

	// Subscribe sees current schemas too.
	var got []string
	sctx, cancel := context.WithCancel(ctx)
	err = eventstore.Subscribe(sctx, r, 0, func(_ context.Context, e eventstore.RecordedEvent) error {
		got = append(got, fmt.Sprintf("%s %d %s", e.ID, e.SchemaVersion, e.Data))
		if len(got) == len(want) {
			cancel()
		}
		return nil
	}, eventstore.SubscribeOptions{BatchSize: 2})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Subscribe() = %v, want context.Canceled", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Subscribe() delivered (-want +got):\n%s", diff)
	}
}

func TestUpcastingError(t *testing.T) {
	ctx := t.Context()
	r := eventstore.Upcasting(newSliceReader(
		eventstore.Event{ID: "ok", Type: "order.placed", SchemaVersion: 1, Data: []byte(`{"total":1}`)},
		eventstore.Event{ID: "bad", Type: "order.placed", SchemaVersion: 1, Data: []byte(`{"amount":1}`)},
	), orderUpcasters(t))
	if events, err := r.ReadAll(ctx, 0, 10); !errors.Is(err, eventstore.ErrUpcast) || events != nil {
		t.Errorf("ReadAll(log with bad data) = %d events, %v, want nil, ErrUpcast", len(events), err)
	}
	if events, err := r.ReadStream(ctx, "s", 1, eventstore.Forwards, 10); !errors.Is(err, eventstore.ErrUpcast) || events != nil {
		t.Errorf("ReadStream(stream with bad data) = %d events, %v, want nil, ErrUpcast", len(events), err)
	}
	// The bad event is never skipped: Subscribe stops at it.
	var n int
	err := eventstore.Subscribe(ctx, r, 0, func(context.Context, eventstore.RecordedEvent) error { n++; return nil }, eventstore.SubscribeOptions{})
	var ue *eventstore.UpcastError
	if !errors.As(err, &ue) || ue.EventID != "bad" {
		t.Errorf("Subscribe(log with bad data) = %v, want the *UpcastError of event bad", err)
	}
	if n != 0 {
		t.Errorf("Subscribe(log with bad data) delivered %d events, want 0 (the batch fails)", n)
	}
}
