package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cairnhq/cairn/eventstore"
)

// logReader is a Reader over an in-memory global log, for Subscribe's
// tests. Positions are 10, 20, 30...: not contiguous, as the contract
// allows.
type logReader struct {
	mu     sync.Mutex
	events []eventstore.RecordedEvent
	reads  []int // the limit of every ReadAll call
	err    error // returned by ReadAll when set
	// replay, when set, makes ReadAll ignore after: a broken Reader.
	replay bool
}

func (r *logReader) add(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for range n {
		i := len(r.events) + 1
		r.events = append(r.events, eventstore.RecordedEvent{
			Event:    eventstore.Event{ID: fmt.Sprintf("e%d", i), Type: "t"},
			StreamID: "s", Version: int64(i), Position: eventstore.Position(10 * i),
		})
	}
}

func (r *logReader) ReadStream(context.Context, string, int64, eventstore.Direction, int) ([]eventstore.RecordedEvent, error) {
	return nil, errors.New("not implemented")
}

func (r *logReader) ReadAll(ctx context.Context, after eventstore.Position, limit int) ([]eventstore.RecordedEvent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reads = append(r.reads, limit)
	if r.err != nil {
		return nil, r.err
	}
	var out []eventstore.RecordedEvent
	for _, e := range r.events {
		if (e.Position > after || r.replay) && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

func (r *logReader) readCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reads)
}

// recorder is a handler that records the IDs it sees.
type recorder struct {
	mu  sync.Mutex
	ids []string
	pos []eventstore.Position
}

func (h *recorder) handle(_ context.Context, e eventstore.RecordedEvent) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ids = append(h.ids, e.ID)
	h.pos = append(h.pos, e.Position)
	return nil
}

func (h *recorder) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.ids)
}

func ids(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf("e%d", i))
	}
	return out
}

// start runs Subscribe in a goroutine and returns a func that cancels it
// and returns its error.
func start(ctx context.Context, r eventstore.Reader, from eventstore.Position, h func(context.Context, eventstore.RecordedEvent) error, opts eventstore.SubscribeOptions) (stop func() error) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- eventstore.Subscribe(ctx, r, from, h, opts) }()
	return func() error {
		cancel()
		return <-done
	}
}

func TestSubscribeCatchesUpThenPolls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &logReader{}
		r.add(5)
		h := &recorder{}
		stop := start(t.Context(), r, 0, h.handle, eventstore.SubscribeOptions{})

		synctest.Wait()
		if got, want := h.ids, ids(1, 5); !slices.Equal(got, want) {
			t.Fatalf("after catch-up, handled %v, want %v", got, want)
		}
		reads := r.readCount()

		r.add(3)
		time.Sleep(99 * time.Millisecond)
		synctest.Wait()
		if n := h.count(); n != 5 {
			t.Fatalf("before the 100ms default poll interval, handled %d events, want 5", n)
		}
		if n := r.readCount(); n != reads {
			t.Fatalf("before the poll interval, ReadAll calls = %d, want %d", n, reads)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if got, want := h.ids, ids(1, 8); !slices.Equal(got, want) {
			t.Fatalf("after one poll interval, handled %v, want %v", got, want)
		}
		if err := stop(); !errors.Is(err, context.Canceled) {
			t.Fatalf("Subscribe() = %v, want %v", err, context.Canceled)
		}
		if !slices.IsSorted(h.pos) {
			t.Errorf("positions %v not in order", h.pos)
		}
	})
}

func TestSubscribeFromCheckpoint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &logReader{}
		r.add(10)
		h := &recorder{}
		// Position 40 is event 4's: the subscription starts after it.
		stop := start(t.Context(), r, 40, h.handle, eventstore.SubscribeOptions{})
		synctest.Wait()
		if got, want := h.ids, ids(5, 10); !slices.Equal(got, want) {
			t.Errorf("handled %v, want %v", got, want)
		}
		// A checkpoint between positions works too.
		h2 := &recorder{}
		stop2 := start(t.Context(), r, 75, h2.handle, eventstore.SubscribeOptions{})
		synctest.Wait()
		if got, want := h2.ids, ids(8, 10); !slices.Equal(got, want) {
			t.Errorf("from 75, handled %v, want %v", got, want)
		}
		stop()
		stop2()
	})
}

func TestSubscribeBatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &logReader{}
		r.add(10)
		h := &recorder{}
		stop := start(t.Context(), r, 0, h.handle, eventstore.SubscribeOptions{BatchSize: 4})
		synctest.Wait()
		if got, want := h.ids, ids(1, 10); !slices.Equal(got, want) {
			t.Errorf("handled %v, want %v", got, want)
		}
		// 4 + 4 + 2: the short batch means caught up, so no fourth read
		// before the poll interval.
		r.mu.Lock()
		reads := slices.Clone(r.reads)
		r.mu.Unlock()
		if want := []int{4, 4, 4}; !slices.Equal(reads, want) {
			t.Errorf("ReadAll limits = %v, want %v", reads, want)
		}
		stop()
	})
}

func TestSubscribeDefaultBatchSize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &logReader{}
		h := &recorder{}
		stop := start(t.Context(), r, 0, h.handle, eventstore.SubscribeOptions{BatchSize: -1})
		synctest.Wait()
		stop()
		if r.reads[0] != 256 {
			t.Errorf("ReadAll limit = %d, want 256", r.reads[0])
		}
	})
}

func TestSubscribeNotify(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &logReader{}
		h := &recorder{}
		notify := make(chan struct{}, 1)
		stop := start(t.Context(), r, 0, h.handle, eventstore.SubscribeOptions{PollInterval: time.Hour, Notify: notify})
		synctest.Wait()

		r.add(2)
		notify <- struct{}{}
		synctest.Wait()
		if got, want := h.ids, ids(1, 2); !slices.Equal(got, want) {
			t.Fatalf("after Notify, handled %v, want %v (no time passed)", got, want)
		}

		// A closed Notify is ignored, not a busy loop: polling goes on.
		close(notify)
		synctest.Wait()
		reads := r.readCount()
		r.add(1)
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := r.readCount(); n != reads {
			t.Errorf("after closing Notify, ReadAll calls went from %d to %d within a minute; want polling every hour", reads, n)
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		if got, want := h.ids, ids(1, 3); !slices.Equal(got, want) {
			t.Errorf("after the poll interval, handled %v, want %v", got, want)
		}
		stop()
	})
}

func TestSubscribeCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &logReader{}
		r.add(1)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			done <- eventstore.Subscribe(ctx, r, 0, func(context.Context, eventstore.RecordedEvent) error { return nil }, eventstore.SubscribeOptions{PollInterval: time.Hour})
		}()
		synctest.Wait()
		cancel()
		synctest.Wait() // returns with no time passing
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Subscribe() = %v, want %v", err, context.Canceled)
			}
		default:
			t.Fatal("Subscribe did not return when its context was canceled")
		}

		// Already canceled: returns before reading.
		err := eventstore.Subscribe(ctx, r, 0, nil, eventstore.SubscribeOptions{})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Subscribe(canceled) = %v, want %v", err, context.Canceled)
		}

		// A deadline ends it with DeadlineExceeded.
		dctx, dcancel := context.WithTimeout(t.Context(), time.Second)
		defer dcancel()
		err = eventstore.Subscribe(dctx, r, 0, func(context.Context, eventstore.RecordedEvent) error { return nil }, eventstore.SubscribeOptions{})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Subscribe(deadline) = %v, want %v", err, context.DeadlineExceeded)
		}
	})
}

func TestSubscribeHandlerError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &logReader{}
		r.add(5)
		errBoom := errors.New("boom")
		var seen []string
		h := func(_ context.Context, e eventstore.RecordedEvent) error {
			seen = append(seen, e.ID)
			if e.ID == "e3" {
				return errBoom
			}
			return nil
		}
		err := eventstore.Subscribe(t.Context(), r, 0, h, eventstore.SubscribeOptions{})
		if !errors.Is(err, errBoom) {
			t.Fatalf("Subscribe() = %v, want it to wrap %v", err, errBoom)
		}
		for _, want := range []string{"e3", "position 30"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Subscribe() error %q does not contain %q", err, want)
			}
		}
		if want := ids(1, 3); !slices.Equal(seen, want) {
			t.Errorf("handled %v, want %v: stop at the first error", seen, want)
		}
	})
}

func TestSubscribeReadError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		errRead := errors.New("connection reset")
		r := &logReader{err: errRead}
		err := eventstore.Subscribe(t.Context(), r, 7, nil, eventstore.SubscribeOptions{})
		if !errors.Is(err, errRead) {
			t.Fatalf("Subscribe() = %v, want it to wrap %v", err, errRead)
		}
		if !strings.Contains(err.Error(), "position 7") {
			t.Errorf("Subscribe() error %q does not name the position read after", err)
		}
	})
}

func TestSubscribeBrokenReader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &logReader{replay: true}
		r.add(3)
		h := &recorder{}
		err := eventstore.Subscribe(t.Context(), r, 20, h.handle, eventstore.SubscribeOptions{})
		if err == nil || errors.Is(err, context.Canceled) {
			t.Fatalf("Subscribe() over a Reader that goes backwards = %v, want an error", err)
		}
		if h.count() != 0 {
			t.Errorf("handled %v, want nothing: the first event returned is at or before the checkpoint", h.ids)
		}
	})
}
