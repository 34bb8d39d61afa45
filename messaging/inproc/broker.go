// Package inproc is an in-memory [messaging] transport: a broker that
// lives in the process, for tests and the single-process demo.
//
// A [Broker] keeps every subject as a log in memory, bounded by
// [WithMaxMessages] (the oldest messages are trimmed, and counted). Each
// group of a subject keeps its own position in the log, so a group that
// subscribes late, or again after all its members left, starts where it
// stopped; a new group starts at the oldest message kept. Messages with
// the same key are delivered in order, one at a time; a message that was
// not acknowledged goes back to the group when its subscription closes,
// or after the backoff when its handler failed. Dead letters are
// published to their dead-letter subject inside the broker, and publishes
// are deduplicated by message ID within [WithDuplicateWindow], like
// JetStream's duplicate window, so that a publisher may retry safely.
//
// Nothing survives the process: inproc is durable only as long as the
// Broker lives. A Broker, and the publishers and subscribers built on it,
// are safe for concurrent use.
package inproc

import (
	"fmt"
	"sync"
	"time"

	"github.com/cairnhq/cairn/messaging"
)

// Defaults of a [Broker] built without options.
const (
	// DefaultMaxMessages is how many messages a subject keeps.
	DefaultMaxMessages = 1 << 20
	// DefaultDuplicateWindow is how long a message ID is remembered to
	// deduplicate publishes.
	DefaultDuplicateWindow = 2 * time.Minute
	// DefaultMaxMessageSize is the largest message accepted, in bytes of
	// data plus headers (the default max_payload of NATS).
	DefaultMaxMessageSize = 1 << 20
)

// maxPending bounds the messages a group has taken from its subject's log
// and not yet acknowledged, like JetStream's MaxAckPending: a group whose
// keys are all waiting does not read the whole log ahead.
const maxPending = 1 << 16

// An Option configures a [Broker].
type Option func(*config)

type config struct {
	maxMessages int
	dupWindow   time.Duration
	maxSize     int
}

// WithMaxMessages sets how many messages each subject keeps; when a
// publish goes beyond it the oldest message is trimmed. A group that had
// not read a trimmed message skips it. n <= 0 means
// [DefaultMaxMessages].
func WithMaxMessages(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.maxMessages = n
		}
	}
}

// WithDuplicateWindow sets how long the broker remembers the IDs of the
// messages published to a subject: a message published again to the same
// subject with the same ID within d is accepted and dropped. d <= 0 turns
// deduplication off. The default is [DefaultDuplicateWindow].
func WithDuplicateWindow(d time.Duration) Option {
	return func(c *config) { c.dupWindow = max(d, 0) }
}

// WithMaxMessageSize sets the largest message publishers accept, in bytes
// of data plus headers as [messaging.Validate] counts them. n <= 0 means
// [DefaultMaxMessageSize]. Dead letters are not held to it: the broker
// accepted the original, and keeps the dead letter whatever the headers
// added to it.
func WithMaxMessageSize(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.maxSize = n
		}
	}
}

// Broker is an in-memory message broker. Create it with [NewBroker];
// publish and consume through [NewPublisher] and [NewSubscriber]. It
// needs no Close: it holds no goroutines, only memory, which is released
// with the Broker.
//
// Lock order: Broker.mu, then one subject's mu. A subject's lock is never
// held while taking another subject's.
type Broker struct {
	cfg config

	mu       sync.Mutex
	subjects map[string]*subject
}

// NewBroker returns an empty broker.
func NewBroker(opts ...Option) *Broker {
	cfg := config{maxMessages: DefaultMaxMessages, dupWindow: DefaultDuplicateWindow, maxSize: DefaultMaxMessageSize}
	for _, o := range opts {
		o(&cfg)
	}
	return &Broker{cfg: cfg, subjects: make(map[string]*subject)}
}

// MaxMessageSize returns the largest message the broker accepts from
// publishers, in bytes.
func (b *Broker) MaxMessageSize() int { return b.cfg.maxSize }

// Stats describes one subject of a [Broker].
type Stats struct {
	// Messages is how many messages the subject keeps now.
	Messages int
	// FirstSeq and LastSeq are the sequence numbers of the oldest and
	// newest messages kept, counted from 1; FirstSeq is LastSeq+1 when
	// the subject is empty.
	FirstSeq, LastSeq uint64
	// Trimmed counts the messages removed to keep the subject within
	// [WithMaxMessages].
	Trimmed uint64
	// Duplicates counts the publishes dropped as duplicates.
	Duplicates uint64
}

// Stats returns the statistics of subject; a subject never published to
// has zero Stats with FirstSeq 1.
func (b *Broker) Stats(subject string) Stats {
	b.mu.Lock()
	s := b.subjects[subject]
	b.mu.Unlock()
	if s == nil {
		return Stats{FirstSeq: 1}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{
		Messages:   len(s.log),
		FirstSeq:   s.first,
		LastSeq:    s.first + uint64(len(s.log)) - 1,
		Trimmed:    s.trimmed,
		Duplicates: s.duplicates,
	}
}

// subject returns the subject named name, creating it.
func (b *Broker) subject(name string) *subject {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.subjects[name]
	if s == nil {
		s = &subject{name: name, first: 1, groups: make(map[string]*group)}
		if b.cfg.dupWindow > 0 {
			s.seen = make(map[string]time.Time)
		}
		b.subjects[name] = s
	}
	return s
}

// append adds m to its subject's log, unless a message with its ID was
// added within the duplicate window. It copies m's header and data.
func (b *Broker) append(m messaging.Message) error {
	if m.Subject == "" {
		return fmt.Errorf("%w: message %q has no subject", messaging.ErrInvalidMessage, m.ID)
	}
	s := b.subject(m.Subject)
	m = clone(m)
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen != nil {
		// Forget the IDs that left the window, oldest first.
		for len(s.seenOrder) > 0 && now.Sub(s.seenOrder[0].at) >= b.cfg.dupWindow {
			old := s.seenOrder[0]
			if s.seen[old.id] == old.at {
				delete(s.seen, old.id)
			}
			s.seenOrder[0] = seenID{}
			s.seenOrder = s.seenOrder[1:]
		}
		if _, dup := s.seen[m.ID]; dup {
			s.duplicates++
			return nil
		}
		s.seen[m.ID] = now
		s.seenOrder = append(s.seenOrder, seenID{m.ID, now})
	}
	s.log = append(s.log, &m)
	for len(s.log) > b.cfg.maxMessages {
		s.log[0] = nil
		s.log = s.log[1:]
		s.first++
		s.trimmed++
	}
	for _, g := range s.groups {
		g.signal()
	}
	return nil
}

// clone returns m with its own copies of Header and Data.
func clone(m messaging.Message) messaging.Message {
	if m.Header != nil {
		h := make(map[string]string, len(m.Header))
		for k, v := range m.Header {
			h[k] = v
		}
		m.Header = h
	}
	if m.Data != nil {
		m.Data = append([]byte(nil), m.Data...)
	}
	return m
}

// subject is one subject's log and its groups. Every field is guarded by
// mu, the fields of its groups too.
type subject struct {
	name string

	mu         sync.Mutex
	log        []*messaging.Message // log[i] has sequence first+i
	first      uint64
	trimmed    uint64
	duplicates uint64
	seen       map[string]time.Time // nil when deduplication is off
	seenOrder  []seenID
	groups     map[string]*group
}

type seenID struct {
	id string
	at time.Time
}

// group returns the group named name of s, creating it at the start of
// the log. s.mu must be held.
func (s *subject) group(name string) *group {
	g := s.groups[name]
	if g == nil {
		g = &group{name: name, next: s.first, keys: make(map[string]*keyQueue)}
		s.groups[name] = g
	}
	return g
}
