package redisratelimit

import (
	"context"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/testenv"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// redisServer is a private redis-server process on its own port, so a test
// can stop and restart a real Redis without disturbing the shared one.
type redisServer struct {
	bin, port string
	cmd       *exec.Cmd
	done      chan struct{}
}

// startRedisServer starts redis-server on a free loopback port, without
// persistence, and stops it at cleanup. It skips when redis-server is not
// installed, and fails under CI=true.
func startRedisServer(t *testing.T) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if testenv.InCI() {
			t.Fatalf("redis-server is required under CI=true: %v", err)
		}
		t.Skipf("redis-server not installed (apt-get install redis-server): %v", err)
	}
	s := &redisServer{bin: bin, port: strconv.Itoa(freePort(t))}
	s.start(t)
	t.Cleanup(s.stop)
	return s
}

func (s *redisServer) addr() string { return net.JoinHostPort("127.0.0.1", s.port) }

func (s *redisServer) start(t *testing.T) {
	t.Helper()
	s.cmd = exec.Command(s.bin, "--port", s.port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning")
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	s.done = make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	// Wait for it to answer, not for a time; the bound only keeps a broken
	// machine from hanging the test.
	c := newClient(t, s.addr())
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if c.Ping(context.Background()).Err() == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s did not answer within 10s", s.addr())
		}
	}
}

// stop kills the server and waits for it to exit.
func (s *redisServer) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Kill()
	<-s.done
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestOutageServerRestart stops a real Redis server in the middle of the
// test and starts it again on the same port: while it is down the limiter
// follows its outage policy, and once it is back the limiter uses Redis
// again, with the fresh state of a server that kept nothing.
func TestOutageServerRestart(t *testing.T) {
	for _, policy := range []string{OutageOpen, OutageClosed, OutageLocal} {
		t.Run(policy, func(t *testing.T) {
			srv := startRedisServer(t)
			reader := sdkmetric.NewManualReader()
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
			defer mp.Shutdown(context.Background())
			stub := &stubLimiter{}
			cfg := Config{Prefix: "restart:", Rate: 1, Per: time.Hour, Burst: 100, Outage: policy, Local: stub, MeterProvider: mp}
			l := mustNew(t, newClient(t, srv.addr()), cfg)
			fallbacks := func() int64 {
				return counters(t, reader)[FallbacksMetricName+"{resilience.ratelimit.outage="+policy+"}"]
			}

			for want := 99; want >= 98; want-- {
				if d := allow(t, l, "k", 1); !d.Allowed || d.Remaining != want {
					t.Fatalf("before the outage: %+v, want Remaining %d", d, want)
				}
			}
			srv.stop()
			for range 3 {
				checkOutage(t, l, policy, stub)
			}
			if got := fallbacks(); got != 3 {
				t.Fatalf("fallbacks = %d, want 3", got)
			}

			srv.start(t)
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				before := fallbacks()
				d, err := l.AllowN(context.Background(), "k", 1)
				if fallbacks() == before {
					// Redis answered. It kept nothing across the restart,
					// so the bucket is full again.
					if err != nil || !d.Allowed || d.Remaining != 99 {
						t.Fatalf("after the restart: %+v, %v; want Remaining 99 from a fresh Redis", d, err)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("limiter still falling back 10s after redis-server %s restarted", srv.addr())
				}
			}
		})
	}
}
