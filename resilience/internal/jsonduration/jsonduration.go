// Package jsonduration provides [Duration], a [time.Duration] that encodes
// in JSON as a string such as "250ms" and decodes from such a string or
// from a number of nanoseconds. The config types of the resilience packages
// use it for their duration fields, so that every package accepts and
// writes durations the same way and reports a bad one the same way.
//
// A bad value decodes to an [*Error]. Its message names the value; a
// package that wants its own name in front of the message, as in
// "retry: invalid duration ...", passes the error from json.Unmarshal
// through [WithPrefix].
package jsonduration

import (
	"encoding/json"
	"time"
)

// Duration is a time.Duration in JSON: it encodes as a string in the form
// of [time.Duration.String], such as "1m30s", and decodes from a string
// that [time.ParseDuration] accepts or from a JSON integer, taken as a
// number of nanoseconds. Negative durations are allowed both ways. A
// number with a fraction or an exponent, a number out of the range of
// int64, and any other kind of value are errors. Decoding null leaves the
// Duration unchanged, as json.Unmarshal does for a plain time.Duration.
type Duration time.Duration

// MarshalJSON encodes d as a string such as "250ms".
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON decodes d from a string such as "250ms" or from an integer
// number of nanoseconds. On a bad value it returns an [*Error] and leaves d
// unchanged. null is a no-op.
func (d *Duration) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		var n int64
		if err := json.Unmarshal(data, &n); err != nil {
			return &Error{Value: string(data)}
		}
		*d = Duration(n)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return &Error{Value: string(data), Err: err}
	}
	*d = Duration(v)
	return nil
}

// Error is the error [Duration.UnmarshalJSON] returns for a value that is
// not a duration.
type Error struct {
	// Prefix, when not empty, starts the message followed by ": ";
	// [WithPrefix] sets it to the name of the package decoding the value.
	Prefix string
	// Value is the JSON text of the bad value, such as `"soon"` or `true`.
	Value string
	// Err is the error from time.ParseDuration when Value is a string,
	// and nil when Value is neither a string nor an integer.
	Err error
}

// Error returns a message that names the bad value, such as
//
//	retry: invalid duration "soon": time: invalid duration "soon"
//	retry: invalid duration true: want a string such as "250ms" or nanoseconds
func (e *Error) Error() string {
	msg := "invalid duration " + e.Value + ": "
	if e.Err != nil {
		msg += e.Err.Error()
	} else {
		msg += `want a string such as "250ms" or nanoseconds`
	}
	if e.Prefix != "" {
		msg = e.Prefix + ": " + msg
	}
	return msg
}

// Unwrap returns e.Err.
func (e *Error) Unwrap() error { return e.Err }

// WithPrefix returns err with prefix in front of its message if err is an
// [*Error] without a prefix, as json.Unmarshal returns the error of a
// Duration field, and err unchanged otherwise: an error already prefixed,
// by the package of a nested config, keeps the prefix it has. It does not
// modify err.
func WithPrefix(prefix string, err error) error {
	e, ok := err.(*Error)
	if !ok || e.Prefix != "" {
		return err
	}
	p := *e
	p.Prefix = prefix
	return &p
}
