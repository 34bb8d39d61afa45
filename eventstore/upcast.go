package eventstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// An Upcaster lifts the data of events of one type from one schema
// version to the next: from From to From+1. Chains of upcasters lift old
// events to the current schema when they are read (see [Upcasters]), so
// the stored events never change.
type Upcaster struct {
	// Type is the event type the upcaster applies to. Required.
	Type string
	// From is the schema version the upcaster reads, 1 or more; it
	// returns data of schema version From+1.
	From int
	// Up returns data in schema version From+1, given data in schema
	// version From and the event's metadata. It must not modify data (it
	// may return it) and must be safe for concurrent use. An error means
	// the stored data cannot be lifted: the read fails with an
	// [*UpcastError] wrapping it. Required.
	Up func(data []byte, md Metadata) ([]byte, error)
}

// ErrUpcast is matched by an [*UpcastError].
var ErrUpcast = errors.New("eventstore: upcast failed")

// UpcastError reports an event whose data an upcaster could not lift.
type UpcastError struct {
	// EventID, StreamID and Version identify the event.
	EventID  string
	StreamID string
	Version  int64
	// Type is the event's type and SchemaVersion the schema version the
	// failing upcaster read.
	Type          string
	SchemaVersion int
	// Err is the upcaster's error.
	Err error
}

// Error names the event, its type and schema version, and the upcaster's
// error.
func (e *UpcastError) Error() string {
	return fmt.Sprintf("eventstore: upcast event %s (stream %q, version %d) of type %q from schema version %d: %v",
		e.EventID, e.StreamID, e.Version, e.Type, e.SchemaVersion, e.Err)
}

// Unwrap returns the upcaster's error.
func (e *UpcastError) Unwrap() error { return e.Err }

// Is reports whether target is [ErrUpcast].
func (e *UpcastError) Is(target error) bool { return target == ErrUpcast }

// upcasterKey identifies the upcaster of a type and schema version.
type upcasterKey struct {
	typ  string
	from int
}

// Upcasters is a registry of upcaster chains, one per event type. Build
// it with [NewUpcasters]; it is immutable, and safe for concurrent use.
// The zero value, and a nil *Upcasters, hold no upcaster: they pass every
// event through.
type Upcasters struct {
	byKey   map[upcasterKey]Upcaster
	current map[string]int // type -> schema version the chain ends at
}

// NewUpcasters returns the registry of ups. It returns an error, naming
// the upcaster, if one has no Type or Up, a From below 1, or the same
// Type and From as another, or if a type's chain has a hole (upcasters
// from 1 and 3 but not 2), which would leave events of some versions
// behind the others.
func NewUpcasters(ups ...Upcaster) (*Upcasters, error) {
	u := &Upcasters{byKey: make(map[upcasterKey]Upcaster, len(ups)), current: make(map[string]int)}
	froms := make(map[string][]int)
	for i, up := range ups {
		switch {
		case up.Type == "":
			return nil, fmt.Errorf("eventstore: upcaster %d: no type", i)
		case up.From < 1:
			return nil, fmt.Errorf("eventstore: upcaster %d for %q: from schema version %d, want 1 or more", i, up.Type, up.From)
		case up.Up == nil:
			return nil, fmt.Errorf("eventstore: upcaster %d for %q from schema version %d: no Up function", i, up.Type, up.From)
		}
		k := upcasterKey{up.Type, up.From}
		if _, dup := u.byKey[k]; dup {
			return nil, fmt.Errorf("eventstore: upcaster %d: another upcaster lifts %q from schema version %d", i, up.Type, up.From)
		}
		u.byKey[k] = up
		froms[up.Type] = append(froms[up.Type], up.From)
	}
	for typ, fs := range froms {
		slices.Sort(fs)
		for i := 1; i < len(fs); i++ {
			if fs[i] != fs[i-1]+1 {
				return nil, fmt.Errorf("eventstore: upcasters for %q: none from schema version %d, between %d and %d", typ, fs[i-1]+1, fs[i-1], fs[i])
			}
		}
		u.current[typ] = fs[len(fs)-1] + 1
	}
	return u, nil
}

// Current returns the schema version the upcasters of typ lift events to:
// the version new events of typ should be appended with. It returns 1 for
// a type without upcasters.
func (u *Upcasters) Current(typ string) int {
	if u == nil {
		return 1
	}
	if v, ok := u.current[typ]; ok {
		return v
	}
	return 1
}

// Upcast lifts e through its type's chain: it applies the upcaster from
// e's schema version (0 counts as 1), then the one from the next version,
// and so on until no upcaster matches, and returns e with the new data and
// schema version. An event no upcaster matches, of an unknown type or
// already current, is returned unchanged. If an upcaster fails, Upcast
// returns an [*UpcastError] naming the event and wrapping the error.
func (u *Upcasters) Upcast(e RecordedEvent) (RecordedEvent, error) {
	if u == nil || len(u.byKey) == 0 {
		return e, nil
	}
	v := max(e.SchemaVersion, 1)
	for {
		up, ok := u.byKey[upcasterKey{e.Type, v}]
		if !ok {
			return e, nil
		}
		data, err := up.Up(e.Data, e.Metadata)
		if err != nil {
			return RecordedEvent{}, &UpcastError{EventID: e.ID, StreamID: e.StreamID, Version: e.Version, Type: e.Type, SchemaVersion: v, Err: err}
		}
		v++
		e.Data, e.SchemaVersion = data, v
	}
}

// upcastAll upcasts events in place.
func (u *Upcasters) upcastAll(events []RecordedEvent) error {
	for i, e := range events {
		up, err := u.Upcast(e)
		if err != nil {
			return err
		}
		events[i] = up
	}
	return nil
}

// Upcasting returns a Reader that reads from r and lifts every event it
// returns with u, so that its callers ([Subscribe] included) see only
// current schemas. An event that fails to upcast fails the whole read
// with the [*UpcastError]: it is never skipped. The Reader is safe for
// concurrent use if r is.
func Upcasting(r Reader, u *Upcasters) Reader {
	return upcastingReader{r: r, u: u}
}

type upcastingReader struct {
	r Reader
	u *Upcasters
}

func (ur upcastingReader) ReadStream(ctx context.Context, stream string, from int64, dir Direction, limit int) ([]RecordedEvent, error) {
	events, err := ur.r.ReadStream(ctx, stream, from, dir, limit)
	if err != nil {
		return nil, err
	}
	if err := ur.u.upcastAll(events); err != nil {
		return nil, err
	}
	return events, nil
}

func (ur upcastingReader) ReadAll(ctx context.Context, after Position, limit int) ([]RecordedEvent, error) {
	events, err := ur.r.ReadAll(ctx, after, limit)
	if err != nil {
		return nil, err
	}
	if err := ur.u.upcastAll(events); err != nil {
		return nil, err
	}
	return events, nil
}
