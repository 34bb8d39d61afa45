package console

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/cairnhq/cairn/problem"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"
)

// protobufType is the OTLP/HTTP binary protobuf content type.
const protobufType = "application/x-protobuf"

// gRPC status codes used in the google.rpc.Status body of OTLP error
// responses, as the OTLP/HTTP specification asks.
const (
	rpcInvalidArgument   = 3
	rpcNotFound          = 5
	rpcResourceExhausted = 8
	rpcUnimplemented     = 12
	rpcInternal          = 13
	rpcUnavailable       = 14
)

// CORS settings of the OTLP/HTTP receiver.
const (
	corsMaxAge = "7200" // seconds; the most Chromium honours
	// corsBaseHeaders are always allowed in a preflight.
	corsBaseHeaders = "Content-Type, Content-Encoding"
)

// corsSafeHeaders are the request headers, lower-case, a preflight may ask
// for besides corsBaseHeaders: content negotiation and trace context that
// browser exporters send. Anything else is left out of the answer, so the
// browser refuses it.
var corsSafeHeaders = []string{
	"accept", "accept-language", "content-language", "x-requested-with",
	"traceparent", "tracestate", "baggage",
}

// exportPaths are the OTLP/HTTP export paths.
var exportPaths = []string{"/v1/traces", "/v1/logs", "/v1/metrics"}

// format is the encoding of an OTLP/HTTP request and its response.
type format int

const (
	formatProtobuf format = iota
	formatJSON
)

// requestFormat returns the encoding of r's body, and so of the response:
// JSON when r's Content-Type says so, protobuf otherwise (including for
// errors about an unsupported Content-Type).
func requestFormat(r *http.Request) format {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == jsonType {
		return formatJSON
	}
	return formatProtobuf
}

// newOTLPHandler routes the three OTLP/HTTP export paths.
func (c *Console) newOTLPHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/v1/traces", c.otlp(c.exportTraces))
	mux.Handle("/v1/logs", c.otlp(c.exportLogs))
	mux.Handle("/v1/metrics", c.otlp(c.exportMetrics))
	mux.Handle("/", c.otlp(func(w http.ResponseWriter, r *http.Request) error {
		return problem.Errorf(http.StatusNotFound, "console: no OTLP endpoint at %s; use /v1/traces, /v1/logs or /v1/metrics", r.URL.Path)
	}))
	return mux
}

// otlp adapts an export handler: it answers CORS preflights, sheds load
// over the in-flight bound, and answers errors with the status code and a
// google.rpc.Status body naming the problem, as OTLP/HTTP clients expect.
func (c *Console) otlp(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		allowed := origin != "" && c.originAllowed(origin)
		if allowed {
			c.setAllowOrigin(w.Header(), origin)
		}
		isExport := slices.Contains(exportPaths, r.URL.Path)
		var err error
		switch {
		case isExport && r.Method == http.MethodOptions:
			err = c.preflight(w, r, origin, allowed)
		case isExport && r.Method == http.MethodPost:
			if !c.acquire() {
				err = problem.Errorf(http.StatusTooManyRequests, "console: more than %d exports in flight; retry later", cap(c.inflight))
				break
			}
			err = h(w, r)
			c.release()
		default:
			err = h(w, r)
		}
		if err == nil {
			return
		}
		he := problem.From(err)
		problem.Log(c.log, slog.LevelDebug, r, he, err)
		switch he.Status {
		case http.StatusMethodNotAllowed:
			w.Header().Set("Allow", "POST, OPTIONS")
		case http.StatusTooManyRequests:
			w.Header().Set("Retry-After", "1")
		}
		st := &spb.Status{Code: rpcCode(he.Status), Message: he.Detail}
		if werr := writeMessage(w, r, he.Status, st); werr != nil {
			http.Error(w, he.Detail, he.Status)
		}
	})
}

// acquire takes an in-flight export slot without waiting, reporting
// whether one was free; a refusal is counted in Stats.Shed. Every
// successful acquire must be followed by one release.
func (c *Console) acquire() bool {
	select {
	case c.inflight <- struct{}{}:
		return true
	default:
		c.shed.Add(1)
		return false
	}
}

// release frees the slot taken by acquire.
func (c *Console) release() { <-c.inflight }

// originAllowed reports whether CORS requests from origin are allowed.
func (c *Console) originAllowed(origin string) bool {
	return c.anyOrigin || slices.Contains(c.origins, origin)
}

// setAllowOrigin sets Access-Control-Allow-Origin for an allowed origin.
func (c *Console) setAllowOrigin(h http.Header, origin string) {
	if c.anyOrigin {
		h.Set("Access-Control-Allow-Origin", "*")
		return
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
}

// preflight answers an OPTIONS request on an export path: 204 with the
// CORS headers for an allowed origin, 403 for another origin, and 204 with
// Allow for an OPTIONS request that is not a CORS preflight.
func (c *Console) preflight(w http.ResponseWriter, r *http.Request, origin string, allowed bool) error {
	h := w.Header()
	if origin == "" {
		h.Set("Allow", "POST, OPTIONS")
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	if !allowed {
		return problem.Errorf(http.StatusForbidden, "console: origin %q is not in CORSAllowedOrigins", origin)
	}
	if m := r.Header.Get("Access-Control-Request-Method"); m != "" && m != http.MethodPost {
		return problem.Errorf(http.StatusMethodNotAllowed, "console: CORS method %s not allowed; OTLP/HTTP exports use POST", m)
	}
	allow := corsBaseHeaders
	for _, name := range strings.Split(r.Header.Get("Access-Control-Request-Headers"), ",") {
		name = strings.ToLower(strings.TrimSpace(name))
		if slices.Contains(corsSafeHeaders, name) {
			allow += ", " + name
		}
	}
	h.Set("Access-Control-Allow-Methods", http.MethodPost)
	h.Set("Access-Control-Allow-Headers", allow)
	h.Set("Access-Control-Max-Age", corsMaxAge)
	h.Add("Vary", "Access-Control-Request-Headers")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func rpcCode(httpCode int) int32 {
	switch httpCode {
	case http.StatusNotFound:
		return rpcNotFound
	case http.StatusMethodNotAllowed:
		return rpcUnimplemented
	case http.StatusRequestEntityTooLarge, http.StatusTooManyRequests:
		return rpcResourceExhausted
	case http.StatusServiceUnavailable:
		return rpcUnavailable
	}
	if httpCode >= 500 {
		return rpcInternal
	}
	return rpcInvalidArgument
}

func (c *Console) exportTraces(w http.ResponseWriter, r *http.Request) error {
	var req coltracepb.ExportTraceServiceRequest
	if err := c.decode(w, r, &req); err != nil {
		return err
	}
	resp, err := c.consumeTraces(r.Context(), &req)
	if err != nil {
		return unavailable(err)
	}
	return writeMessage(w, r, http.StatusOK, resp)
}

func (c *Console) exportLogs(w http.ResponseWriter, r *http.Request) error {
	var req collogspb.ExportLogsServiceRequest
	if err := c.decode(w, r, &req); err != nil {
		return err
	}
	resp, err := c.consumeLogs(r.Context(), &req)
	if err != nil {
		return unavailable(err)
	}
	return writeMessage(w, r, http.StatusOK, resp)
}

func (c *Console) exportMetrics(w http.ResponseWriter, r *http.Request) error {
	var req colmetricspb.ExportMetricsServiceRequest
	if err := c.decode(w, r, &req); err != nil {
		return err
	}
	resp, err := c.consumeMetrics(r.Context(), &req)
	if err != nil {
		return unavailable(err)
	}
	return writeMessage(w, r, http.StatusOK, resp)
}

// unavailable answers an export that could not be persisted (see
// Console.persistExport) with 503, which OTLP exporters retry.
func unavailable(err error) error {
	return &problem.Error{Status: http.StatusServiceUnavailable, Detail: err.Error()}
}

// consumeTraces converts, persists and stores an export request, whether
// it came by HTTP or gRPC, and returns the response to send. It fails only
// when the request cannot be queued for the database (see
// Console.persistExport); nothing is stored then.
func (c *Console) consumeTraces(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	spans, rej := convertTraces(req)
	if err := c.persistExport(ctx, sigTraces, req, len(spans)); err != nil {
		return nil, err
	}
	c.store.addSpans(spans, rej.n)
	resp := &coltracepb.ExportTraceServiceResponse{}
	if rej.n > 0 {
		resp.PartialSuccess = &coltracepb.ExportTracePartialSuccess{
			RejectedSpans: int64(rej.n),
			ErrorMessage:  rej.message("spans"),
		}
		c.logRejected(ctx, "traces", rej.n, resp.PartialSuccess.ErrorMessage)
	}
	return resp, nil
}

// consumeLogs converts, persists and stores an export request, as
// consumeTraces does.
func (c *Console) consumeLogs(ctx context.Context, req *collogspb.ExportLogsServiceRequest) (*collogspb.ExportLogsServiceResponse, error) {
	records, rej := convertLogs(req)
	if err := c.persistExport(ctx, sigLogs, req, len(records)); err != nil {
		return nil, err
	}
	c.store.addLogs(records, rej.n)
	resp := &collogspb.ExportLogsServiceResponse{}
	if rej.n > 0 {
		resp.PartialSuccess = &collogspb.ExportLogsPartialSuccess{
			RejectedLogRecords: int64(rej.n),
			ErrorMessage:       rej.message("log records"),
		}
		c.logRejected(ctx, "logs", rej.n, resp.PartialSuccess.ErrorMessage)
	}
	return resp, nil
}

// consumeMetrics converts, persists and stores an export request, as
// consumeTraces does.
func (c *Console) consumeMetrics(ctx context.Context, req *colmetricspb.ExportMetricsServiceRequest) (*colmetricspb.ExportMetricsServiceResponse, error) {
	batches, rej := convertMetrics(req)
	if err := c.persistExport(ctx, sigMetrics, req, pointCount(batches)); err != nil {
		return nil, err
	}
	c.store.addMetrics(batches, rej.n)
	resp := &colmetricspb.ExportMetricsServiceResponse{}
	if rej.n > 0 {
		resp.PartialSuccess = &colmetricspb.ExportMetricsPartialSuccess{
			RejectedDataPoints: int64(rej.n),
			ErrorMessage:       rej.message("data points"),
		}
		c.logRejected(ctx, "metrics", rej.n, resp.PartialSuccess.ErrorMessage)
	}
	return resp, nil
}

func (c *Console) logRejected(ctx context.Context, signal string, n int, msg string) {
	c.log.LogAttrs(ctx, slog.LevelWarn, "console: rejected telemetry",
		slog.String("signal", signal), slog.Int("rejected", n), slog.String("reason", msg))
}

// decode checks the method and headers of an export request, reads its
// body within the size limit and unmarshals it, as protobuf or OTLP/JSON
// by its Content-Type, into msg.
func (c *Console) decode(w http.ResponseWriter, r *http.Request, msg proto.Message) error {
	if r.Method != http.MethodPost {
		return problem.Errorf(http.StatusMethodNotAllowed, "console: method %s not allowed; OTLP/HTTP exports use POST", r.Method)
	}
	if err := checkContentType(r.Header.Get("Content-Type")); err != nil {
		return err
	}
	body, err := readBody(w, r, c.maxBody)
	if err != nil {
		return err
	}
	if requestFormat(r) == formatJSON {
		err = unmarshalOTLPJSON(body, msg)
	} else {
		err = proto.Unmarshal(body, msg)
	}
	if err != nil {
		return &problem.Error{
			Status: http.StatusBadRequest,
			Detail: "console: decode " + string(msg.ProtoReflect().Descriptor().Name()) + ": " + err.Error(),
		}
	}
	return nil
}

func checkContentType(header string) error {
	const accepted = protobufType + " or " + jsonType
	if header == "" {
		return problem.Errorf(http.StatusUnsupportedMediaType, "console: missing Content-Type; send %s", accepted)
	}
	mt, _, err := mime.ParseMediaType(header)
	if err != nil {
		return problem.Errorf(http.StatusUnsupportedMediaType, "console: bad Content-Type %q; send %s", header, accepted)
	}
	switch mt {
	case protobufType, jsonType:
		return nil
	}
	return problem.Errorf(http.StatusUnsupportedMediaType, "console: unsupported Content-Type %q; send %s", mt, accepted)
}

// readBody reads the request body, decompressing gzip, and fails with 413
// when the body, compressed or not, exceeds limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	tooLarge := problem.Errorf(http.StatusRequestEntityTooLarge, "console: request body exceeds %d bytes", limit)
	if r.ContentLength > limit {
		return nil, tooLarge
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	var rd io.Reader = body
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		gz, err := gzip.NewReader(body)
		if err != nil {
			return nil, bodyError(err, tooLarge, "console: read gzip body")
		}
		defer gz.Close()
		rd = gz
	default:
		return nil, problem.Errorf(http.StatusUnsupportedMediaType, "console: unsupported Content-Encoding %q; use gzip or none", enc)
	}
	data, err := io.ReadAll(io.LimitReader(rd, limit+1))
	if err != nil {
		return nil, bodyError(err, tooLarge, "console: read body")
	}
	if int64(len(data)) > limit {
		return nil, tooLarge
	}
	return data, nil
}

// bodyError maps a body read failure to 413 when the limit was hit and to
// 400 otherwise.
func bodyError(err error, tooLarge *problem.Error, msg string) error {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return tooLarge
	}
	return &problem.Error{Status: http.StatusBadRequest, Detail: msg + ": " + err.Error()}
}

// writeMessage answers status with m encoded as the request was (protobuf
// or OTLP/JSON), gzip-compressed when the request accepts gzip. It fails,
// writing nothing, only when m cannot be encoded.
func writeMessage(w http.ResponseWriter, r *http.Request, status int, m proto.Message) error {
	var (
		body []byte
		err  error
		ct   = protobufType
	)
	if requestFormat(r) == formatJSON {
		body, err = marshalOTLPJSON(m)
		ct = jsonType
	} else {
		body, err = proto.Marshal(m)
	}
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", ct)
	h.Add("Vary", "Accept-Encoding")
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		var buf bytes.Buffer
		gz := gzip.NewWriter(&buf)
		_, _ = gz.Write(body) // writes to a bytes.Buffer do not fail
		_ = gz.Close()
		body = buf.Bytes()
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
	return nil
}

// acceptsGzip reports whether an Accept-Encoding header value allows gzip
// (listed, or covered by "*", without q=0).
func acceptsGzip(header string) bool {
	for part := range strings.SplitSeq(header, ",") {
		coding, params, _ := strings.Cut(part, ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		if coding != "gzip" && coding != "*" {
			continue
		}
		q := 1.0
		for p := range strings.SplitSeq(params, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					q = f
				}
			}
		}
		if q > 0 {
			return true
		}
	}
	return false
}
