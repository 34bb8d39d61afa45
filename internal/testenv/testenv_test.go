package testenv

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeTB records what Require decided instead of stopping the test.
type fakeTB struct {
	skipped, failed string
}

func (f *fakeTB) Helper()                           {}
func (f *fakeTB) Skipf(format string, args ...any)  { f.skipped = fmt.Sprintf(format, args...) }
func (f *fakeTB) Fatalf(format string, args ...any) { f.failed = fmt.Sprintf(format, args...) }

// closedAddr returns a loopback address on which nothing listens.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestRequire(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	up, down := ln.Addr().String(), closedAddr(t)
	svc := Service{Name: "Thing", Env: "CAIRN_TEST_THING", Start: "thing --serve"}

	tests := []struct {
		name, ci, addr       string
		wantAddr             string
		wantSkip, wantFailed string
	}{
		{name: "up", ci: "", addr: up, wantAddr: up},
		{name: "up as URL", ci: "true", addr: "thing://" + up + "/db", wantAddr: "thing://" + up + "/db"},
		{name: "down skips", ci: "", addr: down, wantSkip: "Thing does not answer at " + down},
		{name: "down skips when CI is false", ci: "false", addr: down, wantSkip: "start it with `thing --serve`"},
		{name: "down fails under CI", ci: "true", addr: down, wantFailed: "required under CI=true"},
		{name: "bad address fails", ci: "", addr: "no-port", wantFailed: `address "no-port"`},
		{name: "URL without port fails", ci: "", addr: "thing://localhost/db", wantFailed: "missing port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("CI", tt.ci)
			t.Setenv(svc.Env, tt.addr)
			var f fakeTB
			got := Require(&f, svc)
			if got != tt.wantAddr {
				t.Errorf("Require = %q, want %q", got, tt.wantAddr)
			}
			if (tt.wantSkip == "") != (f.skipped == "") || !strings.Contains(f.skipped, tt.wantSkip) {
				t.Errorf("skip message = %q, want one containing %q", f.skipped, tt.wantSkip)
			}
			if (tt.wantFailed == "") != (f.failed == "") || !strings.Contains(f.failed, tt.wantFailed) {
				t.Errorf("failure message = %q, want one containing %q", f.failed, tt.wantFailed)
			}
		})
	}
}

// TestMachineServices checks the services CI promises (.ci/run starts them):
// under CI=true each must answer.
func TestMachineServices(t *testing.T) {
	for _, s := range []Service{Postgres, Redis, NATS} {
		t.Run(s.Name, func(t *testing.T) {
			Require(t, s)
		})
	}
}
