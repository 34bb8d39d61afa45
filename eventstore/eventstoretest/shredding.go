package eventstoretest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/eventstore/shred"
)

// checkShredding runs the crypto-shredding wrapper of package shred over
// the store, with keys in memory: personal fields round-trip through the
// wrapper but reach the store only encrypted, the retry of an encrypted
// append is idempotent, a forgotten subject's fields read back as null
// (and the event is marked) while another subject's and the rest of the
// events stay readable, and an event without its subject is refused
// without storing anything.
func checkShredding(t testing.TB, s eventstore.Store) {
	f := newFixture(t, s)
	ctx := f.ctx
	const typ = "test.customer.registered"
	w, err := shred.New(s, &shred.MemoryKeys{}, shred.Policy{
		typ: {Subject: "customer_id", Fields: []string{"email", "address.street"}},
	})
	if err != nil {
		t.Fatalf("shred.New() = %v", err)
	}
	st := f.stream("customer")
	head := f.head()
	ann, bob := f.id("ann"), f.id("bob")
	annEmail, bobEmail := "ann-"+f.prefix+"@example.com", "bob-"+f.prefix+"@example.com"
	customer := func(name, subject, email string) eventstore.Event {
		return eventstore.Event{
			ID: f.id(name), Type: typ, SchemaVersion: 1,
			Data:     fmt.Appendf(nil, `{"customer_id":%q,"email":%q, "address":{"street":"1 Main St","city":"Paris"},"plan":"gold"}`, subject, email),
			Metadata: eventstore.Metadata{CorrelationID: f.prefix},
		}
	}
	in := []eventstore.Event{customer("ann", ann, annEmail), f.event("other"), customer("bob", bob, bobEmail)}
	res, err := w.Append(ctx, st, eventstore.NoStream, in...)
	if err != nil {
		t.Fatalf("shredding Append(%s) = %v, want success", st, err)
	}

	// Through the wrapper: as appended.
	got, err := w.ReadStream(ctx, st, 1, eventstore.Forwards, 10)
	if err != nil || len(got) != len(in) {
		t.Fatalf("shredding ReadStream(%s) = %d events, %v, want %d", st, len(got), err, len(in))
	}
	for i, e := range got {
		f.checkRecorded("shredding ReadStream", e, st, int64(i+1), in[i])
	}
	all, err := w.ReadAll(ctx, head, 100)
	if err != nil {
		t.Fatalf("shredding ReadAll() = %v", err)
	}
	var ours []eventstore.RecordedEvent
	for _, e := range all {
		if f.ours(e) {
			ours = append(ours, e)
		}
	}
	if len(ours) != len(in) {
		t.Fatalf("shredding ReadAll() returned %d of the check's events, want %d", len(ours), len(in))
	}
	for i, e := range ours {
		f.checkRecorded("shredding ReadAll", e, st, int64(i+1), in[i])
	}

	// In the store: no plaintext, the rest as it was.
	raw := f.readStream(st)
	for i, e := range raw {
		md, _ := json.Marshal(e.Metadata)
		for _, secret := range []string{annEmail, bobEmail, "1 Main St"} {
			if bytes.Contains(e.Data, []byte(secret)) || bytes.Contains(md, []byte(secret)) {
				t.Errorf("event %d as stored holds %q in the clear: %s", i, secret, e.Data)
			}
		}
	}
	if !bytes.Equal(raw[1].Data, in[1].Data) {
		t.Errorf("event of a type outside the policy stored as %s, want %s unchanged", raw[1].Data, in[1].Data)
	}
	if !bytes.Contains(raw[0].Data, []byte(`"plan":"gold"`)) || !bytes.Contains(raw[0].Data, []byte(shred.Prefix)) {
		t.Errorf("personal event stored as %s, want its other fields in the clear and %q values", raw[0].Data, shred.Prefix)
	}

	// A retry, encrypted anew, returns the original result.
	if again, err := w.Append(ctx, st, eventstore.NoStream, in...); err != nil || again != res {
		t.Errorf("shredding Append(retry) = %+v, %v, want %+v, nil", again, err, res)
	}

	// Forget ann: her fields read as null, the event is marked; bob's and
	// the rest stay readable.
	if err := w.Forget(ctx, ann); err != nil {
		t.Fatalf("Forget(%s) = %v", ann, err)
	}
	got, err = w.ReadStream(ctx, st, 1, eventstore.Forwards, 10)
	if err != nil || len(got) != len(in) {
		t.Fatalf("shredding ReadStream(%s) after Forget = %d events, %v, want %d", st, len(got), err, len(in))
	}
	var data map[string]any
	if err := json.Unmarshal(got[0].Data, &data); err != nil {
		t.Fatalf("forgotten event's data %s: %v", got[0].Data, err)
	}
	addr, _ := data["address"].(map[string]any)
	if _, ok := data["email"]; !ok || data["email"] != nil || addr == nil || addr["street"] != nil || addr["city"] != "Paris" ||
		data["customer_id"] != ann || data["plan"] != "gold" {
		t.Errorf("forgotten event's data = %s, want email and address.street null, the rest as appended", got[0].Data)
	}
	if got[0].Metadata.Extra[shred.ShreddedKey] != "true" || got[0].Metadata.CorrelationID != f.prefix {
		t.Errorf("forgotten event's metadata = %+v, want %s=true and the rest as appended", got[0].Metadata, shred.ShreddedKey)
	}
	f.checkRecorded("after Forget", got[2], st, 3, in[2])
	f.checkRecorded("after Forget", got[1], st, 2, in[1])

	// An event without its subject is refused, and nothing is stored.
	noSubject := customer("nosubject", "", annEmail)
	noSubject.Data = []byte(`{"email":"x@example.com"}`)
	_, err = w.Append(ctx, st, eventstore.Any, f.event("fine"), noSubject)
	var ie *eventstore.InvalidEventError
	if !errors.As(err, &ie) || !errors.Is(err, eventstore.ErrInvalidEvent) || ie.Index != 1 || ie.Field != "Data.customer_id" {
		t.Errorf("shredding Append(event without subject) = %v, want an *InvalidEventError for event 1, field Data.customer_id", err)
	}
	if v := f.version(st); v != 3 {
		t.Errorf("Version() after a refused append = %d, want 3", v)
	}
}
