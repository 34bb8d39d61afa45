package eventstoretest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnhq/cairn/eventstore"
)

// checkGlobalLogNoSkip has writers append to their own streams while a
// reader follows the global log from a checkpoint: the reader must see
// every appended event exactly once, in strictly increasing position
// order. This is what catches a backend whose ReadAll passes an event
// that commits late with a lower position.
func checkGlobalLogNoSkip(t testing.TB, s eventstore.Store) {
	const (
		writers = 8
		appends = 20 // per writer, of 1 or 2 events
	)
	f := newFixture(t, s)
	head := f.head()
	errs := newErrList()

	var (
		mu       sync.Mutex
		appended = make(map[string]bool)
	)
	var writersDone atomic.Bool
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			st := f.stream(fmt.Sprintf("w%d", w))
			for i := range appends {
				evs := f.events(fmt.Sprintf("w%d-%d", w, i), 1+i%2)
				if _, err := s.Append(f.ctx, st, eventstore.Any, evs...); err != nil {
					errs.add("writer %d: Append() = %v", w, err)
					return
				}
				mu.Lock()
				for _, e := range evs {
					appended[e.ID] = true
				}
				mu.Unlock()
			}
		})
	}

	seen := make(map[string]int) // ID -> times seen
	var order []eventstore.RecordedEvent
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		after := head
		for {
			// Once the writers are done, every append has committed, so
			// one read that comes back empty means the reader is done.
			final := writersDone.Load()
			page, err := s.ReadAll(f.ctx, after, 16)
			if err != nil {
				errs.add("reader: ReadAll(%d, 16) = %v", after, err)
				return
			}
			if len(page) > 16 {
				errs.add("reader: ReadAll(%d, 16) returned %d events", after, len(page))
				return
			}
			for _, e := range page {
				if e.Position <= after {
					errs.add("reader: event %s at position %d after position %d; want strictly increasing", e.ID, e.Position, after)
					return
				}
				after = e.Position
				if f.ours(e) {
					seen[e.ID]++
					order = append(order, e)
				}
			}
			if len(page) == 0 {
				if final {
					return
				}
				time.Sleep(time.Millisecond) // polling, not an assertion
			}
		}
	}()
	wg.Wait()
	writersDone.Store(true)
	<-readerDone
	errs.report(t)
	if t.Failed() {
		return
	}

	if want := writers * appends * 3 / 2; len(appended) != want {
		t.Errorf("writers appended %d events, want %d", len(appended), want)
	}
	var missing []string
	for id := range appended {
		if seen[id] == 0 {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		t.Errorf("the reader never saw %d of %d appended events, such as %s: ReadAll skipped them", len(missing), len(appended), missing[0])
	}
	for id, n := range seen {
		switch {
		case n > 1:
			t.Errorf("the reader saw event %s %d times", id, n)
		case !appended[id]:
			t.Errorf("the reader saw event %s, which no writer appended", id)
		}
	}
	// Within a stream, the global order is the version order.
	last := make(map[string]int64)
	for _, e := range order {
		if e.Version != last[e.StreamID]+1 {
			t.Errorf("stream %s: the global log has version %d after version %d", e.StreamID, e.Version, last[e.StreamID])
		}
		last[e.StreamID] = e.Version
	}
}

// checkSubscribe runs eventstore.Subscribe over the store from a
// checkpoint while writers append: it must deliver every event once, in
// order, and return context.Canceled when canceled.
func checkSubscribe(t testing.TB, s eventstore.Store) {
	const (
		before  = 20
		writers = 4
		appends = 10 // per writer, one event each
	)
	f := newFixture(t, s)
	head := f.head()
	f.append(f.stream("before-a"), eventstore.NoStream, f.events("before-a", before/2)...)
	f.append(f.stream("before-b"), eventstore.NoStream, f.events("before-b", before/2)...)

	var (
		mu       sync.Mutex
		handled  []eventstore.RecordedEvent
		lastPos  eventstore.Position
		progress = make(chan struct{}, 1)
	)
	h := func(_ context.Context, e eventstore.RecordedEvent) error {
		mu.Lock()
		defer mu.Unlock()
		if f.ours(e) {
			handled = append(handled, e)
		}
		lastPos = e.Position
		select {
		case progress <- struct{}{}:
		default:
		}
		return nil
	}
	notify := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(f.ctx)
	defer cancel()
	subDone := make(chan error, 1)
	go func() {
		subDone <- eventstore.Subscribe(ctx, s, head, h, eventstore.SubscribeOptions{BatchSize: 7, PollInterval: 5 * time.Millisecond, Notify: notify})
	}()

	errs := newErrList()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			st := f.stream(fmt.Sprintf("w%d", w))
			for i := range appends {
				if _, err := s.Append(f.ctx, st, eventstore.Any, f.event(fmt.Sprintf("w%d-%d", w, i))); err != nil {
					errs.add("writer %d: Append() = %v", w, err)
					return
				}
				select {
				case notify <- struct{}{}:
				default:
				}
			}
		})
	}
	wg.Wait()
	errs.report(t)
	target := f.head()

	// Wait until the subscription has handled the last event of the log
	// (the minute is a safety net for a stuck store, not a deadline).
	stuck := time.NewTimer(time.Minute)
	defer stuck.Stop()
	for {
		mu.Lock()
		caughtUp := lastPos >= target
		mu.Unlock()
		if caughtUp {
			break
		}
		select {
		case <-progress:
		case err := <-subDone:
			t.Fatalf("Subscribe() returned %v before it caught up", err)
		case <-stuck.C:
			t.Fatalf("Subscribe() did not reach position %d in a minute", target)
		}
	}
	cancel()
	if err := <-subDone; !errors.Is(err, context.Canceled) {
		t.Errorf("Subscribe() after cancel = %v, want %v", err, context.Canceled)
	}

	mu.Lock()
	defer mu.Unlock()
	want := f.readAll(head, 100)
	if len(want) != before+writers*appends {
		t.Errorf("ReadAll() has %d of the check's events, want %d", len(want), before+writers*appends)
	}
	if len(handled) != len(want) {
		t.Errorf("Subscribe delivered %d events, want %d", len(handled), len(want))
	}
	for i := range min(len(handled), len(want)) {
		if handled[i].ID != want[i].ID || handled[i].Position != want[i].Position {
			t.Fatalf("Subscribe delivered event %d as %s at %d, want %s at %d", i, handled[i].ID, handled[i].Position, want[i].ID, want[i].Position)
		}
	}
}

// checkLargeEvent round-trips an event of MaxEventSize bytes of data.
func checkLargeEvent(t testing.TB, s eventstore.Store) {
	f := newFixture(t, s)
	st := f.stream("large")
	head := f.head()
	data := make([]byte, eventstore.MaxEventSize)
	for i := range data {
		data[i] = byte(i*7 + i/251)
	}
	e := f.event("large")
	e.Data = data
	f.append(st, eventstore.NoStream, e)

	got := f.readStream(st)
	if len(got) != 1 {
		t.Fatalf("ReadStream() returned %d events, want 1", len(got))
	}
	if !bytes.Equal(got[0].Data, data) {
		t.Errorf("ReadStream(): Data of %d bytes differs from the %d bytes appended", len(got[0].Data), len(data))
	}
	all := f.readAll(head, 10)
	if len(all) != 1 || !bytes.Equal(all[0].Data, data) {
		t.Errorf("ReadAll() did not return the large event intact")
	}

	over := f.event("over")
	over.Data = make([]byte, eventstore.MaxEventSize+1)
	if _, err := s.Append(f.ctx, st, eventstore.Any, over); !errors.Is(err, eventstore.ErrInvalidEvent) {
		t.Errorf("Append(MaxEventSize+1 bytes) = %v, want %v", err, eventstore.ErrInvalidEvent)
	}
	if v := f.version(st); v != 1 {
		t.Errorf("Version() = %d, want 1", v)
	}
}

// checkMaxAppendEvents appends MaxAppendEvents events in one append.
func checkMaxAppendEvents(t testing.TB, s eventstore.Store) {
	f := newFixture(t, s)
	st := f.stream("big")
	head := f.head()
	evs := f.events("e", eventstore.MaxAppendEvents)
	res := f.append(st, eventstore.NoStream, evs...)
	if res.NextExpectedVersion != eventstore.MaxAppendEvents {
		t.Errorf("NextExpectedVersion = %d, want %d", res.NextExpectedVersion, eventstore.MaxAppendEvents)
	}
	got, err := s.ReadStream(f.ctx, st, 1, eventstore.Forwards, eventstore.MaxAppendEvents)
	if err != nil {
		t.Fatalf("ReadStream() = %v", err)
	}
	if len(got) != len(evs) {
		t.Fatalf("ReadStream() returned %d events, want %d", len(got), len(evs))
	}
	for i, e := range got {
		if e.ID != evs[i].ID || e.Version != int64(i+1) {
			t.Fatalf("ReadStream()[%d] = %s version %d, want %s version %d", i, e.ID, e.Version, evs[i].ID, i+1)
		}
	}
	all := f.readAll(head, 1000)
	if len(all) != len(evs) {
		t.Errorf("ReadAll() returned %d of the check's events, want %d", len(all), len(evs))
	} else if all[0].Position != res.FirstPosition || all[len(all)-1].Position != res.LastPosition {
		t.Errorf("ReadAll() positions [%d, %d], Append returned [%d, %d]", all[0].Position, all[len(all)-1].Position, res.FirstPosition, res.LastPosition)
	}
}

// checkContextCancellation calls every method with a canceled context:
// each must return an error matching the context's, and change nothing.
func checkContextCancellation(t testing.TB, s eventstore.Store) {
	f := newFixture(t, s)
	kept, fresh := f.stream("kept"), f.stream("fresh")
	f.append(kept, eventstore.NoStream, f.event("seed"))

	canceled, cancel := context.WithCancel(f.ctx)
	cancel()
	expired, cancel2 := context.WithDeadline(f.ctx, time.Now().Add(-time.Second))
	defer cancel2()
	for _, c := range []struct {
		ctx  context.Context
		want error
	}{{canceled, context.Canceled}, {expired, context.DeadlineExceeded}} {
		calls := []struct {
			name string
			call func() error
		}{
			{"Append", func() error {
				_, err := s.Append(c.ctx, fresh, eventstore.Any, f.event("never-"+c.want.Error()))
				return err
			}},
			{"ReadStream", func() error { _, err := s.ReadStream(c.ctx, kept, 1, eventstore.Forwards, 10); return err }},
			{"ReadAll", func() error { _, err := s.ReadAll(c.ctx, 0, 10); return err }},
			{"Version", func() error { _, err := s.Version(c.ctx, kept); return err }},
			{"DeleteStream", func() error { return s.DeleteStream(c.ctx, kept) }},
		}
		for _, call := range calls {
			if err := call.call(); !errors.Is(err, c.want) {
				t.Errorf("%s(%v context) = %v, want an error matching %v", call.name, c.want, err, c.want)
			}
		}
	}
	if v := f.version(fresh); v != 0 {
		t.Errorf("Version() of the stream appended to with a canceled context = %d, want 0", v)
	}
	if got := f.readStream(kept); len(got) != 1 {
		t.Errorf("ReadStream() of the stream deleted with a canceled context returned %d events, want 1", len(got))
	}
}
