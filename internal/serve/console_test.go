package serve

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/console"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

type consoleAddrs struct{ ui, http, grpc string }

func runConsole(t *testing.T, cfg ConsoleConfig) (consoleAddrs, *bytes.Buffer, func()) {
	t.Helper()
	var out bytes.Buffer
	cfg.Out = &out
	ctx, cancel := context.WithCancel(t.Context())
	ready := make(chan consoleAddrs, 1)
	cfg.Ready = func(ui, h, g string) { ready <- consoleAddrs{ui, h, g} }
	done := make(chan error, 1)
	go func() { done <- Console(ctx, cfg) }()
	select {
	case a := <-ready:
		return a, &out, func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Console = %v", err)
			}
		}
	case err := <-done:
		cancel()
		t.Fatalf("Console = %v before it was ready", err)
	}
	return consoleAddrs{}, nil, nil
}

func exportRequest() *coltracepb.ExportTraceServiceRequest {
	return &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{{
			TraceId: bytes.Repeat([]byte{1}, 16), SpanId: bytes.Repeat([]byte{2}, 8), Name: "test",
			StartTimeUnixNano: uint64(time.Now().UnixNano()), EndTimeUnixNano: uint64(time.Now().UnixNano()) + 1000,
		}}}},
	}}}
}

func postTraces(t *testing.T, url, auth string) int {
	t.Helper()
	body, err := proto.Marshal(exportRequest())
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/traces", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-protobuf")
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func get(t *testing.T, client *http.Client, url, auth string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// TestConsoleOnLoopbackNeedsNoToken: the default, loopback, serves the UI
// and both receivers without a token.
func TestConsoleOnLoopbackNeedsNoToken(t *testing.T) {
	a, out, stop := runConsole(t, ConsoleConfig{UIAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0"})
	defer stop()
	if code := postTraces(t, "http://"+a.http, ""); code != http.StatusOK {
		t.Fatalf("OTLP/HTTP export = %d", code)
	}
	if resp := get(t, http.DefaultClient, "http://"+a.ui+"/api/stats", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /api/stats = %d", resp.StatusCode)
	}
	conn, err := grpc.NewClient(a.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := coltracepb.NewTraceServiceClient(conn).Export(t.Context(), exportRequest()); err != nil {
		t.Errorf("OTLP/gRPC export = %v", err)
	}
	if strings.Contains(out.String(), "token") {
		t.Errorf("a loopback console printed a token:\n%s", out)
	}
}

// TestConsoleElsewhereAsksForAToken: bound beyond loopback, the UI and the
// API ask for the token, made and printed; OTLP asks for it only with
// TokenOTLP.
func TestConsoleElsewhereAsksForAToken(t *testing.T) {
	a, out, stop := runConsole(t, ConsoleConfig{UIAddr: ":0", HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", TokenOTLP: true})
	defer stop()
	_, rest, found := strings.Cut(out.String(), "token       ")
	if !found {
		t.Fatalf("no token printed:\n%s", out)
	}
	token := strings.Fields(rest)[0]
	ui := "http://" + strings.Replace(a.ui, "[::]", "127.0.0.1", 1)
	if resp := get(t, http.DefaultClient, ui+"/api/stats", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /api/stats without the token = %d, want 401", resp.StatusCode)
	}
	if resp := get(t, http.DefaultClient, ui+"/api/stats", "wrong"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /api/stats with a wrong token = %d, want 401", resp.StatusCode)
	}
	if resp := get(t, http.DefaultClient, ui+"/api/stats", token); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /api/stats with the token = %d, want 200", resp.StatusCode)
	}
	// A browser: ?token= sets a cookie and drops the token from the URL.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp := get(t, noFollow, ui+"/api/stats?token="+token, "")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/api/stats" || len(resp.Cookies()) != 1 {
		t.Fatalf("GET ?token= = %d, Location %q, cookies %v", resp.StatusCode, resp.Header.Get("Location"), resp.Cookies())
	}
	req, _ := http.NewRequest(http.MethodGet, ui+"/api/stats", nil)
	req.AddCookie(resp.Cookies()[0])
	if r2, err := http.DefaultClient.Do(req); err != nil || r2.StatusCode != http.StatusOK {
		t.Errorf("GET with the cookie = %v, %v", r2, err)
	} else {
		r2.Body.Close()
	}

	if code := postTraces(t, "http://"+a.http, ""); code != http.StatusUnauthorized {
		t.Errorf("OTLP/HTTP export without the token = %d, want 401", code)
	}
	if code := postTraces(t, "http://"+a.http, token); code != http.StatusOK {
		t.Errorf("OTLP/HTTP export with the token = %d, want 200", code)
	}
	conn, err := grpc.NewClient(a.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := coltracepb.NewTraceServiceClient(conn)
	if _, err := client.Export(t.Context(), exportRequest()); status.Code(err) != codes.Unauthenticated {
		t.Errorf("OTLP/gRPC export without the token = %v, want Unauthenticated", err)
	}
	ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+token)
	if _, err := client.Export(ctx, exportRequest()); err != nil {
		t.Errorf("OTLP/gRPC export with the token = %v", err)
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:7070": true, "[::1]:7070": true, "localhost:7070": true,
		":7070": false, "0.0.0.0:7070": false, "10.0.0.5:7070": false, "nonsense": false,
	} {
		if got := isLoopback(addr); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

// TestConsoleDataSurvivesRestart: with a data directory, a trace exported
// to one run is served by the next, which says where it keeps its data
// and what it restored.
func TestConsoleDataSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := ConsoleConfig{UIAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", Options: console.Options{DataDir: dir}}
	traceURL := "/api/traces/" + strings.Repeat("01", 16)

	a, out, stop := runConsole(t, cfg)
	if code := postTraces(t, "http://"+a.http, ""); code != http.StatusOK {
		t.Fatalf("OTLP/HTTP export = %d", code)
	}
	if !strings.Contains(out.String(), filepath.Join(dir, console.DataFile)+" (restored 0 spans") {
		t.Errorf("first banner does not name the empty database:\n%s", out)
	}
	stop()

	a, out, stop = runConsole(t, cfg)
	defer stop()
	if resp := get(t, http.DefaultClient, "http://"+a.ui+traceURL, ""); resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s after a restart = %d, want 200", traceURL, resp.StatusCode)
	}
	if !strings.Contains(out.String(), "(restored 1 spans, 0 log records, 0 metric points)") {
		t.Errorf("second banner does not say what it restored:\n%s", out)
	}
}

// TestConsoleBadDataDir: a data directory that cannot be used stops the
// console before it listens, naming the problem.
func TestConsoleBadDataDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, console.DataFile), []byte(strings.Repeat("not a database ", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	err := Console(t.Context(), ConsoleConfig{UIAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", Options: console.Options{DataDir: dir}})
	if err == nil || !strings.Contains(err.Error(), console.DataFile) {
		t.Errorf("Console with a corrupt database = %v, want an error naming it", err)
	}
}
