package choreo_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/cairnhq/cairn/cqrs"
	"github.com/cairnhq/cairn/messaging"
	"github.com/cairnhq/cairn/messaging/inproc"
	"github.com/cairnhq/cairn/saga/choreo"
)

// A two-step choreography on an in-process broker: the inventory reserves
// stock, the payment service charges and fails for good, the inventory
// releases the stock; the tracker shows the instance compensated.
func Example() {
	ctx := context.Background()
	b := inproc.NewBroker()
	pub := inproc.NewPublisher(b, inproc.Options{})
	defer pub.Close()
	sub := inproc.NewSubscriber(b, inproc.Options{})
	defer sub.Close()

	s := &choreo.Saga{
		Name:  "order",
		Start: "order.placed",
		Steps: []choreo.Step{
			{Name: "reserve", Participant: "inventory", On: []string{"order.placed"}, Success: "stock.reserved", Failure: "stock.rejected"},
			{Name: "charge", Participant: "payment", On: []string{"stock.reserved"}, Success: "payment.charged", Failure: "payment.failed"},
			{Name: "release", Participant: "inventory", On: []string{"payment.failed"}, Success: "stock.released", Compensates: "reserve"},
		},
	}
	work := map[string]choreo.Func{
		"reserve": func(ctx context.Context, _ *sql.Tx, e choreo.Event) ([]byte, error) { return []byte("reserved"), nil },
		"charge": func(ctx context.Context, _ *sql.Tx, e choreo.Event) ([]byte, error) {
			return nil, messaging.Permanent(errors.New("card declined"))
		},
		"release": func(ctx context.Context, _ *sql.Tx, e choreo.Event) ([]byte, error) { return []byte("released"), nil },
	}
	for step, fn := range work {
		p, err := choreo.NewParticipant(ctx, s, step, fn, choreo.Options{Publisher: pub})
		if err != nil {
			fmt.Println(err)
			return
		}
		if _, err := p.Subscribe(ctx, sub, messaging.SubscribeConfig{}); err != nil {
			fmt.Println(err)
			return
		}
	}

	db, err := sql.Open("sqlite", "file::memory:")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // one connection: one in-memory database
	tr, err := choreo.NewTracker(ctx, db, s, choreo.TrackerOptions{Dialect: cqrs.SQLite, StuckAfter: time.Minute})
	if err != nil {
		fmt.Println(err)
		return
	}
	if _, err := tr.Subscribe(ctx, sub, messaging.SubscribeConfig{}); err != nil {
		fmt.Println(err)
		return
	}

	if err := s.Publish(ctx, pub, "order-1", []byte(`{"total":42}`)); err != nil {
		fmt.Println(err)
		return
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if in, err := tr.Get(ctx, "order-1"); err == nil && in.Status.Final() {
			fmt.Printf("%s: %s after %s\n", in.ID, in.Status, in.LastEvent)
			break
		}
	}
	// Output:
	// order-1: compensated after stock.released
}
