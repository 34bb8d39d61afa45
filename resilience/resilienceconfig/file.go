package resilienceconfig

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/cairnhq/cairn/resilience/adaptive"
	"github.com/cairnhq/cairn/resilience/budget"
	"github.com/cairnhq/cairn/resilience/bulkhead"
	"github.com/cairnhq/cairn/resilience/circuitbreaker"
	"github.com/cairnhq/cairn/resilience/hedge"
	"github.com/cairnhq/cairn/resilience/ratelimit"
	"github.com/cairnhq/cairn/resilience/retry"
	"github.com/cairnhq/cairn/resilience/shed"
)

// Stage kinds, the keys of a pipeline's stage entries.
const (
	KindRetry          = "retry"
	KindCircuitBreaker = "circuitbreaker"
	KindBulkhead       = "bulkhead"
	KindRateLimit      = "ratelimit"
	KindTimeout        = "timeout"
	KindAdaptive       = "adaptive"
	KindShed           = "shed"
	KindThrottle       = "throttle"
	KindHedge          = "hedge"
)

// kinds lists the stage kinds in the order error messages name them.
var kinds = []string{KindRetry, KindCircuitBreaker, KindBulkhead, KindRateLimit, KindTimeout, KindAdaptive, KindShed, KindThrottle, KindHedge}

// File is a resilience configuration: named policies, and pipelines
// composed of them. It is a plain struct decoded from YAML or JSON by
// [Decode] (the same schema in both); [File.Validate] reports every
// problem. The zero File is valid and defines nothing.
//
// A policy's name is its key in its section. A policy whose own name field
// is empty is named after its key, so metrics and errors carry it. Two
// pipelines that name the same breaker, bulkhead or rate limiter share one
// policy object, and so its state. A throttle has no name field: it is
// named only by its key.
type File struct {
	// Breakers are circuit breakers by name. Default none.
	Breakers map[string]circuitbreaker.Config `json:"breakers,omitempty"`
	// Bulkheads are bulkheads by name. Default none.
	Bulkheads map[string]bulkhead.Config `json:"bulkheads,omitempty"`
	// RateLimits are rate limiters by name. Default none.
	RateLimits map[string]ratelimit.Config `json:"ratelimits,omitempty"`
	// Retries are retry policies by name. Default none.
	Retries map[string]Retry `json:"retries,omitempty"`
	// Budgets are retry budgets by name, for Retries and Hedges to share.
	// Default none.
	Budgets map[string]budget.Config `json:"budgets,omitempty"`
	// Adaptive are adaptive concurrency limiters by name. Default none.
	Adaptive map[string]adaptive.Config `json:"adaptive,omitempty"`
	// Shedders are load shedders by name. Each samples the CPU usage in a
	// goroutine that [Set.Close] or [Reloader.Close] stops. Default none.
	Shedders map[string]shed.Config `json:"shedders,omitempty"`
	// Throttles are client-side adaptive throttles by name. Default none.
	Throttles map[string]adaptive.ThrottleConfig `json:"throttles,omitempty"`
	// Hedges are hedging policies by name. Default none.
	Hedges map[string]Hedge `json:"hedges,omitempty"`
	// Pipelines are lists of stages by name, the first outermost. Default
	// none.
	Pipelines map[string][]Stage `json:"pipelines,omitempty"`
}

// Retry is a retry policy of a [File]: a [retry.Policy] and the name of the
// budget, in the File's Budgets, that limits its retries. In a file its
// fields are the policy's, plus "budget".
type Retry struct {
	// Policy is the retry policy. Its function fields cannot come from a
	// file; set them with [WithRetryConfig].
	Policy retry.Policy
	// Budget names an entry of [File.Budgets]. Default "": no budget.
	Budget string
}

// MarshalJSON encodes r as the policy's fields plus "budget".
func (r Retry) MarshalJSON() ([]byte, error) { return marshalWithBudget(r.Policy, r.Budget) }

// UnmarshalJSON decodes r from the policy's fields plus "budget". It does
// not validate r.
func (r *Retry) UnmarshalJSON(data []byte) error {
	*r = Retry{}
	return unmarshalWithBudget(data, &r.Policy, &r.Budget)
}

// Hedge is a hedging policy of a [File]: a [hedge.Config] and the name of
// the budget, in the File's Budgets, that hedged attempts are drawn from
// (typically the one the retries to the same dependency use). In a file
// its fields are the config's, plus "budget".
type Hedge struct {
	// Config configures the hedger.
	Config hedge.Config
	// Budget names an entry of [File.Budgets]. Default "": no budget.
	Budget string
}

// MarshalJSON encodes h as the config's fields plus "budget".
func (h Hedge) MarshalJSON() ([]byte, error) { return marshalWithBudget(h.Config, h.Budget) }

// UnmarshalJSON decodes h from the config's fields plus "budget". It does
// not validate h.
func (h *Hedge) UnmarshalJSON(data []byte) error {
	*h = Hedge{}
	return unmarshalWithBudget(data, &h.Config, &h.Budget)
}

// marshalWithBudget encodes v, a JSON object, with a "budget" key added
// unless budget is empty.
func marshalWithBudget(v any, budget string) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil || budget == "" {
		return data, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	if m["budget"], err = json.Marshal(budget); err != nil {
		return nil, err
	}
	return json.Marshal(m)
}

// unmarshalWithBudget decodes the JSON object data into v, except for its
// "budget" key, which it decodes into budget.
func unmarshalWithBudget(data []byte, v any, budget *string) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return err
	}
	if b, ok := m["budget"]; ok {
		if err := json.Unmarshal(b, budget); err != nil {
			return fmt.Errorf("budget: %w", err)
		}
		delete(m, "budget")
	}
	if m == nil { // null
		return nil
	}
	rest, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return json.Unmarshal(rest, v)
}

// Stage is one entry of a pipeline: in a file, an object with exactly one
// key, the stage kind, whose value is the name of a policy
// ({"retry": "inventory"}, {"shed": "api"}) or, for a timeout, a duration ({"timeout":
// "2s"}, or a number of nanoseconds).
type Stage struct {
	// Kind is KindRetry, KindCircuitBreaker, KindBulkhead, KindRateLimit,
	// KindTimeout, KindAdaptive, KindShed, KindThrottle or KindHedge.
	Kind string
	// Policy names the policy of the stage's kind; unused by a timeout.
	Policy string
	// Timeout is a timeout stage's duration, which must be positive.
	Timeout time.Duration
}

// MarshalJSON encodes s as an object with one key.
func (s Stage) MarshalJSON() ([]byte, error) {
	var v any = s.Policy
	if s.Kind == KindTimeout {
		v = s.Timeout.String()
	}
	return json.Marshal(map[string]any{s.Kind: v})
}

// UnmarshalJSON decodes s from an object with exactly one key. It accepts
// any key, for [File.Validate] to report an unknown kind with its path.
func (s *Stage) UnmarshalJSON(data []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return err
	}
	if len(m) != 1 {
		return fmt.Errorf("stage has %d keys (%s): want exactly one of %s", len(m), strings.Join(sortedKeys(m), ", "), strings.Join(kinds, ", "))
	}
	*s = Stage{}
	for k, v := range m {
		s.Kind = k
		if k == KindTimeout {
			return unmarshalDuration(v, &s.Timeout)
		}
		if err := json.Unmarshal(v, &s.Policy); err != nil {
			return fmt.Errorf("%s: want the name of a policy: %w", k, err)
		}
	}
	return nil
}

// unmarshalDuration decodes a duration given as a string such as "2s" or a
// number of nanoseconds.
func unmarshalDuration(data []byte, d *time.Duration) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		var n int64
		if err := json.Unmarshal(data, &n); err != nil {
			return fmt.Errorf("invalid duration %s: want a string such as \"2s\" or nanoseconds", data)
		}
		*d = time.Duration(n)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration: %w", err)
	}
	*d = v
	return nil
}

// Decode decodes a File from YAML or JSON (JSON is YAML). It rejects
// unknown fields, duplicate keys and stage entries without exactly one key,
// naming each with its path, reports YAML syntax errors with their line,
// and does not validate the File: [New] and the [Reloader] do.
func Decode(data []byte) (*File, error) {
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("resilienceconfig: %w", err)
	}
	if errs := checkKeys(js); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	var f File
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("resilienceconfig: %w", err)
	}
	return &f, nil
}

// Load reads the file at path and decodes it with [Decode].
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("resilienceconfig: %w", err)
	}
	f, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// section describes a policy section of a File for the key check.
type section struct {
	typ    reflect.Type // whose json fields are the keys
	extra  string       // one more key the section's objects accept
	decode reflect.Type // the type an entry decodes to
}

var sections = map[string]section{
	"breakers":   {typ: reflect.TypeFor[circuitbreaker.Config](), decode: reflect.TypeFor[circuitbreaker.Config]()},
	"bulkheads":  {typ: reflect.TypeFor[bulkhead.Config](), decode: reflect.TypeFor[bulkhead.Config]()},
	"ratelimits": {typ: reflect.TypeFor[ratelimit.Config](), decode: reflect.TypeFor[ratelimit.Config]()},
	"retries":    {typ: reflect.TypeFor[retry.Policy](), extra: "budget", decode: reflect.TypeFor[Retry]()},
	"budgets":    {typ: reflect.TypeFor[budget.Config](), decode: reflect.TypeFor[budget.Config]()},
	"adaptive":   {typ: reflect.TypeFor[adaptive.Config](), decode: reflect.TypeFor[adaptive.Config]()},
	"shedders":   {typ: reflect.TypeFor[shed.Config](), decode: reflect.TypeFor[shed.Config]()},
	"throttles":  {typ: reflect.TypeFor[adaptive.ThrottleConfig](), decode: reflect.TypeFor[adaptive.ThrottleConfig]()},
	"hedges":     {typ: reflect.TypeFor[hedge.Config](), extra: "budget", decode: reflect.TypeFor[Hedge]()},
}

// checkKeys reports every unknown key of the JSON form of a File, every
// stage entry without exactly one key, and every policy or stage that does
// not decode, with its path. The policies decode themselves with
// encoding/json, which does not pass DisallowUnknownFields on, so their
// keys are checked here against their json tags. Keys match exactly.
// Sections of the wrong shape are left to the typed decoding to report.
func checkKeys(js []byte) []error {
	var top map[string]json.RawMessage
	if json.Unmarshal(js, &top) != nil {
		return nil
	}
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("resilienceconfig: "+format, args...))
	}
	for _, k := range sortedKeys(top) {
		if k == "pipelines" {
			var ps map[string][]json.RawMessage
			if json.Unmarshal(top[k], &ps) != nil {
				continue
			}
			for _, name := range sortedKeys(ps) {
				for i, raw := range ps[name] {
					var s Stage
					if err := json.Unmarshal(raw, &s); err != nil {
						bad("pipelines.%s[%d]: %v", name, i, err)
					}
				}
			}
			continue
		}
		sec, ok := sections[k]
		if !ok {
			bad("unknown field %q: want breakers, bulkheads, ratelimits, retries, budgets, adaptive, shedders, throttles, hedges or pipelines", k)
			continue
		}
		var objs map[string]json.RawMessage
		if json.Unmarshal(top[k], &objs) != nil {
			continue
		}
		for _, name := range sortedKeys(objs) {
			msgs := checkObject(k+"."+name, objs[name], sec.typ, sec.extra)
			for _, e := range msgs {
				bad("%s", e)
			}
			if len(msgs) > 0 {
				continue
			}
			if err := json.Unmarshal(objs[name], reflect.New(sec.decode).Interface()); err != nil {
				bad("%s.%s: %v", k, name, err)
			}
		}
	}
	return errs
}

// checkObject returns a message for every key of the JSON object raw that
// is not a json field of typ (or extra), recursing into struct fields.
func checkObject(path string, raw json.RawMessage, typ reflect.Type, extra string) []string {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	fields := jsonFields(typ)
	var msgs []string
	for _, k := range sortedKeys(m) {
		if k == extra && extra != "" {
			continue
		}
		f, ok := fields[k]
		if !ok {
			msgs = append(msgs, fmt.Sprintf("%s: unknown field %q", path, k))
			continue
		}
		if f.Type.Kind() == reflect.Struct {
			msgs = append(msgs, checkObject(path+"."+k, m[k], f.Type, "")...)
		}
	}
	return msgs
}

// jsonFields returns the fields of struct type typ by their JSON name,
// leaving out those tagged "-".
func jsonFields(typ reflect.Type) map[string]reflect.StructField {
	fields := make(map[string]reflect.StructField)
	for f := range typ.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = f
	}
	return fields
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
