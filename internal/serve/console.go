package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/cairnhq/cairn/console"
	"github.com/cairnhq/cairn/internal/buildinfo"
)

// ConsoleConfig configures [Console].
type ConsoleConfig struct {
	// UIAddr is the address of the web UI and its JSON API.
	UIAddr string
	// HTTPAddr is the address of the OTLP/HTTP receiver (/v1/traces,
	// /v1/metrics, /v1/logs).
	HTTPAddr string
	// GRPCAddr is the address of the OTLP/gRPC receiver; empty turns it
	// off.
	GRPCAddr string
	// Token protects the UI and the API: requests must present it (see
	// requireToken). Empty means none on a loopback UIAddr, and a new
	// random token, printed, on any other address.
	Token string
	// TokenOTLP asks for the token on the OTLP receivers too, as
	// "Authorization: Bearer <token>" (OTEL_EXPORTER_OTLP_HEADERS).
	TokenOTLP bool
	// Options configures the console (bounds, logger, and DataDir, the
	// directory of the database that keeps its history across restarts;
	// empty keeps memory only).
	Options console.Options
	// Out receives the startup banner, with the token if one was made.
	Out io.Writer
	// Ready, if not nil, is called with the bound addresses once every
	// listener accepts connections.
	Ready func(ui, otlpHTTP, otlpGRPC string)
}

// Console runs the console alone until ctx ends, then shuts it down within
// 5 seconds and returns nil, or returns the error that stopped it. With
// cfg.Options.DataDir it restores the history kept there before it
// listens, and writes the exports still queued before it returns.
func Console(ctx context.Context, cfg ConsoleConfig) (err error) {
	if cfg.Options.Logger == nil {
		cfg.Options.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	token := cfg.Token
	made := false
	if token == "" && (!isLoopback(cfg.UIAddr) || cfg.TokenOTLP) {
		token, made = newToken(), true
	}
	c, err := console.Open(cfg.Options)
	if err != nil {
		return err
	}
	// Close runs after the servers have stopped (it is deferred first), so
	// that every acknowledged export is written.
	defer func() {
		if cerr := c.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()

	var lns []net.Listener
	closeAll := func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}
	listen := func(what, addr string) (net.Listener, error) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("%s: listen on %s: %w", what, addr, err)
		}
		lns = append(lns, ln)
		return ln, nil
	}
	uiLn, err := listen("UI", cfg.UIAddr)
	if err != nil {
		return err
	}
	httpLn, err := listen("OTLP/HTTP", cfg.HTTPAddr)
	if err != nil {
		return err
	}
	var grpcLn net.Listener
	if cfg.GRPCAddr != "" {
		if grpcLn, err = listen("OTLP/gRPC", cfg.GRPCAddr); err != nil {
			return err
		}
	}

	ui, otlp := c.UIHandler(), c.OTLPHandler()
	if token != "" {
		ui = requireToken(token, ui)
		if cfg.TokenOTLP {
			otlp = requireToken(token, otlp)
		}
	}
	servers := []*http.Server{
		{Handler: ui, ReadHeaderTimeout: 10 * time.Second},
		{Handler: otlp, ReadHeaderTimeout: 10 * time.Second},
	}
	errc := make(chan error, 3)
	go func() { errc <- servers[0].Serve(uiLn) }()
	go func() { errc <- servers[1].Serve(httpLn) }()
	stopGRPC := func() {}
	if grpcLn != nil {
		stopGRPC, err = serveGRPC(c, grpcLn, token, cfg.TokenOTLP, errc)
		if err != nil {
			closeAll()
			return err
		}
	}

	grpcAddr := ""
	if grpcLn != nil {
		grpcAddr = grpcLn.Addr().String()
	}
	if cfg.Out != nil {
		fmt.Fprintf(cfg.Out, "cairn console %s\n  UI          http://%s\n  OTLP/HTTP   http://%s/v1/{traces,metrics,logs}\n", buildinfo.Version(), uiLn.Addr(), httpLn.Addr())
		if grpcAddr != "" {
			fmt.Fprintf(cfg.Out, "  OTLP/gRPC   %s\n", grpcAddr)
		}
		if cfg.Options.DataDir != "" {
			p := c.Stats().Persist
			fmt.Fprintf(cfg.Out, "  data        %s (restored %d spans, %d log records, %d metric points)\n",
				filepath.Join(cfg.Options.DataDir, console.DataFile), p.ReplayedSpans, p.ReplayedLogs, p.ReplayedPoints)
		}
		if made {
			fmt.Fprintf(cfg.Out, "  token       %s  (open http://%s/?token=%s; SDKs send Authorization: Bearer <token> if --token-otlp)\n", token, uiLn.Addr(), token)
		}
		fmt.Fprintf(cfg.Out, "Point an SDK at it: OTEL_EXPORTER_OTLP_ENDPOINT=http://%s\n", httpLn.Addr())
	}
	if cfg.Ready != nil {
		cfg.Ready(uiLn.Addr().String(), httpLn.Addr().String(), grpcAddr)
	}
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
		runErr = fmt.Errorf("serve: %w", runErr)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	var errs []error
	for _, s := range servers {
		if err := s.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	stopGRPC()
	return errors.Join(append([]error{runErr}, errs...)...)
}
