package resilienceconfig

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/cairnhq/cairn/resilience/adaptive"
	"github.com/cairnhq/cairn/resilience/budget"
	"github.com/cairnhq/cairn/resilience/bulkhead"
	"github.com/cairnhq/cairn/resilience/circuitbreaker"
	"github.com/cairnhq/cairn/resilience/hedge"
	"github.com/cairnhq/cairn/resilience/ratelimit"
	"github.com/cairnhq/cairn/resilience/retry"
	"github.com/cairnhq/cairn/resilience/shed"
)

// Validate reports every problem of f, each on a line that starts with
// "resilienceconfig: " and the path of the field, such as
//
//	resilienceconfig: breakers.inventory.failure_rate_threshold = 1.5: must be in (0, 1]
//	resilienceconfig: retries.inventory.budget: unknown budget "inventry"
//	resilienceconfig: shedders.api.cpu_threshold = 1.5: must be in [0, 1]
//	resilienceconfig: pipelines.inventory-client[1]: unknown circuitbreaker "inventry"
//	resilienceconfig: pipelines.orders-server[2]: unknown stage kind "cache": want one of retry, circuitbreaker, bulkhead, ratelimit, timeout, adaptive, shed, throttle, hedge
//	resilienceconfig: pipelines.empty: empty pipeline
//	resilienceconfig: pipelines.orders-server[1].timeout = -5s: must be positive
//
// Policies are checked by their own Validate methods; their messages are
// given the path of the JSON field they name. Zero fields are valid: they
// mean the policy's defaults.
func (f *File) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("resilienceconfig: "+format, args...))
	}
	policy := func(path string, typ reflect.Type, err error) {
		if err != nil {
			for _, msg := range fieldMessages(path, typ, err) {
				bad("%s", msg)
			}
		}
	}
	emptyName := func(sec string) { bad("%s: empty policy name", sec) }
	for _, name := range sortedKeys(f.Breakers) {
		if name == "" {
			emptyName("breakers")
		}
		policy("breakers."+name, reflect.TypeFor[circuitbreaker.Config](), f.Breakers[name].Validate())
	}
	for _, name := range sortedKeys(f.Bulkheads) {
		if name == "" {
			emptyName("bulkheads")
		}
		policy("bulkheads."+name, reflect.TypeFor[bulkhead.Config](), f.Bulkheads[name].Validate())
	}
	for _, name := range sortedKeys(f.RateLimits) {
		if name == "" {
			emptyName("ratelimits")
		}
		policy("ratelimits."+name, reflect.TypeFor[ratelimit.Config](), f.RateLimits[name].Validate())
	}
	for _, name := range sortedKeys(f.Budgets) {
		if name == "" {
			emptyName("budgets")
		}
		policy("budgets."+name, reflect.TypeFor[budget.Config](), f.Budgets[name].Validate())
	}
	for _, name := range sortedKeys(f.Adaptive) {
		if name == "" {
			emptyName("adaptive")
		}
		policy("adaptive."+name, reflect.TypeFor[adaptive.Config](), f.Adaptive[name].Validate())
	}
	for _, name := range sortedKeys(f.Shedders) {
		if name == "" {
			emptyName("shedders")
		}
		policy("shedders."+name, reflect.TypeFor[shed.Config](), f.Shedders[name].Validate())
	}
	for _, name := range sortedKeys(f.Throttles) {
		if name == "" {
			emptyName("throttles")
		}
		policy("throttles."+name, reflect.TypeFor[adaptive.ThrottleConfig](), f.Throttles[name].Validate())
	}
	for _, name := range sortedKeys(f.Hedges) {
		if name == "" {
			emptyName("hedges")
		}
		h := f.Hedges[name]
		policy("hedges."+name, reflect.TypeFor[hedge.Config](), h.Config.Validate())
		if _, ok := f.Budgets[h.Budget]; h.Budget != "" && !ok {
			bad("hedges.%s.budget: unknown budget %q", name, h.Budget)
		}
	}
	for _, name := range sortedKeys(f.Retries) {
		if name == "" {
			emptyName("retries")
		}
		r := f.Retries[name]
		policy("retries."+name, reflect.TypeFor[retry.Policy](), r.Policy.Validate())
		if _, ok := f.Budgets[r.Budget]; r.Budget != "" && !ok {
			bad("retries.%s.budget: unknown budget %q", name, r.Budget)
		}
	}
	for _, name := range sortedKeys(f.Pipelines) {
		stages := f.Pipelines[name]
		if name == "" {
			emptyName("pipelines")
		}
		if len(stages) == 0 {
			bad("pipelines.%s: empty pipeline", name)
		}
		for i, s := range stages {
			var ok bool
			switch s.Kind {
			case KindTimeout:
				if s.Timeout <= 0 {
					bad("pipelines.%s[%d].timeout = %v: must be positive", name, i, s.Timeout)
				}
				continue
			case KindRetry:
				_, ok = f.Retries[s.Policy]
			case KindCircuitBreaker:
				_, ok = f.Breakers[s.Policy]
			case KindBulkhead:
				_, ok = f.Bulkheads[s.Policy]
			case KindRateLimit:
				_, ok = f.RateLimits[s.Policy]
			case KindAdaptive:
				_, ok = f.Adaptive[s.Policy]
			case KindShed:
				_, ok = f.Shedders[s.Policy]
			case KindThrottle:
				_, ok = f.Throttles[s.Policy]
			case KindHedge:
				_, ok = f.Hedges[s.Policy]
			case "":
				bad("pipelines.%s[%d]: no stage kind: want one of %s", name, i, strings.Join(kinds, ", "))
				continue
			default:
				bad("pipelines.%s[%d]: unknown stage kind %q: want one of %s", name, i, s.Kind, strings.Join(kinds, ", "))
				continue
			}
			if !ok {
				bad("pipelines.%s[%d]: unknown %s %q", name, i, s.Kind, s.Policy)
			}
		}
	}
	return errors.Join(errs...)
}

// policyPrefixes are the prefixes of the policies' validation messages,
// each with the type whose fields the rest names, relative to the policy's
// path.
var policyPrefixes = []struct {
	prefix string
	sub    string // the JSON field of a nested type, or ""
	typ    reflect.Type
}{
	{"circuitbreaker: invalid config: ", "", nil},
	{"bulkhead: invalid config: ", "", nil},
	{"ratelimit: invalid config: ", "", nil},
	{"budget: invalid config: ", "", nil},
	{"retry: invalid policy: ", "", nil},
	{"adaptive: invalid config: ", "", nil},
	{"adaptive: invalid throttle config: ", "", nil},
	{"shed: invalid config: ", "", nil},
	{"hedge: invalid config: ", "", nil},
	{"retry: invalid backoff: ", "backoff", reflect.TypeFor[retry.Backoff]()},
}

// fieldMessages turns the message of a policy's Validate error, one
// problem a line, into messages that name the JSON path of the field:
// "FailureRateThreshold = 1.5: must be in (0, 1]" at path
// breakers.inventory becomes "breakers.inventory.failure_rate_threshold =
// 1.5: must be in (0, 1]". A line it cannot parse is kept whole after the
// path, so no problem is lost if a policy changes its wording.
func fieldMessages(path string, typ reflect.Type, err error) []string {
	var msgs []string
	for line := range strings.SplitSeq(err.Error(), "\n") {
		if line == "" {
			continue
		}
		msgs = append(msgs, fieldMessage(path, typ, line))
	}
	return msgs
}

func fieldMessage(path string, typ reflect.Type, line string) string {
	rest, p, t := line, path, typ
	for _, pp := range policyPrefixes {
		if r, ok := strings.CutPrefix(line, pp.prefix); ok {
			rest = r
			if pp.typ != nil {
				p, t = path+"."+pp.sub, pp.typ
			}
			break
		}
	}
	// ratelimit writes "field Rate: 0: why", the others "Rate = 0: why".
	var field, value string
	if r, ok := strings.CutPrefix(rest, "field "); ok {
		field, value, ok = strings.Cut(r, ": ")
		if !ok {
			return path + ": " + line
		}
	} else {
		var ok bool
		field, value, ok = strings.Cut(rest, " = ")
		if !ok || strings.ContainsAny(field, " :") {
			return path + ": " + line
		}
	}
	name := jsonName(t, field)
	if name == "" {
		return path + ": " + line
	}
	return p + "." + name + " = " + value
}

// jsonName returns the JSON name of the Go field of typ, or "".
func jsonName(typ reflect.Type, field string) string {
	for name, f := range jsonFields(typ) {
		if f.Name == field {
			return name
		}
	}
	return ""
}
