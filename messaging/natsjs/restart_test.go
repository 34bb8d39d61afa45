package natsjs_test

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/messaging"
	"github.com/cairnhq/cairn/messaging/natsjs"
)

// TestBrokerRestart stops the broker while a publisher publishes and a
// subscriber consumes, then starts it again: every message arrives, each
// key in order, and the subscription resumes by itself.
func TestBrokerRestart(t *testing.T) {
	srv, js := embedded(t)
	subj := subject(t, js)
	o := testOpts
	o.PublishTimeout = time.Second
	o.AckWait = crashAckWait // for the message in flight at the stop
	p := natsjs.NewPublisher(js, o)
	defer p.Close()
	s := natsjs.NewSubscriber(js, o)
	defer s.Close()

	var r recorder
	mustSubscribe(t, s, messaging.SubscribeConfig{Subject: subj, Group: "g"}, r.handle)

	const keys, batches, batchSize = 4, 30, 8
	var (
		mu        sync.Mutex
		published int
		failures  int
	)
	pubDone := make(chan error, 1)
	outage := make(chan struct{})
	startOutage := sync.OnceFunc(func() { close(outage) })
	defer startOutage() // frees the publisher if the test fails early
	go func() {
		// Publish batches in order, retrying a failed batch the way an
		// outbox relay would. After a third of them, wait for the broker
		// to stop, so that the rest are published into the outage however
		// fast the first third went.
		n := 0
		for b := range batches {
			if b == batches/3 {
				<-outage
			}
			var batch []messaging.Message
			for range batchSize {
				batch = append(batch, msg(subj, fmt.Sprint("k", n%keys), n))
				n++
			}
			deadline := time.Now().Add(wait)
			for {
				err := p.Publish(t.Context(), batch...)
				if err == nil {
					break
				}
				mu.Lock()
				failures++
				mu.Unlock()
				if time.Now().After(deadline) {
					pubDone <- fmt.Errorf("batch %d: %w", b, err)
					return
				}
				time.Sleep(20 * time.Millisecond) // relay's retry interval
			}
			mu.Lock()
			published += len(batch)
			mu.Unlock()
		}
		pubDone <- nil
	}()

	total := batches * batchSize
	waitFor(t, wait, "a third of the messages published and some consumed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return published >= total/3 && r.count() > 0
	})
	srv.Shutdown()
	startOutage()
	waitFor(t, wait, "a publish to fail during the outage", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return failures > 0
	})
	srv.Start()
	if err := <-pubDone; err != nil {
		t.Fatalf("publisher gave up: %v", err)
	}

	distinct := func() map[string]bool {
		m := map[string]bool{}
		for _, d := range r.deliveries() {
			m[d.ID] = true
		}
		return m
	}
	waitFor(t, 3*wait, "every message after the restart", func() bool { return len(distinct()) == total })

	// First deliveries of each key are in publish order; redeliveries
	// (at least once) are of the message last seen, never of an earlier.
	last := map[string]int{}
	for _, d := range r.deliveries() {
		i, _ := strconv.Atoi(string(d.Data))
		prev, ok := last[d.Key]
		switch {
		case !ok && i != int(d.Key[1]-'0'):
			t.Fatalf("key %s starts with message %d", d.Key, i)
		case ok && i != prev && i != prev+keys:
			t.Fatalf("key %s: message %d after %d, want %d or %d", d.Key, i, prev, prev, prev+keys)
		}
		last[d.Key] = i
	}
	t.Logf("%d publish failures during the outage, %d deliveries of %d messages", failures, r.count(), total)
}
