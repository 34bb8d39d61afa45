package eventstoretest_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/eventstore/eventstoretest"
)

// recorder is a testing.TB that records failures instead of reporting
// them, so a test can expect a check to fail. Everything else goes to the
// real test's TB (Context, Cleanup, Helper, Log...).
type recorder struct {
	testing.TB
	mu     sync.Mutex
	failed bool
	msgs   []string
}

func (r *recorder) fail(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = true
	r.msgs = append(r.msgs, msg)
}

func (r *recorder) Error(args ...any)                 { r.fail(fmt.Sprint(args...)) }
func (r *recorder) Errorf(format string, args ...any) { r.fail(fmt.Sprintf(format, args...)) }
func (r *recorder) Fatal(args ...any)                 { r.fail(fmt.Sprint(args...)); runtime.Goexit() }
func (r *recorder) Fatalf(format string, args ...any) {
	r.fail(fmt.Sprintf(format, args...))
	runtime.Goexit()
}
func (r *recorder) Fail()    { r.fail("Fail called") }
func (r *recorder) FailNow() { r.fail("FailNow called"); runtime.Goexit() }
func (r *recorder) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

// runCheck runs the check called name against s on a recorder, in its own
// goroutine (Fatal ends it with runtime.Goexit), and returns the failure
// messages.
func runCheck(t *testing.T, name string, s eventstore.Store) []string {
	t.Helper()
	i := slices.IndexFunc(eventstoretest.Checks(), func(c eventstoretest.Check) bool { return c.Name == name })
	if i < 0 {
		t.Fatalf("no check called %q", name)
	}
	check := eventstoretest.Checks()[i]
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		check.Func(r, s)
	}()
	<-done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.msgs
}

// skipStore's ReadAll drops every fifth position.
type skipStore struct{ eventstore.Store }

func (s skipStore) ReadAll(ctx context.Context, after eventstore.Position, limit int) ([]eventstore.RecordedEvent, error) {
	page, err := s.Store.ReadAll(ctx, after, limit)
	return slices.DeleteFunc(page, func(e eventstore.RecordedEvent) bool { return e.Position%5 == 0 }), err
}

// twoWinnersStore ignores Exact expected versions: several writers that
// loaded the same version all win.
type twoWinnersStore struct{ eventstore.Store }

func (s twoWinnersStore) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.Event) (eventstore.AppendResult, error) {
	if expected > 0 {
		expected = eventstore.Any
	}
	return s.Store.Append(ctx, stream, expected, events...)
}

// racyStore lets the first two appends with an exact expected version
// (NoStream included) both win: the first waits for the second (for up to
// a second), then both append whatever the stream's version, as a backend
// that checks the version and appends in separate transactions would.
type racyStore struct {
	eventstore.Store
	arrived atomic.Int32
	pair    chan struct{} // closed when the second append arrives
}

func (s *racyStore) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.Event) (eventstore.AppendResult, error) {
	if expected >= 0 {
		switch s.arrived.Add(1) {
		case 1:
			select {
			case <-s.pair:
			case <-time.After(time.Second):
			}
			expected = eventstore.Any
		case 2:
			close(s.pair)
			expected = eventstore.Any
		}
	}
	return s.Store.Append(ctx, stream, expected, events...)
}

// conflictFirstStore checks the expected version before it looks for
// stored events, so retrying an append that succeeded conflicts instead of
// returning the original result.
type conflictFirstStore struct{ eventstore.Store }

func (s conflictFirstStore) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.Event) (eventstore.AppendResult, error) {
	v, err := s.Store.Version(ctx, stream)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	if (expected >= 0 && int64(expected) != v) || (expected == eventstore.StreamExists && v == 0) {
		return eventstore.AppendResult{}, &eventstore.VersionConflictError{Stream: stream, Expected: expected, Actual: v}
	}
	return s.Store.Append(ctx, stream, expected, events...)
}

// nonAtomicStore appends one event at a time, so an invalid event leaves
// the valid ones before it stored, and a retry appends again.
type nonAtomicStore struct{ eventstore.Store }

func (s nonAtomicStore) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.Event) (eventstore.AppendResult, error) {
	if len(events) == 0 {
		return s.Store.Append(ctx, stream, expected)
	}
	var res eventstore.AppendResult
	for i, e := range events {
		r, err := s.Store.Append(ctx, stream, expected, e)
		if err != nil {
			return res, err
		}
		if i == 0 {
			res.FirstPosition = r.FirstPosition
		}
		res.LastPosition, res.NextExpectedVersion = r.LastPosition, r.NextExpectedVersion
		expected = eventstore.Any
	}
	return res, nil
}

// localTimeStore's ReadStream returns RecordedAt in a zone other than UTC.
type localTimeStore struct{ eventstore.Store }

func (s localTimeStore) ReadStream(ctx context.Context, stream string, from int64, dir eventstore.Direction, limit int) ([]eventstore.RecordedEvent, error) {
	page, err := s.Store.ReadStream(ctx, stream, from, dir, limit)
	for i := range page {
		page[i].RecordedAt = page[i].RecordedAt.In(time.FixedZone("CET", 3600))
	}
	return page, err
}

// lossyStore's ReadAll drops the metadata's Extra.
type lossyStore struct{ eventstore.Store }

func (s lossyStore) ReadAll(ctx context.Context, after eventstore.Position, limit int) ([]eventstore.RecordedEvent, error) {
	page, err := s.Store.ReadAll(ctx, after, limit)
	for i := range page {
		page[i].Metadata.Extra = nil
	}
	return page, err
}

// schemaLosingStore forgets the schema version of the events it stores:
// they all read back as version 1.
type schemaLosingStore struct{ eventstore.Store }

func (s schemaLosingStore) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.Event) (eventstore.AppendResult, error) {
	events = slices.Clone(events)
	for i := range events {
		events[i].SchemaVersion = 1
	}
	return s.Store.Append(ctx, stream, expected, events...)
}

// ctxIgnoringStore ignores the context of Version and DeleteStream.
type ctxIgnoringStore struct{ eventstore.Store }

func (s ctxIgnoringStore) Version(_ context.Context, stream string) (int64, error) {
	return s.Store.Version(context.Background(), stream)
}

// purgingStore's DeleteStream also removes the events from the global
// log, which the Store contract does not allow by default.
type purgingStore struct {
	eventstore.Store
	mu   sync.Mutex
	gone map[string]bool
}

func (s *purgingStore) DeleteStream(ctx context.Context, stream string) error {
	s.mu.Lock()
	s.gone[stream] = true
	s.mu.Unlock()
	return s.Store.DeleteStream(ctx, stream)
}

func (s *purgingStore) ReadAll(ctx context.Context, after eventstore.Position, limit int) ([]eventstore.RecordedEvent, error) {
	page, err := s.Store.ReadAll(ctx, after, limit)
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.DeleteFunc(page, func(e eventstore.RecordedEvent) bool { return s.gone[e.StreamID] }), err
}

// wrongConflictStore reports conflicts as a plain error, not a
// *VersionConflictError.
type wrongConflictStore struct{ eventstore.Store }

func (s wrongConflictStore) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.Event) (eventstore.AppendResult, error) {
	res, err := s.Store.Append(ctx, stream, expected, events...)
	if errors.Is(err, eventstore.ErrVersionConflict) {
		err = fmt.Errorf("conflict: %w", eventstore.ErrVersionConflict)
	}
	return res, err
}

// lateCommitStore reproduces the classic bug of a global log on a
// database sequence: positions are assigned when an append starts, but an
// append becomes visible only when it commits, and ReadAll returns what is
// visible. Appends at every seventh position commit only once a reader has
// read past them (or after a while), so a reader that follows the log with
// a checkpoint misses them. Only Append and ReadAll work.
type lateCommitStore struct {
	eventstore.Store // nil: other methods panic
	next             atomic.Int64

	mu       sync.Mutex
	visible  []eventstore.RecordedEvent // sorted by position
	versions map[string]int64
	pending  map[eventstore.Position]chan struct{} // closed once a reader passed it
}

func newLateCommitStore() *lateCommitStore {
	return &lateCommitStore{versions: make(map[string]int64), pending: make(map[eventstore.Position]chan struct{})}
}

func (s *lateCommitStore) Append(ctx context.Context, stream string, _ eventstore.ExpectedVersion, events ...eventstore.Event) (eventstore.AppendResult, error) {
	s.mu.Lock()
	first := eventstore.Position(s.next.Add(int64(len(events))) - int64(len(events)) + 1)
	version := s.versions[stream]
	s.versions[stream] += int64(len(events))
	var passed chan struct{}
	if first%7 == 0 {
		passed = make(chan struct{})
		s.pending[first] = passed
	}
	s.mu.Unlock()

	if passed != nil {
		select {
		case <-passed:
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.pending, first)
	now := time.Now().UTC()
	for i, e := range events {
		s.visible = append(s.visible, eventstore.RecordedEvent{Event: e, StreamID: stream, Version: version + int64(i) + 1, Position: first + eventstore.Position(i), RecordedAt: now})
	}
	sort.Slice(s.visible, func(i, j int) bool { return s.visible[i].Position < s.visible[j].Position })
	last := first + eventstore.Position(len(events)) - 1
	return eventstore.AppendResult{NextExpectedVersion: version + int64(len(events)), FirstPosition: first, LastPosition: last}, nil
}

func (s *lateCommitStore) ReadAll(_ context.Context, after eventstore.Position, limit int) ([]eventstore.RecordedEvent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []eventstore.RecordedEvent
	for _, e := range s.visible {
		if e.Position > after && len(out) < limit {
			out = append(out, e)
		}
	}
	if len(out) > 0 {
		top := out[len(out)-1].Position
		for p, ch := range s.pending {
			if p < top {
				close(ch)
				delete(s.pending, p)
			}
		}
	}
	return out, nil
}

// TestChecksFail proves that the suite fails broken stores: each case
// runs one check against a store with one bug and expects a failure.
func TestChecksFail(t *testing.T) {
	mem := func(t *testing.T) eventstore.Store { return newMemStore(t) }
	tests := []struct {
		check string
		store func(t *testing.T) eventstore.Store
	}{
		{"ReadAll", func(t *testing.T) eventstore.Store { return skipStore{mem(t)} }},
		{"GlobalLogNoSkip", func(t *testing.T) eventstore.Store { return skipStore{mem(t)} }},
		{"Subscribe", func(t *testing.T) eventstore.Store { return skipStore{mem(t)} }},
		{"GlobalLogNoSkip", func(*testing.T) eventstore.Store { return newLateCommitStore() }},
		{"ConcurrentWriters", func(t *testing.T) eventstore.Store { return &racyStore{Store: mem(t), pair: make(chan struct{})} }},
		{"ExpectedVersion", func(t *testing.T) eventstore.Store { return twoWinnersStore{mem(t)} }},
		{"ExpectedVersion", func(t *testing.T) eventstore.Store { return wrongConflictStore{mem(t)} }},
		{"InvalidEvent", func(t *testing.T) eventstore.Store { return nonAtomicStore{mem(t)} }},
		{"Idempotence", func(t *testing.T) eventstore.Store { return conflictFirstStore{mem(t)} }},
		{"DuplicateEvent", func(t *testing.T) eventstore.Store { return nonAtomicStore{mem(t)} }},
		{"AppendReadRoundTrip", func(t *testing.T) eventstore.Store { return localTimeStore{mem(t)} }},
		{"AppendReadRoundTrip", func(t *testing.T) eventstore.Store { return lossyStore{mem(t)} }},
		{"ContextCancellation", func(t *testing.T) eventstore.Store { return ctxIgnoringStore{mem(t)} }},
		{"Upcasting", func(t *testing.T) eventstore.Store { return schemaLosingStore{mem(t)} }},
		{"DeleteStream", func(t *testing.T) eventstore.Store { return &purgingStore{Store: mem(t), gone: map[string]bool{}} }},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s/%T", tc.check, tc.store(t)), func(t *testing.T) {
			s := tc.store(t)
			msgs := runCheck(t, tc.check, s)
			if len(msgs) == 0 {
				t.Fatalf("check %s passed against %T, want a failure", tc.check, s)
			}
			t.Logf("failed as expected: %s", strings.Join(msgs, "; "))
		})
	}
}

// TestRecorder checks the recorder itself: a passing check records
// nothing.
func TestRecorder(t *testing.T) {
	for _, c := range eventstoretest.Checks() {
		if msgs := runCheck(t, c.Name, newMemStore(t)); len(msgs) > 0 {
			t.Errorf("check %s failed against the in-memory store: %v", c.Name, msgs)
		}
	}
}
