package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/cairnhq/cairn/messaging"
	"github.com/cairnhq/cairn/messaging/internal/instrument"
)

// commitTimeout bounds the final commit of a closing subscription.
const commitTimeout = 10 * time.Second

// Subscriber consumes messages as members of Kafka consumer groups. Each
// subscription is its own consumer-group client, and so its own group
// member. It is safe for concurrent use.
//
// [messaging.Delivery.Attempt] counts the deliveries made by one
// subscription: a record whose subscription closed or crashed before its
// outcome is consumed again by the group's next owner of its partition,
// with Attempt 1 again, since Kafka keeps no delivery count.
//
// Each open subscription reports the gauge cairn.messaging.consumer.lag
// ("cairn.messaging.consumer.lag") of its topic and group, computed without an
// admin client: the sum, over the partitions it has fetched from and
// still owns, of the partition's high watermark minus the offset of the
// next record to handle. The high watermark is the one carried by the
// latest fetch of the partition the subscription has polled, so records
// produced since then count only once a fetch of them is polled; the next
// record to handle is the one after the last record that got its outcome
// (acknowledged or dead-lettered), and the record being handled is not
// handled yet. A partition counts from its first polled fetch: before it,
// and after it is revoked or lost, it adds nothing. Offsets without a
// deliverable record (transaction markers, aborted records) count until a
// later record is handled. Other members of the group report their own
// partitions.
type Subscriber struct {
	seeds []string
	opts  Options
	in    *instrument.Instruments

	mu     sync.Mutex
	closed bool
	subs   map[*subscription]struct{}
}

var _ messaging.Subscriber = (*Subscriber)(nil)

// NewSubscriber returns a subscriber whose clients connect to the brokers
// seeds, with opts.ClientOptions added.
func NewSubscriber(seeds []string, opts Options) *Subscriber {
	return &Subscriber{seeds: seeds, opts: opts, in: opts.instruments(), subs: make(map[*subscription]struct{})}
}

// Subscribe starts a consumer-group member of cfg.Group on the topic
// [Topic](cfg.Subject), which delivers its records to h. It returns an
// error wrapping [messaging.ErrInvalidConfig] for a wrong cfg, and
// [messaging.ErrClosed] after Close. The group starts at the earliest
// offset when it has no committed offset. Records are read with the
// read_committed isolation level, so aborted transactional records are
// never delivered. Until it is closed, the subscription reports its
// consumer lag (see [Subscriber]).
func (s *Subscriber) Subscribe(ctx context.Context, cfg messaging.SubscribeConfig, h messaging.Handler) (messaging.Subscription, error) {
	cfg, err := cfg.Normalize()
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	if h == nil {
		return nil, fmt.Errorf("kafka: %w: subscribe to %q: handler is nil", messaging.ErrInvalidConfig, cfg.Subject)
	}
	if Topic(cfg.DeadLetterSubject) == Topic(cfg.Subject) {
		return nil, fmt.Errorf("kafka: %w: subscribe to %q: dead-letter topic is the topic itself", messaging.ErrInvalidConfig, cfg.Subject)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("kafka: subscribe to %q: %w", cfg.Subject, messaging.ErrClosed)
	}

	sub := &subscription{
		cfg:     cfg,
		h:       h,
		in:      s.in,
		maxSize: s.opts.maxSize(),
		handled: make(map[string]map[int32]kgo.EpochOffset),
		parts:   make(map[string]map[int32]*partLag),
		done:    make(chan struct{}),
		parent:  s,
	}
	// The caller's options come first, so that the ones the
	// subscription depends on win.
	opts := append([]kgo.Opt(nil), s.opts.ClientOptions...)
	opts = append(opts,
		kgo.SeedBrokers(s.seeds...),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(Topic(cfg.Subject)),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.OnPartitionsRevoked(sub.revoked),
		kgo.OnPartitionsLost(sub.lost),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: subscribe to %q as group %q: %w", cfg.Subject, cfg.Group, err)
	}
	sub.cl = cl
	reg, err := s.in.RegisterLag(cfg.Subject, cfg.Group, func(context.Context) (int64, error) {
		return sub.lag(), nil
	})
	if err != nil {
		cl.Close()
		return nil, fmt.Errorf("kafka: subscribe to %q as group %q: lag gauge: %w", cfg.Subject, cfg.Group, err)
	}
	sub.unregister = sync.OnceFunc(func() { _ = reg.Unregister() })
	var sctx context.Context
	sctx, sub.cancel = context.WithCancel(ctx)
	s.subs[sub] = struct{}{}
	go sub.run(sctx)
	return sub, nil
}

// Close closes every subscription, waiting for their handlers to return,
// and makes further Subscribe calls fail with [messaging.ErrClosed].
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

func (s *Subscriber) remove(sub *subscription) {
	s.mu.Lock()
	delete(s.subs, sub)
	s.mu.Unlock()
}

// subscription is one consumer-group member.
//
// Lock order: mu, then lagMu; lagMu is never held while taking mu. The
// callbacks revoked and lost run on the client's goroutines and take both.
type subscription struct {
	cfg     messaging.SubscribeConfig
	h       messaging.Handler
	in      *instrument.Instruments
	maxSize int
	cl      *kgo.Client
	cancel  context.CancelFunc
	done    chan struct{}
	parent  *Subscriber
	// unregister stops the lag gauge; it may be called more than once.
	unregister func()

	mu      sync.Mutex
	handled map[string]map[int32]kgo.EpochOffset // next offsets to commit

	// lagMu guards parts, apart from mu so that the gauge does not wait
	// for a commit.
	lagMu sync.Mutex
	parts map[string]map[int32]*partLag // partitions fetched and owned
}

// partLag is what the lag gauge knows of one partition.
type partLag struct {
	hwm  int64 // high watermark of the latest polled fetch
	next int64 // offset of the next record to handle
}

// Close stops delivery, waits for a running handler, commits the offsets
// of the records that were handled and leaves the group. It stops the
// subscription's lag gauge.
func (sub *subscription) Close() error {
	sub.cancel()
	<-sub.done
	sub.unregister()
	sub.parent.remove(sub)
	return nil
}

// run polls and handles records until ctx ends, then commits and leaves.
func (sub *subscription) run(ctx context.Context) {
	defer close(sub.done)
	defer sub.unregister() // also when ctx ends without Close
	defer sub.cl.Close()
	defer sub.cl.AllowRebalance()
	for {
		fetches := sub.cl.PollFetches(ctx)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			break
		}
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			sub.fetched(p)
			for _, r := range p.Records {
				if ctx.Err() != nil || !sub.handle(ctx, r) {
					return
				}
				sub.mark(r)
			}
		})
		sub.commit(ctx)
		sub.cl.AllowRebalance()
	}
	cctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	sub.commit(cctx)
}

// mark records that r has its outcome, so its offset may be committed.
func (sub *subscription) mark(r *kgo.Record) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	t := sub.handled[r.Topic]
	if t == nil {
		t = make(map[int32]kgo.EpochOffset)
		sub.handled[r.Topic] = t
	}
	t[r.Partition] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset + 1}
	sub.lagMu.Lock()
	defer sub.lagMu.Unlock()
	if pl := sub.parts[r.Topic][r.Partition]; pl != nil {
		pl.next = r.Offset + 1
	}
}

// fetched records the high watermark of a polled fetch of p and, on the
// partition's first fetch with records, its first record as the next to
// handle. A fetch that failed tells nothing.
func (sub *subscription) fetched(p kgo.FetchTopicPartition) {
	if p.Err != nil {
		return
	}
	sub.lagMu.Lock()
	defer sub.lagMu.Unlock()
	pl := sub.parts[p.Topic][p.Partition]
	if pl == nil {
		if len(p.Records) == 0 {
			return
		}
		pl = &partLag{next: p.Records[0].Offset}
		t := sub.parts[p.Topic]
		if t == nil {
			t = make(map[int32]*partLag)
			sub.parts[p.Topic] = t
		}
		t[p.Partition] = pl
	}
	pl.hwm = p.HighWatermark
}

// lag returns the records of the partitions fetched and owned that are
// not handled yet, as of their latest polled fetch.
func (sub *subscription) lag() int64 {
	sub.lagMu.Lock()
	defer sub.lagMu.Unlock()
	var n int64
	for _, t := range sub.parts {
		for _, pl := range t {
			n += max(pl.hwm-pl.next, 0)
		}
	}
	return n
}

// commit commits the offsets of the records handled since the last
// commit. A failed commit leaves them to be committed next time, or, if
// the partition moved, to be delivered again to its new owner: at least
// once, never lost.
func (sub *subscription) commit(ctx context.Context) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	sub.commitLocked(ctx)
}

func (sub *subscription) commitLocked(ctx context.Context) {
	if len(sub.handled) == 0 {
		return
	}
	offsets := sub.handled
	var failed error
	sub.cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			failed = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 {
					failed = errors.New("partition commit failed")
				}
			}
		}
	})
	if failed == nil {
		sub.handled = make(map[string]map[int32]kgo.EpochOffset)
	}
}

// revoked commits what was handled before partitions move to another
// member, then forgets the revoked partitions.
func (sub *subscription) revoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	sub.commitLocked(ctx)
	sub.forget(revoked)
}

// lost forgets partitions that were lost without a chance to commit: the
// group's next owner consumes them again from the last commit.
func (sub *subscription) lost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	sub.forget(lost)
}

func (sub *subscription) forget(parts map[string][]int32) {
	sub.lagMu.Lock()
	defer sub.lagMu.Unlock()
	for t, ps := range parts {
		for _, p := range ps {
			delete(sub.parts[t], p)
		}
		if len(sub.parts[t]) == 0 {
			delete(sub.parts, t)
		}
	}
	for t, ps := range parts {
		for _, p := range ps {
			delete(sub.handled[t], p)
		}
		if len(sub.handled[t]) == 0 {
			delete(sub.handled, t)
		}
	}
}

// handle delivers r until it is acknowledged or dead-lettered, and reports
// whether it was; false means the subscription is closing and r must be
// delivered again.
func (sub *subscription) handle(ctx context.Context, r *kgo.Record) bool {
	d := messaging.Delivery{Message: message(r), Group: sub.cfg.Group}
	for attempt := 1; ; attempt++ {
		d.Attempt = attempt
		pctx, end := sub.in.StartProcess(ctx, d)
		err := call(pctx, sub.h, d)
		if ctx.Err() != nil {
			// Closed mid-handler: whatever the handler said, the
			// record is not committed and is delivered again.
			end(messaging.Redeliver, errors.Join(err, ctx.Err()))
			return false
		}
		o := messaging.Decide(err, attempt, sub.cfg)
		if o == messaging.DeadLetterIt {
			dl := messaging.DeadLetter(d, sub.cfg, err)
			if perr := produce(pctx, sub.cl, sub.in, []messaging.Message{dl}); perr != nil {
				// The dead letter is not durable: keep the
				// original and try again after the backoff.
				o, err = messaging.Redeliver, errors.Join(err, perr)
			}
		}
		end(o, err)
		if o != messaging.Redeliver {
			return true
		}
		t := time.NewTimer(sub.cfg.Backoff(attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

// call runs h, turning a panic into an error.
func call(ctx context.Context, h messaging.Handler, d messaging.Delivery) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("kafka: handler panicked on message %q: %v", d.ID, p)
		}
	}()
	return h(ctx, d)
}
