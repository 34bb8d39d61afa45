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
	cfg.RPS = 100
	cfg.Duration = 500 * time.Millisecond
	var out strings.Builder
	if err := run(context.Background(), cfg, &out); err != nil {
		t.Fatalf("run: %v", err)
	}
	for _, row := range []string{"| none |", "| fixed |", "| adaptive |", "| adaptive+budget 2% |"} {
		if !strings.Contains(out.String(), row) {
			t.Errorf("output lacks the row %q:\n%s", row, out.String())
		}
	}
}
