package deadline_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cairnhq/cairn/resilience/internal/deadline"
)

// A variant makes a context with a timeout and its cancel function.
type variant struct {
	name string
	make func(parent context.Context, d time.Duration) (context.Context, func())
}

var variants = []variant{
	{"stdlib", func(parent context.Context, d time.Duration) (context.Context, func()) {
		return context.WithTimeout(parent, d)
	}},
	{"deadline", func(parent context.Context, d time.Duration) (context.Context, func()) {
		c := deadline.New(parent, d)
		return c, c.Cancel
	}},
}

type key string

var errParent = errors.New("parent's cause")

// A parentKind makes the parent of the context under test and a function
// that ends it (a no-op for parents that cannot end).
type parentKind struct {
	name string
	make func() (context.Context, func())
}

var parentKinds = []parentKind{
	{"background", func() (context.Context, func()) {
		return context.WithValue(context.Background(), key("k"), "v"), func() {}
	}},
	{"cancel", func() (context.Context, func()) {
		ctx, cancel := context.WithCancelCause(context.Background())
		return context.WithValue(ctx, key("k"), "v"), func() { cancel(errParent) }
	}},
	{"timeout-earlier", func() (context.Context, func()) {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		return context.WithValue(ctx, key("k"), "v"), cancel
	}},
	{"timeout-later", func() (context.Context, func()) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		return context.WithValue(ctx, key("k"), "v"), cancel
	}},
	{"deadline-later", func() (context.Context, func()) {
		c := deadline.New(context.Background(), 3*time.Second)
		return context.WithValue(c, key("k"), "v"), c.Cancel
	}},
	{"deadline-earlier", func() (context.Context, func()) {
		c := deadline.New(context.Background(), 700*time.Millisecond)
		return context.WithValue(c, key("k"), "v"), c.Cancel
	}},
	{"custom", func() (context.Context, func()) {
		// A parent the context package cannot see through: deriving from
		// it needs a goroutine in both variants.
		ctx, cancel := context.WithCancelCause(context.Background())
		return opaque{context.WithValue(ctx, key("k"), "v")}, func() { cancel(errParent) }
	}},
}

// opaque hides its context's type and cancelCtx from the context package.
type opaque struct{ context.Context }

func (o opaque) Value(k any) any {
	if _, ok := k.(key); ok {
		return o.Context.Value(k)
	}
	return nil
}

// env is the state a script runs against.
type env struct {
	start        time.Time
	ctx          context.Context
	cancel       func()
	cancelParent func()
	done         <-chan struct{} // from callDone
	children     []child
}

type child struct {
	name   string
	ctx    context.Context
	cancel func()
	ran    *atomic.Bool // for AfterFunc children
}

// A step acts on e and returns what it observed, or "" for a pure action.
type step func(e *env) string

func sleep(d time.Duration) step {
	return func(*env) string { time.Sleep(d); return "" }
}

func cancel(e *env) string       { e.cancel(); return "" }
func cancelParent(e *env) string { e.cancelParent(); return "" }
func callDone(e *env) string     { e.done = e.ctx.Done(); return "" }

func errOf(e *env) string   { return fmt.Sprintf("Err=%v", e.ctx.Err()) }
func causeOf(e *env) string { return fmt.Sprintf("Cause=%v", context.Cause(e.ctx)) }

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// doneClosed reports whether Done's channel is closed, and Err with it.
func doneClosed(e *env) string {
	ch := e.done
	if ch == nil {
		ch = e.ctx.Done()
	}
	return fmt.Sprintf("Done closed=%v Err=%v", closed(ch), e.ctx.Err())
}

func deadlineOf(e *env) string {
	dl, ok := e.ctx.Deadline()
	return fmt.Sprintf("Deadline=%v,%v", dl.Sub(e.start), ok)
}

func valueOf(e *env) string {
	return fmt.Sprintf("Value(k)=%v Value(other)=%v", e.ctx.Value(key("k")), e.ctx.Value(key("other")))
}

func stringOf(e *env) string { return "String=" + fmt.Sprint(e.ctx) }

func derive(e *env) string {
	add := func(name string, ctx context.Context, cancel func()) {
		e.children = append(e.children, child{name: name, ctx: ctx, cancel: cancel})
	}
	ctx, c := context.WithCancel(e.ctx)
	add("WithCancel", ctx, c)
	ctx, c = context.WithTimeout(e.ctx, 300*time.Millisecond)
	add("WithTimeout(300ms)", ctx, c)
	ctx, c = context.WithTimeout(e.ctx, 10*time.Second)
	add("WithTimeout(10s)", ctx, c)
	ctx, c = context.WithCancel(context.WithValue(e.ctx, key("c"), "child"))
	add("WithValue.WithCancel", ctx, c)
	dc := deadline.New(e.ctx, 300*time.Millisecond)
	add("deadline.New(300ms)", dc, dc.Cancel)
	dc = deadline.New(e.ctx, 10*time.Second)
	dc.Done()
	add("deadline.New(10s)+Done", dc, dc.Cancel)
	ran := new(atomic.Bool)
	stop := context.AfterFunc(e.ctx, func() { ran.Store(true) })
	e.children = append(e.children, child{name: "AfterFunc", cancel: func() { stop() }, ran: ran})
	return ""
}

// children reports each child's Err, Cause, Deadline and Value, or for
// an AfterFunc, whether it ran.
func children(e *env) string {
	var b strings.Builder
	for _, c := range e.children {
		if c.ran != nil {
			fmt.Fprintf(&b, "%s ran=%v; ", c.name, c.ran.Load())
			continue
		}
		dl, ok := c.ctx.Deadline()
		fmt.Fprintf(&b, "%s Err=%v Cause=%v Done closed=%v Deadline=%v,%v Value=%v; ",
			c.name, c.ctx.Err(), context.Cause(c.ctx), closed(c.ctx.Done()), dl.Sub(e.start), ok, c.ctx.Value(key("k")))
	}
	return b.String()
}

// everything observes all of the context at once.
func everything(e *env) string {
	return strings.Join([]string{errOf(e), causeOf(e), deadlineOf(e), valueOf(e), stringOf(e)}, " ")
}

var scripts = []struct {
	name  string
	d     time.Duration
	steps []step
}{
	{"err before and after the deadline without Done", time.Second, []step{
		everything, sleep(999 * time.Millisecond), everything, sleep(time.Millisecond), everything,
		cancel, everything,
	}},
	{"done closes at the deadline", time.Second, []step{
		callDone, doneClosed, sleep(999 * time.Millisecond), doneClosed, sleep(time.Millisecond), doneClosed, everything,
	}},
	{"done requested after the deadline", time.Second, []step{
		sleep(2 * time.Second), doneClosed, everything,
	}},
	{"cancel before the deadline", time.Second, []step{
		sleep(100 * time.Millisecond), cancel, everything, doneClosed, sleep(2 * time.Second), everything, cancel, everything,
	}},
	{"cancel before the deadline with Done", time.Second, []step{
		callDone, sleep(100 * time.Millisecond), cancel, doneClosed, everything,
	}},
	{"cancel is idempotent", time.Second, []step{
		cancel, cancel, everything, sleep(2 * time.Second), cancel, everything,
	}},
	{"parent ends, Err only", time.Second, []step{
		sleep(100 * time.Millisecond), cancelParent, everything, sleep(2 * time.Second), everything, cancel, everything,
	}},
	{"parent ends, Done", time.Second, []step{
		callDone, sleep(100 * time.Millisecond), cancelParent, doneClosed, everything,
	}},
	{"parent ends after the deadline, Done", time.Second, []step{
		callDone, sleep(time.Second), cancelParent, doneClosed, everything,
	}},
	{"error is stable once observed", time.Second, []step{
		sleep(time.Second), errOf, cancelParent, everything, cancel, everything,
	}},
	{"zero timeout", 0, []step{everything, doneClosed, cancel, everything}},
	{"negative timeout", -time.Second, []step{doneClosed, everything}},
	{"parent ended before New", time.Second, nil}, // see TestEquivalence
	{"children end at the deadline", time.Second, []step{
		derive, children, sleep(300 * time.Millisecond), children, sleep(700 * time.Millisecond), children, everything,
	}},
	{"children end on cancel", time.Second, []step{
		derive, sleep(100 * time.Millisecond), cancel, children, everything,
	}},
	{"children end with the parent", time.Second, []step{
		derive, sleep(100 * time.Millisecond), cancelParent, children, everything,
	}},
	{"children derived after the end", time.Second, []step{
		sleep(100 * time.Millisecond), cancel, derive, children,
	}},
	{"children canceled themselves", time.Second, []step{
		derive, func(e *env) string {
			for _, c := range e.children {
				c.cancel()
			}
			return ""
		}, children, sleep(2 * time.Second), children, everything,
	}},
}

// TestEquivalence runs each script against context.WithTimeout and
// deadline.New under each kind of parent and compares what they observe.
func TestEquivalence(t *testing.T) {
	for _, s := range scripts {
		for _, pk := range parentKinds {
			t.Run(s.name+"/parent="+pk.name, func(t *testing.T) {
				steps := s.steps
				preEnd := s.steps == nil
				if preEnd {
					steps = []step{everything, doneClosed, derive, children}
				}
				var got [2][]string
				for i, v := range variants {
					synctest.Test(t, func(t *testing.T) {
						parent, endParent := pk.make()
						defer endParent()
						if preEnd {
							endParent()
							synctest.Wait()
						}
						ctx, cancel := v.make(parent, s.d)
						defer cancel()
						e := &env{start: time.Now(), ctx: ctx, cancel: cancel, cancelParent: endParent}
						for n, st := range steps {
							if obs := st(e); obs != "" {
								got[i] = append(got[i], fmt.Sprintf("%d: %s", n, obs))
							}
							synctest.Wait()
						}
						for _, c := range e.children {
							c.cancel()
						}
					})
				}
				if diff := cmp.Diff(got[0], got[1]); diff != "" {
					t.Errorf("observations differ (-%s +%s):\n%s", variants[0].name, variants[1].name, diff)
				}
				if testing.Verbose() {
					t.Logf("%s", strings.Join(got[1], "\n"))
				}
			})
		}
	}
}
