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
// A Console made by [New] keeps memory only. One made by [Open] with
// Options.DataDir also writes every accepted export request to a SQLite
// database in that directory and replays it at the next Open, so a restart
// keeps the recent history; [Console.Close] flushes it.
//
// The console does not produce telemetry of its own, since exporting it to
// itself would loop; it only logs through the slog.Logger it is given.
package console

import (
	"errors"
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

	DefaultMaxSpanBytes  = 256 << 20
	DefaultMaxLogBytes   = 64 << 20
	DefaultMaxPointBytes = 32 << 20
)

// NavLink is a link of the console's navigation bar.
type NavLink struct {
	// Title is the link's text.
	Title string
	// Href is where it points, such as "/scenarios/".
	Href string
}

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
	// MaxSpanBytes, MaxLogBytes and MaxPointBytes bound the approximate
	// size of the stored spans, log records and metric points: their Go
	// structures and the bytes of their strings and attributes (not the
	// resource every item of an export shares, nor the indexes). The
	// oldest items are evicted, as for the count bounds, until both hold.
	// Defaults DefaultMaxSpanBytes (256 MiB), DefaultMaxLogBytes (64 MiB)
	// and DefaultMaxPointBytes (32 MiB).
	MaxSpanBytes, MaxLogBytes, MaxPointBytes int
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
	// NavLinks are added to the navigation bar of every page, after the
	// console's own: pages that the program embedding the console serves
	// beside it, such as the demo's fault scenarios. Default none.
	NavLinks []NavLink
	// Logger receives the console's own diagnostics: rejected telemetry at
	// warn level, failed requests at debug (client errors) or error (server
	// errors) level, database rows skipped on replay at warn level and
	// failed database writes at error level. Default: a logger that
	// discards everything.
	Logger *slog.Logger
	// DataDir, read by [Open] only, is the directory (created if missing)
	// of the SQLite database (file [DataFile]) that keeps the accepted
	// export requests across restarts. Open replays the newest of them,
	// up to MaxSpans, MaxLogs and MaxPoints items per signal, and the
	// database is trimmed, oldest requests first, whenever a signal holds
	// more than twice its bound. Only one process may use a database at a
	// time. Default (empty): memory only.
	DataDir string
}

// Console receives OTLP telemetry, stores it in memory within fixed bounds
// and serves it to people and programs. It is safe for concurrent use by
// any number of requests.
//
// Create one with [New] for memory only: it starts no goroutines and
// needs no cleanup. Create one with [Open] to persist it to
// Options.DataDir: it then runs one goroutine that writes to the database
// and must be closed with [Console.Close].
type Console struct {
	store   *store
	persist *persister // nil when memory only
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

// New returns an empty Console configured by opts, keeping memory only:
// opts.DataDir is ignored (see [Open]).
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
	if opts.MaxSpanBytes <= 0 {
		opts.MaxSpanBytes = DefaultMaxSpanBytes
	}
	if opts.MaxLogBytes <= 0 {
		opts.MaxLogBytes = DefaultMaxLogBytes
	}
	if opts.MaxPointBytes <= 0 {
		opts.MaxPointBytes = DefaultMaxPointBytes
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
		pages: template.Must(template.New("").Funcs(templateFuncs()).Funcs(template.FuncMap{
			"navLinks": func() []NavLink { return opts.NavLinks },
		}).ParseFS(webconsole.FS, "templates/*.html")),
		inflight:  make(chan struct{}, opts.MaxInFlightExports),
		anyOrigin: len(opts.CORSAllowedOrigins) == 0 || slices.Contains(opts.CORSAllowedOrigins, "*"),
		origins:   slices.Clone(opts.CORSAllowedOrigins),
	}
	c.store.maxSpanBytes, c.store.maxLogBytes, c.store.maxPointBytes = opts.MaxSpanBytes, opts.MaxLogBytes, opts.MaxPointBytes
	c.otlpH = c.newOTLPHandler()
	c.uiH = c.newUIHandler()
	return c
}

// Open returns a Console configured by opts. With an empty opts.DataDir
// it is [New]. Otherwise it opens or creates the database in
// opts.DataDir, replays into memory the newest persisted items that fit
// the bounds, and starts the goroutine that persists every export
// accepted from then on; call [Console.Close] to stop it.
//
// Replay skips a row it cannot decode, logging it at warn level and
// counting it in Stats.Persist.ReplaySkipped. Open fails, naming the
// file, for a database written by a newer schema version, one that is
// not a SQLite database, or one in use by another process.
//
// Replayed items count in Stats as if just received, so Received =
// Rejected + Duplicates + Stored + Evicted still holds; Stats.Persist
// counts them apart. The items the console rejected when the requests
// first arrived are not counted again.
func Open(opts Options) (*Console, error) {
	c, err := open(opts, persistQueue)
	if err != nil {
		return nil, err
	}
	if c.persist != nil {
		c.persist.start()
	}
	return c, nil
}

// open is Open with a write queue of the given capacity and without
// starting the writer.
func open(opts Options, queue int) (*Console, error) {
	c := New(opts)
	if opts.DataDir == "" {
		return c, nil
	}
	bounds := [numSignals]int{c.store.maxSpans, c.store.maxLogs, c.store.maxPoints}
	p, err := openPersister(opts.DataDir, bounds, c.log, queue)
	if err != nil {
		return nil, err
	}
	if err := c.replay(p); err != nil {
		return nil, errors.Join(err, p.db.Close())
	}
	c.persist = p
	return c, nil
}

// Close stops a persisting Console: exports arriving from then on fail
// (HTTP 503, gRPC UNAVAILABLE, which OTLP exporters retry), the exports
// already acknowledged are written, and the database is closed. The
// Console still serves its UI and API from memory. Stop the servers
// before calling Close so that no export is refused. Close is a no-op
// for a Console that keeps memory only; calling it again returns what the
// first call returned.
func (c *Console) Close() error {
	if c.persist == nil {
		return nil
	}
	return c.persist.stop()
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
// Options.MaxInFlightExports exports are in flight, 503 after
// [Console.Close] of a persisting Console.
//
// A persisting Console answers an export once it is stored in memory and
// queued for the database, not written: the write happens in batches in
// the background. While the queue is full (the disk lags), exports wait
// for room and hold their in-flight slot, so that excess exports are shed
// with 429.
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
//	GET /                          trace search (service, operation, status, min/max_duration, attr, from, to, limit); reloads itself while unfiltered
//	GET /traces/{traceID}          one trace: waterfall, critical path, span details, its logs
//	GET /services                  service map and RED of every service (last 15m)
//	GET /services/{service}        RED charts and the service's operations
//	GET /logs                      log search (service, min_severity, text, attr, trace_id, from, to, limit)
//	GET /metrics                   stored instruments (?service=)
//	GET /metrics/{service}/{name}  charts per attribute set (?attr=), exemplars linking to traces
//	GET /critical-path             aggregate critical path of an endpoint (?service=&operation=&limit=)
//	GET /stats                     the console's counters
//	GET /static/...                embedded stylesheet
//
// JSON API (errors are application/problem+json naming the bad parameter):
//
//	GET /api/traces?service=&operation=&status=&min_duration=&max_duration=&attr=k=v&from=&to=&limit=
//	    {"traces", "scanned", "indexed"}: traces with one span meeting every span filter, started in
//	    [from, to] (RFC 3339 or Unix ms), the latest to arrive first (limit 1..1000, default 50)
//	GET /api/traces/{traceID}            {"trace_id", "spans", "logs"}; 404 when nothing is stored for it
//	GET /api/traces/{traceID}/critical-path  {"trace_id", "segments", "span_ids", "total_ns"}: the spans that blocked the root, and for how long
//	GET /api/critical-path?service=&operation=&limit=  the aggregate critical path of an endpoint, over all and the slowest 1% of its traces
//	GET /api/services                    {"services": [...]} with any stored telemetry
//	GET /api/service-map                 {"services", "edges"}: calls between services with counts, errors, p50/p99
//	GET /api/red?window=                 rate, errors and duration percentiles of each service's requests (window up to 15m)
//	GET /api/red/{service}?window=       the same per operation of the service
//	GET /api/red/{service}/series?operation=&window=&step=  the same per step, oldest first
//	GET /api/logs?service=&min_severity=&text=&attr=&trace_id=&from=&to=&limit=  newest log records first (limit 1..1000, default 100)
//	GET /api/metrics?service=            the stored instruments
//	GET /api/metrics/series?service=&name=&attr=  one metric per attribute set, with rates, histogram quantiles and exemplars
//	GET /api/stats                       the [Stats]
//
// Trace ids are 32 hex digits; an invalid one is answered 400.
func (c *Console) UIHandler() http.Handler { return c.uiH }

// Stats returns the console's counters and current store sizes. It is safe
// to call at any time from any goroutine.
func (c *Console) Stats() Stats {
	st := c.store.stats()
	st.Shed = c.shed.Load()
	if c.persist != nil {
		st.Persist = c.persist.stats()
	}
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
