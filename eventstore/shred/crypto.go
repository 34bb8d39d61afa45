package shred

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
)

// Prefix starts every encrypted value: a JSON string "cairn:enc:v1:"
// followed by the unpadded base64url encoding of the subject tag (4 bytes
// of a SHA-256 of the subject ID), the key ID (8 bytes of an HMAC-SHA-256
// of a constant under the data key), the nonce (12 bytes) and the
// AES-256-GCM ciphertext of the value's JSON text, tag included. The
// subject tag tells a value moved from another subject (an error) from a
// value encrypted with a forgotten key of the same subject (shredded).
const Prefix = "cairn:enc:v1:"

// Sizes of the parts of keys and encrypted values.
const (
	// KeySize is the size of data keys and of the master key: AES-256.
	KeySize        = 32
	subjectTagSize = 4
	keyIDSize      = 8
	nonceSize      = 12
	tagSize        = 16
)

// Formats of a stored key (its first byte).
const (
	keyPlain   = 1 // 1 || key
	keyWrapped = 2 // 2 || nonce || AES-GCM(master, key, aad "cairn:kek:v1" 0 subject)
)

// ErrMalformed is matched by a value that starts with [Prefix] but is
// not a well-formed encrypted value.
var ErrMalformed = errors.New("shred: malformed encrypted value")

// envelope is an encrypted value, parsed.
type envelope struct {
	subjectTag []byte
	keyID      []byte
	nonce      []byte
	ciphertext []byte // tag included
}

// parseValue parses s, the content of a JSON string starting with Prefix.
// It returns an error matching ErrMalformed for anything else.
func parseValue(s string) (envelope, error) {
	rest, ok := bytes.CutPrefix([]byte(s), []byte(Prefix))
	if !ok {
		return envelope{}, fmt.Errorf("%w: no %q prefix", ErrMalformed, Prefix)
	}
	raw := make([]byte, base64.RawURLEncoding.DecodedLen(len(rest)))
	n, err := base64.RawURLEncoding.Strict().Decode(raw, rest)
	if err != nil {
		return envelope{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	raw = raw[:n]
	if base64.RawURLEncoding.EncodeToString(raw) != string(rest) {
		return envelope{}, fmt.Errorf("%w: base64 is not canonical", ErrMalformed) // line breaks, say
	}
	const header = subjectTagSize + keyIDSize + nonceSize
	if len(raw) < header+tagSize {
		return envelope{}, fmt.Errorf("%w: %d bytes, want at least %d", ErrMalformed, len(raw), header+tagSize)
	}
	return envelope{
		subjectTag: raw[:subjectTagSize],
		keyID:      raw[subjectTagSize : subjectTagSize+keyIDSize],
		nonce:      raw[subjectTagSize+keyIDSize : header],
		ciphertext: raw[header:],
	}, nil
}

// String returns e as Prefix and base64url.
func (e envelope) String() string {
	raw := make([]byte, 0, len(e.subjectTag)+len(e.keyID)+len(e.nonce)+len(e.ciphertext))
	raw = append(append(append(append(raw, e.subjectTag...), e.keyID...), e.nonce...), e.ciphertext...)
	return Prefix + base64.RawURLEncoding.EncodeToString(raw)
}

// dataKey is a subject's data key, ready to use.
type dataKey struct {
	id   []byte // keyIDSize bytes, derived from the key
	aead cipher.AEAD
}

func newDataKey(key []byte) (dataKey, error) {
	if len(key) != KeySize {
		return dataKey{}, fmt.Errorf("data key is %d bytes, want %d", len(key), KeySize)
	}
	aead, err := newGCM(key)
	if err != nil {
		return dataKey{}, err
	}
	return dataKey{id: keyID(key), aead: aead}, nil
}

// keyID identifies key without revealing it, so that a value encrypted
// with a deleted key is told from one tampered with.
func keyID(key []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("cairn:shred:key-id"))
	return m.Sum(nil)[:keyIDSize]
}

// subjectTag is the tag of subject in the values encrypted for it.
func subjectTag(subject string) []byte {
	h := sha256.Sum256([]byte("cairn:shred:subject\x00" + subject))
	return h[:subjectTagSize]
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// valueAAD binds a value to its subject and field path, and to the
// header of its envelope.
func valueAAD(subject, path string, e envelope) []byte {
	aad := []byte("cairn:enc:v1\x00" + subject + "\x00" + path + "\x00")
	return append(append(aad, e.subjectTag...), e.keyID...)
}

// seal encrypts plaintext, the JSON text of the value at path of an event
// of subject, with a fresh random nonce.
func (k dataKey) seal(subject, path string, plaintext []byte) envelope {
	nonce := make([]byte, nonceSize)
	_, _ = rand.Read(nonce) // never fails
	e := envelope{subjectTag: subjectTag(subject), keyID: k.id, nonce: nonce}
	e.ciphertext = k.aead.Seal(nil, nonce, plaintext, valueAAD(subject, path, e))
	return e
}

// open decrypts e, which should be of k (e.keyID == k.id).
func (k dataKey) open(subject, path string, e envelope) ([]byte, error) {
	return k.aead.Open(nil, e.nonce, e.ciphertext, valueAAD(subject, path, e))
}

// keyring turns data keys into stored keys and back, wrapping them with
// the master key if there is one.
type keyring struct {
	master cipher.AEAD // nil: keys are stored in the clear
}

func kekAAD(subject string) []byte { return []byte("cairn:kek:v1\x00" + subject) }

// newStoredKey returns a new random data key, encoded for the KeyStore.
func (r keyring) newStoredKey(subject string) []byte {
	key := make([]byte, KeySize)
	_, _ = rand.Read(key) // never fails
	if r.master == nil {
		return append([]byte{keyPlain}, key...)
	}
	nonce := make([]byte, nonceSize)
	_, _ = rand.Read(nonce)
	out := append([]byte{keyWrapped}, nonce...)
	return r.master.Seal(out, nonce, key, kekAAD(subject))
}

// dataKey decodes stored, the key of subject from the KeyStore.
func (r keyring) dataKey(subject string, stored []byte) (dataKey, error) {
	if len(stored) == 0 {
		return dataKey{}, errors.New("stored key is empty")
	}
	switch stored[0] {
	case keyPlain:
		if r.master != nil {
			return dataKey{}, errors.New("stored key is not wrapped, but the store has a master key")
		}
		return newDataKey(stored[1:])
	case keyWrapped:
		if r.master == nil {
			return dataKey{}, errors.New("stored key is wrapped with a master key, but the store has none")
		}
		if len(stored) < 1+nonceSize+tagSize {
			return dataKey{}, fmt.Errorf("wrapped key is %d bytes, too short", len(stored))
		}
		key, err := r.master.Open(nil, stored[1:1+nonceSize], stored[1+nonceSize:], kekAAD(subject))
		if err != nil {
			return dataKey{}, fmt.Errorf("unwrap with the master key: %w", err)
		}
		return newDataKey(key)
	}
	return dataKey{}, fmt.Errorf("stored key has unknown format %d", stored[0])
}
