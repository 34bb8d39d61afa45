package main

import (
	"os"
	"slices"
	"testing"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"cairn", []string{"cairn"}},
		{" cairn, otelcol ,,jaeger", []string{"cairn", "otelcol", "jaeger"}},
	}
	for _, tt := range tests {
		if got := split(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("split(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestProcReaders(t *testing.T) {
	hwm, rss := memKiB(os.Getpid())
	if hwm <= 0 || rss <= 0 || rss > hwm {
		t.Errorf("memKiB(self) = %d, %d; want 0 < rss <= hwm", hwm, rss)
	}
	// Burn CPU until the process has used at least one clock tick.
	for x := 0; cpuTime(os.Getpid()) == 0; x++ {
		_ = slices.Repeat([]int{x}, 1000)
	}
	if hwm, rss := memKiB(-1); hwm != 0 || rss != 0 {
		t.Errorf("memKiB(-1) = %d, %d; want 0, 0", hwm, rss)
	}
	if got := cpuTime(-1); got != 0 {
		t.Errorf("cpuTime(-1) = %s, want 0", got)
	}
}
