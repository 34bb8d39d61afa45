// Package deadline provides [Context], a context with a timeout that is
// cheaper to make than [context.WithTimeout] when the callee does not wait
// on Done: the resilience pipeline's Timeout stage gives one to every call.
//
// # Design
//
// [New] allocates one object and starts nothing: no timer, no channel, no
// registration with the parent. While nobody has called Done, the context's
// error is computed when asked for: Err reports the parent's error if the
// parent has ended, [context.DeadlineExceeded] if the deadline has passed,
// and nil otherwise; the first non-nil error is recorded and never changes.
// [Context.Cancel], which the stage calls when the call returns, records
// [context.Canceled] unless an error was recorded first.
//
// The first call to Done on a live context arms it: it makes
// context.WithDeadline(parent, deadline) (WithCancel if the parent's
// deadline is the earlier) and from then on delegates Err, Done, Value and
// Cancel to it. Its channel, timer, registration with the parent and
// children are then exactly the standard library's, so the cost of a callee
// that waits on Done is that of context.WithTimeout plus this object.
//
// Contexts derived from a Context with the context package (WithCancel,
// WithTimeout, WithValue, AfterFunc and so on) call Done, which arms it,
// and then register with the inner context as they would with any context
// of the context package: no goroutine is started, also through WithValue
// layers. (An AfterFunc method, which the context package also looks for,
// would not be reached through a WithValue layer, and would not be reached
// at all once armed, so Context has none.)
//
// Contexts are never pooled or reused: a callee may keep a Context after the
// call returns, and it stays valid (ended) for as long as it is kept. See
// docs/adr/0001-resilience-pipeline.md.
//
// # Guarantees
//
// A Context behaves like the context that [context.WithTimeout] returns,
// with its [context.CancelFunc] replaced by [Context.Cancel]:
//   - Err is nil until the parent ends, the deadline passes or Cancel is
//     called; then it is the parent's error, [context.DeadlineExceeded] or
//     [context.Canceled], and stays so. Once Done's channel is closed, Err
//     is not nil.
//   - Done's channel is closed when the context ends, at the deadline, when
//     the parent ends or on Cancel, by the standard library's machinery;
//     Done called after the end returns a closed channel.
//   - Deadline is the earlier of the parent's deadline and this one. When
//     the parent's deadline is earlier, this context has no deadline of its
//     own, as context.WithTimeout then returns a plain WithCancel.
//   - Value is the parent's.
//   - [context.Cause] is the parent's cause when the parent's end ended the
//     context, and otherwise the context's error, as for context.WithTimeout.
//   - String has the context package's format.
//
// # Differences from context.WithTimeout
//
//   - Until Done is called, nothing signals the end; it is observed. A
//     callee that polls Err sees the deadline and the parent's end at its
//     next poll, which is all a callee that never calls Done can see. If
//     both the deadline passed and the parent ended between two
//     observations, Err reports the parent's error, where
//     context.WithTimeout would report DeadlineExceeded had the deadline
//     come first (the order of the two is not known without a timer).
//   - Err on a live, unarmed context reads the clock and asks the parent's
//     Err: tens of nanoseconds rather than one atomic load. New and Err
//     read only the monotonic clock (time.Since of a fixed instant), which
//     is about half the cost of time.Now on Linux.
//   - The deadline is kept as a monotonic offset; Deadline makes the time
//     at its first call, from the time now and the monotonic time left, and
//     returns that time from then on. If the wall clock was stepped between
//     New and that call, its wall reading differs from the one
//     context.WithTimeout would give by the step; its monotonic reading,
//     which time.Until and comparisons use, does not.
//   - The first Done allocates what context.WithTimeout would (and a little
//     more); a callee that waits on Done gains nothing from this package.
//   - No cause can be given (there is no WithTimeoutCause counterpart).
//   - [context.Cause] relies on learning the context package's private key
//     for it once, at start-up, by asking Cause about a probe context. If a
//     future standard library stops revealing it, Cause of a context that
//     ended by itself, unarmed, may report a later cause of an ancestor
//     (TestCancelCtxKeyFound fails then).
//
// # Locking
//
// A Context's mutex is held while Done makes the inner context, which may
// take the parent's locks (a parent *Context's mutex, or a cancelCtx's); no
// parent ever takes a child's lock, so there is no cycle.
package deadline

import (
	"context"
	"math"
	"reflect"
	"sync"
	"sync/atomic"
	"time"
)

// Context is a context that ends at a deadline, when its parent ends, or when
// Cancel is called, whichever comes first. Make one with [New]; the zero
// Context is not usable. All its methods are safe for concurrent use.
//
// A Context is in one of three states: live, ended (its error recorded,
// without Done ever having been called), or armed (Done was called while it
// was live: it then delegates Err, Done and Value to an inner
// context.WithDeadline). It leaves the live state once, under mu.
type Context struct {
	parent context.Context
	due    time.Duration // this context's own deadline, as time.Since(epoch), if own
	own    bool          // whether due is earlier than the parent's deadline

	// err points to the recorded error (&perr or one of the sentinels
	// below) once the context has ended unarmed.
	err atomic.Pointer[error]

	// armed is set once Done has armed the context, after inner and
	// cancelInner are written (under mu); they never change after.
	armed       atomic.Bool
	inner       context.Context // context.WithDeadline (or WithCancel) of parent
	cancelInner context.CancelFunc

	mu       sync.Mutex
	perr     error     // the parent's error, if that ended this context
	deadline time.Time // due as a time, made by the first Deadline call
}

// epoch is the origin of the offsets in Context.due. time.Since(epoch) reads
// only the monotonic clock, where time.Now reads the wall clock too; inside
// a testing/synctest bubble it reads the bubble's clock, as time.Now does.
var epoch = time.Now()

var (
	errCanceled = context.Canceled
	errDeadline = context.DeadlineExceeded
)

// closedchan is a reusable closed channel, for Done after the end.
var closedchan = make(chan struct{})

func init() { close(closedchan) }

// cancelCtxKey is the key with which [context.Cause] asks a context for its
// nearest cancelable ancestor, found by asking Cause about a probe context.
// Value answers nil for it once this context has ended by itself, unarmed,
// so that Cause reports this context's error and not a later cause of an
// ancestor. It is nil if the probe finds no key (a future standard
// library), in which case Cause may report an ancestor's cause for a
// context that ended first.
var cancelCtxKey = func() any {
	p := &keyProbe{Context: context.Background()}
	_ = context.Cause(p)
	return p.key
}()

type keyProbe struct {
	context.Context
	key any
}

func (*keyProbe) Err() error { return context.Canceled }

func (p *keyProbe) Value(key any) any {
	if p.key == nil {
		p.key = key
	}
	return nil
}

// New returns a Context that ends d after now, when parent ends, or when its
// Cancel method is called. It allocates the Context and nothing else and
// starts no timer; see the package documentation. The caller must call
// Cancel when the work the context was made for is done, as it would call
// the cancel function of [context.WithTimeout]. New panics if parent is nil.
func New(parent context.Context, d time.Duration) *Context {
	if parent == nil {
		panic("deadline: nil parent context")
	}
	c := &Context{parent: parent}
	if pd, ok := parent.Deadline(); !ok || time.Until(pd) >= d {
		now := time.Since(epoch)
		c.due, c.own = now+d, true
		if d > 0 && c.due < now { // overflow: no deadline in practice
			c.due = math.MaxInt64
		}
	}
	return c
}

// Deadline returns the earlier of the parent's deadline and this context's.
func (c *Context) Deadline() (time.Time, bool) {
	if c.own {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.deadlineLocked(), true
	}
	return c.parent.Deadline()
}

// deadlineLocked returns the context's own deadline as a time, made once
// from its offset so that every call returns the same time. c.mu must be
// held.
func (c *Context) deadlineLocked() time.Time {
	if c.deadline.IsZero() {
		c.deadline = time.Now().Add(c.due - time.Since(epoch))
	}
	return c.deadline
}

// Err returns nil while the context is live, then why it ended: the
// parent's error, [context.DeadlineExceeded] or [context.Canceled]. The
// first non-nil error it returns is the one it always returns.
func (c *Context) Err() error {
	if p := c.err.Load(); p != nil {
		return *p
	}
	if c.armed.Load() {
		return c.inner.Err()
	}
	if err := c.parent.Err(); err != nil {
		return c.end(nil, err)
	}
	if c.own && time.Since(epoch) >= c.due {
		return c.end(&errDeadline, nil)
	}
	return nil
}

// Done returns a channel that is closed when the context ends. The first
// call, if the context is live, arms it: it makes a context.WithDeadline
// (or WithCancel, if the parent's deadline is the earlier) of the parent,
// which costs what context.WithTimeout costs, and delegates to it from then
// on. If the context has already ended, Done returns a closed channel.
func (c *Context) Done() <-chan struct{} {
	if c.armed.Load() {
		return c.inner.Done()
	}
	if c.Err() != nil { // end now if it already has
		if c.armed.Load() {
			return c.inner.Done()
		}
		return closedchan
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.armed.Load() {
		return c.inner.Done()
	}
	if c.err.Load() != nil {
		return closedchan
	}
	// Neither call calls c's methods, so holding c.mu is safe; they may
	// take the parent's mutex (see Locking).
	if c.own {
		c.inner, c.cancelInner = context.WithDeadline(c.parent, c.deadlineLocked())
	} else {
		c.inner, c.cancelInner = context.WithCancel(c.parent)
	}
	c.armed.Store(true)
	return c.inner.Done()
}

// Cancel ends the context with [context.Canceled], unless it has already
// ended, and, if Done armed it, releases its timer and its registration
// with the parent. It may be called more than once and from several
// goroutines.
func (c *Context) Cancel() {
	if c.armed.Load() {
		c.cancelInner()
		return
	}
	c.end(&errCanceled, nil)
}

// end records the context's error, unless it has ended or been armed, and
// returns its error. The error is *own, or perr (the parent's) if own is
// nil. If the context was armed meanwhile, end cancels the inner context
// when own is &errCanceled and returns the inner context's error, which
// may still be nil when the deadline has only just passed.
func (c *Context) end(own *error, perr error) error {
	c.mu.Lock()
	if p := c.err.Load(); p != nil {
		c.mu.Unlock()
		return *p
	}
	if c.armed.Load() {
		c.mu.Unlock()
		if own == &errCanceled {
			c.cancelInner()
		}
		return c.inner.Err()
	}
	if own == nil {
		c.perr = perr
		own = &c.perr
	}
	c.err.Store(own)
	c.mu.Unlock()
	return *own
}

// Value returns the parent's value for key.
func (c *Context) Value(key any) any {
	if c.armed.Load() {
		// The inner context answers the context package's own key with
		// itself, which lets contexts derived from c, directly or under
		// WithValue, register with it instead of starting a goroutine.
		return c.inner.Value(key)
	}
	if key == cancelCtxKey && cancelCtxKey != nil {
		if p := c.err.Load(); p != nil && p != &c.perr {
			return nil // ended by itself: Cause is Err
		}
	}
	return c.parent.Value(key)
}

// String describes the context in the format of the context package, for
// debugging: "context.Background.WithDeadline(2026-11-25 ... [1.5s])", or
// "....WithCancel" when the parent's deadline is the earlier.
func (c *Context) String() string {
	if !c.own {
		return contextName(c.parent) + ".WithCancel"
	}
	dl, _ := c.Deadline()
	return contextName(c.parent) + ".WithDeadline(" +
		dl.String() + " [" + time.Until(dl).String() + "])"
}

func contextName(c context.Context) string {
	if s, ok := c.(interface{ String() string }); ok {
		return s.String()
	}
	return reflect.TypeOf(c).String()
}
