package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cairnhq/cairn/bench/internal/otlpload"
)

// config holds the command's flags.
type config struct {
	Peers, Protocols string
	Count            int
	Duration, Warmup time.Duration
	Senders          int
	Overload         bool
	OverloadSenders  int
	HonorRetryAfter  bool
	Cairn            string
	Otelcol          string
	OtelcolConfig    string
	Jaeger           string
	JaegerConfig     string
	LogDir           string
}

// Addresses every peer listens on.
const (
	grpcAddr = "127.0.0.1:4317"
	httpAddr = "127.0.0.1:4318"
)

// peer is a server under test.
type peer struct {
	name string
	args []string // command line; args[0] is the binary
	env  []string // added to the environment
	// ui lists URLs that a person's browser would load during the load, polled
	// in overload runs; empty for a peer without a UI.
	ui []string
	// ports lists the addresses the peer listens on, which must be free
	// before it starts.
	ports []string
	// stats, if set, is fetched after the load and logged.
	stats string
}

// peers returns the peers of cfg whose binaries exist, in cfg's order.
func peers(cfg config) ([]peer, error) {
	var out []peer
	for _, name := range split(cfg.Peers) {
		var p peer
		switch name {
		case "cairn":
			p = peer{
				args: []string{cfg.Cairn, "console", "--ui-addr", "127.0.0.1:7070",
					"--otlp-http-addr", httpAddr, "--otlp-grpc-addr", grpcAddr},
				ui:    []string{"http://127.0.0.1:7070/api/traces?limit=20", "http://127.0.0.1:7070/"},
				ports: []string{grpcAddr, httpAddr, "127.0.0.1:7070"},
				stats: "http://127.0.0.1:7070/api/stats",
			}
		case "otelcol":
			p = peer{
				args:  []string{cfg.Otelcol, "--config", cfg.OtelcolConfig},
				ports: []string{grpcAddr, httpAddr},
			}
		case "jaeger":
			p = peer{
				args:  []string{cfg.Jaeger, "--config", cfg.JaegerConfig},
				ui:    []string{"http://127.0.0.1:16686/api/traces?service=checkout&limit=20", "http://127.0.0.1:16686/"},
				ports: []string{grpcAddr, httpAddr, "127.0.0.1:16686"},
			}
		default:
			return nil, fmt.Errorf("peer %q: want cairn, otelcol or jaeger", name)
		}
		p.name = name
		if p.args[0] == "" {
			fmt.Fprintf(os.Stderr, "# %s: no binary given, skipped\n", name)
			continue
		}
		if _, err := os.Stat(p.args[0]); err != nil {
			fmt.Fprintf(os.Stderr, "# %s: skipped: %v\n", name, err)
			continue
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, errors.New("no peer to run")
	}
	return out, nil
}

// run runs cfg.Count rounds over every peer and protocol and writes
// benchmark lines to w.
func run(ctx context.Context, cfg config, w io.Writer) error {
	ps, err := peers(cfg)
	if err != nil {
		return err
	}
	protos := split(cfg.Protocols)
	fmt.Fprintf(w, "goos: %s\ngoarch: %s\ncpu-count: %d\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	for round := range cfg.Count {
		for _, p := range ps {
			for _, proto := range protos {
				if err := ctx.Err(); err != nil {
					return err
				}
				fmt.Fprintf(os.Stderr, "# round %d/%d: %s over %s (load average %s)\n", round+1, cfg.Count, p.name, proto, loadAvg())
				if err := runOne(ctx, cfg, p, proto, w); err != nil {
					return fmt.Errorf("round %d, %s over %s: %w", round+1, p.name, proto, err)
				}
			}
		}
	}
	return nil
}

// runOne starts p, measures its startup, loads it over proto and writes
// the results to w.
func runOne(ctx context.Context, cfg config, p peer, proto string, w io.Writer) error {
	for _, addr := range p.ports {
		if err := waitFree(ctx, addr, 30*time.Second); err != nil {
			return err
		}
	}
	target := grpcAddr
	if proto == "http" {
		target = httpAddr
	}
	logf, err := os.Create(filepath.Join(cfg.LogDir, "consolepeers-"+p.name+".log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(p.args[0], p.args[1:]...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer stopProcess(cmd, exited)

	startup, err := waitAccepting(ctx, t0, proto, target, exited, 60*time.Second)
	if err != nil {
		return fmt.Errorf("%s did not accept OTLP/%s (log %s): %w", p.name, proto, logf.Name(), err)
	}
	pid := cmd.Process.Pid
	lcfg := otlpload.Config{Target: target, Protocol: proto, Senders: cfg.Senders, Duration: cfg.Duration, Warmup: cfg.Warmup}
	if cfg.Overload {
		lcfg.Senders = cfg.OverloadSenders
		lcfg.HonorRetryAfter = cfg.HonorRetryAfter
	}
	// Read the server's CPU time when the measured window opens.
	cpuFrom := make(chan time.Duration, 1)
	go func() {
		time.Sleep(cfg.Warmup)
		cpuFrom <- cpuTime(pid)
	}()
	var polls []*poller
	var pollWG sync.WaitGroup
	pollCtx, stopPolls := context.WithCancel(ctx)
	if cfg.Overload {
		for _, u := range p.ui {
			pl := &poller{url: u}
			polls = append(polls, pl)
			pollWG.Go(func() { pl.run(pollCtx, cfg.Warmup, 100*time.Millisecond) })
		}
	}
	res, err := otlpload.Run(ctx, lcfg)
	stopPolls()
	pollWG.Wait()
	if err != nil {
		return err
	}
	cpu := cpuTime(pid) - <-cpuFrom
	hwm, rss := memKiB(pid)
	// The UI's latency with the store full but no load, for comparison.
	var idle []*poller
	if cfg.Overload {
		idleCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		for _, u := range p.ui {
			pl := &poller{url: u}
			idle = append(idle, pl)
			pollWG.Go(func() { pl.run(idleCtx, 0, 100*time.Millisecond) })
		}
		pollWG.Wait()
		cancel()
	}
	select {
	case err := <-exited:
		return fmt.Errorf("%s exited during the load (log %s): %v", p.name, logf.Name(), err)
	default:
	}
	stats := ""
	if p.stats != "" {
		stats = fetch(p.stats)
	}
	name := fmt.Sprintf("proto=%s/peer=%s", proto, p.name)
	fmt.Fprintf(w, "# %s senders=%d: %s; startup %s; peak RSS %.1f MiB, RSS at end %.1f MiB; server CPU %s in the measured window\n",
		name, lcfg.Senders, res.Summary(), startup.Round(time.Millisecond), mib(hwm), mib(rss), cpu.Round(time.Millisecond))
	if stats != "" {
		fmt.Fprintf(w, "# %s stats after load: %s\n", name, stats)
	}
	cpuPerSpan := 0.0
	if res.Spans > 0 {
		cpuPerSpan = float64(cpu.Nanoseconds()) / float64(res.Spans)
	}
	extra := fmt.Sprintf(" %.1f peak-MiB %.0f server-cpu-ns/span", mib(hwm), cpuPerSpan)
	if !cfg.Overload {
		fmt.Fprintln(w, res.BenchLine("BenchmarkIngest/"+name)+extra)
		fmt.Fprintf(w, "BenchmarkStartup/%s 1 %.1f ms/start\n", name, ms(startup))
		return nil
	}
	line := res.BenchLine("BenchmarkOverload/"+name) + extra
	hinted := 0.0
	if res.Refused > 0 {
		hinted = 100 * float64(res.Hinted) / float64(res.Refused)
	}
	line += fmt.Sprintf(" %.0f refusals-with-retry-hint-%%", hinted)
	for i, pl := range polls {
		kind := "api"
		if i > 0 {
			kind = "page"
		}
		p50, p99, maxLat := otlpload.Percentiles(pl.lat)
		line += fmt.Sprintf(" %.2f %s-p50-ms %.2f %s-p99-ms %.2f %s-max-ms %d %s-errors",
			ms(p50), kind, ms(p99), kind, ms(maxLat), kind, pl.errs, kind)
		fmt.Fprintf(w, "# %s UI poll during load %s: %d requests, p50 %s p99 %s max %s, %d errors\n",
			name, pl.url, len(pl.lat), p50, p99, maxLat, pl.errs)
		ip50, ip99, imax := otlpload.Percentiles(idle[i].lat)
		line += fmt.Sprintf(" %.2f idle-%s-p50-ms", ms(ip50), kind)
		fmt.Fprintf(w, "# %s UI poll after load (idle, store full) %s: %d requests, p50 %s p99 %s max %s, %d errors\n",
			name, pl.url, len(idle[i].lat), ip50, ip99, imax, idle[i].errs)
	}
	fmt.Fprintln(w, line)
	return nil
}

// waitAccepting polls target with a small export (every 2 ms, each with a
// 500 ms timeout) until one is accepted, and returns the time since t0,
// taken just before the server was started.
func waitAccepting(ctx context.Context, t0 time.Time, proto, target string, exited <-chan error, limit time.Duration) (time.Duration, error) {
	gen := otlpload.NewGenerator(9999, 8, 8)
	deadline := t0.Add(limit)
	var last error
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return 0, fmt.Errorf("exited: %v", err)
		default:
		}
		// A new client per attempt: a gRPC connection that failed waits
		// out a reconnect backoff (one second at first) that would be
		// counted as startup time.
		cl, err := otlpload.NewClient(proto, target)
		if err != nil {
			return 0, err
		}
		actx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		out := cl.Export(actx, gen.Next(time.Now()))
		cancel()
		cl.Close()
		if out.Err == nil && out.Accepted > 0 {
			return time.Since(t0), nil
		}
		last = out.Err
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		time.Sleep(2 * time.Millisecond)
	}
	return 0, fmt.Errorf("not accepting after %s: %v", limit, last)
}

// stopProcess sends SIGTERM to cmd and waits up to 15 seconds for it to
// exit before killing it.
func stopProcess(cmd *exec.Cmd, exited <-chan error) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// waitFree waits until addr can be listened on, so that a peer does not
// fail on a port its predecessor has not released yet.
func waitFree(ctx context.Context, addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		l, err := net.Listen("tcp", addr)
		if err == nil {
			return l.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("address %s still in use after %s: %w", addr, limit, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// poller GETs url at a fixed interval and records the latencies.
type poller struct {
	url  string
	lat  []time.Duration
	errs int
}

// run polls from after delay until ctx is done.
func (p *poller) run(ctx context.Context, delay, every time.Duration) {
	hc := &http.Client{Timeout: 10 * time.Second}
	select {
	case <-ctx.Done():
		return
	case <-time.After(delay):
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		t0 := time.Now()
		resp, err := hc.Get(p.url)
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("%s answered %s", p.url, resp.Status)
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			p.errs++
		}
		p.lat = append(p.lat, time.Since(t0))
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// fetch returns the body of GET url in one line, or the error.
func fetch(url string) string {
	resp, err := http.Get(url)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err.Error()
	}
	var v any
	if json.Unmarshal(b, &v) == nil {
		if c, err := json.Marshal(v); err == nil {
			return string(c)
		}
	}
	return strings.TrimSpace(string(b))
}

// memKiB returns the peak (VmHWM) and current (VmRSS) resident set of pid
// in KiB, or zeros if /proc cannot tell.
func memKiB(pid int) (hwm, rss int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmHWM":
			hwm = n
		case "VmRSS":
			rss = n
		}
	}
	return hwm, rss
}

// clockTick is the unit of utime and stime in /proc/PID/stat (USER_HZ,
// 100 on Linux).
const clockTick = 10 * time.Millisecond

// cpuTime returns the user plus system CPU time pid has used, or zero if
// /proc cannot tell.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name, field 2, may hold spaces; fields after it do not.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * clockTick
}

// loadAvg returns the 1, 5 and 15 minute load averages.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func mib(kib int64) float64      { return float64(kib) / 1024 }
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
