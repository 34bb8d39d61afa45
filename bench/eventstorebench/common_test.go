package eventstorebench

import (
	"strconv"
	"testing"

	"github.com/cairnhq/cairn/eventstore"
)

const (
	// eventType and payload are those of every event written: a small
	// JSON document, as an order service would append.
	eventType = "order.placed"
	// catchUpEvents is the size of the log the catch-up reads read whole,
	// in pages of pageSize.
	catchUpEvents = 20000
	pageSize      = 1000
	// writers is the number of concurrent appenders of the parallel
	// benchmark.
	writers = 8
)

var payload = []byte(`{"order":"order-0001","sku":"SKU-12345","quantity":2,"amount_cents":1999,"currency":"EUR"}`)

// eventID is the ID of event i of batch n of a variant.
func eventID(prefix string, n int64, i int) string {
	return prefix + "-" + strconv.FormatInt(n, 10) + "-" + strconv.Itoa(i)
}

// streamID is the stream of batch n of a variant: a new one per batch.
func streamID(prefix string, n int64) string {
	return prefix + "-" + strconv.FormatInt(n, 10)
}

// fill sets events to batch n of prefix.
func fill(events []eventstore.Event, prefix string, n int64) {
	for i := range events {
		events[i] = eventstore.Event{ID: eventID(prefix, n, i), Type: eventType, Data: payload}
	}
}

// reportEvents reports events/s over the benchmark's measured time.
func reportEvents(b *testing.B, events int64) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(events)/s, "events/s")
	}
}

// catchUp reads r's whole global log in pages of pageSize, the way a
// catch-up subscription does, and returns the number of events read.
func catchUp(b *testing.B, r eventstore.Reader) int64 {
	var (
		after eventstore.Position
		n     int64
	)
	for {
		page, err := r.ReadAll(b.Context(), after, pageSize)
		if err != nil {
			b.Fatal(err)
		}
		n += int64(len(page))
		if len(page) < pageSize {
			return n
		}
		after = page[len(page)-1].Position
	}
}

// prefill appends catchUpEvents events to s, in batches of 100 to new
// streams.
func prefill(b *testing.B, s eventstore.Store) {
	events := make([]eventstore.Event, 100)
	for n := range int64(catchUpEvents / len(events)) {
		fill(events, "fill", n)
		if _, err := s.Append(b.Context(), streamID("fill", n), eventstore.NoStream, events...); err != nil {
			b.Fatal(err)
		}
	}
}
