// Package console is cairn's in-process observability console: an
// OTLP/HTTP receiver that keeps recent traces, logs and metric points in a
// bounded in-memory store, a JSON query API over that store, and a small
// server-rendered web UI that lists recent traces and draws a trace as a
// waterfall next to its logs.
//
// A Console exposes http.Handlers, not listeners: mount [Console.OTLPHandler]
// where exporters send OTLP (conventionally port 4318) and
// [Console.UIHandler] where people browse (cairn demo uses 7070).
//
// The console does not produce telemetry of its own, since exporting it to
// itself would loop; it only logs through the slog.Logger it is given.
package console

import (
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"runtime"
	"slices"
	"sync/atomic"

	webconsole "github.com/cairnhq/cairn/web/console"
)

// Defaults used for zero or negative Options fields.
const (
	DefaultMaxSpans     = 100_000
	DefaultMaxLogs      = 50_000
	DefaultMaxPoints    = 50_000
	DefaultMaxBodyBytes = 4 << 20
)

// Options configures a Console. The zero value is valid: every zero or
// negative field takes its documented default.
type Options struct {
	// MaxSpans bounds the spans kept. When a new span would exceed it, whole
	// traces are evicted in the order their first span arrived; a single
	// trace larger than the bound loses its oldest spans. Default
	// DefaultMaxSpans (100,000).
	MaxSpans int
	// MaxLogs bounds the log records kept; the oldest are evicted first.
	// Default DefaultMaxLogs (50,000).
	MaxLogs int
	// MaxPoints bounds the metric data points kept across all series; the
	// oldest are evicted first. Default DefaultMaxPoints (50,000).
	MaxPoints int
	// MaxBodyBytes bounds an OTLP request body, both as sent and after gzip
	// decompression; larger requests are answered 413. Default
	// DefaultMaxBodyBytes (4 MiB).
	MaxBodyBytes int64
	// MaxInFlightExports bounds the exports, OTLP/HTTP and OTLP/gRPC
	// together, handled at the same time. An export over the bound is
	// refused at once, before its body is read: HTTP 429 with Retry-After: 1,
	// or gRPC RESOURCE_EXHAUSTED with a RetryInfo of one second, which OTLP
	// exporters retry. Refusals are counted in Stats.Shed. Default 4 ×
	// GOMAXPROCS at the time New is called.
	MaxInFlightExports int
	// CORSAllowedOrigins lists the origins (such as
	// "http://localhost:5173") whose browser pages may send OTLP/HTTP
	// exports; "*" allows any origin. Default (nil or empty): any origin.
	// Allowing any origin is acceptable for an ingestion endpoint: it only
	// accepts telemetry and returns nothing but an export result, it uses
	// no cookies or credentials, and it listens on loopback by default, so
	// the worst a foreign page can do is add telemetry to a local,
	// bounded, in-memory store.
	CORSAllowedOrigins []string
	// Logger receives the console's own diagnostics: rejected telemetry at
	// warn level, failed requests at debug (client errors) or error (server
	// errors) level. Default: a logger that discards everything.
	Logger *slog.Logger
}

// Console receives OTLP telemetry, stores it in memory within fixed bounds
// and serves it to people and programs. Create one with [New]; a Console
// needs no cleanup (it starts no goroutines) and is safe for concurrent
// use by any number of requests.
type Console struct {
	store   *store
	log     *slog.Logger
	maxBody int64
	pages   *template.Template
	otlpH   http.Handler
	uiH     http.Handler

	// inflight holds one token per export being handled; its capacity is
	// Options.MaxInFlightExports.
	inflight chan struct{}
	shed     atomic.Uint64 // exports refused because inflight was full
	// anyOrigin allows CORS requests from every origin; otherwise origins
	// lists the allowed ones.
	anyOrigin bool
	origins   []string
}

// New returns an empty Console configured by opts.
func New(opts Options) *Console {
	if opts.MaxSpans <= 0 {
		opts.MaxSpans = DefaultMaxSpans
	}
	if opts.MaxLogs <= 0 {
		opts.MaxLogs = DefaultMaxLogs
	}
	if opts.MaxPoints <= 0 {
		opts.MaxPoints = DefaultMaxPoints
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.MaxInFlightExports <= 0 {
		opts.MaxInFlightExports = 4 * runtime.GOMAXPROCS(0)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Console{
		store:   newStore(opts.MaxSpans, opts.MaxLogs, opts.MaxPoints),
		log:     opts.Logger,
		maxBody: opts.MaxBodyBytes,
		// The templates are embedded and covered by tests; failing to parse
		// them is a build defect, not a run-time condition.
		pages:     template.Must(template.New("").Funcs(templateFuncs()).ParseFS(webconsole.FS, "templates/*.html")),
		inflight:  make(chan struct{}, opts.MaxInFlightExports),
		anyOrigin: len(opts.CORSAllowedOrigins) == 0 || slices.Contains(opts.CORSAllowedOrigins, "*"),
		origins:   slices.Clone(opts.CORSAllowedOrigins),
	}
	c.otlpH = c.newOTLPHandler()
	c.uiH = c.newUIHandler()
	return c
}

// OTLPHandler returns the OTLP/HTTP receiver. It serves POST /v1/traces,
// /v1/logs and /v1/metrics with Content-Type application/x-protobuf or
// application/json (OTLP/JSON: hex trace and span ids, enums as integers
// or names, unknown fields ignored), optionally gzip-compressed
// (Content-Encoding: gzip), and answers 200 with the Export*ServiceResponse
// in the request's encoding, whose partial_success counts the items
// rejected as invalid. The response body is gzip-compressed when the
// request's Accept-Encoding allows gzip.
//
// Failures are answered with a google.rpc.Status, in the request's
// encoding, naming the problem: 400 for a body that cannot be decompressed
// or decoded (including an invalid hex id), 404 for another path, 405 for
// another method, 413 for a body larger than Options.MaxBodyBytes, 415 for
// another content type or encoding, 429 with Retry-After when more than
// Options.MaxInFlightExports exports are in flight.
//
// Browser exporters are served CORS: OPTIONS preflights on the export
// paths are answered 204, and responses to an allowed Origin (see
// Options.CORSAllowedOrigins) carry Access-Control-Allow-Origin.
//
// Mount it at the root of its listener: it routes on the full path.
func (c *Console) OTLPHandler() http.Handler { return c.otlpH }

// UIHandler returns the web UI and its JSON API, meant to be mounted at
// the root of its listener. Pages:
//
//	GET /                   recent traces (?service= filters, ?refresh=0 stops auto-refresh)
//	GET /traces/{traceID}   one trace as a waterfall, with its logs
//	GET /static/...         embedded stylesheet
//
// JSON API (errors are application/problem+json):
//
//	GET /api/traces?service=&limit=      recent trace summaries, latest first (limit 1..1000, default 50)
//	GET /api/traces/{traceID}            {"trace_id", "spans", "logs"}; 404 when nothing is stored for it
//	GET /api/traces/{traceID}/critical-path  {"trace_id", "segments", "span_ids", "total_ns"}: the spans that blocked the root, and for how long
//	GET /api/services                    {"services": [...]} with any stored telemetry
//	GET /api/logs?trace_id=&service=&limit=   newest log records first (limit 1..1000, default 100)
//	GET /api/metrics?service=            stored metric series and their points (preliminary)
//	GET /api/stats                       the [Stats]
//
// Trace ids are 32 hex digits; an invalid one is answered 400.
func (c *Console) UIHandler() http.Handler { return c.uiH }

// Stats returns the console's counters and current store sizes. It is safe
// to call at any time from any goroutine.
func (c *Console) Stats() Stats {
	st := c.store.stats()
	st.Shed = c.shed.Load()
	return st
}

// staticFS returns the embedded static assets rooted at static/.
func staticFS() fs.FS {
	sub, err := fs.Sub(webconsole.FS, "static")
	if err != nil {
		// fs.Sub fails only for an invalid path literal.
		panic("console: " + err.Error())
	}
	return sub
}
