package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cairnhq/cairn/messaging"
	"github.com/cairnhq/cairn/messaging/kafka"
)

// TestTransformExactlyOnce feeds n input records to a transform that fails
// (and so aborts) the first time it sees every seventh record, is killed
// in the middle of a transaction and replaced by another instance with the
// same transactional ID, and proves that a read_committed consumer of the
// output sees exactly one output record per input record.
func TestTransformExactlyOnce(t *testing.T) {
	seeds := cluster(t, 1)
	const n = 50
	const killAt = 35 // the distinct input at which the first instance dies
	in, out := subject(t), subject(t)
	p := newPublisher(t, seeds, kafka.Options{})
	var msgs []messaging.Message
	for i := range n {
		msgs = append(msgs, messaging.Message{ID: fmt.Sprint(i), Subject: in, Key: fmt.Sprint(i % 5), Data: []byte(fmt.Sprint(i))})
	}
	publish(t, p, msgs...)

	uncommitted := newClient(t, seeds, kgo.ConsumeTopics(out), kgo.FetchIsolationLevel(kgo.ReadUncommitted()))
	var mu sync.Mutex
	failedOnce := map[string]bool{}
	seen := map[string]bool{}
	killed := make(chan struct{})
	fn := func(first bool) kafka.TransformFunc {
		return func(ctx context.Context, d messaging.Delivery) ([]messaging.Message, error) {
			mu.Lock()
			var i int
			fmt.Sscan(d.ID, &i)
			seen[d.ID] = true
			kill := first && len(seen) == killAt
			fail := i%7 == 3 && !failedOnce[d.ID]
			failedOnce[d.ID] = true
			mu.Unlock()
			if kill {
				// Die only once the output of the previous input,
				// produced in this same transaction, reached the
				// broker: the transaction then has work to abort.
				waitUncommitted(t, uncommitted, fmt.Sprint(i-1))
				close(killed)
				<-ctx.Done() // dies here, its transaction open
				return nil, ctx.Err()
			}
			if fail {
				return nil, errors.New("injected failure")
			}
			return []messaging.Message{{ID: "out-" + d.ID, Subject: out, Key: d.Key, Data: d.Data}}, nil
		}
	}
	cfg := kafka.TransformConfig{
		Seeds: seeds, Group: "etl", InputTopic: in, TransactionalID: "etl-0",
		Backoff: fastBackoff, Options: kafka.Options{ClientOptions: clientOpts},
	}
	run := func(ctx context.Context, first bool) chan error {
		done := make(chan error, 1)
		go func() { done <- kafka.Transform(ctx, cfg, fn(first)) }()
		return done
	}

	ctxA, cancelA := context.WithCancel(context.Background())
	doneA := run(ctxA, true)
	select {
	case <-killed:
	case err := <-doneA:
		cancelA()
		t.Fatalf("first instance returned %v before it was killed", err)
	case <-time.After(60 * time.Second):
		cancelA()
		t.Fatal("first instance never reached the kill point")
	}
	cancelA()
	if err := <-doneA; err != nil {
		t.Fatalf("first instance: Transform = %v", err)
	}

	ctxB, cancelB := context.WithCancel(context.Background())
	doneB := run(ctxB, false)
	defer func() {
		cancelB()
		if err := <-doneB; err != nil {
			t.Errorf("second instance: Transform = %v", err)
		}
	}()

	// Wait until every output is visible to read_committed consumers.
	committed := newClient(t, seeds, kgo.ConsumeTopics(out), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	got := map[string]int{}
	deadline := time.Now().Add(60 * time.Second)
	for len(got) < n {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %d of %d outputs committed", len(got), n)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		committed.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got[string(r.Value)]++ })
		cancel()
	}
	cancelB()
	if err := <-doneB; err != nil {
		t.Errorf("second instance: Transform = %v", err)
	}
	doneB <- nil // for the deferred receive

	// Mark the end of the output, then read all of it, committed and not.
	sentinel := newClient(t, seeds)
	if err := sentinel.ProduceSync(context.Background(), &kgo.Record{Topic: out, Value: []byte("end")}).FirstErr(); err != nil {
		t.Fatalf("produce sentinel: %v", err)
	}
	readAll := func(level kgo.IsolationLevel) map[string]int {
		cl := newClient(t, seeds, kgo.ConsumeTopics(out), kgo.FetchIsolationLevel(level))
		counts := map[string]int{}
		deadline := time.Now().Add(30 * time.Second)
		for counts["end"] == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("timed out reading the output to its end")
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { counts[string(r.Value)]++ })
			cancel()
		}
		delete(counts, "end")
		return counts
	}
	final := readAll(kgo.ReadCommitted())
	for i := range n {
		if c := final[fmt.Sprint(i)]; c != 1 {
			t.Errorf("input %d: %d committed outputs, want exactly 1", i, c)
		}
	}
	if len(final) != n {
		t.Errorf("%d distinct committed outputs, want %d", len(final), n)
	}
	raw := 0
	for _, c := range readAll(kgo.ReadUncommitted()) {
		raw += c
	}
	t.Logf("output records: %d read_uncommitted (aborted included), %d inputs", raw, n)
	if raw <= n {
		t.Errorf("%d output records in all, aborted included; want more than %d: the test aborted nothing", raw, n)
	}
}

// waitUncommitted polls cl until it reads a record whose value is want.
func waitUncommitted(t *testing.T, cl *kgo.Client, want string) {
	deadline := time.Now().Add(30 * time.Second)
	for found := false; !found; {
		if time.Now().After(deadline) {
			t.Errorf("output %s never reached the broker", want)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { found = found || string(r.Value) == want })
		cancel()
	}
}
