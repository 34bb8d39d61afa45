package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRunServe(t *testing.T) {
	t.Setenv("OTEL_SDK_DISABLED", "true")
	dir := t.TempDir()
	tests := []struct {
		args       []string
		code       int
		wantStderr string
	}{
		{args: []string{"serve"}, code: 2, wantStderr: "name a service (order, inventory, payment or shipping)"},
		{args: []string{"serve", "--store", dir}, code: 2, wantStderr: "name a service"},
		{args: []string{"serve", "billing"}, code: 2, wantStderr: `unknown service "billing"`},
		{args: []string{"serve", "order", "-h"}, code: 0, wantStderr: "-grpc-addr address"},
		{args: []string{"serve", "order", "-h"}, code: 0, wantStderr: "-inventory target"},
		{args: []string{"serve", "inventory", "-h"}, code: 0, wantStderr: "-seed-stock int"},
		{args: []string{"serve", "inventory", "-h"}, code: 0, wantStderr: "(default \"127.0.0.1:9091\")"},
		{args: []string{"serve", "payment", "-h"}, code: 0, wantStderr: "-simulate-provider address"},
		{args: []string{"serve", "payment", "-h"}, code: 0, wantStderr: "SIMULATED"},
		{args: []string{"serve", "shipping", "-h"}, code: 0, wantStderr: "-resilience file"},
		{args: []string{"serve", "shipping", "--provider", "http://x"}, code: 2, wantStderr: "flag provided but not defined: -provider"},
		{args: []string{"serve", "inventory", "extra"}, code: 2, wantStderr: `cairn serve inventory: unexpected argument "extra"`},
		{args: []string{"serve", "inventory"}, code: 2, wantStderr: "--store is empty"},
		{args: []string{"serve", "inventory", "--store", dir, "--seed-stock", "-5"}, code: 2, wantStderr: "--seed-stock -5 is negative"},
		{args: []string{"serve", "payment", "--store", dir}, code: 2, wantStderr: "cairn serve payment: --provider is empty"},
		{args: []string{"serve", "payment", "--store", dir, "--provider", "localhost:1"}, code: 2, wantStderr: "want an http:// or https:// URL"},
		{args: []string{"serve", "order", "--store", dir, "--payment", "127.0.0.1:9092"}, code: 2, wantStderr: "--inventory, --shipping missing"},
		{
			args:       []string{"serve", "order", "--store", dir, "--inventory", "a:1", "--payment", "b:2", "--shipping", "c:3", "--resilience", filepath.Join(dir, "none.yaml")},
			code:       2,
			wantStderr: "--resilience",
		},
		{args: []string{"serve", "order", "--store", "mysql://x"}, code: 2, wantStderr: "unknown scheme"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), time.Now(), tt.args, &stdout, &stderr)
			if code != tt.code {
				t.Errorf("run(%q) = %d, want %d; stderr:\n%s", tt.args, code, tt.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("run(%q) stderr = %q, want it to contain %q", tt.args, stderr.String(), tt.wantStderr)
			}
		})
	}
}

// cancelOnWrite is a writer that cancels a context when it is first
// written to: a command's banner, printed once it serves, stops it.
type cancelOnWrite struct {
	bytes.Buffer
	cancel context.CancelFunc
}

func (w *cancelOnWrite) Write(p []byte) (int, error) {
	w.cancel()
	return w.Buffer.Write(p)
}

// TestRunServeStops runs each service on a SQLite directory until it
// prints its banner, then cancels it: it stops cleanly with exit code 0.
func TestRunServeStops(t *testing.T) {
	t.Setenv("OTEL_SDK_DISABLED", "true")
	dir := t.TempDir()
	for _, args := range [][]string{
		{"serve", "inventory", "--seed-stock", "3"},
		{"serve", "payment", "--simulate-provider", "127.0.0.1:0"},
		{"serve", "shipping"},
		{"serve", "order", "--grpc-addr", "127.0.0.1:0"},
	} {
		args = append(args, "--store", dir, "--addr", "127.0.0.1:0", "--admin-addr", "")
		ctx, cancel := context.WithCancel(t.Context())
		stdout := &cancelOnWrite{cancel: cancel}
		var stderr bytes.Buffer
		if code := run(ctx, time.Now(), args, stdout, &stderr); code != 0 {
			t.Errorf("run(%q) = %d, want 0; stderr:\n%s", args, code, stderr.String())
		}
		cancel()
		if want := "cairn serve " + args[1]; !strings.Contains(stdout.String(), want) {
			t.Errorf("run(%q) stdout = %q, want it to contain %q", args, stdout.String(), want)
		}
	}
}
