package shred

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// errDuplicateKey reports an object holding a key of a path twice: JSON
// decoders disagree on which one wins, so the store refuses to guess which
// one to encrypt.
var errDuplicateKey = errors.New("appears twice in its object")

// lookup returns the span [start, end) of the value at path (object keys,
// outermost first) in data, which must be valid JSON, and whether it is
// there. A path through a value that is not an object is not there. It
// returns errDuplicateKey if an object on the path holds the key twice.
func lookup(data []byte, path []string) (start, end int, found bool, err error) {
	i := skipSpace(data, 0)
	for depth, key := range path {
		if i >= len(data) || data[i] != '{' {
			return 0, 0, false, nil
		}
		vs, ve, ok := -1, -1, false
		i = skipSpace(data, i+1)
		for i < len(data) && data[i] != '}' {
			ks := i
			ke := skipString(data, i)
			i = skipSpace(data, ke)
			i = skipSpace(data, i+1) // ':'
			s, e := i, skipValue(data, i)
			if keyEquals(data[ks:ke], key) {
				if ok {
					return 0, 0, false, fmt.Errorf("key %q %w", strings.Join(path[:depth+1], "."), errDuplicateKey)
				}
				vs, ve, ok = s, e, true
			}
			i = skipSpace(data, e)
			if i < len(data) && data[i] == ',' {
				i = skipSpace(data, i+1)
			}
		}
		if !ok {
			return 0, 0, false, nil
		}
		if depth == len(path)-1 {
			return vs, ve, true, nil
		}
		i = vs
	}
	return 0, 0, false, nil
}

// keyEquals reports whether quoted, a JSON string with its quotes, is key.
func keyEquals(quoted []byte, key string) bool {
	if len(quoted) < 2 {
		return false
	}
	raw := quoted[1 : len(quoted)-1]
	if !strings.ContainsRune(string(raw), '\\') {
		return string(raw) == key
	}
	var s string
	return json.Unmarshal(quoted, &s) == nil && s == key
}

func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index after the JSON string starting at i.
func skipString(data []byte, i int) int {
	for i++; i < len(data); i++ {
		switch data[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(data)
}

// skipValue returns the index after the JSON value starting at i.
func skipValue(data []byte, i int) int {
	if i >= len(data) {
		return i
	}
	switch data[i] {
	case '"':
		return skipString(data, i)
	case '{', '[':
		depth := 0
		for i < len(data) {
			switch data[i] {
			case '"':
				i = skipString(data, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	for i < len(data) {
		switch data[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return i
}

// splice returns data with [start, end) replaced by value, in a new slice.
func splice(data []byte, start, end int, value []byte) []byte {
	out := make([]byte, 0, len(data)-(end-start)+len(value))
	out = append(out, data[:start]...)
	out = append(out, value...)
	return append(out, data[end:]...)
}
