package jsonduration

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestMarshal(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, `"0s"`},
		{250 * time.Millisecond, `"250ms"`},
		{90 * time.Second, `"1m30s"`},
		{-time.Second, `"-1s"`},
		{1, `"1ns"`},
		{math.MaxInt64, `"2562047h47m16.854775807s"`},
		{math.MinInt64, `"-2562047h47m16.854775808s"`},
	} {
		got, err := json.Marshal(Duration(tc.d))
		if err != nil || string(got) != tc.want {
			t.Errorf("Marshal(%v) = %s, %v; want %s", tc.d, got, err, tc.want)
		}
	}
}

func TestUnmarshal(t *testing.T) {
	const unchanged = time.Duration(7) // the value decoding starts from
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  string // substring of the error; "" for no error
	}{
		{`"250ms"`, 250 * time.Millisecond, ""},
		{`"1m30s"`, 90 * time.Second, ""},
		{`"-1.5s"`, -1500 * time.Millisecond, ""},
		{`"0"`, 0, ""},
		{`"2562047h47m16.854775807s"`, math.MaxInt64, ""},
		{`"-2562047h47m16.854775808s"`, math.MinInt64, ""},
		{`1000000`, time.Millisecond, ""},
		{`0`, 0, ""},
		{`-5`, -5, ""},
		{`9223372036854775807`, math.MaxInt64, ""},
		{`null`, unchanged, ""},
		{`"soon"`, unchanged, `invalid duration "soon": time: invalid duration "soon"`},
		{`"5"`, unchanged, `invalid duration "5": time: missing unit in duration "5"`},
		{`"5x"`, unchanged, `invalid duration "5x": time: unknown unit "x" in duration "5x"`},
		{`""`, unchanged, `invalid duration "": time: invalid duration ""`},
		{`" 1s"`, unchanged, `invalid duration " 1s"`},
		{`"9999999h"`, unchanged, `invalid duration "9999999h"`},
		{`1.5`, unchanged, `invalid duration 1.5: want a string such as "250ms" or nanoseconds`},
		{`1e9`, unchanged, `invalid duration 1e9: want`},
		{`9223372036854775808`, unchanged, `invalid duration 9223372036854775808: want`},
		{`true`, unchanged, `invalid duration true: want`},
		{`[1]`, unchanged, `invalid duration [1]: want`},
		{`{"s":1}`, unchanged, `invalid duration {"s":1}: want`},
	} {
		d := Duration(unchanged)
		err := d.UnmarshalJSON([]byte(tc.in))
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("UnmarshalJSON(%s) error: %v", tc.in, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("UnmarshalJSON(%s) error = %v, want one containing %q", tc.in, err, tc.err)
		case tc.err != "" && !errors.As(err, new(*Error)):
			t.Errorf("UnmarshalJSON(%s) error = %T, want *Error", tc.in, err)
		}
		if time.Duration(d) != tc.want {
			t.Errorf("UnmarshalJSON(%s) = %v, want %v", tc.in, time.Duration(d), tc.want)
		}
	}
}

// TestUnmarshalField checks decoding through json.Unmarshal into the
// pointer fields the config types use: null leaves the field alone and the
// error is the *Error itself, ready for WithPrefix.
func TestUnmarshalField(t *testing.T) {
	d := 3 * time.Second
	v := struct {
		D *Duration `json:"d"`
	}{(*Duration)(&d)}
	if err := json.Unmarshal([]byte(`{"d":"2s"}`), &v); err != nil || d != 2*time.Second {
		t.Fatalf("Unmarshal 2s: %v, %v", d, err)
	}
	if err := json.Unmarshal([]byte(`{"d":null}`), &v); err != nil || d != 2*time.Second {
		t.Fatalf("Unmarshal null: %v, %v", d, err)
	}
	v.D = (*Duration)(&d)
	err := json.Unmarshal([]byte(`{"d":"soon"}`), &v)
	if _, ok := err.(*Error); !ok {
		t.Fatalf("Unmarshal soon: error %T %v, want *Error", err, err)
	}
	const want = `cfg: invalid duration "soon": time: invalid duration "soon"`
	if got := WithPrefix("cfg", err); got.Error() != want {
		t.Errorf("WithPrefix = %q, want %q", got, want)
	}
	if err.Error() != strings.TrimPrefix(want, "cfg: ") {
		t.Errorf("WithPrefix modified its argument: %q", err)
	}
}

func TestWithPrefix(t *testing.T) {
	if WithPrefix("x", nil) != nil {
		t.Error("WithPrefix(nil) != nil")
	}
	other := errors.New("other")
	if WithPrefix("x", other) != other {
		t.Error("WithPrefix changed a foreign error")
	}
	inner := WithPrefix("inner", &Error{Value: "true"})
	if got := WithPrefix("outer", inner); got != inner {
		t.Errorf("WithPrefix re-prefixed an error: %v", got)
	}
	const want = `inner: invalid duration true: want a string such as "250ms" or nanoseconds`
	if inner.Error() != want {
		t.Errorf("Error() = %q, want %q", inner, want)
	}
	parseErr := errors.New("parse")
	if e := (&Error{Value: `"x"`, Err: parseErr}); !errors.Is(e, parseErr) {
		t.Error("Error does not unwrap to its Err")
	}
}

func FuzzUnmarshal(f *testing.F) {
	for _, s := range []string{`"250ms"`, `"-1.5h"`, `1000`, `-1`, `null`, `"soon"`, `1.5`, `true`, `""`, `"1µs"`, `9223372036854775807`, `"-2562047h47m16.854775808s"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var d Duration
		if err := d.UnmarshalJSON(data); err != nil {
			if err.Error() == "" {
				t.Fatalf("UnmarshalJSON(%q): empty error message", data)
			}
			return
		}
		out, err := json.Marshal(d)
		if err != nil {
			t.Fatalf("Marshal(%v): %v", time.Duration(d), err)
		}
		var back Duration
		if err := json.Unmarshal(out, &back); err != nil || back != d {
			t.Fatalf("round trip of %q: %s decodes to %v, %v; want %v", data, out, time.Duration(back), err, time.Duration(d))
		}
	})
}
