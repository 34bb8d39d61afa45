// Package otlpload generates realistic OTLP trace exports and sends them to
// an OTLP receiver over gRPC or HTTP (protobuf), as fast as the receiver
// accepts them or at a fixed rate, counting the exports it accepts and
// refuses. It backs the otlpload and consolepeers commands and the console
// query benchmark, so that every peer sees the same spans.
package otlpload

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// Services are the service.name values of the generated resources; trace i
// of an export belongs to Services[i%len(Services)].
var Services = []string{"checkout", "orders", "payments", "inventory", "shipping"}

// shape describes one span of a generated trace: its name and kind, its
// parent's position in the trace (-1 for the root), and where it starts and
// how long it lasts as fractions of the root's duration.
type shape struct {
	name          string
	kind          tracepb.Span_SpanKind
	parent        int
	start, length float64
}

// shapes is the 8-span trace: a server root with client, internal and a
// producer/consumer pair below it. Traces longer than 8 repeat shapes 1..7
// under the root; shorter ones take a prefix.
var shapes = []shape{
	{"POST /orders", tracepb.Span_SPAN_KIND_SERVER, -1, 0, 1},
	{"validate order", tracepb.Span_SPAN_KIND_INTERNAL, 0, 0.02, 0.08},
	{"GET /inventory/{sku}", tracepb.Span_SPAN_KIND_CLIENT, 0, 0.10, 0.20},
	{"SELECT orders", tracepb.Span_SPAN_KIND_CLIENT, 0, 0.30, 0.15},
	{"publish order.created", tracepb.Span_SPAN_KIND_PRODUCER, 0, 0.45, 0.05},
	{"process order.created", tracepb.Span_SPAN_KIND_CONSUMER, 4, 0.50, 0.40},
	{"reserve stock", tracepb.Span_SPAN_KIND_INTERNAL, 5, 0.55, 0.25},
	{"render response", tracepb.Span_SPAN_KIND_INTERNAL, 0, 0.92, 0.07},
}

// shapeAt returns the shape of the span at position i of a trace.
func shapeAt(i int) shape {
	if i < len(shapes) {
		return shapes[i]
	}
	s := shapes[1+(i-1)%(len(shapes)-1)]
	if s.parent > 0 {
		s.parent = 0
	}
	return s
}

// genTrace points into one trace of the template request.
type genTrace struct {
	spans   []*tracepb.Span
	orderID *commonpb.AnyValue_StringValue
}

// Generator builds export requests of a fixed shape and gives every call to
// Next fresh trace and span ids, timestamps, order ids and error statuses,
// reusing the same request: the request returned by Next is valid until the
// next call. A Generator is not safe for concurrent use; give each sender
// its own.
type Generator struct {
	req    *coltracepb.ExportTraceServiceRequest
	traces []genTrace
	spans  int
	sender uint64
	seq    uint64 // traces generated so far
	nspan  uint64 // spans generated so far, for the 1% error rate
	rnd    *rand.Rand
	errSt  *tracepb.Status
	okSt   *tracepb.Status
	buf    []byte
}

// NewGenerator returns a Generator for sender (which makes its order ids
// unique across senders) whose requests hold batch spans in traces of
// spansPerTrace spans: batch/spansPerTrace traces (at least one), spread
// over the Services.
func NewGenerator(sender, batch, spansPerTrace int) *Generator {
	spansPerTrace = max(spansPerTrace, 1)
	ntraces := max(batch/spansPerTrace, 1)
	g := &Generator{
		req:    &coltracepb.ExportTraceServiceRequest{},
		sender: uint64(sender),
		rnd:    rand.New(rand.NewPCG(uint64(sender)+1, uint64(time.Now().UnixNano()))),
		errSt:  &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: "order rejected"},
		okSt:   &tracepb.Status{},
	}
	scopes := make([]*tracepb.ScopeSpans, len(Services))
	for i, svc := range Services {
		scopes[i] = &tracepb.ScopeSpans{Scope: &commonpb.InstrumentationScope{Name: "otlpload", Version: "1.0.0"}}
		g.req.ResourceSpans = append(g.req.ResourceSpans, &tracepb.ResourceSpans{
			Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{
				str("service.name", svc),
				str("service.version", "1.4.2"),
				str("deployment.environment.name", "bench"),
				str("host.name", "bench-host-"+strconv.Itoa(i)),
			}},
			ScopeSpans: []*tracepb.ScopeSpans{scopes[i]},
		})
	}
	for t := range ntraces {
		gt := genTrace{orderID: &commonpb.AnyValue_StringValue{}}
		order := &commonpb.KeyValue{Key: "order.id", Value: &commonpb.AnyValue{Value: gt.orderID}}
		for i := range spansPerTrace {
			sh := shapeAt(i)
			sp := &tracepb.Span{
				TraceId:    make([]byte, 16),
				SpanId:     make([]byte, 8),
				Name:       sh.name,
				Kind:       sh.kind,
				Attributes: spanAttrs(sh, order),
				Status:     g.okSt,
			}
			if sh.parent >= 0 {
				sp.ParentSpanId = make([]byte, 8)
			}
			gt.spans = append(gt.spans, sp)
		}
		sc := scopes[t%len(Services)]
		sc.Spans = append(sc.Spans, gt.spans...)
		g.traces = append(g.traces, gt)
		g.spans += spansPerTrace
	}
	return g
}

// Spans returns the number of spans in each request.
func (g *Generator) Spans() int { return g.spans }

// Next refreshes the request for an export sent at now and returns it.
// Every trace gets new random ids, a root duration between 5 ms and 500 ms
// ending at now, and a unique order.id (the same on all its spans); one
// span in a hundred has an error status.
func (g *Generator) Next(now time.Time) *coltracepb.ExportTraceServiceRequest {
	end := uint64(now.UnixNano())
	for _, gt := range g.traces {
		g.seq++
		var tid [16]byte
		binary.LittleEndian.PutUint64(tid[:8], g.rnd.Uint64())
		binary.LittleEndian.PutUint64(tid[8:], g.rnd.Uint64())
		g.buf = appendOrderID(g.buf[:0], g.sender, g.seq)
		gt.orderID.StringValue = string(g.buf)
		dur := rootDuration(g)
		start := end - uint64(dur)
		for i, sp := range gt.spans {
			sh := shapeAt(i)
			copy(sp.TraceId, tid[:])
			binary.LittleEndian.PutUint64(sp.SpanId, g.rnd.Uint64()|1)
			if sh.parent >= 0 {
				copy(sp.ParentSpanId, gt.spans[sh.parent].SpanId)
			}
			sp.StartTimeUnixNano = start + uint64(sh.start*dur)
			sp.EndTimeUnixNano = sp.StartTimeUnixNano + uint64(sh.length*dur)
			g.nspan++
			if g.nspan%100 == 0 {
				sp.Status = g.errSt
			} else {
				sp.Status = g.okSt
			}
		}
	}
	return g.req
}

// rootDuration draws a root span duration in nanoseconds, log-uniform in
// [5ms, 500ms].
func rootDuration(g *Generator) float64 {
	return float64(5*time.Millisecond) * math.Exp(g.rnd.Float64()*math.Log(100))
}

// appendOrderID appends the order.id of trace seq of sender, fixed-width
// ("ord-0003-000000001234") so that Wire can rewrite it in place.
func appendOrderID(b []byte, sender, seq uint64) []byte {
	b = append(b, "ord-"...)
	b = appendPadded(b, sender%10_000, 4)
	b = append(b, '-')
	return appendPadded(b, seq%1_000_000_000_000, 12)
}

// appendPadded appends n in decimal, zero-padded to width digits.
func appendPadded(b []byte, n uint64, width int) []byte {
	start := len(b)
	b = append(b, make([]byte, width)...)
	for i := len(b) - 1; i >= start; i-- {
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return b
}

// LastOrderID returns the order.id of the first trace of the last request
// returned by Next, and that trace's id; benchmarks use them to look the
// trace up.
func (g *Generator) LastOrderID() (orderID string, traceID []byte) {
	gt := g.traces[0]
	return gt.orderID.StringValue, gt.spans[0].TraceId
}

// spanAttrs returns the eight attributes of a span of shape sh; order is
// the trace's order.id attribute, shared by all its spans.
func spanAttrs(sh shape, order *commonpb.KeyValue) []*commonpb.KeyValue {
	switch sh.kind {
	case tracepb.Span_SPAN_KIND_SERVER:
		return []*commonpb.KeyValue{
			str("http.request.method", "POST"), str("url.path", "/orders"), str("http.route", "/orders"),
			num("http.response.status_code", 201), str("server.address", "shop.example"),
			str("user_agent.original", "otlpload/1.0"), order, str("customer.tier", "gold"),
		}
	case tracepb.Span_SPAN_KIND_CLIENT:
		return []*commonpb.KeyValue{
			str("http.request.method", "GET"), str("url.full", "http://inventory:8080/inventory/sku-42"),
			str("server.address", "inventory"), num("server.port", 8080), num("http.response.status_code", 200),
			str("network.protocol.version", "1.1"), order, num("http.request.resend_count", 0),
		}
	case tracepb.Span_SPAN_KIND_PRODUCER, tracepb.Span_SPAN_KIND_CONSUMER:
		op := "send"
		if sh.kind == tracepb.Span_SPAN_KIND_CONSUMER {
			op = "process"
		}
		return []*commonpb.KeyValue{
			str("messaging.system", "kafka"), str("messaging.destination.name", "order.created"),
			str("messaging.operation.type", op), num("messaging.message.body.size", 412),
			str("server.address", "kafka"), num("server.port", 9092), order, str("network.transport", "tcp"),
		}
	default:
		return []*commonpb.KeyValue{
			str("code.function.name", "orders.Validate"), str("code.file.path", "orders/validate.go"),
			num("code.line.number", 42), num("order.items", 3), order, str("customer.tier", "gold"),
			{Key: "cache.hit", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: true}}},
			str("feature.flag", "fast-checkout"),
		}
	}
}

func str(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

func num(k string, v int64) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v}}}
}
