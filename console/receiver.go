package console

import (
	"compress/gzip"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"

	"github.com/cairnhq/cairn/problem"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"
)

// protobufType is the only OTLP/HTTP content type the receiver accepts.
const protobufType = "application/x-protobuf"

// gRPC status codes used in the google.rpc.Status body of OTLP error
// responses, as the OTLP/HTTP specification asks.
const (
	rpcInvalidArgument   = 3
	rpcNotFound          = 5
	rpcResourceExhausted = 8
	rpcUnimplemented     = 12
	rpcInternal          = 13
)

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

// otlp adapts an export handler: it answers errors with the status code and
// a protobuf google.rpc.Status body naming the problem, as OTLP/HTTP
// clients expect.
func (c *Console) otlp(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		he := problem.From(err)
		problem.Log(c.log, slog.LevelDebug, r, he, err)
		if he.Status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", http.MethodPost)
		}
		body, merr := proto.Marshal(&spb.Status{Code: rpcCode(he.Status), Message: he.Detail})
		if merr != nil {
			http.Error(w, he.Detail, he.Status)
			return
		}
		w.Header().Set("Content-Type", protobufType)
		w.WriteHeader(he.Status)
		_, _ = w.Write(body)
	})
}

func rpcCode(httpCode int) int32 {
	switch httpCode {
	case http.StatusNotFound:
		return rpcNotFound
	case http.StatusMethodNotAllowed:
		return rpcUnimplemented
	case http.StatusRequestEntityTooLarge:
		return rpcResourceExhausted
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
	spans, rej := convertTraces(&req)
	c.store.addSpans(spans, rej.n)
	resp := &coltracepb.ExportTraceServiceResponse{}
	if rej.n > 0 {
		resp.PartialSuccess = &coltracepb.ExportTracePartialSuccess{
			RejectedSpans: int64(rej.n),
			ErrorMessage:  rej.message("spans"),
		}
		c.logRejected(r, rej.n, resp.PartialSuccess.ErrorMessage)
	}
	return writeProto(w, resp)
}

func (c *Console) exportLogs(w http.ResponseWriter, r *http.Request) error {
	var req collogspb.ExportLogsServiceRequest
	if err := c.decode(w, r, &req); err != nil {
		return err
	}
	records, rej := convertLogs(&req)
	c.store.addLogs(records, rej.n)
	resp := &collogspb.ExportLogsServiceResponse{}
	if rej.n > 0 {
		resp.PartialSuccess = &collogspb.ExportLogsPartialSuccess{
			RejectedLogRecords: int64(rej.n),
			ErrorMessage:       rej.message("log records"),
		}
		c.logRejected(r, rej.n, resp.PartialSuccess.ErrorMessage)
	}
	return writeProto(w, resp)
}

func (c *Console) exportMetrics(w http.ResponseWriter, r *http.Request) error {
	var req colmetricspb.ExportMetricsServiceRequest
	if err := c.decode(w, r, &req); err != nil {
		return err
	}
	batches, rej := convertMetrics(&req)
	c.store.addMetrics(batches, rej.n)
	resp := &colmetricspb.ExportMetricsServiceResponse{}
	if rej.n > 0 {
		resp.PartialSuccess = &colmetricspb.ExportMetricsPartialSuccess{
			RejectedDataPoints: int64(rej.n),
			ErrorMessage:       rej.message("data points"),
		}
		c.logRejected(r, rej.n, resp.PartialSuccess.ErrorMessage)
	}
	return writeProto(w, resp)
}

func (c *Console) logRejected(r *http.Request, n int, msg string) {
	c.log.LogAttrs(r.Context(), slog.LevelWarn, "console: rejected telemetry",
		slog.String("path", r.URL.Path), slog.Int("rejected", n), slog.String("reason", msg))
}

// decode checks the method and headers of an export request, reads its
// body within the size limit and unmarshals it into msg.
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
	if err := proto.Unmarshal(body, msg); err != nil {
		return &problem.Error{
			Status: http.StatusBadRequest,
			Detail: "console: decode " + string(msg.ProtoReflect().Descriptor().Name()) + ": " + err.Error(),
		}
	}
	return nil
}

func checkContentType(header string) error {
	if header == "" {
		return problem.Errorf(http.StatusUnsupportedMediaType, "console: missing Content-Type; send %s", protobufType)
	}
	mt, _, err := mime.ParseMediaType(header)
	if err != nil {
		return problem.Errorf(http.StatusUnsupportedMediaType, "console: bad Content-Type %q; send %s", header, protobufType)
	}
	switch mt {
	case protobufType:
		return nil
	case "application/json":
		return problem.Errorf(http.StatusUnsupportedMediaType, "console: OTLP/JSON is not supported yet; send %s (set the exporter's protocol to http/protobuf)", protobufType)
	}
	return problem.Errorf(http.StatusUnsupportedMediaType, "console: unsupported Content-Type %q; send %s", mt, protobufType)
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

// writeProto answers 200 with the protobuf encoding of m.
func writeProto(w http.ResponseWriter, m proto.Message) error {
	body, err := proto.Marshal(m)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", protobufType)
	_, _ = w.Write(body)
	return nil
}
