package cqrs_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/cqrs"
	"github.com/cairnhq/cairn/eventstore"
)

type orderPlaced struct {
	Order  string `json:"order"`
	Amount int    `json:"amount"`
}

func TestEventHandlers(t *testing.T) {
	var hs cqrs.EventHandlers
	var got []orderPlaced
	cqrs.On(&hs, "order.placed", func(_ context.Context, _ eventstore.RecordedEvent, e orderPlaced) error {
		got = append(got, e)
		return nil
	})
	rec := func(pos eventstore.Position, typ, data string) eventstore.RecordedEvent {
		return eventstore.RecordedEvent{Event: eventstore.Event{ID: "e" + typ, Type: typ, Data: []byte(data)}, Position: pos}
	}
	tests := []struct {
		name    string
		event   eventstore.RecordedEvent
		wantErr string
	}{
		{"routed", rec(1, "order.placed", `{"order":"o1","amount":3}`), ""},
		{"no handler: ignored", rec(2, "order.shipped", `not json`), ""},
		{"decode failure", rec(3, "order.placed", `{"amount":"three"}`), "at position 3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := hs.Handle(t.Context(), tc.event)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Handle() = %v", err)
				}
				return
			}
			var de *cqrs.DecodeError
			if !errors.As(err, &de) || !errors.Is(err, cqrs.ErrDecode) || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "order.placed") {
				t.Fatalf("Handle() = %v, want a *DecodeError naming the type and %q", err, tc.wantErr)
			}
			if de.Position != 3 || de.Type != "order.placed" {
				t.Errorf("DecodeError{Position: %d, Type: %q}, want 3, order.placed", de.Position, de.Type)
			}
		})
	}
	if len(got) != 1 || got[0] != (orderPlaced{"o1", 3}) {
		t.Errorf("handled %+v, want [{o1 3}]", got)
	}
	if !hs.Handles("order.placed") || hs.Handles("order.shipped") {
		t.Error("Handles() does not match the registrations")
	}
	defer func() {
		if recover() == nil {
			t.Error("second On for order.placed did not panic")
		}
	}()
	cqrs.On(&hs, "order.placed", func(context.Context, eventstore.RecordedEvent, orderPlaced) error { return nil })
}
