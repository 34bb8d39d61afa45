package shed

import (
	"bufio"
	"bytes"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// CPU is a CPU usage signal.
type CPU interface {
	// Usage returns the recent CPU usage, from 0 (idle) to 1 (every
	// available CPU busy). It must be safe for concurrent use and cheap:
	// [Shedder.Allow] calls it on every request.
	Usage() float64
}

// sampleInterval is how often the default CPU sampler reads usage.
const sampleInterval = 250 * time.Millisecond

// Paths read by the default sampler; variables so tests can point them
// elsewhere.
var (
	cgroupCPUStat = "/sys/fs/cgroup/cpu.stat"
	cgroupCPUMax  = "/sys/fs/cgroup/cpu.max"
	procStat      = "/proc/stat"
)

// sampler is the default CPU: a goroutine that reads cumulative CPU
// counters every interval and stores the usage between the last two
// reads. On Linux with cgroup v2 it reads the cgroup's cpu.stat
// usage_usec, relative to the cgroup's cpu.max quota (or the number of
// CPUs); otherwise the machine-wide busy share from /proc/stat. Where
// neither can be read, usage stays 0, so CPU never signals overload.
type sampler struct {
	usage atomic.Uint64 // float64 bits
	stop  chan struct{}
	wg    sync.WaitGroup
}

func newSampler(interval time.Duration) *sampler {
	s := &sampler{stop: make(chan struct{})}
	s.wg.Add(1)
	go s.run(interval)
	return s
}

func (s *sampler) Usage() float64 { return math.Float64frombits(s.usage.Load()) }

func (s *sampler) close() {
	close(s.stop)
	s.wg.Wait()
}

func (s *sampler) run(interval time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	prev, ok := readCPU()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		cur, okCur := readCPU()
		if ok && okCur && cur.kind == prev.kind {
			s.usage.Store(math.Float64bits(usageBetween(prev, cur)))
		}
		prev, ok = cur, okCur
	}
}

// cpuSample is one read of cumulative CPU counters.
type cpuSample struct {
	kind  int     // 1: cgroup, 2: /proc/stat
	busy  float64 // cgroup: CPU seconds used; proc: busy jiffies
	total float64 // cgroup: wall seconds × CPUs available; proc: all jiffies
}

// usageBetween returns the busy share between two samples, in [0, 1].
func usageBetween(prev, cur cpuSample) float64 {
	dt := cur.total - prev.total
	if dt <= 0 {
		return 0
	}
	return min(1, max(0, (cur.busy-prev.busy)/dt))
}

func readCPU() (cpuSample, bool) {
	if s, ok := readCgroup(); ok {
		return s, true
	}
	return readProcStat()
}

// readCgroup reads cgroup v2 usage_usec, scaled against the wall time
// multiplied by the CPUs the cgroup may use.
func readCgroup() (cpuSample, bool) {
	data, err := os.ReadFile(cgroupCPUStat)
	if err != nil {
		return cpuSample{}, false
	}
	var usec float64
	found := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "usage_usec" {
			usec, err = strconv.ParseFloat(f[1], 64)
			found = err == nil
		}
	}
	if !found {
		return cpuSample{}, false
	}
	cpus := float64(runtime.NumCPU())
	if data, err := os.ReadFile(cgroupCPUMax); err == nil {
		f := strings.Fields(string(data))
		if len(f) == 2 && f[0] != "max" {
			quota, err1 := strconv.ParseFloat(f[0], 64)
			period, err2 := strconv.ParseFloat(f[1], 64)
			if err1 == nil && err2 == nil && quota > 0 && period > 0 {
				cpus = min(cpus, quota/period)
			}
		}
	}
	wall := float64(time.Now().UnixNano()) / 1e9
	return cpuSample{kind: 1, busy: usec / 1e6, total: wall * cpus}, true
}

// readProcStat reads the aggregate "cpu" line of /proc/stat: busy is
// every field but idle and iowait.
func readProcStat() (cpuSample, bool) {
	data, err := os.ReadFile(procStat)
	if err != nil {
		return cpuSample{}, false
	}
	line, _, _ := bytes.Cut(data, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return cpuSample{}, false
	}
	var total, idle float64
	// Fields: user nice system idle iowait irq softirq steal guest
	// guest_nice; guest time is already counted in user and nice.
	for i, v := range f[1:] {
		if i >= 8 {
			break
		}
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return cpuSample{}, false
		}
		total += n
		if i == 3 || i == 4 {
			idle += n
		}
	}
	return cpuSample{kind: 2, busy: total - idle, total: total}, true
}
