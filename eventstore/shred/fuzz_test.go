package shred

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParseValue checks that the decoder of encrypted values never panics,
// accepts only what it can encode back byte for byte, and refuses the rest
// with ErrMalformed.
func FuzzParseValue(f *testing.F) {
	k, err := newDataKey(bytes.Repeat([]byte{7}, KeySize))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(k.seal("customer-1", "email", []byte(`"ann@example.com"`)).String())
	f.Add(Prefix)
	f.Add(Prefix + "AAAA")
	f.Add(Prefix + "====")
	f.Add("cairn:enc:v2:AAAA")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		e, err := parseValue(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("parseValue(%q) = %v, want ErrMalformed", s, err)
			}
			return
		}
		if got := e.String(); got != s {
			t.Fatalf("parseValue(%q).String() = %q, want the input", s, got)
		}
		if len(e.subjectTag) != subjectTagSize || len(e.keyID) != keyIDSize || len(e.nonce) != nonceSize || len(e.ciphertext) < tagSize {
			t.Fatalf("parseValue(%q) = parts of %d, %d, %d, %d bytes", s, len(e.subjectTag), len(e.keyID), len(e.nonce), len(e.ciphertext))
		}
		// A value nobody encrypted does not decrypt.
		// Only the value sealed above opens: header included, it is
		// authenticated.
		if _, err := k.open("customer-1", "email", e); err == nil && (!bytes.Equal(e.keyID, k.id) || !bytes.Equal(e.subjectTag, subjectTag("customer-1"))) {
			t.Fatalf("open(%q) succeeded with a header that is not its own", s)
		}
	})
}

func TestLookup(t *testing.T) {
	data := []byte(` { "a" : 1, "b":{"c":"x\"}", "d":[1,{"e":2}]}, "e\u0020":true, "f" :null }`)
	for _, tc := range []struct {
		path  []string
		want  string
		found bool
	}{
		{[]string{"a"}, "1", true},
		{[]string{"b", "c"}, `"x\"}"`, true},
		{[]string{"b", "d"}, `[1,{"e":2}]`, true},
		{[]string{"b", "d", "e"}, "", false},
		{[]string{"e "}, "true", true},
		{[]string{"f"}, "null", true},
		{[]string{"a", "x"}, "", false},
		{[]string{"z"}, "", false},
	} {
		s, e, found, err := lookup(data, tc.path)
		if err != nil || found != tc.found || (found && string(data[s:e]) != tc.want) {
			t.Errorf("lookup(%v) = %q, %v, %v, want %q, %v", tc.path, data[s:e], found, err, tc.want, tc.found)
		}
	}
	if _, _, _, err := lookup([]byte(`{"a":{"b":1,"b":2}}`), []string{"a", "b"}); !errors.Is(err, errDuplicateKey) {
		t.Errorf("lookup(duplicate key) = %v, want errDuplicateKey", err)
	}
}
