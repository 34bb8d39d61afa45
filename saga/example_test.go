package saga_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/cairnhq/cairn/saga"
	"github.com/cairnhq/cairn/saga/sagatest"
)

// Checkout is the data of the example's saga: the order, and what its
// steps record for their compensations.
type Checkout struct {
	Order     string `json:"order"`
	Amount    int    `json:"amount"`
	PaymentID string `json:"payment_id,omitempty"`
}

func Example() {
	ctx := context.Background()
	checkout := saga.Definition[Checkout]{Name: "checkout", Stages: []saga.Stage[Checkout]{
		{{
			Name:       "reserve",
			Action:     func(ctx context.Context, c *Checkout) error { fmt.Println("reserve", c.Order); return nil },
			Compensate: func(ctx context.Context, c *Checkout) error { fmt.Println("release", c.Order); return nil },
		}},
		{{
			Name: "pay",
			Action: func(ctx context.Context, c *Checkout) error {
				if c.Amount > 100 {
					return saga.Permanent(errors.New("card declined"))
				}
				c.PaymentID = "pay-" + c.Order
				fmt.Println("charge", c.PaymentID)
				return nil
			},
			Compensate: func(ctx context.Context, c *Checkout) error {
				if c.PaymentID != "" { // the action may have failed before charging
					fmt.Println("refund", c.PaymentID)
				}
				return nil
			},
		}},
		{{Name: "ship", Action: func(ctx context.Context, c *Checkout) error { fmt.Println("ship", c.Order); return nil }}},
	}}

	// In production the store is saga/postgres or saga/sqlite, and Run
	// recovers the instances of crashed processes.
	o, err := saga.New(sagatest.NewMemStore(), []saga.Definition[Checkout]{checkout})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer o.Close()

	for _, c := range []Checkout{{Order: "o-1", Amount: 30}, {Order: "o-2", Amount: 300}} {
		if _, err := o.Start(ctx, "checkout", c.Order, c); err != nil {
			fmt.Println(err)
			return
		}
		inst, err := o.Wait(ctx, c.Order)
		if err != nil {
			fmt.Println(err)
			return
		}
		line := fmt.Sprintf("%s: %s", inst.ID, inst.Status)
		if inst.Error != "" {
			line += " (" + inst.Error + ")"
		}
		fmt.Println(line)
	}
	// Output:
	// reserve o-1
	// charge pay-o-1
	// ship o-1
	// o-1: completed
	// reserve o-2
	// release o-2
	// o-2: compensated (step "pay": card declined)
}
