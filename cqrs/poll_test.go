package cqrs

import (
	"context"
	"database/sql"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cairnhq/cairn/eventstore"
)

// memLog is a global log in memory, enough for a Projector.
type memLog struct {
	mu     sync.Mutex
	events []eventstore.RecordedEvent
}

func (l *memLog) add(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, eventstore.RecordedEvent{
		Event:    eventstore.Event{ID: id, Type: "order.placed"},
		Position: eventstore.Position(len(l.events) + 1), RecordedAt: time.Now(),
	})
}

func (l *memLog) ReadAll(_ context.Context, after eventstore.Position, limit int) ([]eventstore.RecordedEvent, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []eventstore.RecordedEvent
	for _, e := range l.events {
		if e.Position > after && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

func (l *memLog) ReadStream(context.Context, string, int64, eventstore.Direction, int) ([]eventstore.RecordedEvent, error) {
	return nil, nil
}

// TestProjectorPolling checks, on a fake clock, that a caught-up
// projector reads again after PollInterval, or at once when notified.
func TestProjectorPolling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db, err := sql.Open("sqlite", ":memory:")
		if err != nil {
			t.Fatal(err)
		}
		db.SetMaxOpenConns(1) // one in-memory database
		defer db.Close()
		log := &memLog{}
		notify := make(chan struct{}, 1)
		p, err := NewProjector(db, SQLite, log, orders{version: 1, d: SQLite}, ProjectorOptions{Name: "orders", PollInterval: time.Minute, Notify: notify})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- p.Run(ctx) }()

		synctest.Wait() // caught up with an empty log, waiting
		log.add("e1")
		time.Sleep(time.Minute - time.Second)
		synctest.Wait()
		if got := p.Checkpoint(); got != 0 {
			t.Fatalf("Checkpoint() = %d before PollInterval passed, want 0", got)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if got := p.Checkpoint(); got != 1 {
			t.Fatalf("Checkpoint() = %d once PollInterval passed, want 1", got)
		}
		log.add("e2")
		notify <- struct{}{}
		synctest.Wait()
		if got := p.Checkpoint(); got != 2 {
			t.Fatalf("Checkpoint() = %d after Notify, want 2", got)
		}
		cancel()
		if err := <-done; err != context.Canceled {
			t.Errorf("Run() = %v, want context.Canceled", err)
		}
	})
}
