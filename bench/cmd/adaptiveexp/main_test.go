package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestRunSmoke runs every mode briefly and checks that the table has a row
// for each.
func TestRunSmoke(t *testing.T) {
	cfg := defaultConfig()
	cfg.LowFor, cfg.HighFor, cfg.AfterFor = 200*time.Millisecond, 300*time.Millisecond, 200*time.Millisecond
	cfg.Timeout = 200 * time.Millisecond
	var out strings.Builder
	if err := run(context.Background(), cfg, &out); err != nil {
		t.Fatalf("run: %v", err)
	}
	for _, row := range []string{"| none |", "| fixed 20 |", "| aimd |", "| vegas |", "| gradient2 |"} {
		if !strings.Contains(out.String(), row) {
			t.Errorf("output lacks the row %q:\n%s", row, out.String())
		}
	}
}
