package messaging_test

import (
	"errors"
	"fmt"

	"github.com/cairnhq/cairn/messaging"
)

// What a transport does with a delivery, given its handler's error.
func ExampleDecide() {
	cfg, err := messaging.SubscribeConfig{Subject: "orders", Group: "billing", MaxDeliveries: 3}.Normalize()
	if err != nil {
		fmt.Println(err)
		return
	}
	timeout := errors.New("database timeout")
	fmt.Println(messaging.Decide(nil, 1, cfg))
	fmt.Println(messaging.Decide(timeout, 1, cfg))
	fmt.Println(messaging.Decide(timeout, 3, cfg))
	fmt.Println(messaging.Decide(messaging.Permanent(errors.New("bad JSON")), 1, cfg))
	// Output:
	// ack
	// redeliver
	// dead_letter
	// dead_letter
}

// A dead letter is the message with headers saying why and where from.
func ExampleDeadLetter() {
	cfg, _ := messaging.SubscribeConfig{Subject: "orders", Group: "billing"}.Normalize()
	d := messaging.Delivery{Message: messaging.Message{ID: "m1", Subject: "orders", Data: []byte("{")}, Attempt: 1, Group: "billing"}
	dl := messaging.DeadLetter(d, cfg, messaging.Permanent(errors.New("decode order: unexpected end of JSON input")))
	fmt.Println(dl.Subject, dl.ID)
	fmt.Println(dl.Header[messaging.HeaderDeadLetterReason])
	fmt.Println(dl.Header[messaging.HeaderOriginalSubject], dl.Header[messaging.HeaderDeliveries])
	// Output:
	// dlq.billing.orders m1
	// decode order: unexpected end of JSON input
	// orders 1
}

// Validate refuses a message before anything is sent.
func ExampleValidate() {
	err := messaging.Validate(messaging.Message{Subject: "orders"}, 0)
	fmt.Println(errors.Is(err, messaging.ErrInvalidMessage), err)
	// Output:
	// true messaging: invalid message: message to "orders" has no ID
}
