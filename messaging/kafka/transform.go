package kafka

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cairnhq/cairn/messaging"
	"github.com/cairnhq/cairn/messaging/internal/instrument"
)

// TransformFunc maps one input message to the messages to produce for it.
// An error aborts the transaction of the batch the message is in: nothing
// of the batch is produced or committed, and the batch is consumed again.
// To set aside a message it can never transform, return a message to a
// dead-letter topic (see [messaging.DeadLetter]) instead of an error: it is
// produced in the same transaction.
type TransformFunc func(ctx context.Context, d messaging.Delivery) ([]messaging.Message, error)

// TransformConfig configures [Transform].
type TransformConfig struct {
	// Seeds are the brokers to connect to. Required.
	Seeds []string
	// Group is the consumer group that reads InputTopic and whose
	// offsets are committed in the transactions. Required.
	Group string
	// InputTopic is the topic to consume. Required.
	InputTopic string
	// TransactionalID identifies the transactional producer. Required.
	// Each running instance needs its own; an instance that replaces a
	// dead one reuses the dead one's ID, which fences it and aborts its
	// open transaction.
	TransactionalID string
	// Backoff is how long to wait after an aborted transaction, given the
	// number of aborts in a row (1 for the first). Nil means
	// [messaging.DefaultBackoff].
	Backoff func(attempt int) time.Duration
	// Options holds the telemetry providers, the message size limit and
	// extra client options. The zero value is valid.
	Options Options
}

func (cfg TransformConfig) validate() error {
	var missing string
	switch {
	case len(cfg.Seeds) == 0:
		missing = "seeds"
	case cfg.Group == "":
		missing = "group"
	case cfg.InputTopic == "":
		missing = "input topic"
	case cfg.TransactionalID == "":
		missing = "transactional ID"
	default:
		return nil
	}
	return fmt.Errorf("kafka: %w: transform of %q: %s is empty", messaging.ErrInvalidConfig, cfg.InputTopic, missing)
}

// Transform consumes cfg.InputTopic as a member of cfg.Group and, for each
// polled batch, in one Kafka transaction, produces what fn returns for each
// message of the batch and commits the batch's input offsets: exactly once,
// for consumers of the output that read with the read_committed isolation
// level (kgo.FetchIsolationLevel(kgo.ReadCommitted()); a [Subscriber]
// always does). It uses franz-go's [kgo.GroupTransactSession]: if fn fails,
// a produce fails, or the group rebalances before the commit, the
// transaction is aborted and the batch is consumed again.
//
// Transform returns nil when ctx ends, an error wrapping
// [messaging.ErrInvalidConfig] for a wrong cfg, and an error if the
// transactional producer fails in a way it cannot recover from (it was
// fenced by another instance with the same TransactionalID, say). A
// transaction open when ctx ends is left to be aborted by the broker's
// transaction timeout or by the next instance with the same
// TransactionalID.
//
// The [messaging.Delivery.Attempt] given to fn counts the aborted
// transactions in a row in this instance, starting at 1.
func Transform(ctx context.Context, cfg TransformConfig, fn TransformFunc) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	if fn == nil {
		return fmt.Errorf("kafka: %w: transform of %q: function is nil", messaging.ErrInvalidConfig, cfg.InputTopic)
	}
	backoff := cfg.Backoff
	if backoff == nil {
		backoff = messaging.DefaultBackoff
	}
	in := cfg.Options.instruments()
	maxSize := cfg.Options.maxSize()
	opts := append([]kgo.Opt(nil), cfg.Options.ClientOptions...)
	opts = append(opts,
		kgo.SeedBrokers(cfg.Seeds...),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(Topic(cfg.InputTopic)),
		kgo.TransactionalID(cfg.TransactionalID),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)
	sess, err := kgo.NewGroupTransactSession(opts...)
	if err != nil {
		return fmt.Errorf("kafka: transform of %q: %w", cfg.InputTopic, err)
	}
	defer sess.Close()

	aborts := 0
	for {
		fetches := sess.PollFetches(ctx)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return nil
		}
		if fetches.Empty() {
			continue
		}
		if err := sess.Begin(); err != nil {
			return fmt.Errorf("kafka: transform of %q: begin transaction: %w", cfg.InputTopic, err)
		}
		b := &batch{sess: sess, in: in}
		failed := b.run(ctx, fetches, cfg.Group, aborts+1, maxSize, fn)
		if failed == nil {
			// Flush so that a failed produce aborts the transaction
			// instead of committing the offsets without the output.
			if err := sess.Client().Flush(ctx); err != nil {
				return nil // ctx ended
			}
			failed = b.err()
		}
		committed, err := sess.End(ctx, kgo.TransactionEndTry(failed == nil))
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("kafka: transform of %q: end transaction: %w", cfg.InputTopic, err)
		}
		if committed {
			aborts = 0
			continue
		}
		aborts++
		t := time.NewTimer(backoff(aborts))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// batch is the work of one transaction.
type batch struct {
	sess *kgo.GroupTransactSession
	in   *instrument.Instruments

	mu      sync.Mutex
	produce error // the first failed produce
}

// run transforms every record of fetches and produces the output in the
// open transaction, stopping at the first failure, which it returns.
func (b *batch) run(ctx context.Context, fetches kgo.Fetches, group string, attempt, maxSize int, fn TransformFunc) error {
	var failed error
	fetches.EachRecord(func(r *kgo.Record) {
		if failed != nil {
			return
		}
		d := messaging.Delivery{Message: message(r), Attempt: attempt, Group: group}
		pctx, end := b.in.StartProcess(ctx, d)
		out, err := transformOne(pctx, fn, d)
		for _, m := range out {
			if err != nil {
				break
			}
			if verr := messaging.Validate(m, maxSize); verr != nil {
				err = fmt.Errorf("kafka: transform of message %q: output: %w", d.ID, verr)
			}
		}
		if err != nil {
			failed = err
			end(messaging.Redeliver, err)
			return
		}
		for _, m := range out {
			_, done := b.in.StartPublish(pctx, &m)
			b.sess.Produce(ctx, record(m), func(r *kgo.Record, err error) {
				done(err)
				if err != nil {
					b.mu.Lock()
					if b.produce == nil {
						b.produce = fmt.Errorf("kafka: transform: produce to topic %q: %w", r.Topic, err)
					}
					b.mu.Unlock()
				}
			})
		}
		end(messaging.Ack, nil)
	})
	return failed
}

func (b *batch) err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.produce
}

// transformOne runs fn, turning a panic into an error.
func transformOne(ctx context.Context, fn TransformFunc, d messaging.Delivery) (out []messaging.Message, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, fmt.Errorf("kafka: transform panicked on message %q: %v", d.ID, p)
		}
	}()
	return fn(ctx, d)
}
