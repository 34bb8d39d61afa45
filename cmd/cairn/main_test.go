package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// lumberjack v2.2.1 starts one mill goroutine per file logger that
		// never exits (natefinch/lumberjack#56); the demo opens two.
		goleak.IgnoreTopFunction("gopkg.in/natefinch/lumberjack%2ev2.(*Logger).millRun"),
	)
}

func TestRun(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		args       []string
		code       int
		wantStdout string
		wantStderr string
	}{
		{args: nil, code: 2, wantStderr: "Usage:"},
		{args: []string{"version"}, code: 0, wantStdout: "cairn "},
		{args: []string{"help"}, code: 0, wantStdout: "cairn demo"},
		{args: []string{"bogus"}, code: 2, wantStderr: `unknown command "bogus"`},
		{args: []string{"demo", "--rps", "-1"}, code: 2, wantStderr: "--rps -1 is negative"},
		{args: []string{"demo", "--duration", "-1s"}, code: 2, wantStderr: "--duration -1s is negative"},
		{args: []string{"demo", "extra"}, code: 2, wantStderr: `unexpected argument "extra"`},
		{args: []string{"demo", "--nope"}, code: 2, wantStderr: "flag provided but not defined: -nope"},
		{args: []string{"demo", "-h"}, code: 0, wantStderr: "-console-addr"},
		{args: []string{"console", "-h"}, code: 0, wantStderr: "-data dir"},
		{
			args:       []string{"console", "--data", notADir, "--ui-addr", "127.0.0.1:0", "--otlp-http-addr", "127.0.0.1:0", "--otlp-grpc-addr", ""},
			code:       1,
			wantStderr: "cairn console: console: data directory: mkdir " + notADir,
		},
		{
			args:       []string{"demo", "--console-addr", taken.Addr().String()},
			code:       1,
			wantStderr: "console UI cannot listen on " + taken.Addr().String() + " (choose another with --console-addr)",
		},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), time.Now(), tt.args, &stdout, &stderr)
			if code != tt.code {
				t.Errorf("run(%q) = %d, want %d; stderr:\n%s", tt.args, code, tt.code, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("run(%q) stdout = %q, want it to contain %q", tt.args, stdout.String(), tt.wantStdout)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("run(%q) stderr = %q, want it to contain %q", tt.args, stderr.String(), tt.wantStderr)
			}
		})
	}
}

// freeShopAddrs puts the shop's services on free ports.
var freeShopAddrs = []string{"--order-grpc-addr", "127.0.0.1:0", "--inventory-addr", "127.0.0.1:0",
	"--payment-addr", "127.0.0.1:0", "--shipping-addr", "127.0.0.1:0", "--provider-addr", "127.0.0.1:0"}

// TestRunDemo runs the demo command briefly on free ports with load and
// checks that it stops by itself and reports what it measured.
func TestRunDemo(t *testing.T) {
	var stdout, stderr bytes.Buffer
	args := []string{"demo", "--duration", "1s", "--rps", "20",
		"--console-addr", "127.0.0.1:0", "--otlp-addr", "127.0.0.1:0",
		"--order-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}
	args = append(args, freeShopAddrs...)
	if code := run(context.Background(), time.Now(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("run(%q) = %d; stderr:\n%s", args, code, stderr.String())
	}
	for _, want := range []string{"console        http://127.0.0.1:", "cairn demo stopped", "0 failed", "first request  served"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout.String())
		}
	}
}
