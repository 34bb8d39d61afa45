package kafka_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cairnhq/cairn/messaging"
	"github.com/cairnhq/cairn/messaging/kafka"
)

// cluster starts an in-process Kafka cluster that creates topics on use,
// with partitions partitions each, and returns its seed brokers.
func cluster(t *testing.T, partitions int32) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(int(partitions)))
	if err != nil {
		t.Fatalf("kfake.NewCluster: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// clientOpts are the options tests add to every client.
var clientOpts = []kgo.Opt{kgo.AllowAutoTopicCreation(), kgo.FetchMaxWait(200 * time.Millisecond)}

func newClient(t *testing.T, seeds []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append(append([]kgo.Opt{kgo.SeedBrokers(seeds...)}, clientOpts...), opts...)...)
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func newPublisher(t *testing.T, seeds []string, opts kafka.Options) *kafka.Publisher {
	t.Helper()
	p := kafka.NewPublisher(newClient(t, seeds), opts)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func newSubscriber(t *testing.T, seeds []string, opts kafka.Options) *kafka.Subscriber {
	t.Helper()
	opts.ClientOptions = append(opts.ClientOptions, clientOpts...)
	s := kafka.NewSubscriber(seeds, opts)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

var topicSeq atomic.Int64

// subject returns a topic name unique to the test.
func subject(t *testing.T) string {
	return fmt.Sprintf("t%d.%s", topicSeq.Add(1), kafka.Topic(t.Name()))
}

// recorder collects deliveries.
type recorder struct {
	mu   sync.Mutex
	got  []messaging.Delivery
	cond chan struct{} // closed and replaced on every delivery
}

func newRecorder() *recorder { return &recorder{cond: make(chan struct{})} }

func (r *recorder) add(d messaging.Delivery) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, d)
	close(r.cond)
	r.cond = make(chan struct{})
}

// wait waits until ok holds for the deliveries so far, or fails the test
// after a deadline.
func (r *recorder) wait(t *testing.T, what string, ok func([]messaging.Delivery) bool) []messaging.Delivery {
	t.Helper()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		got := append([]messaging.Delivery(nil), r.got...)
		ch := r.cond
		r.mu.Unlock()
		if ok(got) {
			return got
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s; got %d deliveries", what, len(got))
		}
	}
}

func atLeast(n int) func([]messaging.Delivery) bool {
	return func(ds []messaging.Delivery) bool { return len(ds) >= n }
}

func publish(t *testing.T, p messaging.Publisher, msgs ...messaging.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Publish(ctx, msgs...); err != nil {
		t.Fatalf("Publish: %v", err)
	}
}

func subscribe(t *testing.T, s messaging.Subscriber, cfg messaging.SubscribeConfig, h messaging.Handler) messaging.Subscription {
	t.Helper()
	sub, err := s.Subscribe(context.Background(), cfg, h)
	if err != nil {
		t.Fatalf("Subscribe(%+v): %v", cfg, err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return sub
}

func fastBackoff(int) time.Duration { return 10 * time.Millisecond }
