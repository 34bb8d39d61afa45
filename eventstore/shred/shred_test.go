package shred_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "modernc.org/sqlite"

	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/eventstore/eventstoretest"
	"github.com/cairnhq/cairn/eventstore/postgres"
	"github.com/cairnhq/cairn/eventstore/shred"
	sqlitestore "github.com/cairnhq/cairn/eventstore/sqlite"
	"github.com/cairnhq/cairn/internal/testenv"
)

// backend is an event store and a key store on one database engine, with
// a way to read the events table's rows as the database holds them.
type backend struct {
	name  string
	store eventstore.Store
	keys  shred.KeyStore
	// rawRows returns, per row of the events table of stream, its data
	// and metadata columns, straight from SQL.
	rawRows func(t *testing.T, stream string) [][]byte
}

func sqliteBackend(t *testing.T) backend {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.db")
	s, err := sqlitestore.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	raw, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	keyDB, err := sql.Open("sqlite", filepath.Join(dir, "keys.db")+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=secure_delete(1)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { keyDB.Close() })
	keys, err := shred.NewSQLiteKeys(t.Context(), keyDB)
	if err != nil {
		t.Fatal(err)
	}
	return backend{name: "sqlite", store: s, keys: keys, rawRows: func(t *testing.T, stream string) [][]byte {
		return queryRows(t, func() (rowsScanner, error) {
			rows, err := raw.QueryContext(t.Context(), `SELECT data, metadata FROM events WHERE stream_id = ? ORDER BY version`, stream)
			return sqlRows{rows}, err
		})
	}}
}

type rowsScanner interface {
	Next() bool
	Scan(...any) error
	Err() error
	Close()
}

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { r.Rows.Close() }

func queryRows(t *testing.T, query func() (rowsScanner, error)) [][]byte {
	t.Helper()
	rows, err := query()
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var data, md []byte
		if err := rows.Scan(&data, &md); err != nil {
			t.Fatal(err)
		}
		out = append(out, append(data, md...))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func postgresBackend(t *testing.T) backend {
	url := testenv.Require(t, testenv.Postgres)
	pool, err := pgxpool.New(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "shred_test_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		for _, sc := range []string{schema, schema + "_keys"} {
			if _, err := pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{sc}.Sanitize()+" CASCADE"); err != nil {
				t.Errorf("drop schema %s: %v", sc, err)
			}
		}
		pool.Close()
	})
	s, err := postgres.New(t.Context(), pool, postgres.WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	keys, err := shred.NewPostgresKeys(t.Context(), pool, schema+"_keys")
	if err != nil {
		t.Fatal(err)
	}
	table := pgx.Identifier{schema, "events"}.Sanitize()
	return backend{name: "postgres", store: s, keys: keys, rawRows: func(t *testing.T, stream string) [][]byte {
		return queryRows(t, func() (rowsScanner, error) {
			return pool.Query(t.Context(), `SELECT data, metadata FROM `+table+` WHERE stream_id = $1 ORDER BY version`, stream)
		})
	}}
}

func backends(t *testing.T, f func(t *testing.T, b backend)) {
	t.Run("sqlite", func(t *testing.T) { f(t, sqliteBackend(t)) })
	t.Run("postgres", func(t *testing.T) { f(t, postgresBackend(t)) })
}

const registered = "customer.registered"

var policy = shred.Policy{
	registered: {Subject: "customer_id", Fields: []string{"email", "name", "address.street"}},
}

func registration(id, subject, email string) eventstore.Event {
	return eventstore.Event{
		ID: id, Type: registered,
		Data:     fmt.Appendf(nil, `{"customer_id":%q,"email":%q,"name":"Ann Smith","address":{"street":"1 Rue de la Paix","city":"Paris"},"plan":"gold"}`, subject, email),
		Metadata: eventstore.Metadata{CorrelationID: "req-1", Extra: map[string]string{"tenant": "acme"}},
	}
}

func newShred(t *testing.T, b backend, opts ...shred.Option) *shred.Store {
	t.Helper()
	s, err := shred.New(b.store, b.keys, policy, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func readAllOf(t *testing.T, r eventstore.Reader, stream string) []eventstore.RecordedEvent {
	t.Helper()
	got, err := r.ReadStream(t.Context(), stream, 0, eventstore.Forwards, 100)
	if err != nil {
		t.Fatalf("ReadStream(%s) = %v", stream, err)
	}
	return got
}

// TestRoundTripAndForget appends personal events through the wrapper and
// reads them back; reads the events table with SQL to show that the
// personal values never reach the database in the clear; forgets the
// subject, and shows that the wrapper then reads null, while another
// subject's events stay readable.
func TestRoundTripAndForget(t *testing.T) {
	backends(t, func(t *testing.T, b backend) {
		s := newShred(t, b)
		ctx := t.Context()
		annEmail, bobEmail := "ann.smith@example.com", "bob.jones@example.com"
		in := []eventstore.Event{registration("e1", "cust-ann", annEmail), registration("e2", "cust-bob", bobEmail)}
		if _, err := s.Append(ctx, "customers", eventstore.NoStream, in...); err != nil {
			t.Fatalf("Append() = %v", err)
		}
		got := readAllOf(t, s, "customers")
		for i := range in {
			if !bytes.Equal(got[i].Data, in[i].Data) {
				t.Errorf("event %d read back as %s, want %s", i, got[i].Data, in[i].Data)
			}
		}
		var all []eventstore.RecordedEvent
		var err error
		// PostgreSQL's ReadAll may hold new events back while a
		// transaction anywhere in the cluster is open: retry.
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if all, err = s.ReadAll(ctx, 0, 10); err != nil || len(all) == 2 {
				break
			}
		}
		if err != nil || len(all) != 2 || !bytes.Equal(all[1].Data, in[1].Data) {
			t.Errorf("ReadAll() = %d events, %v, want both, decrypted", len(all), err)
		}

		secrets := []string{annEmail, bobEmail, "Ann Smith", "1 Rue de la Paix"}
		checkRaw := func(when string) {
			t.Helper()
			rows := b.rawRows(t, "customers")
			if len(rows) != 2 {
				t.Fatalf("%s: %d rows in the events table, want 2", when, len(rows))
			}
			for i, row := range rows {
				for _, secret := range secrets {
					if bytes.Contains(row, []byte(secret)) {
						t.Errorf("%s: row %d of the events table holds %q: %s", when, i, secret, row)
					}
				}
				if !bytes.Contains(row, []byte(shred.Prefix)) || !bytes.Contains(row, []byte(`"city":"Paris"`)) {
					t.Errorf("%s: row %d = %s, want encrypted personal fields and the others in the clear", when, i, row)
				}
			}
		}
		checkRaw("before Forget")

		if err := s.Forget(ctx, "cust-ann"); err != nil {
			t.Fatalf("Forget() = %v", err)
		}
		checkRaw("after Forget")
		if _, err := b.keys.Get(ctx, "cust-ann"); !errors.Is(err, shred.ErrKeyNotFound) {
			t.Errorf("keys.Get(forgotten) = %v, want ErrKeyNotFound", err)
		}
		// A new wrapper, as after a restart, reads the same.
		for _, r := range []eventstore.Reader{s, newShred(t, b)} {
			got := readAllOf(t, r, "customers")
			want := `{"customer_id":"cust-ann","email":null,"name":null,"address":{"street":null,"city":"Paris"},"plan":"gold"}`
			if string(got[0].Data) != want {
				t.Errorf("forgotten event = %s, want %s", got[0].Data, want)
			}
			if got[0].Metadata.Extra[shred.ShreddedKey] != "true" || got[0].Metadata.Extra["tenant"] != "acme" {
				t.Errorf("forgotten event's Extra = %v, want %s=true and tenant=acme", got[0].Metadata.Extra, shred.ShreddedKey)
			}
			if !bytes.Equal(got[1].Data, in[1].Data) || got[1].Metadata.Extra[shred.ShreddedKey] != "" {
				t.Errorf("other subject's event = %s %v, want it as appended", got[1].Data, got[1].Metadata.Extra)
			}
		}

		// Ann comes back: a new key, and her old events stay shredded.
		if _, err := s.Append(ctx, "customers", eventstore.Any, registration("e3", "cust-ann", "ann@new.example")); err != nil {
			t.Fatal(err)
		}
		got = readAllOf(t, s, "customers")
		if !bytes.Contains(got[0].Data, []byte(`"email":null`)) || !bytes.Contains(got[2].Data, []byte("ann@new.example")) {
			t.Errorf("after a new key: %s and %s, want the old event shredded and the new one readable", got[0].Data, got[2].Data)
		}
	})
}

// TestTamper moves encrypted values to another subject's event, to another
// field, and alters one: each read fails with a *DecryptError naming the
// field, none reads as null or as the value.
func TestTamper(t *testing.T) {
	backends(t, func(t *testing.T, b backend) {
		s := newShred(t, b)
		ctx := t.Context()
		if _, err := s.Append(ctx, "ann", eventstore.NoStream, registration("ann-1", "cust-ann", "ann@example.com")); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Append(ctx, "bob", eventstore.NoStream, registration("bob-1", "cust-bob", "bob@example.com")); err != nil {
			t.Fatal(err)
		}
		// Ann's ciphertext, as stored.
		stored, err := b.store.ReadStream(ctx, "ann", 0, eventstore.Forwards, 1)
		if err != nil {
			t.Fatal(err)
		}
		var fields map[string]any
		if err := json.Unmarshal(stored[0].Data, &fields); err != nil {
			t.Fatal(err)
		}
		annEmail := fields["email"].(string)
		flipped := []byte(annEmail)
		flipped[len(flipped)-3] ^= 1
		if flipped[len(flipped)-3] == '_' || flipped[len(flipped)-3] == '-' || flipped[len(flipped)-3] > 'z' {
			flipped[len(flipped)-3] = 'A'
		}
		for i, tc := range []struct {
			name, subject, field, value string
		}{
			{"another subject", "cust-bob", "email", annEmail},
			{"another field", "cust-ann", "name", annEmail},
			{"altered", "cust-ann", "email", string(flipped)},
			{"malformed", "cust-ann", "email", shred.Prefix + "AAAA"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				stream := fmt.Sprint("tampered-", i)
				data, _ := json.Marshal(map[string]any{"customer_id": tc.subject, tc.field: tc.value})
				// Written behind the wrapper's back, straight to the store.
				if _, err := b.store.Append(ctx, stream, eventstore.NoStream, eventstore.Event{ID: stream, Type: registered, Data: data}); err != nil {
					t.Fatal(err)
				}
				got, err := s.ReadStream(ctx, stream, 0, eventstore.Forwards, 10)
				var de *shred.DecryptError
				if !errors.As(err, &de) || !errors.Is(err, shred.ErrDecrypt) || de.Field != tc.field || de.Subject != tc.subject || de.EventID != stream {
					t.Fatalf("ReadStream(tampered) = %d events, %v, want a *DecryptError for field %s of %s", len(got), err, tc.field, tc.subject)
				}
				// PostgreSQL's ReadAll may hold the new event back while a
				// transaction anywhere in the cluster is open: retry.
				for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
					_, err := s.ReadAll(ctx, 0, 100)
					if errors.Is(err, shred.ErrDecrypt) {
						break
					}
					if err != nil || time.Now().After(deadline) {
						t.Errorf("ReadAll(over a tampered event) = %v, want ErrDecrypt", err)
						break
					}
				}
			})
		}
	})
}

// TestConcurrentGetOrCreate races get-or-create of one subject: one key
// wins, and every caller gets it.
func TestConcurrentGetOrCreate(t *testing.T) {
	run := func(t *testing.T, keys shred.KeyStore) {
		const n = 16
		got := make([][]byte, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				got[i], errs[i] = keys.GetOrCreate(t.Context(), "cust-race", []byte(fmt.Sprint("key-", i)))
			})
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("GetOrCreate %d = %v", i, errs[i])
			}
			if !bytes.Equal(got[i], got[0]) {
				t.Errorf("GetOrCreate %d = %q, GetOrCreate 0 = %q, want one key", i, got[i], got[0])
			}
		}
		if stored, err := keys.Get(t.Context(), "cust-race"); err != nil || !bytes.Equal(stored, got[0]) {
			t.Errorf("Get() = %q, %v, want %q", stored, err, got[0])
		}
		if err := keys.Delete(t.Context(), "cust-race"); err != nil {
			t.Fatal(err)
		}
		if err := keys.Delete(t.Context(), "cust-race"); err != nil {
			t.Errorf("Delete(again) = %v, want nil", err)
		}
	}
	t.Run("memory", func(t *testing.T) { run(t, &shred.MemoryKeys{}) })
	backends(t, func(t *testing.T, b backend) { run(t, b.keys) })
}

func TestIdempotentRetry(t *testing.T) {
	b := sqliteBackend(t)
	s := newShred(t, b)
	in := []eventstore.Event{registration("e1", "cust-ann", "ann@example.com"), {ID: "e2", Type: "other"}}
	res, err := s.Append(t.Context(), "c", eventstore.NoStream, in...)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := s.Append(t.Context(), "c", eventstore.NoStream, in...); err != nil || again != res {
		t.Errorf("Append(retry) = %+v, %v, want %+v", again, err, res)
	}
	changed := registration("e1", "cust-ann", "other@example.com")
	if _, err := s.Append(t.Context(), "c", eventstore.Any, changed); !errors.Is(err, eventstore.ErrDuplicateEvent) {
		t.Errorf("Append(same ID, other email) = %v, want ErrDuplicateEvent", err)
	}
}

func TestInvalidEvents(t *testing.T) {
	s, err := shred.New(memStore(t), &shred.MemoryKeys{}, shred.Policy{
		registered:   {Subject: "customer.id", Fields: []string{"email"}},
		"note.added": {SubjectKey: "subject", Fields: []string{"text"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, data string
		extra      map[string]string
		typ, field string
	}{
		{"missing subject", `{"email":"a@b.c"}`, nil, registered, "Data.customer.id"},
		{"number subject", `{"customer":{"id":42},"email":"a@b.c"}`, nil, registered, "Data.customer.id"},
		{"empty subject", `{"customer":{"id":""},"email":"a@b.c"}`, nil, registered, "Data.customer.id"},
		{"not an object", `["a@b.c"]`, nil, registered, "Data"},
		{"not JSON", `email=a@b.c`, nil, registered, "Data"},
		{"duplicate field", `{"customer":{"id":"c1"},"email":"a@b.c","email":"x"}`, nil, registered, "Data.email"},
		{"missing metadata subject", `{"text":"hi"}`, nil, "note.added", "Metadata.Extra[subject]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Append(t.Context(), "s", eventstore.Any, eventstore.Event{ID: "ok", Type: "x"},
				eventstore.Event{ID: "e", Type: tc.typ, Data: []byte(tc.data), Metadata: eventstore.Metadata{Extra: tc.extra}})
			var ie *eventstore.InvalidEventError
			if !errors.As(err, &ie) || !errors.Is(err, eventstore.ErrInvalidEvent) || ie.Index != 1 || ie.Field != tc.field {
				t.Fatalf("Append(%s) = %v, want an *InvalidEventError for event 1, field %s", tc.data, err, tc.field)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Errorf("error %q does not name %s", err, tc.field)
			}
			if v, _ := s.Version(t.Context(), "s"); v != 0 {
				t.Errorf("Version() = %d after a refused append, want 0", v)
			}
		})
	}
	// The metadata subject works.
	if _, err := s.Append(t.Context(), "n", eventstore.NoStream, eventstore.Event{ID: "n1", Type: "note.added",
		Data: []byte(`{"text":"secret"}`), Metadata: eventstore.Metadata{Extra: map[string]string{"subject": "c1"}}}); err != nil {
		t.Fatal(err)
	}
	if got := readAllOf(t, s, "n"); string(got[0].Data) != `{"text":"secret"}` {
		t.Errorf("note read back as %s", got[0].Data)
	}
}

func TestNewRefusesBadPolicies(t *testing.T) {
	for name, p := range map[string]shred.Policy{
		"no subject":       {"t": {Fields: []string{"a"}}},
		"two subjects":     {"t": {Subject: "s", SubjectKey: "s", Fields: []string{"a"}}},
		"no fields":        {"t": {Subject: "s"}},
		"subject is field": {"t": {Subject: "s", Fields: []string{"s"}}},
		"subject in field": {"t": {Subject: "a.s", Fields: []string{"a"}}},
		"nested fields":    {"t": {Subject: "s", Fields: []string{"a", "a.b"}}},
		"empty path part":  {"t": {Subject: "s", Fields: []string{"a..b"}}},
		"empty event type": {"": {Subject: "s", Fields: []string{"a"}}},
	} {
		if _, err := shred.New(memStore(t), &shred.MemoryKeys{}, p); err == nil {
			t.Errorf("New(%s) = nil error, want one", name)
		}
	}
	if _, err := shred.New(memStore(t), &shred.MemoryKeys{}, policy, shred.WithMasterKey([]byte("short"))); err == nil {
		t.Error("New(WithMasterKey(5 bytes)) = nil error, want one")
	}
}

func TestMasterKey(t *testing.T) {
	keys := &shred.MemoryKeys{}
	inner := memStore(t)
	master := bytes.Repeat([]byte{1}, shred.KeySize)
	s, err := shred.New(inner, keys, policy, shred.WithMasterKey(master))
	if err != nil {
		t.Fatal(err)
	}
	in := registration("e1", "cust-ann", "ann@example.com")
	if _, err := s.Append(t.Context(), "c", eventstore.NoStream, in); err != nil {
		t.Fatal(err)
	}
	if got := readAllOf(t, s, "c"); !bytes.Equal(got[0].Data, in.Data) {
		t.Errorf("read back %s, want %s", got[0].Data, in.Data)
	}
	for name, opts := range map[string][]shred.Option{
		"other master key": {shred.WithMasterKey(bytes.Repeat([]byte{2}, shred.KeySize))},
		"no master key":    nil,
	} {
		other, err := shred.New(inner, keys, policy, opts...)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := other.ReadStream(t.Context(), "c", 0, eventstore.Forwards, 1); err == nil {
			t.Errorf("%s: ReadStream() = %s, want an error", name, got[0].Data)
		}
	}
}

// TestConformance runs the conformance suite over the wrapper: events of
// types outside the policy go through unchanged.
func TestConformance(t *testing.T) {
	eventstoretest.Run(t, func(t *testing.T) eventstore.Store {
		s, err := shred.New(memStore(t), &shred.MemoryKeys{}, policy)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func memStore(t *testing.T) eventstore.Store {
	t.Helper()
	s, err := sqlitestore.Open(t.Context(), sqlitestore.MemoryPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
