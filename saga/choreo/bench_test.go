package choreo_test

import (
	"fmt"
	"testing"

	"github.com/cairnhq/cairn/cqrs"
	"github.com/cairnhq/cairn/messaging/inproc"
	"github.com/cairnhq/cairn/saga/choreo"
)

// BenchmarkTrackerHandle records one event of a new instance per
// iteration, on SQLite.
func BenchmarkTrackerHandle(b *testing.B) {
	tr, err := choreo.NewTracker(b.Context(), sqliteDB(b, "tracker"), orderSaga(""), choreo.TrackerOptions{Dialect: cqrs.SQLite})
	if err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		i++
		id := fmt.Sprint("o-", i)
		if err := tr.Handle(b.Context(), delivery(id+"/start", "order.placed", id)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParticipantHandle runs one step with the SQLite inbox and
// publishes its event to an in-process broker, per iteration.
func BenchmarkParticipantHandle(b *testing.B) {
	br := inproc.NewBroker(inproc.WithMaxMessages(1000))
	pub := inproc.NewPublisher(br, inproc.Options{})
	defer pub.Close()
	db := sqliteDB(b, "inventory")
	e := newEffects(b, db, cqrs.SQLite)
	p, err := choreo.NewParticipant(b.Context(), orderSaga(""), "reserve", e.fn("reserve", nil), choreo.Options{Publisher: pub, DB: db, Dialect: cqrs.SQLite})
	if err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		i++
		id := fmt.Sprint("o-", i)
		if err := p.Handle(b.Context(), delivery(id+"/start", "order.placed", id)); err != nil {
			b.Fatal(err)
		}
	}
}
