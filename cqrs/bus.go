package cqrs

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
)

// Command is a request to change the state of the system. CommandID
// identifies one request: a client that retries a command sends the same
// ID again, so that [Idempotency] runs it once.
type Command interface {
	CommandID() string
}

// Kind tells commands from queries in a [Message].
type Kind string

// Kinds of [Message].
const (
	KindCommand Kind = "command"
	KindQuery   Kind = "query"
)

// Message is what middleware sees of a command or a query.
type Message struct {
	// Kind is KindCommand or KindQuery.
	Kind Kind
	// Name is the name the message is registered under: the value of its
	// CommandName or QueryName method if it has one, else its Go type
	// ("orders.PlaceOrder").
	Name string
	// ID is the command's CommandID; empty for a query.
	ID string
	// Body is the command or query itself.
	Body any
}

// HandlerFunc handles a [Message]. For a command the result is nil; for a
// query it is the answer.
type HandlerFunc func(ctx context.Context, m Message) (any, error)

// Middleware wraps a handler: it may act before and after next, or answer
// without calling it.
type Middleware func(next HandlerFunc) HandlerFunc

// ErrNoHandler is matched by the error of [Dispatch] or [Ask] for a
// message whose type has no handler.
var ErrNoHandler = errors.New("cqrs: no handler")

// registry maps message names to handlers; it is shared by both buses.
type registry struct {
	middleware []Middleware

	mu       sync.RWMutex
	handlers map[string]HandlerFunc
}

func (r *registry) register(kind Kind, name string, h HandlerFunc) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.handlers[name]; dup {
		panic(fmt.Sprintf("cqrs: %s %s already has a handler", kind, name))
	}
	if r.handlers == nil {
		r.handlers = make(map[string]HandlerFunc)
	}
	for i := len(r.middleware) - 1; i >= 0; i-- {
		h = r.middleware[i](h)
	}
	r.handlers[name] = h
}

func (r *registry) handle(ctx context.Context, m Message) (any, error) {
	r.mu.RLock()
	h, ok := r.handlers[m.Name]
	r.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w for %s %s", ErrNoHandler, m.Kind, m.Name)
	}
	return h(ctx, m)
}

// CommandBus routes each command to the one handler registered for its
// type, through the bus's middleware. It is safe for concurrent use,
// registration included. The zero value is a bus without middleware.
type CommandBus struct {
	r registry
}

// NewCommandBus returns a bus that runs middleware around every handler,
// the first given outermost.
func NewCommandBus(middleware ...Middleware) *CommandBus {
	return &CommandBus{r: registry{middleware: middleware}}
}

// Handle registers h for the commands of type C. It panics if C already
// has a handler on bus: a command has exactly one handler, and registering
// two is a programming error best caught at startup.
func Handle[C Command](bus *CommandBus, h func(ctx context.Context, cmd C) error) {
	bus.r.register(KindCommand, nameOf[C](), func(ctx context.Context, m Message) (any, error) {
		return nil, h(ctx, m.Body.(C))
	})
}

// Dispatch runs the handler of cmd's type on bus and returns its error. It
// returns an error matching [ErrNoHandler], naming the type, when there is
// none.
func Dispatch[C Command](ctx context.Context, bus *CommandBus, cmd C) error {
	_, err := bus.r.handle(ctx, Message{Kind: KindCommand, Name: nameOf[C](), ID: cmd.CommandID(), Body: cmd})
	return err
}

// QueryBus routes each query to the one handler registered for its type,
// through the bus's middleware. It is safe for concurrent use,
// registration included. The zero value is a bus without middleware.
type QueryBus struct {
	r registry
}

// NewQueryBus returns a bus that runs middleware around every handler, the
// first given outermost.
func NewQueryBus(middleware ...Middleware) *QueryBus {
	return &QueryBus{r: registry{middleware: middleware}}
}

// HandleQuery registers h for the queries of type Q, which it answers with
// an R. It panics if Q already has a handler on bus.
func HandleQuery[Q, R any](bus *QueryBus, h func(ctx context.Context, q Q) (R, error)) {
	bus.r.register(KindQuery, nameOf[Q](), func(ctx context.Context, m Message) (any, error) {
		return h(ctx, m.Body.(Q))
	})
}

// Ask runs the handler of q's type on bus and returns its answer. It
// returns an error matching [ErrNoHandler] when there is none, and an
// error naming both types when the handler answers with another type
// than R.
func Ask[Q, R any](ctx context.Context, bus *QueryBus, q Q) (R, error) {
	var zero R
	name := nameOf[Q]()
	res, err := bus.r.handle(ctx, Message{Kind: KindQuery, Name: name, Body: q})
	if err != nil {
		return zero, err
	}
	if res == nil {
		return zero, nil
	}
	r, ok := res.(R)
	if !ok {
		return zero, fmt.Errorf("cqrs: query %s answers %T, not %s", name, res, reflect.TypeFor[R]())
	}
	return r, nil
}

// nameOf returns the name of message type T: its CommandName or QueryName
// method's value, else its Go type.
func nameOf[T any]() string {
	t := reflect.TypeFor[T]()
	v := reflect.New(t).Elem()
	if t.Kind() == reflect.Pointer {
		v = reflect.New(t.Elem()) // a non-nil pointer, for methods that read it
	}
	switch n := v.Interface().(type) {
	case interface{ CommandName() string }:
		return n.CommandName()
	case interface{ QueryName() string }:
		return n.QueryName()
	}
	return t.String()
}
