package inproc

import (
	"time"

	"github.com/cairnhq/cairn/messaging"
)

// group is one subscriber group of a subject: its position in the log and
// the messages it has taken from the log and not yet acknowledged. Its
// fields are guarded by its subject's mu.
//
// Every pending message is in the queue of its key; the head of a key's
// queue is the only one of that key that may be delivered, and it is in
// exactly one of: g.ready, g.delayed, or in flight in a handler. The
// other messages of the queue wait for the head to be acknowledged.
type group struct {
	name    string
	next    uint64 // sequence of the next message to take from the log
	missed  uint64 // messages trimmed from the log before the group read them
	pending int    // messages taken from the log and not acknowledged
	keys    map[string]*keyQueue
	ready   []*pending
	delayed []*pending
	wake    chan struct{} // closed on any change; nil when nobody waits
}

// pending is a message taken by a group from the log.
type pending struct {
	msg      *messaging.Message // shared with the log; never written
	attempts int                // deliveries so far
	readyAt  time.Time          // while in group.delayed
}

type keyQueue struct {
	msgs []*pending // msgs[0] is the head
}

// signal wakes the workers waiting for a change.
func (g *group) signal() {
	if g.wake != nil {
		close(g.wake)
		g.wake = nil
	}
}

// take returns the next message to deliver, counting the delivery, or nil
// with a channel that is closed on the next change and the time when the
// earliest delayed message is due (zero if none).
func (g *group) take(s *subject, now time.Time) (*pending, <-chan struct{}, time.Time) {
	var due time.Time
	if len(g.delayed) > 0 {
		kept := g.delayed[:0]
		for _, p := range g.delayed {
			switch {
			case !p.readyAt.After(now):
				p.readyAt = time.Time{}
				g.ready = append(g.ready, p)
			default:
				kept = append(kept, p)
				if due.IsZero() || p.readyAt.Before(due) {
					due = p.readyAt
				}
			}
		}
		clear(g.delayed[len(kept):])
		g.delayed = kept
	}
	if len(g.ready) == 0 {
		g.pull(s)
	}
	if len(g.ready) == 0 {
		if g.wake == nil {
			g.wake = make(chan struct{})
		}
		return nil, g.wake, due
	}
	p := g.ready[0]
	g.ready[0] = nil
	g.ready = g.ready[1:]
	p.attempts++
	return p, nil, time.Time{}
}

// pull takes messages from the log until one is ready to deliver, the log
// is read to its end, or the group holds maxPending messages.
func (g *group) pull(s *subject) {
	for len(g.ready) == 0 && g.pending < maxPending {
		if g.next < s.first {
			g.missed += s.first - g.next
			g.next = s.first
		}
		i := g.next - s.first
		if i >= uint64(len(s.log)) {
			return
		}
		p := &pending{msg: s.log[i]}
		g.next++
		g.pending++
		kq := g.keys[p.msg.Key]
		if kq == nil {
			kq = &keyQueue{}
			g.keys[p.msg.Key] = kq
		}
		kq.msgs = append(kq.msgs, p)
		if len(kq.msgs) == 1 {
			g.ready = append(g.ready, p)
		}
	}
}

// ack removes p, the head of its key's queue, and readies the next
// message of the key.
func (g *group) ack(p *pending) {
	kq := g.keys[p.msg.Key]
	kq.msgs[0] = nil
	kq.msgs = kq.msgs[1:]
	g.pending--
	if len(kq.msgs) == 0 {
		delete(g.keys, p.msg.Key)
	} else {
		g.ready = append(g.ready, kq.msgs[0])
	}
	g.signal()
}

// release hands p back for delivery after delay.
func (g *group) release(p *pending, delay time.Duration) {
	if delay <= 0 {
		g.ready = append(g.ready, p)
	} else {
		p.readyAt = time.Now().Add(delay)
		g.delayed = append(g.delayed, p)
	}
	g.signal()
}

// lag returns the messages of s that g has not acknowledged: those of the
// log it has not taken yet, and those it took and holds pending (in a
// handler, ready, delayed or queued behind their key's head). Messages
// trimmed before g read them are not counted. s.mu must be held.
func (g *group) lag(s *subject) int64 {
	end := s.first + uint64(len(s.log)) // sequence of the next message published
	untaken := end - max(g.next, s.first)
	return int64(untaken) + int64(g.pending)
}
