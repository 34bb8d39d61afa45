package telemetry

import (
	"context"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"math"

	"go.opentelemetry.io/otel/trace"
)

// Attribute keys that Logger adds to console and file records logged with a
// context that holds a valid span.
const (
	TraceIDKey = "trace_id"
	SpanIDKey  = "span_id"
)

// acceptAll is the level given to the inner handlers: fanout gates records
// by the shared LevelVar before they get there.
const acceptAll = slog.Level(math.MinInt)

// fanout is the slog.Handler behind Telemetry.Logger. It gates every record
// by one shared level and hands it to up to three handlers:
//
//   - otel, the otelslog bridge into the instance's LoggerProvider, which
//     takes the trace context from ctx natively;
//   - console and file, text or JSON handlers, which get the record with
//     trace_id and span_id attributes added when ctx holds a valid span.
//
// A nil handler is skipped. fanout is immutable and safe for concurrent use;
// WithAttrs and WithGroup derive all three handlers alike.
type fanout struct {
	level   slog.Leveler
	otel    slog.Handler
	console slog.Handler
	file    slog.Handler
}

var _ slog.Handler = (*fanout)(nil)

// newFormatHandler returns a text or JSON handler on w that accepts every
// level.
func newFormatHandler(format string, w io.Writer, addSource bool, replace func([]string, slog.Attr) slog.Attr) slog.Handler {
	opts := &slog.HandlerOptions{Level: acceptAll, AddSource: addSource, ReplaceAttr: replace}
	if format == LogFormatJSON {
		return slog.NewJSONHandler(w, opts)
	}
	return slog.NewTextHandler(w, opts)
}

// Enabled reports whether level is at or above the shared level and some
// output is configured.
func (h *fanout) Enabled(_ context.Context, level slog.Level) bool {
	if h.otel == nil && h.console == nil && h.file == nil {
		return false
	}
	return level >= h.level.Level()
}

// Handle passes r to every configured handler and joins their errors.
// Records with a trace context carry trace_id and span_id attributes in the
// console and file output; when the logger has open groups, they are
// qualified by those groups like any other record attribute.
func (h *fanout) Handle(ctx context.Context, r slog.Record) error {
	var errOTel, errConsole, errFile error
	if h.otel != nil {
		// First, before r gains attributes: the bridge records the trace
		// context in the OpenTelemetry record's own fields.
		errOTel = h.otel.Handle(ctx, r)
	}
	if h.console == nil && h.file == nil {
		return errOTel
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		// One allocation for both ids: hex-encode them into one string
		// and slice it.
		var buf [48]byte
		tid, sid := sc.TraceID(), sc.SpanID()
		hex.Encode(buf[:32], tid[:])
		hex.Encode(buf[32:], sid[:])
		ids := string(buf[:])
		r.AddAttrs(slog.String(TraceIDKey, ids[:32]), slog.String(SpanIDKey, ids[32:]))
	}
	if h.console != nil {
		errConsole = h.console.Handle(ctx, r)
	}
	if h.file != nil {
		errFile = h.file.Handle(ctx, r)
	}
	if errOTel == nil && errConsole == nil && errFile == nil {
		return nil
	}
	return errors.Join(errOTel, errConsole, errFile)
}

// WithAttrs returns a handler whose outputs all carry attrs.
func (h *fanout) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	c := *h
	if c.otel != nil {
		c.otel = c.otel.WithAttrs(attrs)
	}
	if c.console != nil {
		c.console = c.console.WithAttrs(attrs)
	}
	if c.file != nil {
		c.file = c.file.WithAttrs(attrs)
	}
	return &c
}

// WithGroup returns a handler whose outputs all qualify later attributes by
// name. An empty name returns h, as the slog.Handler contract requires.
func (h *fanout) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	if c.otel != nil {
		c.otel = c.otel.WithGroup(name)
	}
	if c.console != nil {
		c.console = c.console.WithGroup(name)
	}
	if c.file != nil {
		c.file = c.file.WithGroup(name)
	}
	return &c
}
