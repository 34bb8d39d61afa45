package console

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// jsonType is the OTLP/JSON content type.
const jsonType = "application/json"

// hexIDFields are the JSON names, in both the lowerCamelCase form OTLP/JSON
// uses and the proto field form protojson also accepts, of the bytes fields
// that OTLP/JSON encodes as hex instead of protobuf JSON's base64: trace and
// span ids of spans, span links, log records and exemplars. No other OTLP
// message has a field of these names.
var hexIDFields = map[string]bool{
	"traceId": true, "spanId": true, "parentSpanId": true,
	"trace_id": true, "span_id": true, "parent_span_id": true,
}

// unmarshalOTLPJSON decodes an OTLP/JSON body into msg. Hex ids are
// converted to the base64 protojson expects first; an id that is not a
// hex string is an error naming its JSON path. Unknown fields are ignored,
// as the OTLP specification requires.
func unmarshalOTLPJSON(body []byte, msg proto.Message) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // keep int64 numbers exact when re-encoding
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); err == nil {
		return fmt.Errorf("invalid JSON: data after the top-level value")
	}
	if err := hexToBase64(doc, ""); err != nil {
		return err
	}
	fixed, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("re-encode JSON: %w", err)
	}
	return protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(fixed, msg)
}

// hexToBase64 rewrites, in place, every hex id field in v (see hexIDFields)
// to base64. path is v's JSON path, used in errors.
func hexToBase64(v any, path string) error {
	switch v := v.(type) {
	case map[string]any:
		for k, elem := range v {
			p := k
			if path != "" {
				p = path + "." + k
			}
			if s, ok := elem.(string); ok && hexIDFields[k] {
				b, err := hex.DecodeString(s)
				if err != nil {
					return fmt.Errorf("invalid %s %q: want a hex string", p, s)
				}
				v[k] = base64.StdEncoding.EncodeToString(b)
				continue
			}
			if err := hexToBase64(elem, p); err != nil {
				return err
			}
		}
	case []any:
		for i, elem := range v {
			if err := hexToBase64(elem, path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
	}
	return nil
}

// marshalOTLPJSON encodes an export response as OTLP/JSON. Responses hold
// no ids, so plain protojson is OTLP/JSON for them.
func marshalOTLPJSON(m proto.Message) ([]byte, error) {
	return protojson.Marshal(m)
}
