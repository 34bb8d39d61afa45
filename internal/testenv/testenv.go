// Package testenv finds the real services that integration tests use
// (PostgreSQL, Redis, NATS) on loopback. A test asks for a service; when it
// does not answer, the test is skipped with a message that says how to start
// it, except under CI=true, where a missing service fails the test: CI must
// never pass by skipping what it was meant to check.
//
// Addresses come from environment variables when set (CAIRN_TEST_POSTGRES,
// CAIRN_TEST_REDIS, CAIRN_TEST_NATS), else from the services' default
// loopback ports.
package testenv

import (
	"net"
	"net/url"
	"os"
	"strconv"
	"time"
)

// TB is the part of testing.TB that testenv needs.
type TB interface {
	Helper()
	Skipf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// Service describes one service a test can require.
type Service struct {
	// Name is the service's human name, used in messages.
	Name string
	// Env is the environment variable that overrides Default.
	Env string
	// Default is the address used when Env is unset: a URL or host:port.
	Default string
	// Start is the command that starts the service on a developer's
	// machine, quoted in the skip message.
	Start string
}

// The services cairn's integration tests use.
var (
	Postgres = Service{
		Name:    "PostgreSQL",
		Env:     "CAIRN_TEST_POSTGRES",
		Default: "postgres://postgres@127.0.0.1:5432/test?sslmode=disable",
		Start:   "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
	}
	Redis = Service{
		Name:    "Redis",
		Env:     "CAIRN_TEST_REDIS",
		Default: "127.0.0.1:6379",
		Start:   `redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no`,
	}
	NATS = Service{
		Name:    "NATS",
		Env:     "CAIRN_TEST_NATS",
		Default: "nats://127.0.0.1:4222",
		Start:   "nats-server -a 127.0.0.1 -p 4222 -js &",
	}
)

// DialTimeout bounds the reachability check.
const DialTimeout = 2 * time.Second

// InCI reports whether the tests run under CI (CI set to a true value), where
// a missing service is a failure rather than a skip.
func InCI() bool {
	ci, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && ci
}

// Require returns the address of s (its Env variable, else its Default)
// after checking that something accepts TCP connections there. When nothing
// does, it skips the test with a message naming the service, the address and
// the command that starts it, or fails the test when InCI.
func Require(t TB, s Service) string {
	t.Helper()
	addr := s.Default
	if v := os.Getenv(s.Env); v != "" {
		addr = v
	}
	hostport, err := hostPort(addr)
	if err != nil {
		t.Fatalf("testenv: %s address %q (from %s or the default): %v", s.Name, addr, s.Env, err)
		return ""
	}
	conn, err := net.DialTimeout("tcp", hostport, DialTimeout)
	if err == nil {
		conn.Close()
		return addr
	}
	if InCI() {
		t.Fatalf("testenv: %s is required under CI=true but does not answer at %s: %v", s.Name, hostport, err)
		return ""
	}
	t.Skipf("testenv: skipping: %s does not answer at %s (%v); start it with `%s` or set %s", s.Name, hostport, err, s.Start, s.Env)
	return ""
}

// hostPort returns the host:port to dial for addr, a URL or a host:port.
func hostPort(addr string) (string, error) {
	if u, err := url.Parse(addr); err == nil && u.Scheme != "" && u.Host != "" {
		if u.Port() == "" {
			return "", &net.AddrError{Err: "missing port", Addr: addr}
		}
		return u.Host, nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return "", err
	}
	return addr, nil
}
