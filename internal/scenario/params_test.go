package scenario

import (
	"strings"
	"testing"
	"time"
)

func TestParseParams(t *testing.T) {
	s := testScenario()
	for _, tc := range []struct {
		name    string
		values  map[string]string
		rate    float64
		within  time.Duration
		wantErr []string // substrings of the error; none means success
	}{
		{name: "defaults", values: nil, rate: 0.5, within: 3 * time.Second},
		{name: "empty means default", values: map[string]string{"rate": "", "within": ""}, rate: 0.5, within: 3 * time.Second},
		{name: "overrides", values: map[string]string{"rate": "1", "within": "1m30s"}, rate: 1, within: 90 * time.Second},
		{name: "rate above 1", values: map[string]string{"rate": "1.5"}, wantErr: []string{`param rate = "1.5": want a number in [0, 1]`}},
		{name: "not a number", values: map[string]string{"rate": "half"}, wantErr: []string{`param rate = "half": want a non-negative number`}},
		{name: "NaN", values: map[string]string{"rate": "NaN"}, wantErr: []string{`param rate = "NaN"`}},
		{name: "negative duration", values: map[string]string{"within": "-1s"}, wantErr: []string{`param within = "-1s": want a non-negative duration`}},
		{name: "duration without unit", values: map[string]string{"within": "10"}, wantErr: []string{`param within = "10"`}},
		{name: "unknown", values: map[string]string{"rte": "1"}, wantErr: []string{`test has no param "rte"; it has [rate within]`}},
		{name: "every error", values: map[string]string{"rate": "2", "within": "x", "zz": "1"},
			wantErr: []string{"param rate", "param within", `no param "zz"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := s.ParseParams(tc.values)
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("ParseParams(%v) = %v, want an error", tc.values, p)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("ParseParams(%v) error = %q, want it to contain %q", tc.values, err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseParams(%v): %v", tc.values, err)
			}
			if got := p.Float("rate"); got != tc.rate {
				t.Errorf("Float(rate) = %v, want %v", got, tc.rate)
			}
			if got := p.Duration("within"); got != tc.within {
				t.Errorf("Duration(within) = %v, want %v", got, tc.within)
			}
		})
	}
}

func TestParamsString(t *testing.T) {
	p, err := testScenario().ParseParams(map[string]string{"within": "10s"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := p.String(), "rate=0.5 within=10s"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	b, err := p.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"rate":"0.5","within":"10s"}`; got != want {
		t.Errorf("MarshalJSON() = %s, want %s", got, want)
	}
}

func TestParamsAccessorsPanicOnDefects(t *testing.T) {
	p, err := testScenario().ParseParams(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		call func()
		want string
	}{
		{"unknown", func() { p.Float("nope") }, "declares no param nope"},
		{"float as duration", func() { p.Duration("rate") }, "param rate is a rate, not a duration"},
		{"duration as float", func() { p.Float("within") }, "param within is a duration, not a float"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := protect(func() error { tc.call(); return nil })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("panic = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	s := &Scenario{
		Name: "bad",
		Params: []Param{
			{Name: "duration", Default: "1"},
			{Name: "x", Type: Rate, Default: "2"},
			{Name: "x", Default: "1"},
		},
		Timeline: []Event{{At: 1, Name: "e"}, {At: 0.5, Name: "e"}},
		Assertions: []Assertion{
			{Name: "a", Kind: Kind(7), Within: -1, After: "f", WithinParam: "x"},
		},
	}
	err := s.Validate()
	if err == nil {
		t.Fatal("Validate() = nil for a broken scenario")
	}
	for _, want := range []string{
		"no summary", "rps 0: must be positive", "duration 0s: must be positive",
		"param duration: the name is reserved", `param x = "2"`, "param x: declared twice",
		`event "e": at 1: must be in [0, 1)`, `event "e": no Do`, `event "e": named twice`,
		`assertion "a": unknown kind 7`, `assertion "a": no Check`, `within -1ns: must not be negative`,
		`within param "x": no such duration param`, `after "f": no such event`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %q\nwant it to contain %q", err, want)
		}
	}
}

func TestParseAssignments(t *testing.T) {
	got, err := ParseAssignments([]string{"error_rate=0.5", " open_within = 5s", "x=", "error_rate=1"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"error_rate": "1", "open_within": "5s", "x": ""}
	if len(got) != len(want) {
		t.Errorf("ParseAssignments = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("ParseAssignments[%q] = %q, want %q", k, got[k], v)
		}
	}
	for _, bad := range []string{"error_rate", "=1"} {
		if _, err := ParseAssignments([]string{bad}); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("ParseAssignments(%q) error = %v, want one naming it", bad, err)
		}
	}
}
