package eventstore

import (
	"context"
	"fmt"
	"time"
)

// SubscribeOptions configures [Subscribe]. The zero value is a valid
// configuration.
type SubscribeOptions struct {
	// BatchSize is the most events one ReadAll call asks for. Zero or
	// negative means 256.
	BatchSize int
	// PollInterval is how long Subscribe waits, once it has caught up,
	// before it reads the global log again. Zero or negative means 100ms.
	PollInterval time.Duration
	// Notify, if not nil, wakes Subscribe before PollInterval has passed:
	// send on it (without blocking, on a channel with a buffer of one)
	// after appending. A closed Notify is ignored from then on. Optional.
	Notify <-chan struct{}
}

const (
	defaultBatchSize    = 256
	defaultPollInterval = 100 * time.Millisecond
)

// Subscribe is a catch-up subscription to the global log. It reads the
// events after position from with r.ReadAll, in batches of
// opts.BatchSize, and calls h for each in position order; once caught up,
// it polls for new events every opts.PollInterval, or sooner when
// opts.Notify fires. It calls h from the calling goroutine, one event at a
// time, and starts no goroutine.
//
// Given a [Reader] that keeps the ReadAll contract, delivery never skips
// an event and never reorders: h sees the events after from exactly once
// each, in strictly increasing position order, for as long as Subscribe
// runs. Delivery is at least once relative to the caller's checkpoint: the
// caller records the position of the last event it has handled, and after
// a restart (or a returned error) calls Subscribe again from that
// checkpoint, so an event handled but not yet checkpointed is delivered
// again; h must therefore be idempotent, or checkpoint in the same
// transaction as its effects.
//
// Subscribe runs until ctx ends, when it returns ctx.Err(). It stops at
// the first error of h and returns it wrapped with the event's position
// and ID (errors.Is and errors.As see h's error). It also returns, wrapped,
// an error of r.ReadAll, and an error if r returns an event at or below the
// position already delivered (a Reader that breaks its contract); it does
// not retry: the caller restarts from its checkpoint, with its own backoff.
func Subscribe(ctx context.Context, r Reader, from Position, h func(context.Context, RecordedEvent) error, opts SubscribeOptions) error {
	batch := opts.BatchSize
	if batch <= 0 {
		batch = defaultBatchSize
	}
	interval := opts.PollInterval
	if interval <= 0 {
		interval = defaultPollInterval
	}
	notify := opts.Notify

	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()

	after := from
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		events, err := r.ReadAll(ctx, after, batch)
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return ctxErr
			}
			return fmt.Errorf("eventstore: subscribe: read after position %d: %w", after, err)
		}
		for _, e := range events {
			if e.Position <= after {
				return fmt.Errorf("eventstore: subscribe: reader returned event %s at position %d, not after position %d", e.ID, e.Position, after)
			}
			if err := h(ctx, e); err != nil {
				return fmt.Errorf("eventstore: subscribe: handle event %s at position %d: %w", e.ID, e.Position, err)
			}
			after = e.Position
		}
		if len(events) >= batch {
			continue // probably more to read: no wait
		}

		if timer == nil {
			timer = time.NewTimer(interval)
		} else {
			timer.Reset(interval)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		case _, ok := <-notify:
			if !ok {
				notify = nil // closed: rely on polling from now on
			}
			timer.Stop()
		}
	}
}
