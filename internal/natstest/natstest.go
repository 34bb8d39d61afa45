// Package natstest runs an embedded NATS server with JetStream for tests,
// on a random loopback port with its store in the test's temporary
// directory, and can stop and restart it on the same port and store to
// simulate a broker outage.
package natstest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairnhq/cairn/messaging/natsjs"
)

// Server is an embedded NATS server owned by one test. Its methods are
// safe for concurrent use; they fail the test when the server cannot
// start.
type Server struct {
	t   testing.TB
	cfg natsjs.EmbeddedConfig
	url string

	mu sync.Mutex
	e  *natsjs.Embedded // nil while stopped
}

// Start starts a server for t on a random loopback port, with its store
// in t.TempDir(), and shuts it down when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, cfg: natsjs.EmbeddedConfig{StoreDir: t.TempDir(), Host: "127.0.0.1"}}
	s.Start()
	t.Cleanup(s.Shutdown)
	return s
}

// URL returns the client URL, the same across restarts.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.url
}

// Start starts the server again after Shutdown, on the same port and
// store directory. It does nothing when the server runs.
func (s *Server) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.e != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err error
	// The port may take a moment to be free again after a shutdown.
	for {
		s.e, err = natsjs.RunEmbedded(ctx, s.cfg)
		if err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("natstest: start NATS server: %v", err)
	}
	s.cfg.Port = s.e.Port()
	s.url = s.e.ClientURL()
}

// Shutdown stops the server, as a broker outage would. It does nothing
// when the server is stopped.
func (s *Server) Shutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.e != nil {
		s.e.Shutdown()
		s.e = nil
	}
}

// Restart stops the server and starts it again on the same port and
// store directory.
func (s *Server) Restart() {
	s.t.Helper()
	s.Shutdown()
	s.Start()
}

// Connect returns a connection to url that reconnects forever, every
// 50ms, and is closed when t ends.
func Connect(t testing.TB, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatalf("natstest: connect to %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// JetStream returns a JetStream context on a new connection to url (see
// [Connect]).
func JetStream(t testing.TB, url string) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(Connect(t, url))
	if err != nil {
		t.Fatalf("natstest: jetstream on %s: %v", url, err)
	}
	return js
}
