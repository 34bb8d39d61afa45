package inproc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/messaging"
	"github.com/cairnhq/cairn/messaging/internal/instrument"
)

// scope is the instrumentation scope of the transport's telemetry.
const scope = "github.com/cairnhq/cairn/messaging/inproc"

// Options configures a [Publisher] or a [Subscriber]. The zero value is
// valid.
type Options struct {
	// TracerProvider makes the spans of publishing and processing. Nil
	// means the global provider.
	TracerProvider trace.TracerProvider
	// MeterProvider makes the metrics. Nil means the global provider.
	MeterProvider metric.MeterProvider
}

// Interface guards.
var (
	_ messaging.Publisher    = (*Publisher)(nil)
	_ messaging.Subscriber   = (*Subscriber)(nil)
	_ messaging.Subscription = (*subscription)(nil)
)

// Publisher publishes to a [Broker]. It is safe for concurrent use.
type Publisher struct {
	b      *Broker
	in     *instrument.Instruments
	closed atomic.Bool
}

// NewPublisher returns a publisher to b.
func NewPublisher(b *Broker, opts Options) *Publisher {
	return &Publisher{b: b, in: instrument.New("inproc", scope, opts.TracerProvider, opts.MeterProvider)}
}

// Publish appends msgs, in order, to their subjects' logs; a message whose
// ID was published to the same subject within the broker's duplicate
// window is accepted and dropped. It refuses the whole call, with an
// error wrapping [messaging.ErrInvalidMessage], if one message is
// invalid or larger than the broker's maximum size; it returns
// [messaging.ErrClosed] after Close, and ctx's error if ctx has ended.
// The broker keeps copies: the caller may reuse msgs.
func (p *Publisher) Publish(ctx context.Context, msgs ...messaging.Message) error {
	if p.closed.Load() {
		return fmt.Errorf("inproc: publish: %w", messaging.ErrClosed)
	}
	for _, m := range msgs {
		if err := messaging.Validate(m, p.b.cfg.maxSize); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("inproc: publish: %w", err)
	}
	for _, m := range msgs {
		_, end := p.in.StartPublish(ctx, &m)
		err := p.b.append(m)
		end(err)
		if err != nil {
			return fmt.Errorf("inproc: publish %q to %q: %w", m.ID, m.Subject, err)
		}
	}
	return nil
}

// Close makes later calls to Publish fail with [messaging.ErrClosed]. It
// always returns nil.
func (p *Publisher) Close() error {
	p.closed.Store(true)
	return nil
}

// Subscriber consumes from a [Broker]. It is safe for concurrent use.
//
// Each open subscription reports the gauge cairn.messaging.consumer.lag
// ("cairn.messaging.consumer.lag") of its subject and group: the messages of the
// subject kept by the broker that the group has not acknowledged, that is
// the ones not yet taken by a member plus the ones taken and not yet
// acknowledged (being handled, waiting for redelivery, or queued behind
// an earlier message of their key). Messages trimmed before the group
// read them are not counted. Members of one group report the same value.
type Subscriber struct {
	b  *Broker
	in *instrument.Instruments

	mu     sync.Mutex
	closed bool
	subs   map[*subscription]struct{}
}

// NewSubscriber returns a subscriber to b.
func NewSubscriber(b *Broker, opts Options) *Subscriber {
	return &Subscriber{
		b:    b,
		in:   instrument.New("inproc", scope, opts.TracerProvider, opts.MeterProvider),
		subs: make(map[*subscription]struct{}),
	}
}

// Subscribe starts one goroutine that delivers the messages of cfg.Subject
// to h, one at a time, as a member of cfg.Group; the members of a group
// share its messages. The goroutine ends when the subscription is closed
// or ctx ends; until then the subscription reports the group's consumer
// lag (see [Subscriber]). A panic in h is not recovered. Subscribe returns an error wrapping
// [messaging.ErrInvalidConfig] for a wrong cfg or a nil h, and
// [messaging.ErrClosed] after Close.
func (s *Subscriber) Subscribe(ctx context.Context, cfg messaging.SubscribeConfig, h messaging.Handler) (messaging.Subscription, error) {
	cfg, err := cfg.Normalize()
	if err != nil {
		return nil, err
	}
	if h == nil {
		return nil, fmt.Errorf("%w: subscribe to %q: handler is nil", messaging.ErrInvalidConfig, cfg.Subject)
	}
	subj := s.b.subject(cfg.Subject)
	subj.mu.Lock()
	g := subj.group(cfg.Group)
	subj.mu.Unlock()

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("inproc: subscribe to %q: %w", cfg.Subject, messaging.ErrClosed)
	}
	sctx, cancel := context.WithCancel(ctx)
	sub := &subscription{owner: s, subj: subj, g: g, cfg: cfg, h: h, ctx: sctx, cancel: cancel}
	reg, err := s.in.RegisterLag(cfg.Subject, cfg.Group, func(context.Context) (int64, error) {
		subj.mu.Lock()
		defer subj.mu.Unlock()
		return g.lag(subj), nil
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("inproc: subscribe to %q: lag gauge: %w", cfg.Subject, err)
	}
	sub.unregister = sync.OnceFunc(func() { _ = reg.Unregister() })
	s.subs[sub] = struct{}{}
	sub.wg.Add(1)
	go sub.run()
	return sub, nil
}

// Close closes every subscription, waiting for their running handlers to
// return, and makes later calls to Subscribe fail with
// [messaging.ErrClosed]. It always returns nil.
func (s *Subscriber) Close() error {
	s.mu.Lock()
	s.closed = true
	subs := make([]*subscription, 0, len(s.subs))
	for sub := range s.subs {
		subs = append(subs, sub)
	}
	s.mu.Unlock()
	for _, sub := range subs {
		sub.Close()
	}
	return nil
}

// subscription is one member of a group, with one delivering goroutine.
type subscription struct {
	owner  *Subscriber
	subj   *subject
	g      *group
	cfg    messaging.SubscribeConfig
	h      messaging.Handler
	ctx    context.Context // ends when the subscription closes
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// unregister stops the lag gauge; it may be called more than once.
	unregister func()
}

// Close stops delivery and waits for a running handler to return; the
// message it was handling, if not acknowledged, goes back to the group at
// once. It stops the subscription's lag gauge. It always returns nil.
func (sub *subscription) Close() error {
	sub.cancel()
	sub.wg.Wait()
	sub.unregister()
	return nil
}

// run delivers messages until the subscription's context ends.
func (sub *subscription) run() {
	defer func() {
		// A subscription ended by its context stops reporting too.
		sub.unregister()
		sub.owner.mu.Lock()
		delete(sub.owner.subs, sub)
		sub.owner.mu.Unlock()
		sub.wg.Done()
	}()
	for {
		sub.subj.mu.Lock()
		if sub.ctx.Err() != nil {
			sub.subj.mu.Unlock()
			return
		}
		p, wake, due := sub.g.take(sub.subj, time.Now())
		sub.subj.mu.Unlock()
		if p != nil {
			sub.handle(p)
			continue
		}
		var timeout <-chan time.Time
		var timer *time.Timer
		if !due.IsZero() {
			timer = time.NewTimer(time.Until(due))
			timeout = timer.C
		}
		select {
		case <-sub.ctx.Done():
		case <-wake:
		case <-timeout:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// handle delivers p to the handler and acknowledges, redelivers or
// dead-letters it as [messaging.Decide] says.
func (sub *subscription) handle(p *pending) {
	d := messaging.Delivery{Message: clone(*p.msg), Attempt: p.attempts, Group: sub.cfg.Group}
	ctx, end := sub.owner.in.StartProcess(sub.ctx, d)
	err := sub.h(ctx, d)

	var outcome messaging.Outcome
	var delay time.Duration
	switch {
	case err != nil && sub.ctx.Err() != nil && !messaging.IsPermanent(err):
		// The subscription is closing under the handler: the message
		// goes back to the group as it is, for another member or the
		// next Subscribe.
		outcome = messaging.Redeliver
	default:
		outcome = messaging.Decide(err, p.attempts, sub.cfg)
		if outcome == messaging.Redeliver {
			delay = sub.cfg.Backoff(p.attempts)
		}
	}
	if outcome == messaging.DeadLetterIt {
		// The handler may have changed d: build the dead letter from the
		// message as the broker holds it.
		orig := messaging.Delivery{Message: *p.msg, Attempt: p.attempts, Group: sub.cfg.Group}
		dl := messaging.DeadLetter(orig, sub.cfg, err)
		_, pubEnd := sub.owner.in.StartPublish(ctx, &dl)
		dlErr := sub.owner.b.append(dl)
		pubEnd(dlErr)
		if dlErr != nil {
			// Never lose the message: deliver it again instead.
			err = errors.Join(err, fmt.Errorf("inproc: dead-letter %q to %q: %w", dl.ID, dl.Subject, dlErr))
			outcome = messaging.Redeliver
			delay = sub.cfg.Backoff(p.attempts)
		}
	}

	sub.subj.mu.Lock()
	if outcome == messaging.Redeliver {
		sub.g.release(p, delay)
	} else {
		sub.g.ack(p)
	}
	sub.subj.mu.Unlock()
	end(outcome, err)
}
