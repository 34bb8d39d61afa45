package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/cairnhq/cairn/eventstore"
	sqlitestore "github.com/cairnhq/cairn/eventstore/sqlite"
	"github.com/cairnhq/cairn/messaging"
)

func openStore(t *testing.T) *sqlitestore.Store {
	t.Helper()
	s, err := sqlitestore.Open(t.Context(), filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// broker is a publisher that records what it accepts, and can be down:
// then it accepts a prefix of each call (like a connection that drops in
// the middle of a batch) and fails.
type broker struct {
	mu     sync.Mutex
	got    []messaging.Message
	down   bool
	calls  int
	failed int
	notify chan struct{}
}

func newBroker() *broker { return &broker{notify: make(chan struct{}, 1)} }

func (b *broker) Publish(ctx context.Context, msgs ...messaging.Message) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls++
	if b.down {
		b.failed++
		b.got = append(b.got, msgs[:len(msgs)/2]...)
		return errors.New("broker: connection refused")
	}
	b.got = append(b.got, msgs...)
	select {
	case b.notify <- struct{}{}:
	default:
	}
	return nil
}

func (b *broker) Close() error { return nil }

func (b *broker) setDown(down bool) {
	b.mu.Lock()
	b.down = down
	b.mu.Unlock()
}

func (b *broker) messages() []messaging.Message {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]messaging.Message(nil), b.got...)
}

// dedup keeps the first message of each ID, as an inbox does.
func dedup(msgs []messaging.Message) []messaging.Message {
	seen := make(map[string]bool)
	var out []messaging.Message
	for _, m := range msgs {
		if !seen[m.ID] {
			seen[m.ID] = true
			out = append(out, m)
		}
	}
	return out
}

// appendInterleaved appends n events to each of streams, one stream after
// the other, event by event, and returns their IDs by stream in order.
func appendInterleaved(t *testing.T, s eventstore.Store, prefix string, streams []string, n int) map[string][]string {
	t.Helper()
	want := make(map[string][]string)
	for i := range n {
		for _, st := range streams {
			id := fmt.Sprintf("%s-%s-%d", prefix, st, i)
			e := eventstore.Event{ID: id, Type: "order.placed", Data: []byte(`{}`)}
			if _, err := s.Append(t.Context(), st, eventstore.Any, e); err != nil {
				t.Fatal(err)
			}
			want[st] = append(want[st], id)
		}
	}
	return want
}

// byStream returns the IDs of msgs by stream, in order, after checking
// that the versions of each stream increase by one.
func byStream(t *testing.T, msgs []messaging.Message) map[string][]string {
	t.Helper()
	got := make(map[string][]string)
	last := make(map[string]int64)
	for _, m := range msgs {
		e, err := Event(m)
		if err != nil {
			t.Fatal(err)
		}
		if m.Key != e.StreamID {
			t.Errorf("message %s has key %q, want its stream %q", m.ID, m.Key, e.StreamID)
		}
		if e.Version != last[e.StreamID]+1 {
			t.Errorf("stream %s: version %d after %d", e.StreamID, e.Version, last[e.StreamID])
		}
		last[e.StreamID] = e.Version
		got[e.StreamID] = append(got[e.StreamID], m.ID)
	}
	return got
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func startRelay(t *testing.T, cfg Config) (*Relay, func()) {
	t.Helper()
	r, err := NewRelay(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	stop := func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v, want context.Canceled", err)
		}
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	}
	return r, stop
}

func TestRelayPublishesInOrderAndResumesFromCheckpoint(t *testing.T) {
	s := openStore(t)
	b := newBroker()
	streams := []string{"order-1", "order-2", "order-3"}
	want := appendInterleaved(t, s, "a", streams, 40)
	cfg := Config{Name: "orders", Store: s, Publisher: b, BatchSize: 7, PollInterval: time.Millisecond}
	_, stop := startRelay(t, cfg)
	waitFor(t, "120 messages", func() bool { return len(b.messages()) >= 120 })
	stop()
	if got := byStream(t, b.messages()); !equal(got, want) {
		t.Fatalf("published %v, want %v", got, want)
	}
	if n := len(b.messages()); n != 120 {
		t.Errorf("published %d messages without a failure, want exactly 120", n)
	}
	for _, m := range b.messages() {
		if m.Subject != "events.order.placed" {
			t.Fatalf("subject %q, want events.order.placed", m.Subject)
		}
	}

	// A new relay of the same name starts from the checkpoint.
	more := appendInterleaved(t, s, "b", streams, 5)
	b2 := newBroker()
	cfg.Publisher = b2
	_, stop = startRelay(t, cfg)
	waitFor(t, "15 more messages", func() bool { return len(b2.messages()) >= 15 })
	stop()
	got := b2.messages()
	if len(got) != 15 {
		t.Fatalf("the restarted relay published %d messages, want the 15 new ones", len(got))
	}
	gotBy := make(map[string][]string)
	for _, m := range got {
		gotBy[m.Key] = append(gotBy[m.Key], m.ID)
	}
	if !equal(gotBy, more) {
		t.Errorf("restarted relay published %v, want %v", gotBy, more)
	}
}

func TestRelaySurvivesBrokerOutage(t *testing.T) {
	s := openStore(t)
	b := newBroker()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	streams := []string{"a", "b"}
	want := appendInterleaved(t, s, "before", streams, 10)
	b.setDown(true)
	cfg := Config{Name: "outage", Store: s, Publisher: b, BatchSize: 4, PollInterval: time.Millisecond,
		Backoff: func(int) time.Duration { return time.Millisecond }, MeterProvider: mp, Logger: discard}
	_, stop := startRelay(t, cfg)
	waitFor(t, "failed publishes", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.failed >= 3
	})
	// Events keep coming while the broker is down.
	during := appendInterleaved(t, s, "during", streams, 10)
	rm := collect(t, reader)
	if age := gaugeFloat(rm, AgeMetric); age <= 0 {
		t.Errorf("%s = %v while the broker is down, want > 0", AgeMetric, age)
	}
	if depth := gaugeInt(rm, DepthMetric); depth != 40 {
		t.Errorf("%s = %d while the broker is down, want 40", DepthMetric, depth)
	}
	if n := sumInt(rm, ErrorsMetric); n < 3 {
		t.Errorf("%s = %d, want >= 3", ErrorsMetric, n)
	}
	b.setDown(false)
	waitFor(t, "all 40 events", func() bool { return len(dedup(b.messages())) >= 40 })
	waitFor(t, "the checkpoint", func() bool { return gaugeInt(collect(t, reader), DepthMetric) == 0 })
	rm = collect(t, reader)
	stop()
	for _, st := range streams {
		want[st] = append(want[st], during[st]...)
	}
	if got := byStream(t, dedup(b.messages())); !equal(got, want) {
		t.Fatalf("after the outage, published (deduplicated) %v, want %v", got, want)
	}
	if n := sumInt(rm, RelayedMetric); n != 40 {
		t.Errorf("%s = %d, want 40", RelayedMetric, n)
	}
	if a := gaugeFloat(rm, AgeMetric); a != 0 {
		t.Errorf("%s = %v once caught up, want 0", AgeMetric, a)
	}
}

func TestNewRelayRefusesBadConfig(t *testing.T) {
	s := openStore(t)
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no name", Config{Store: s, Publisher: newBroker()}},
		{"no store", Config{Name: "x", Publisher: newBroker()}},
		{"no publisher", Config{Name: "x", Store: s}},
		{"no checkpoints", Config{Name: "x", Store: readerOnly{s}, Publisher: newBroker()}},
	} {
		if _, err := NewRelay(tc.cfg); err == nil {
			t.Errorf("%s: NewRelay succeeded", tc.name)
		}
	}
}

var discard = slog.New(slog.DiscardHandler)

type readerOnly struct{ eventstore.Reader }

func equal(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w := b[k]
		if len(v) != len(w) {
			return false
		}
		for i := range v {
			if v[i] != w[i] {
				return false
			}
		}
	}
	return true
}

func collect(t *testing.T, r *sdkmetric.ManualReader) metricdata.ResourceMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	return rm
}

func find(rm metricdata.ResourceMetrics, name string) (metricdata.Aggregation, bool) {
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				return m.Data, true
			}
		}
	}
	return nil, false
}

func gaugeFloat(rm metricdata.ResourceMetrics, name string) float64 {
	if g, ok := find(rm, name); ok {
		for _, dp := range g.(metricdata.Gauge[float64]).DataPoints {
			return dp.Value
		}
	}
	return -1
}

func gaugeInt(rm metricdata.ResourceMetrics, name string) int64 {
	if g, ok := find(rm, name); ok {
		for _, dp := range g.(metricdata.Gauge[int64]).DataPoints {
			return dp.Value
		}
	}
	return -1
}

func sumInt(rm metricdata.ResourceMetrics, name string) int64 {
	var n int64
	if s, ok := find(rm, name); ok {
		for _, dp := range s.(metricdata.Sum[int64]).DataPoints {
			n += dp.Value
		}
	}
	return n
}

// TestRelaySavesItsCheckpointByInterval: a busy relay saves its position
// at most every CheckpointInterval, and always when it stops.
func TestRelaySavesItsCheckpointByInterval(t *testing.T) {
	s := openStore(t)
	b := newBroker()
	appendInterleaved(t, s, "a", []string{"x", "y"}, 5)
	r, stop := startRelay(t, Config{Name: "lazy", Store: s, Publisher: b, PollInterval: time.Hour, CheckpointInterval: time.Hour})
	waitFor(t, "10 messages", func() bool { return len(b.messages()) >= 10 })
	if cp, err := s.LoadCheckpoint(t.Context(), "outbox/lazy"); err != nil || cp != 0 {
		t.Errorf("checkpoint while busy = %d, %v; want 0 (not saved before the interval)", cp, err)
	}
	last := r.Position()
	stop()
	if cp, err := s.LoadCheckpoint(t.Context(), "outbox/lazy"); err != nil || cp != last {
		t.Errorf("checkpoint after stop = %d, %v; want %d", cp, err, last)
	}
}
