package otlpload

import (
	"encoding/binary"
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Wire is a Generator's request marshalled once, whose trace and span ids,
// timestamps and order ids Next rewrites in place in the encoded bytes, so
// that an export costs no marshalling. That keeps the load generator cheap
// enough to offer more than a receiver sharing its CPUs can take. The spans
// with an error status (1%) stay at the same positions in every export.
// A Wire is not safe for concurrent use.
type Wire struct {
	g     *Generator
	buf   []byte
	spans [][]wireSpan // per trace, by position in the trace
	order [][]int      // per trace, offsets of its order.id string bytes
}

// wireSpan holds the offsets in Wire.buf of one span's rewritten fields;
// parentID is -1 for a root span.
type wireSpan struct {
	traceID, spanID, parentID int
	start, end                int // fixed64 values
}

// NewWire returns a Wire for sender holding batch spans in traces of
// spansPerTrace spans, like NewGenerator.
func NewWire(sender, batch, spansPerTrace int) (*Wire, error) {
	g := NewGenerator(sender, batch, spansPerTrace)
	buf, err := proto.Marshal(g.Next(time.Now()))
	if err != nil {
		return nil, fmt.Errorf("otlpload: marshal template: %w", err)
	}
	w := &Wire{g: g, buf: buf, spans: make([][]wireSpan, len(g.traces)), order: make([][]int, len(g.traces))}
	// Find each span's trace and position by its (random, unique) ids.
	type ref struct{ trace, pos int }
	where := map[string]ref{}
	for t, gt := range g.traces {
		w.spans[t] = make([]wireSpan, len(gt.spans))
		for i, sp := range gt.spans {
			where[string(sp.SpanId)] = ref{t, i}
		}
	}
	err = fields(buf, 0, func(num protowire.Number, off int, v []byte) error {
		if num != 1 { // ExportTraceServiceRequest.resource_spans
			return nil
		}
		return fields(v, off, func(num protowire.Number, off int, v []byte) error {
			if num != 2 { // ResourceSpans.scope_spans
				return nil
			}
			return fields(v, off, func(num protowire.Number, off int, v []byte) error {
				if num != 2 { // ScopeSpans.spans
					return nil
				}
				ws, sid, orderOff, err := parseSpan(v, off)
				if err != nil {
					return err
				}
				r, ok := where[string(sid)]
				if !ok {
					return fmt.Errorf("span id %x not generated", sid)
				}
				w.spans[r.trace][r.pos] = ws
				w.order[r.trace] = append(w.order[r.trace], orderOff)
				return nil
			})
		})
	})
	if err != nil {
		return nil, fmt.Errorf("otlpload: index template: %w", err)
	}
	return w, nil
}

// Spans returns the number of spans in each export.
func (w *Wire) Spans() int { return w.g.Spans() }

// Next rewrites the export for sending at now, as Generator.Next would
// (fresh random ids, a root duration between 5 ms and 500 ms ending at now,
// a unique order.id per trace), and returns it. The bytes are valid until
// the next call.
func (w *Wire) Next(now time.Time) []byte {
	g, b := w.g, w.buf
	end := uint64(now.UnixNano())
	for t, spans := range w.spans {
		g.seq++
		g.buf = appendOrderID(g.buf[:0], g.sender, g.seq)
		for _, off := range w.order[t] {
			copy(b[off:], g.buf)
		}
		var tid [16]byte
		binary.LittleEndian.PutUint64(tid[:8], g.rnd.Uint64())
		binary.LittleEndian.PutUint64(tid[8:], g.rnd.Uint64())
		dur := rootDuration(g)
		start := end - uint64(dur)
		for i, ws := range spans {
			sh := shapeAt(i)
			copy(b[ws.traceID:ws.traceID+16], tid[:])
			binary.LittleEndian.PutUint64(b[ws.spanID:], g.rnd.Uint64()|1)
			if ws.parentID >= 0 {
				p := spans[sh.parent].spanID
				copy(b[ws.parentID:ws.parentID+8], b[p:p+8])
			}
			s := start + uint64(sh.start*dur)
			binary.LittleEndian.PutUint64(b[ws.start:], s)
			binary.LittleEndian.PutUint64(b[ws.end:], s+uint64(sh.length*dur))
		}
	}
	return b
}

// parseSpan returns the offsets of the rewritten fields of the Span
// encoded in v (at offset base of the request), its span id, and the
// offset of its order.id value.
func parseSpan(v []byte, base int) (ws wireSpan, sid []byte, orderOff int, err error) {
	ws.parentID, orderOff = -1, -1
	err = fields(v, base, func(num protowire.Number, off int, v []byte) error {
		switch num {
		case 1: // trace_id
			ws.traceID = off
		case 2: // span_id
			ws.spanID, sid = off, v
		case 4: // parent_span_id
			ws.parentID = off
		case 7: // start_time_unix_nano, fixed64
			ws.start = off
		case 8: // end_time_unix_nano, fixed64
			ws.end = off
		case 9: // attributes: KeyValue{key = 1, value = 2: AnyValue{string_value = 1}}
			var key string
			valOff := -1
			err := fields(v, off, func(num protowire.Number, off int, v []byte) error {
				switch num {
				case 1:
					key = string(v)
				case 2:
					return fields(v, off, func(num protowire.Number, off int, _ []byte) error {
						if num == 1 {
							valOff = off
						}
						return nil
					})
				}
				return nil
			})
			if err != nil {
				return err
			}
			if key == "order.id" {
				orderOff = valOff
			}
		}
		return nil
	})
	if err == nil && (len(sid) != 8 || orderOff < 0) {
		err = fmt.Errorf("span at %d: no span id or order.id", base)
	}
	return ws, sid, orderOff, err
}

// fields calls fn for every field of the message encoded in b, which
// starts at offset base of the whole buffer, with the field's number, the
// offset of its value (for length-delimited fields, of the bytes after the
// length) and the value's bytes.
func fields(b []byte, base int, fn func(num protowire.Number, off int, v []byte) error) error {
	for i := 0; i < len(b); {
		num, typ, n := protowire.ConsumeTag(b[i:])
		if n < 0 {
			return fmt.Errorf("offset %d: %w", base+i, protowire.ParseError(n))
		}
		i += n
		var v []byte
		off := i
		if typ == protowire.BytesType {
			v, n = protowire.ConsumeBytes(b[i:])
			off = i + n - len(v)
		} else {
			n = protowire.ConsumeFieldValue(num, typ, b[i:])
			if n >= 0 {
				v = b[i : i+n]
			}
		}
		if n < 0 {
			return fmt.Errorf("offset %d: %w", base+i, protowire.ParseError(n))
		}
		if err := fn(num, base+off, v); err != nil {
			return err
		}
		i += n
	}
	return nil
}
