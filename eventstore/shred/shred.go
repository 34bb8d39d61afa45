// Package shred is crypto-shredding for an [eventstore.Store]: the
// personal fields of events are stored encrypted with a key of their data
// subject (a customer, say), and deleting that key ([Store.Forget]) makes
// them unreadable for good, while the rest of every event stays readable.
// Events are immutable; their personal data need not be.
//
// A [Policy] names, per event type, the JSON fields that are personal and
// the field (or metadata key) holding the subject ID. [New] wraps a store:
// its Append encrypts those fields with AES-256-GCM under the subject's
// data key, from a [KeyStore], each value with a fresh random nonce and
// with the subject ID and the field's path as additional data, so that a
// ciphertext moved to another subject or field fails to decrypt. An
// encrypted value is a JSON string starting with [Prefix]. Its reads
// decrypt them again; the fields of a forgotten subject read back as JSON
// null, and the event's Metadata.Extra[[ShreddedKey]] is "true". Data keys
// may be wrapped with a master key ([WithMasterKey]).
//
// Key stores: [MemoryKeys] for tests, [SQLiteKeys] and [PostgresKeys].
//
// The limits of crypto-shredding: a backup of the key store taken before
// [Store.Forget] still holds the key (see [KeyStore]); data outside the
// listed fields (stream IDs, event IDs, other fields, the subject ID
// itself, snapshots and read models built from the events) is not
// encrypted and must hold no personal data, or be deleted separately.
package shred

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/cairnhq/cairn/eventstore"
)

// ShreddedKey is the Metadata.Extra key that reads set to "true" on an
// event of which at least one personal field was shredded: its key was
// forgotten, and the field reads as JSON null.
const ShreddedKey = "cairn.shredded"

// A Rule says which fields of the events of one type are personal, and
// whose.
type Rule struct {
	// Subject is the path of the field of the event's data that holds the
	// subject ID, a non-empty JSON string: "customer_id", or
	// "customer.id" for a field of a nested object. Exactly one of Subject
	// and SubjectKey must be set.
	Subject string
	// SubjectKey is the key of Metadata.Extra that holds the subject ID,
	// for events whose data does not name their subject.
	SubjectKey string
	// Fields are the paths of the personal fields of the event's data,
	// dotted like Subject: "email", "address.street". A field may hold any
	// JSON value, an object or array included; a path does not go into
	// arrays. A field an event lacks is skipped. At least one; no field
	// may be the subject's or hold or be held by another.
	Fields []string
}

// Policy maps an event type to the [Rule] of its personal fields. Events
// of other types are stored and read unchanged.
type Policy map[string]Rule

// rule is a Rule, checked and with its paths split.
type rule struct {
	subject    []string
	subjectKey string
	fields     [][]string
}

// compile checks p and splits its paths.
func (p Policy) compile() (map[string]rule, error) {
	out := make(map[string]rule, len(p))
	for typ, r := range p {
		bad := func(format string, args ...any) error {
			return fmt.Errorf("shred: policy for %q: %s", typ, fmt.Sprintf(format, args...))
		}
		if typ == "" {
			return nil, errors.New("shred: policy has a rule for the empty event type")
		}
		if (r.Subject == "") == (r.SubjectKey == "") {
			return nil, bad("set exactly one of Subject (%q) and SubjectKey (%q)", r.Subject, r.SubjectKey)
		}
		if len(r.Fields) == 0 {
			return nil, bad("no Fields")
		}
		c := rule{subjectKey: r.SubjectKey}
		if r.Subject != "" {
			var err error
			if c.subject, err = splitPath(r.Subject); err != nil {
				return nil, bad("Subject: %v", err)
			}
		}
		for _, f := range r.Fields {
			path, err := splitPath(f)
			if err != nil {
				return nil, bad("field %q: %v", f, err)
			}
			if c.subject != nil && (hasPrefix(path, c.subject) || hasPrefix(c.subject, path)) {
				return nil, bad("field %q overlaps the subject field %q, which must stay readable", f, r.Subject)
			}
			for _, other := range c.fields {
				if hasPrefix(path, other) || hasPrefix(other, path) {
					return nil, bad("field %q overlaps field %q", f, strings.Join(other, "."))
				}
			}
			c.fields = append(c.fields, path)
		}
		out[typ] = c
	}
	return out, nil
}

func splitPath(p string) ([]string, error) {
	parts := strings.Split(p, ".")
	if slices.Contains(parts, "") {
		return nil, fmt.Errorf("path %q has an empty part", p)
	}
	return parts, nil
}

// hasPrefix reports whether path starts with prefix (or is it).
func hasPrefix(path, prefix []string) bool {
	return len(path) >= len(prefix) && slices.Equal(path[:len(prefix)], prefix)
}

// An Option configures [New]. Most callers need none.
type Option func(*options)

type options struct {
	master []byte
}

// WithMasterKey wraps every data key with master, a [KeySize]-byte key
// encryption key (envelope encryption), so that the key store alone
// decrypts nothing. Keep master out of the databases, in a secret manager.
// Default: data keys are stored unwrapped. A store with a master key
// refuses unwrapped keys and the reverse: changing it needs a migration.
func WithMasterKey(master []byte) Option {
	return func(o *options) { o.master = bytes.Clone(master) }
}

// Store is an [eventstore.Store] that encrypts the personal fields of the
// events it appends to the store it wraps, and decrypts them when it reads
// them. It is safe for concurrent use if the wrapped store and the key
// store are.
//
// Wrap it, not the inner store, with [eventstore.Upcasting], so that
// upcasters see decrypted data. Upcasters must accept null for a personal
// field.
type Store struct {
	inner  eventstore.Store
	keys   KeyStore
	rules  map[string]rule
	keyset keyring
}

var _ eventstore.Store = (*Store)(nil)

// New returns a Store over store that encrypts the personal fields policy
// names with keys from keys. It returns an error naming the rule if policy
// is inconsistent (see [Rule]), or if a master key is not [KeySize] bytes.
func New(store eventstore.Store, keys KeyStore, policy Policy, opts ...Option) (*Store, error) {
	if store == nil || keys == nil {
		return nil, errors.New("shred: New needs a store and a key store")
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	rules, err := policy.compile()
	if err != nil {
		return nil, err
	}
	s := &Store{inner: store, keys: keys, rules: rules}
	if o.master != nil {
		if len(o.master) != KeySize {
			return nil, fmt.Errorf("shred: master key is %d bytes, want %d", len(o.master), KeySize)
		}
		if s.keyset.master, err = newGCM(o.master); err != nil {
			return nil, fmt.Errorf("shred: master key: %w", err)
		}
	}
	return s, nil
}

// Forget deletes subject's key, for good: the personal fields of its
// events, stored or in flight, can no longer be decrypted by anyone, and
// read back as null (see [ShreddedKey]). Events of subject appended
// afterwards get a new key. Forgetting an unknown subject does nothing.
func (s *Store) Forget(ctx context.Context, subject string) error {
	if subject == "" {
		return errors.New("shred: forget: empty subject")
	}
	if err := s.keys.Delete(ctx, subject); err != nil {
		return fmt.Errorf("shred: forget %q: %w", subject, err)
	}
	return nil
}

// Append encrypts the personal fields of events and appends them to the
// wrapped store, under the contract of [eventstore.Store.Append]. It
// creates the key of a subject it has not seen.
//
// An event of a type of the policy must have JSON object data holding
// its subject ID, a non-empty string, where the rule says; Append refuses
// one that does not, or that has a key of a field's path twice, with an
// [*eventstore.InvalidEventError] naming the field, and appends nothing.
//
// The retry of an append whose answer was lost succeeds with the original
// result, as the contract says, although the new encryption differs from
// the stored one: on [eventstore.ErrDuplicateEvent], Append reads the
// stream back and compares the decrypted events.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.Event) (eventstore.AppendResult, error) {
	out := slices.Clone(events)
	keys := make(map[string]dataKey)
	encrypted := false
	for i, e := range events {
		r, ok := s.rules[e.Type]
		if !ok {
			continue
		}
		subject, err := subjectOf(r, e)
		if err != nil {
			var ie *eventstore.InvalidEventError
			if errors.As(err, &ie) {
				ie.Index = i
			}
			return eventstore.AppendResult{}, err
		}
		k, ok := keys[subject]
		if !ok {
			stored, err := s.keys.GetOrCreate(ctx, subject, s.keyset.newStoredKey(subject))
			if err != nil {
				return eventstore.AppendResult{}, fmt.Errorf("shred: append to %s: key of %q: %w", stream, subject, err)
			}
			if k, err = s.keyset.dataKey(subject, stored); err != nil {
				return eventstore.AppendResult{}, fmt.Errorf("shred: append to %s: key of %q: %w", stream, subject, err)
			}
			keys[subject] = k
		}
		data := e.Data
		for _, path := range r.fields {
			start, end, found, err := lookup(data, path)
			if err != nil {
				return eventstore.AppendResult{}, &eventstore.InvalidEventError{Index: i, Field: "Data." + strings.Join(path, "."), Reason: err.Error()}
			}
			if !found {
				continue
			}
			enc, _ := json.Marshal(k.seal(subject, strings.Join(path, "."), data[start:end]).String())
			data = splice(data, start, end, enc)
		}
		out[i].Data = data
		encrypted = true
	}
	res, err := s.inner.Append(ctx, stream, expected, out...)
	if err != nil && encrypted && errors.Is(err, eventstore.ErrDuplicateEvent) {
		if prev, ok := s.retried(ctx, stream, events); ok {
			return prev, nil
		}
	}
	return res, err
}

// subjectOf returns the subject ID of e, an event of a type of the policy
// with rule r, or an *InvalidEventError (Index 0) naming the field.
func subjectOf(r rule, e eventstore.Event) (string, error) {
	if r.subjectKey != "" {
		field := "Metadata.Extra[" + r.subjectKey + "]"
		subject, ok := e.Metadata.Extra[r.subjectKey]
		switch {
		case !ok:
			return "", &eventstore.InvalidEventError{Field: field, Reason: fmt.Sprintf("is missing: it holds the subject of the personal data of %q events", e.Type)}
		case subject == "":
			return "", &eventstore.InvalidEventError{Field: field, Reason: "is empty, want the subject ID"}
		}
		if !json.Valid(e.Data) || bytes.TrimSpace(e.Data)[0] != '{' {
			return "", &eventstore.InvalidEventError{Field: "Data", Reason: fmt.Sprintf("is not a JSON object: %q events have personal fields", e.Type)}
		}
		return subject, nil
	}
	field := "Data." + strings.Join(r.subject, ".")
	if !json.Valid(e.Data) || bytes.TrimSpace(e.Data)[0] != '{' {
		return "", &eventstore.InvalidEventError{Field: "Data", Reason: fmt.Sprintf("is not a JSON object: %q events have personal fields", e.Type)}
	}
	start, end, found, err := lookup(e.Data, r.subject)
	switch {
	case err != nil:
		return "", &eventstore.InvalidEventError{Field: field, Reason: err.Error()}
	case !found:
		return "", &eventstore.InvalidEventError{Field: field, Reason: fmt.Sprintf("is missing: it holds the subject of the personal data of %q events", e.Type)}
	}
	var subject string
	if err := json.Unmarshal(e.Data[start:end], &subject); err != nil {
		return "", &eventstore.InvalidEventError{Field: field, Reason: fmt.Sprintf("is %s, want a JSON string: the subject ID", e.Data[start:end])}
	}
	if subject == "" {
		return "", &eventstore.InvalidEventError{Field: field, Reason: "is empty, want the subject ID"}
	}
	return subject, nil
}

// retried reports whether events are all stored in stream already, at
// consecutive versions, with the same types, schema versions and
// (decrypted) data, and if so returns the result of the append that stored
// them.
func (s *Store) retried(ctx context.Context, stream string, events []eventstore.Event) (eventstore.AppendResult, bool) {
	want := make(map[string]int, len(events))
	for i, e := range events {
		want[e.ID] = i
	}
	found := make([]eventstore.RecordedEvent, len(events))
	n := 0
	const page = 256
	from := int64(math.MaxInt64) // the last event
	for n < len(events) && from >= 1 {
		got, err := s.ReadStream(ctx, stream, from, eventstore.Backwards, page)
		if err != nil || len(got) == 0 {
			return eventstore.AppendResult{}, false
		}
		for _, e := range got {
			if i, ok := want[e.ID]; ok && found[i].ID == "" {
				found[i] = e
				n++
			}
		}
		from = got[len(got)-1].Version - 1
	}
	if n < len(events) {
		return eventstore.AppendResult{}, false
	}
	for i, e := range events {
		f := found[i]
		if f.Metadata.Extra[ShreddedKey] == "true" || f.Type != e.Type || max(f.SchemaVersion, 1) != max(e.SchemaVersion, 1) ||
			!bytes.Equal(f.Data, e.Data) || (i > 0 && f.Version != found[i-1].Version+1) {
			return eventstore.AppendResult{}, false
		}
	}
	return eventstore.AppendResult{
		NextExpectedVersion: found[len(found)-1].Version,
		FirstPosition:       found[0].Position,
		LastPosition:        found[len(found)-1].Position,
	}, true
}

// ReadStream reads from the wrapped store and decrypts the personal
// fields of the events, under the contract of
// [eventstore.Reader.ReadStream]. The fields of a forgotten subject read
// as null, with Metadata.Extra[[ShreddedKey]] "true". A value that fails
// to decrypt with its subject's current key (moved from another subject or
// field, or altered) fails the read with a [*DecryptError]. Values of
// personal fields that are not encrypted (events appended before the
// policy) are returned as they are.
func (s *Store) ReadStream(ctx context.Context, stream string, from int64, dir eventstore.Direction, limit int) ([]eventstore.RecordedEvent, error) {
	events, err := s.inner.ReadStream(ctx, stream, from, dir, limit)
	if err != nil {
		return nil, err
	}
	return events, s.decryptAll(ctx, events)
}

// ReadAll reads from the wrapped store and decrypts the personal fields
// of the events, as ReadStream does, under the contract of
// [eventstore.Reader.ReadAll].
func (s *Store) ReadAll(ctx context.Context, after eventstore.Position, limit int) ([]eventstore.RecordedEvent, error) {
	events, err := s.inner.ReadAll(ctx, after, limit)
	if err != nil {
		return nil, err
	}
	return events, s.decryptAll(ctx, events)
}

// Version returns the wrapped store's answer.
func (s *Store) Version(ctx context.Context, stream string) (int64, error) {
	return s.inner.Version(ctx, stream)
}

// DeleteStream deletes stream in the wrapped store. It deletes no key: the
// events stay in the global log, encrypted.
func (s *Store) DeleteStream(ctx context.Context, stream string) error {
	return s.inner.DeleteStream(ctx, stream)
}

// Close closes the wrapped store. It does not close the key store.
func (s *Store) Close() error { return s.inner.Close() }

// ErrDecrypt is matched by a [*DecryptError].
var ErrDecrypt = errors.New("shred: cannot decrypt")

// DecryptError reports a personal field whose encrypted value does not
// decrypt with its subject's key: it was altered, or moved from another
// subject's event or another field. It is never the mark of a forgotten
// subject, which reads as null.
type DecryptError struct {
	// EventID, StreamID and Version identify the event.
	EventID  string
	StreamID string
	Version  int64
	// Field is the field's path and Subject the event's subject.
	Field, Subject string
	// Err says what failed.
	Err error
}

// Error names the event, the field and the subject.
func (e *DecryptError) Error() string {
	return fmt.Sprintf("shred: cannot decrypt field %s of event %s (stream %q, version %d) for subject %q: %v",
		e.Field, e.EventID, e.StreamID, e.Version, e.Subject, e.Err)
}

// Unwrap returns the cause.
func (e *DecryptError) Unwrap() error { return e.Err }

// Is reports whether target is [ErrDecrypt].
func (e *DecryptError) Is(target error) bool { return target == ErrDecrypt }

// errWrongKey is the cause of a DecryptError for a value whose key ID is
// the subject's current key's, but whose authentication fails.
var errWrongKey = errors.New("authentication failed: the value was altered or moved from another field")

// errOtherSubject is the cause of a DecryptError for a value encrypted for
// another subject.
var errOtherSubject = errors.New("the value was encrypted for another subject")

// decryptAll decrypts events in place, fetching each subject's key once.
func (s *Store) decryptAll(ctx context.Context, events []eventstore.RecordedEvent) error {
	type keyOrGone struct {
		k    dataKey
		gone bool
	}
	keys := make(map[string]keyOrGone)
	for i := range events {
		e := &events[i]
		r, ok := s.rules[e.Type]
		if !ok || !json.Valid(e.Data) {
			continue
		}
		subject, err := subjectOf(r, e.Event)
		if err != nil {
			continue // not written by a Store: left as it is
		}
		data, shredded := e.Data, false
		for _, path := range r.fields {
			start, end, found, err := lookup(data, path)
			if err != nil || !found || data[start] != '"' {
				continue
			}
			var str string
			if json.Unmarshal(data[start:end], &str) != nil || !strings.HasPrefix(str, Prefix) {
				continue
			}
			field := strings.Join(path, ".")
			fail := func(err error) error {
				return &DecryptError{EventID: e.ID, StreamID: e.StreamID, Version: e.Version, Field: field, Subject: subject, Err: err}
			}
			env, err := parseValue(str)
			if err != nil {
				return fail(err)
			}
			k, ok := keys[subject]
			if !ok {
				stored, err := s.keys.Get(ctx, subject)
				switch {
				case errors.Is(err, ErrKeyNotFound):
					k.gone = true
				case err != nil:
					return fmt.Errorf("shred: read event %s: key of %q: %w", e.ID, subject, err)
				default:
					if k.k, err = s.keyset.dataKey(subject, stored); err != nil {
						return fmt.Errorf("shred: read event %s: key of %q: %w", e.ID, subject, err)
					}
				}
				keys[subject] = k
			}
			var plain []byte
			switch {
			case !bytes.Equal(env.subjectTag, subjectTag(subject)):
				return fail(errOtherSubject)
			case k.gone || !bytes.Equal(env.keyID, k.k.id):
				// Forgotten, or encrypted with a key since forgotten and
				// replaced by a new one.
				plain, shredded = []byte("null"), true
			default:
				if plain, err = k.k.open(subject, field, env); err != nil {
					return fail(errWrongKey)
				}
			}
			data = splice(data, start, end, plain)
		}
		e.Data = data
		if shredded {
			e.Metadata.Extra = maps.Clone(e.Metadata.Extra)
			if e.Metadata.Extra == nil {
				e.Metadata.Extra = make(map[string]string, 1)
			}
			e.Metadata.Extra[ShreddedKey] = "true"
		}
	}
	return nil
}
