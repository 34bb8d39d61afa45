package scenario

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}

// goldenRun runs a scenario whose results cover every state and kind.
func goldenRun(t *testing.T) Report {
	var rep Report
	synctest.Test(t, func(t *testing.T) {
		env := newFakeEnv()
		env.counter = secondsOfFault()
		s := testScenario(
			Assertion{Name: "counter grows", Kind: Eventually, After: "fault set", WithinParam: "within",
				Check: grew(Counter{Metric: "c"}, atLeastOne, func(n float64) string { return times(n, "retry") + " seen" })},
			Assertion{Name: "counter grows a lot", Kind: Eventually, Within: 3 * time.Second,
				Check: grew(Counter{Metric: "c"}, func(Params) float64 { return 50 }, func(n float64) string { return times(n, "retry") + " seen" })},
			Assertion{Name: "never double charged", Kind: Always, Check: func(context.Context, Probe, Window) (Observation, error) {
				return Observation{OK: true, Text: "0 orders charged twice"}, nil
			}},
			Assertion{Name: "no saga unfinished", Kind: AtEnd, Check: noSagaUnfinished},
			Assertion{Name: "console reachable", Kind: AtEnd, Check: func(context.Context, Probe, Window) (Observation, error) {
				return Observation{}, errors.New("console GET /api/metrics: connection refused\nretry later")
			}},
		)
		p, err := s.ParseParams(map[string]string{"rate": "0.25"})
		if err != nil {
			t.Fatal(err)
		}
		rep, err = Run(t.Context(), env, s, p, Options{Drain: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
	})
	return rep
}

func TestReportWriteText(t *testing.T) {
	rep := goldenRun(t)
	var b bytes.Buffer
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "report.txt", b.Bytes())
}

func TestReportJSON(t *testing.T) {
	rep := goldenRun(t)
	rep.Started = time.Date(2026, 12, 7, 18, 0, 0, 0, time.UTC)
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "report.json", append(b, '\n'))
}
