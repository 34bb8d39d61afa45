package shed

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSamplerLinux(t *testing.T) {
	if _, err := os.Stat(procStat); err != nil {
		t.Skip("no /proc/stat:", err)
	}
	s := newSampler(10 * time.Millisecond)
	defer s.close()
	deadline := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(deadline) {
		// Burn a little CPU so the deltas move.
		x := 0
		for i := range 1_000_000 {
			x += i
		}
		_ = x
		u := s.Usage()
		if u < 0 || u > 1 {
			t.Fatalf("Usage = %v, want within [0, 1]", u)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, ok := readCPU(); !ok {
		t.Error("readCPU failed although /proc/stat exists")
	}
}

func TestShedderDefaultCPUClose(t *testing.T) {
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if s.sampler == nil {
		t.Fatal("no sampler started")
	}
	if u := s.CPUUsage(); u < 0 || u > 1 {
		t.Errorf("CPUUsage = %v", u)
	}
	s.Close() // goleak in TestMain checks the goroutine exited
}

func TestReadProcStat(t *testing.T) {
	defer func(p string) { procStat = p }(procStat)
	dir := t.TempDir()
	procStat = filepath.Join(dir, "stat")
	write := func(s string) {
		if err := os.WriteFile(procStat, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2 3 4\n")
	a, ok := readProcStat()
	if !ok {
		t.Fatal("readProcStat failed")
	}
	write("cpu  200 0 200 900 100 0 0 0 0 0\n")
	b, _ := readProcStat()
	if got := usageBetween(a, b); got != 0.5 {
		t.Errorf("usage = %v, want 0.5 (200 busy of 400)", got)
	}
	write("intr 1 2 3\n")
	if _, ok := readProcStat(); ok {
		t.Error("readProcStat accepted a file without a cpu line")
	}
	if got := usageBetween(b, a); got != 0 {
		t.Errorf("usage backwards = %v, want 0", got)
	}
}

func TestReadCgroup(t *testing.T) {
	defer func(a, b string) { cgroupCPUStat, cgroupCPUMax = a, b }(cgroupCPUStat, cgroupCPUMax)
	dir := t.TempDir()
	cgroupCPUStat = filepath.Join(dir, "cpu.stat")
	cgroupCPUMax = filepath.Join(dir, "cpu.max")
	if _, ok := readCgroup(); ok {
		t.Fatal("readCgroup succeeded without files")
	}
	os.WriteFile(cgroupCPUStat, []byte("usage_usec 5000000\nuser_usec 1\n"), 0o600)
	os.WriteFile(cgroupCPUMax, []byte("50000 100000\n"), 0o600)
	s, ok := readCgroup()
	if !ok || s.busy != 5 || s.kind != 1 {
		t.Errorf("readCgroup = %+v, %v", s, ok)
	}
	os.WriteFile(cgroupCPUStat, []byte("user_usec 1\n"), 0o600)
	if _, ok := readCgroup(); ok {
		t.Error("readCgroup accepted a file without usage_usec")
	}
}
