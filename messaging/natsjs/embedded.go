package natsjs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedConfig configures an in-process NATS server with JetStream. The
// zero value is not usable: StoreDir is required.
type EmbeddedConfig struct {
	// StoreDir is the directory JetStream keeps its streams in. Required.
	// A server started again on the same StoreDir finds its streams and
	// consumers again.
	StoreDir string
	// Host is the address to listen on. Empty means "127.0.0.1".
	Host string
	// Port is the client port. Zero means a random free port.
	Port int
	// ServerName names the server. Empty means "cairn-embedded".
	ServerName string
	// ReadyTimeout bounds the wait for the server to accept connections.
	// Zero means 10s.
	ReadyTimeout time.Duration
}

// Embedded is a NATS server with JetStream running in this process, for
// demos, single-binary deployments and tests. Its methods are safe for
// concurrent use.
type Embedded struct {
	srv  *server.Server
	url  string
	port int
}

// RunEmbedded starts a NATS server with JetStream as cfg says and returns
// once it accepts connections, or an error naming what failed. ctx bounds
// the start only; stop the server with [Embedded.Shutdown].
func RunEmbedded(ctx context.Context, cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.StoreDir == "" {
		return nil, errors.New("natsjs: embedded server: store dir is empty")
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.ServerName == "" {
		cfg.ServerName = "cairn-embedded"
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = 10 * time.Second
	}
	if cfg.Port == 0 {
		cfg.Port = server.RANDOM_PORT
	}
	srv, err := server.NewServer(&server.Options{
		ServerName: cfg.ServerName,
		Host:       cfg.Host,
		Port:       cfg.Port,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		NoLog:      true,
		NoSigs:     true,
	})
	if err != nil {
		return nil, fmt.Errorf("natsjs: embedded server on %s: %w", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)), err)
	}
	srv.Start()
	deadline := time.Now().Add(cfg.ReadyTimeout)
	for !srv.ReadyForConnections(100 * time.Millisecond) {
		if ctx.Err() != nil || time.Now().After(deadline) {
			srv.Shutdown()
			srv.WaitForShutdown()
			if ctx.Err() != nil {
				return nil, fmt.Errorf("natsjs: embedded server on port %d: %w", cfg.Port, ctx.Err())
			}
			return nil, fmt.Errorf("natsjs: embedded server on port %d (store %s) not ready after %v", cfg.Port, cfg.StoreDir, cfg.ReadyTimeout)
		}
	}
	port := cfg.Port
	if a, ok := srv.Addr().(*net.TCPAddr); ok {
		port = a.Port
	}
	return &Embedded{srv: srv, url: srv.ClientURL(), port: port}, nil
}

// ClientURL returns the URL clients connect to, "nats://host:port".
func (e *Embedded) ClientURL() string { return e.url }

// Port returns the client port the server listens on.
func (e *Embedded) Port() int { return e.port }

// Shutdown stops the server and waits until it has stopped. Connected
// clients see a disconnection. Calling it again does nothing.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}
