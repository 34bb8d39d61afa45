package natsjs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/metric"

	"github.com/cairnhq/cairn/messaging"
	"github.com/cairnhq/cairn/messaging/internal/instrument"
)

// Subscriber consumes JetStream subjects through durable pull consumers.
// It is safe for concurrent use. Close it when done; it does not close the
// connection.
type Subscriber struct {
	js   jetstream.JetStream
	opts Options
	in   *instrument.Instruments

	mu     sync.Mutex
	closed bool
	subs   map[*subscription]struct{}
}

var _ messaging.Subscriber = (*Subscriber)(nil)

// lagTimeout bounds the broker request of the consumer lag gauge, which
// runs in every metric collection.
const lagTimeout = time.Second

// NewSubscriber returns a subscriber on js, whose connection the caller
// owns.
func NewSubscriber(js jetstream.JetStream, opts Options) *Subscriber {
	return &Subscriber{
		js:   js,
		opts: opts.withDefaults(),
		in:   instrument.New("nats", scope, opts.TracerProvider, opts.MeterProvider),
		subs: make(map[*subscription]struct{}),
	}
}

// Subscribe creates or joins the durable consumer [DurableName](cfg.Group,
// cfg.Subject) on the stream that stores cfg.Subject, and delivers its
// messages to h, one at a time, until the subscription is closed or ctx
// ends. Subscribers of one group, in this process or others, share the
// consumer and so its messages.
//
// The default dead-letter subject is [messaging.DeadLetterSubject] with
// wildcards, white space and empty tokens replaced by "_". Subscribe
// returns an error wrapping [messaging.ErrInvalidConfig] when cfg is wrong,
// or when no stream stores cfg.Subject or its dead-letter subject (see
// [EnsureStream], [EnsureDeadLetterStream]); [messaging.ErrClosed] after
// Close.
//
// The attempt of a delivery is JetStream's delivery count. A failed
// message is handed back with a delay of cfg.Backoff(attempt); one that is
// to be dead-lettered is published to the dead-letter subject first and
// acknowledged only once the broker has stored it, else handed back. While
// a handler runs, the subscription tells the broker every AckWait/3 that
// it is still working on the message.
func (s *Subscriber) Subscribe(ctx context.Context, cfg messaging.SubscribeConfig, h messaging.Handler) (messaging.Subscription, error) {
	if cfg.DeadLetterSubject == "" && cfg.Subject != "" && cfg.Group != "" {
		cfg.DeadLetterSubject = sanitizeSubject(messaging.DeadLetterSubject(cfg.Subject, cfg.Group))
	}
	cfg, err := cfg.Normalize()
	if err != nil {
		return nil, fmt.Errorf("natsjs: %w", err)
	}
	if h == nil {
		return nil, fmt.Errorf("natsjs: %w: subscribe to %q: handler is nil", messaging.ErrInvalidConfig, cfg.Subject)
	}
	if !validSubject(cfg.DeadLetterSubject) {
		return nil, fmt.Errorf("natsjs: %w: subscribe to %q: dead-letter subject %q is not one NATS can publish to", messaging.ErrInvalidConfig, cfg.Subject, cfg.DeadLetterSubject)
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("natsjs: subscribe to %q: %w", cfg.Subject, messaging.ErrClosed)
	}

	stream, err := s.requireStream(ctx, cfg.Subject, "subject")
	if err != nil {
		return nil, err
	}
	if _, err := s.requireStream(ctx, cfg.DeadLetterSubject, "dead-letter subject"); err != nil {
		return nil, err
	}
	sub := &subscription{
		parent: s,
		cfg:    cfg,
		h:      h,
		stream: stream,
		ccfg: jetstream.ConsumerConfig{
			Durable:       DurableName(cfg.Group, cfg.Subject),
			Description:   fmt.Sprintf("cairn group %q on %q", cfg.Group, cfg.Subject),
			FilterSubject: cfg.Subject,
			DeliverPolicy: jetstream.DeliverAllPolicy,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       s.opts.AckWait,
			MaxAckPending: s.opts.MaxAckPending,
			MaxDeliver:    -1, // Decide counts deliveries and dead-letters.
		},
		done: make(chan struct{}),
	}
	cons, err := s.js.CreateOrUpdateConsumer(ctx, stream, sub.ccfg)
	if err != nil {
		return nil, fmt.Errorf("natsjs: subscribe to %q as group %q: create consumer %q on stream %q: %w", cfg.Subject, cfg.Group, sub.ccfg.Durable, stream, err)
	}
	var runCtx context.Context
	runCtx, sub.cancel = context.WithCancel(ctx)

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		sub.cancel()
		return nil, fmt.Errorf("natsjs: subscribe to %q: %w", cfg.Subject, messaging.ErrClosed)
	}
	s.subs[sub] = struct{}{}
	s.mu.Unlock()

	// The consumer lag: messages not yet delivered to the group, and
	// delivered but not acknowledged.
	// The callback runs in the collection of every metric of the
	// MeterProvider: while the connection is down it skips the gauge at
	// once, rather than hold the whole collection (and the export of
	// every other metric) until a request to the broker times out.
	sub.lag, err = s.in.RegisterLag(cfg.Subject, cfg.Group, func(ctx context.Context) (int64, error) {
		if !s.js.Conn().IsConnected() {
			return 0, instrument.ErrLagUnknown
		}
		ctx, cancel := context.WithTimeout(ctx, lagTimeout)
		defer cancel()
		info, err := s.js.Consumer(ctx, stream, sub.ccfg.Durable)
		if err != nil {
			return 0, fmt.Errorf("natsjs: lag of group %q on %q: %w", cfg.Group, cfg.Subject, err)
		}
		ci := info.CachedInfo()
		return int64(ci.NumPending) + int64(ci.NumAckPending), nil
	})
	if err != nil {
		sub.cancel()
		s.mu.Lock()
		delete(s.subs, sub)
		s.mu.Unlock()
		return nil, fmt.Errorf("natsjs: subscribe to %q: lag gauge: %w", cfg.Subject, err)
	}
	go sub.run(runCtx, cons)
	return sub, nil
}

func (s *Subscriber) requireStream(ctx context.Context, subject, what string) (string, error) {
	name, err := streamFor(ctx, s.js, subject)
	switch {
	case errors.Is(err, errNoStream):
		return "", fmt.Errorf("natsjs: %w: %s %q: no JetStream stream stores it (create one with EnsureStream or EnsureDeadLetterStream)", messaging.ErrInvalidConfig, what, subject)
	case err != nil:
		return "", fmt.Errorf("natsjs: find the stream of %s %q: %w", what, subject, err)
	}
	return name, nil
}

// Close closes every subscription, waiting for running handlers to
// return, and makes later calls to Subscribe return [messaging.ErrClosed].
// It does not close the connection and always returns nil.
func (s *Subscriber) Close() error {
	s.mu.Lock()
	s.closed = true
	subs := make([]*subscription, 0, len(s.subs))
	for sub := range s.subs {
		subs = append(subs, sub)
	}
	s.mu.Unlock()
	for _, sub := range subs {
		_ = sub.Close()
	}
	return nil
}

type subscription struct {
	parent *Subscriber
	cfg    messaging.SubscribeConfig
	h      messaging.Handler
	stream string
	ccfg   jetstream.ConsumerConfig
	cancel context.CancelFunc
	done   chan struct{}
	lag    metric.Registration
}

// Close stops delivery and waits for the running handler to return. A
// message whose handler failed because of the close is handed back to the
// broker at once, for another member or the next subscription.
func (sub *subscription) Close() error {
	sub.cancel()
	<-sub.done
	if sub.lag != nil {
		_ = sub.lag.Unregister()
	}
	sub.parent.mu.Lock()
	delete(sub.parent.subs, sub)
	sub.parent.mu.Unlock()
	return nil
}

// run pulls one message at a time and handles it, until ctx ends. Pull
// errors (broker down, consumer gone) are retried after RetryWait.
func (sub *subscription) run(ctx context.Context, cons jetstream.Consumer) {
	defer close(sub.done)
	o := sub.parent.opts
	for ctx.Err() == nil {
		fctx, cancel := context.WithTimeout(ctx, o.PollWait)
		msg, err := cons.Next(jetstream.FetchContext(fctx))
		cancel()
		if msg != nil {
			if ctx.Err() != nil {
				_ = msg.Nak()
				return
			}
			sub.handle(ctx, msg)
			continue
		}
		if ctx.Err() != nil {
			return
		}
		if err == nil || errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
			continue
		}
		if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) ||
			errors.Is(err, nats.ErrNoResponders) {
			// The consumer is gone or the broker is still starting:
			// create the consumer again, as Subscribe did.
			if c, cerr := sub.parent.js.CreateOrUpdateConsumer(ctx, sub.stream, sub.ccfg); cerr == nil {
				cons = c
				continue
			}
		}
		t := time.NewTimer(o.RetryWait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// handle runs the handler on msg and acknowledges, hands back or
// dead-letters it.
func (sub *subscription) handle(ctx context.Context, msg jetstream.Msg) {
	s := sub.parent
	attempt, stream, seq := 1, sub.stream, uint64(0)
	if meta, err := msg.Metadata(); err == nil {
		attempt, stream, seq = int(meta.NumDelivered), meta.Stream, meta.Sequence.Stream
	}
	d := messaging.Delivery{
		Message: fromNATS(msg.Subject(), msg.Headers(), msg.Data(), stream, seq),
		Attempt: attempt,
		Group:   sub.cfg.Group,
	}
	pctx, end := s.in.StartProcess(ctx, d)

	// Progress heartbeats keep the broker from redelivering the message
	// while the handler runs longer than AckWait.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(max(s.opts.AckWait/3, time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	err := sub.h(pctx, d)
	close(stop)
	wg.Wait()

	if err != nil && ctx.Err() != nil {
		// Closing: hand the message back now rather than after AckWait.
		_ = msg.Nak()
		end(messaging.Redeliver, err)
		return
	}
	outcome := messaging.Decide(err, attempt, sub.cfg)
	switch outcome {
	case messaging.Ack:
		_ = msg.Ack()
	case messaging.Redeliver:
		_ = msg.NakWithDelay(sub.cfg.Backoff(attempt))
	case messaging.DeadLetterIt:
		dl := messaging.DeadLetter(d, sub.cfg, err)
		perr := publish(context.WithoutCancel(pctx), s.js, s.in, s.opts, dl, sub.cfg.DeadLetterSubject+"|"+d.ID, true)
		if perr != nil {
			// Never lose it: hand it back, to dead-letter again later.
			_ = msg.NakWithDelay(sub.cfg.Backoff(attempt))
			outcome, err = messaging.Redeliver, errors.Join(err, fmt.Errorf("dead-letter to %q: %w", sub.cfg.DeadLetterSubject, perr))
		} else {
			_ = msg.Ack()
		}
	}
	end(outcome, err)
}
