package otlpload

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Outcome is how a receiver answered one export.
type Outcome struct {
	// Accepted counts the spans the receiver kept: those sent less the
	// partial_success rejections; zero when the export was refused or failed.
	Accepted int
	// Refused reports a refusal that asks for a retry: HTTP 429 or 503, or
	// gRPC RESOURCE_EXHAUSTED or UNAVAILABLE.
	Refused bool
	// RetryHint reports that a refusal carried Retry-After (HTTP) or a
	// google.rpc.RetryInfo (gRPC).
	RetryHint bool
	// Err is set for any other failure, and describes a refusal too.
	Err error
}

// Client sends OTLP trace exports to one receiver. Export and ExportRaw
// are safe for concurrent use; Close releases its connections.
type Client interface {
	// Export sends req.
	Export(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) Outcome
	// ExportRaw sends body, an encoded ExportTraceServiceRequest holding
	// spans spans (as made by Wire), and is done with body when it returns.
	ExportRaw(ctx context.Context, body []byte, spans int) Outcome
	Close() error
}

// NewClient returns a Client for protocol "grpc" or "http" (OTLP/HTTP with
// protobuf bodies) sending to target (host:port).
func NewClient(protocol, target string) (Client, error) {
	switch protocol {
	case "grpc":
		conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, fmt.Errorf("otlpload: grpc client for %s: %w", target, err)
		}
		return &grpcClient{conn: conn, c: coltracepb.NewTraceServiceClient(conn)}, nil
	case "http":
		tr := &http.Transport{MaxIdleConnsPerHost: 1024, DisableCompression: true}
		return &httpClient{url: "http://" + target + "/v1/traces", hc: &http.Client{Transport: tr}}, nil
	default:
		return nil, fmt.Errorf("otlpload: protocol %q: want grpc or http", protocol)
	}
}

// grpcClient exports over one gRPC connection.
type grpcClient struct {
	conn *grpc.ClientConn
	c    coltracepb.TraceServiceClient
}

func (g *grpcClient) Export(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) Outcome {
	resp, err := g.c.Export(ctx, req)
	return grpcOutcome(countSpans(req), resp, err)
}

func (g *grpcClient) ExportRaw(ctx context.Context, body []byte, spans int) Outcome {
	var resp coltracepb.ExportTraceServiceResponse
	err := g.conn.Invoke(ctx, coltracepb.TraceService_Export_FullMethodName, rawMessage(body), &resp, grpc.ForceCodec(rawCodec{}))
	return grpcOutcome(spans, &resp, err)
}

// grpcOutcome returns the Outcome of a gRPC export of spans spans.
func grpcOutcome(spans int, resp *coltracepb.ExportTraceServiceResponse, err error) Outcome {
	if err != nil {
		st := status.Convert(err)
		out := Outcome{Err: err}
		switch st.Code() {
		case codes.ResourceExhausted, codes.Unavailable:
			out.Refused = true
			for _, d := range st.Details() {
				if _, ok := d.(*errdetails.RetryInfo); ok {
					out.RetryHint = true
				}
			}
		}
		return out
	}
	return Outcome{Accepted: spans - int(resp.GetPartialSuccess().GetRejectedSpans())}
}

// rawMessage is an already encoded protobuf message, sent as is by
// rawCodec.
type rawMessage []byte

// rawCodec is gRPC's protobuf codec, except that it sends a rawMessage
// without marshalling it. It keeps the name "proto", so the content type
// on the wire is the ordinary application/grpc+proto.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	if m, ok := v.(rawMessage); ok {
		return m, nil
	}
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("otlpload: cannot marshal %T", v)
	}
	return proto.Marshal(m)
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("otlpload: cannot unmarshal into %T", v)
	}
	return proto.Unmarshal(data, m)
}

func (rawCodec) Name() string { return "proto" }

func (g *grpcClient) Close() error { return g.conn.Close() }

// httpClient exports over OTLP/HTTP with protobuf bodies.
type httpClient struct {
	url string
	hc  *http.Client
}

// Export marshals req into a new buffer on each call, which keeps
// httpClient safe for concurrent use.
func (h *httpClient) Export(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) Outcome {
	body, err := proto.Marshal(req)
	if err != nil {
		return Outcome{Err: fmt.Errorf("otlpload: marshal export: %w", err)}
	}
	return h.ExportRaw(ctx, body, countSpans(req))
}

func (h *httpClient) ExportRaw(ctx context.Context, body []byte, spans int) Outcome {
	rb := &requestBody{Reader: bytes.NewReader(body), closed: make(chan struct{})}
	// The transport may go on writing the body after the response has
	// arrived (when the receiver answers early, as with a 429): wait until
	// it closes the body, so that the caller may reuse its bytes.
	defer func() { <-rb.closed }()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, rb)
	if err != nil {
		rb.Close()
		return Outcome{Err: fmt.Errorf("otlpload: request for %s: %w", h.url, err)}
	}
	hr.ContentLength = int64(len(body))
	hr.Header.Set("Content-Type", "application/x-protobuf")
	resp, err := h.hc.Do(hr)
	if err != nil {
		return Outcome{Err: err}
	}
	defer resp.Body.Close()
	return h.outcome(resp, spans)
}

// requestBody is a request body that reports when the transport has
// closed it.
type requestBody struct {
	*bytes.Reader
	once   sync.Once
	closed chan struct{}
}

func (b *requestBody) Close() error {
	b.once.Do(func() { close(b.closed) })
	return nil
}

// outcome reads the response to an export of spans spans.
func (h *httpClient) outcome(resp *http.Response, spans int) Outcome {
	rb, err := io.ReadAll(resp.Body)
	switch {
	case err != nil:
		return Outcome{Err: fmt.Errorf("otlpload: read response from %s: %w", h.url, err)}
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		return Outcome{
			Refused:   true,
			RetryHint: resp.Header.Get("Retry-After") != "",
			Err:       fmt.Errorf("otlpload: %s answered %s", h.url, resp.Status),
		}
	case resp.StatusCode != http.StatusOK:
		return Outcome{Err: fmt.Errorf("otlpload: %s answered %s: %.200s", h.url, resp.Status, rb)}
	}
	var er coltracepb.ExportTraceServiceResponse
	if err := proto.Unmarshal(rb, &er); err != nil {
		return Outcome{Err: fmt.Errorf("otlpload: decode response from %s: %w", h.url, err)}
	}
	return Outcome{Accepted: spans - int(er.GetPartialSuccess().GetRejectedSpans())}
}

func (h *httpClient) Close() error {
	h.hc.CloseIdleConnections()
	return nil
}

// countSpans returns the number of spans in req.
func countSpans(req *coltracepb.ExportTraceServiceRequest) int {
	n := 0
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			n += len(ss.Spans)
		}
	}
	return n
}
