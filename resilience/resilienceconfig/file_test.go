package resilienceconfig_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/cairnhq/cairn/resilience/adaptive"
	"github.com/cairnhq/cairn/resilience/budget"
	"github.com/cairnhq/cairn/resilience/bulkhead"
	"github.com/cairnhq/cairn/resilience/circuitbreaker"
	"github.com/cairnhq/cairn/resilience/hedge"
	"github.com/cairnhq/cairn/resilience/ratelimit"
	"github.com/cairnhq/cairn/resilience/resilienceconfig"
	"github.com/cairnhq/cairn/resilience/retry"
	"github.com/cairnhq/cairn/resilience/shed"
)

const sampleYAML = `
breakers:
  inventory: {window: count, window_size: 50, failure_rate_threshold: 0.5, open_duration: 5s}
bulkheads:
  inventory: {max_concurrent: 32, max_queue: 64, max_wait: 100ms}
ratelimits:
  api: {algorithm: token_bucket, rate: 100, per: 1s, burst: 20}
budgets:
  inventory: {max_tokens: 10, token_ratio: 0.1}
retries:
  inventory:
    max_attempts: 3
    backoff: {kind: exponential, initial: 50ms, max: 1s, jitter: full}
    budget: inventory
pipelines:
  inventory-client:          # outermost first
    - retry: inventory
    - circuitbreaker: inventory
    - bulkhead: inventory
    - timeout: 2s
  orders-server:
    - ratelimit: api
    - timeout: 5s
`

const sampleJSON = `{
  "breakers": {"inventory": {"window": "count", "window_size": 50, "failure_rate_threshold": 0.5, "open_duration": "5s"}},
  "bulkheads": {"inventory": {"max_concurrent": 32, "max_queue": 64, "max_wait": "100ms"}},
  "ratelimits": {"api": {"algorithm": "token_bucket", "rate": 100, "per": "1s", "burst": 20}},
  "budgets": {"inventory": {"max_tokens": 10, "token_ratio": 0.1}},
  "retries": {"inventory": {"max_attempts": 3, "backoff": {"kind": "exponential", "initial": "50ms", "max": "1s", "jitter": "full"}, "budget": "inventory"}},
  "pipelines": {
    "inventory-client": [{"retry": "inventory"}, {"circuitbreaker": "inventory"}, {"bulkhead": "inventory"}, {"timeout": "2s"}],
    "orders-server": [{"ratelimit": "api"}, {"timeout": 5000000000}]
  }
}`

// sampleFile is what sampleYAML and sampleJSON decode to.
func sampleFile() *resilienceconfig.File {
	return &resilienceconfig.File{
		Breakers: map[string]circuitbreaker.Config{
			"inventory": {Window: "count", WindowSize: 50, FailureRateThreshold: 0.5, OpenDuration: 5 * time.Second},
		},
		Bulkheads: map[string]bulkhead.Config{
			"inventory": {MaxConcurrent: 32, MaxQueue: 64, MaxWait: 100 * time.Millisecond},
		},
		RateLimits: map[string]ratelimit.Config{
			"api": {Algorithm: "token_bucket", Rate: 100, Per: time.Second, Burst: 20},
		},
		Budgets: map[string]budget.Config{
			"inventory": {MaxTokens: 10, TokenRatio: 0.1},
		},
		Retries: map[string]resilienceconfig.Retry{
			"inventory": {Policy: retry.Policy{MaxAttempts: 3, Backoff: retry.Backoff{
				Kind: "exponential", Initial: 50 * time.Millisecond, Max: time.Second, Jitter: "full"}}, Budget: "inventory"},
		},
		Pipelines: map[string][]resilienceconfig.Stage{
			"inventory-client": {
				{Kind: "retry", Policy: "inventory"},
				{Kind: "circuitbreaker", Policy: "inventory"},
				{Kind: "bulkhead", Policy: "inventory"},
				{Kind: "timeout", Timeout: 2 * time.Second},
			},
			"orders-server": {
				{Kind: "ratelimit", Policy: "api"},
				{Kind: "timeout", Timeout: 5 * time.Second},
			},
		},
	}
}

// cmpFile compares Files, whose policies have function fields (nil when
// decoded) and whose empty maps mean the same as nil ones.
var cmpFile = []cmp.Option{cmpopts.EquateEmpty()}

func TestDecodeYAMLAndJSONEqual(t *testing.T) {
	for _, tt := range []struct{ name, data string }{{"yaml", sampleYAML}, {"json", sampleJSON}} {
		t.Run(tt.name, func(t *testing.T) {
			f, err := resilienceconfig.Decode([]byte(tt.data))
			if err != nil {
				t.Fatalf("Decode = %v", err)
			}
			if diff := cmp.Diff(sampleFile(), f, cmpFile...); diff != "" {
				t.Errorf("Decode mismatch (-want +got):\n%s", diff)
			}
			if err := f.Validate(); err != nil {
				t.Errorf("Validate = %v, want nil", err)
			}
		})
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	want := sampleFile()
	data, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := resilienceconfig.Decode(data)
	if err != nil {
		t.Fatalf("Decode(%s) = %v", data, err)
	}
	if diff := cmp.Diff(want, got, cmpFile...); diff != "" {
		t.Errorf("round trip mismatch (-want +got):\n%s", diff)
	}
}

func TestDecodeEmpty(t *testing.T) {
	for _, data := range []string{"", "{}", "# nothing\n", "null"} {
		f, err := resilienceconfig.Decode([]byte(data))
		if err != nil {
			t.Errorf("Decode(%q) = %v", data, err)
			continue
		}
		if err := f.Validate(); err != nil {
			t.Errorf("Decode(%q).Validate() = %v", data, err)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tt := range []struct {
		name, data string
		want       []string // substrings of the error, each on a line of its own
	}{
		{"unknown top field", "breakrs: {}", []string{`resilienceconfig: unknown field "breakrs"`}},
		{"unknown breaker field", "breakers: {inventory: {windw: count, window_size: 5}}", []string{`resilienceconfig: breakers.inventory: unknown field "windw"`}},
		{"unknown bulkhead field", "bulkheads: {b: {max_concurent: 1}}", []string{`bulkheads.b: unknown field "max_concurent"`}},
		{"unknown ratelimit field", "ratelimits: {api: {rate: 1, brust: 2}}", []string{`ratelimits.api: unknown field "brust"`}},
		{"unknown budget field", "budgets: {b: {tokens: 1}}", []string{`budgets.b: unknown field "tokens"`}},
		{"unknown retry field", "retries: {r: {attempts: 3}}", []string{`retries.r: unknown field "attempts"`}},
		{"unknown backoff field", "retries: {r: {backoff: {inital: 1s}}}", []string{`retries.r.backoff: unknown field "inital"`}},
		{"unknown adaptive field", "adaptive: {a: {algoritm: vegas}}", []string{`adaptive.a: unknown field "algoritm"`}},
		{"unknown shedder field", "shedders: {s: {cpu: 0.5}}", []string{`shedders.s: unknown field "cpu"`}},
		{"unknown throttle field", "throttles: {t: {k: 2, rand: 1}}", []string{`throttles.t: unknown field "rand"`}},
		{"unknown hedge field", "hedges: {h: {delay: 1ms, hedges: 2}}", []string{`hedges.h: unknown field "hedges"`}},
		{"hedge budget not a string", "hedges: {h: {budget: [1]}}", []string{`hedges.h: budget: json: cannot unmarshal`}},
		{"bad hedge duration", "hedges: {h: {delay: soon}}", []string{`hedges.h: `, `invalid duration`}},
		{"function field", "breakers: {b: {IsFailure: x}}", []string{`breakers.b: unknown field "IsFailure"`}},
		{"wrong case", "breakers: {b: {Window_Size: 5}}", []string{`breakers.b: unknown field "Window_Size"`}},
		{"every unknown field", "breakers: {b: {foo: 1, bar: 2}}\nbulkheads: {c: {z: 3}}", []string{
			`breakers.b: unknown field "bar"`, `breakers.b: unknown field "foo"`, `bulkheads.c: unknown field "z"`}},
		{"stage with two keys", "pipelines: {p: [{retry: r, timeout: 1s}]}", []string{`pipelines.p[0]: stage has 2 keys (retry, timeout): want exactly one of`}},
		{"stage with no key", "pipelines: {p: [{}]}", []string{`pipelines.p[0]: stage has 0 keys`}},
		{"yaml syntax", "breakers:\n  b: {window: count\n", []string{"yaml: line"}},
		{"yaml tab", "breakers:\n\tb: {}\n", []string{"yaml: line 2"}},
		{"duplicate key", "breakers: {b: {}}\nbreakers: {c: {}}\n", []string{`"breakers" already set`}},
		{"wrong type", "breakers: {b: {window_size: many}}", []string{"resilienceconfig: ", "window_size"}},
		{"every type error", "breakers: {a: {window_size: x}, b: {open_duration: soon}}\npipelines: {p: [{timeout: x}]}", []string{
			"resilienceconfig: breakers.a: json: cannot unmarshal", "resilienceconfig: breakers.b: circuitbreaker: invalid duration",
			"resilienceconfig: pipelines.p[0]: invalid duration"}},
		{"bad duration", "breakers: {b: {open_duration: soon}}", []string{`invalid duration`}},
		{"bad timeout", "pipelines: {p: [{timeout: soon}]}", []string{`invalid duration`}},
		{"policy name not a string", "pipelines: {p: [{retry: [1]}]}", []string{`retry: want the name of a policy`}},
		{"not an object", "[1, 2]", []string{"resilienceconfig: json: cannot unmarshal array"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := resilienceconfig.Decode([]byte(tt.data))
			if err == nil {
				t.Fatalf("Decode(%q) = nil, want an error", tt.data)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Decode(%q) = %q, want it to contain %q", tt.data, err, w)
				}
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "resilience.yaml")
	if err := os.WriteFile(path, []byte(sampleYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := resilienceconfig.Load(path)
	if err != nil {
		t.Fatalf("Load = %v", err)
	}
	if diff := cmp.Diff(sampleFile(), f, cmpFile...); diff != "" {
		t.Errorf("Load mismatch (-want +got):\n%s", diff)
	}
	if _, err := resilienceconfig.Load(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("Load(missing) = nil, want an error")
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("breakrs: {}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := resilienceconfig.Load(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("Load(bad) = %v, want an error naming the file", err)
	}
}

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		name   string
		modify func(f *resilienceconfig.File)
		want   []string // the error's lines, in order
	}{
		{"valid", func(*resilienceconfig.File) {}, nil},
		{"zero file", func(f *resilienceconfig.File) { *f = resilienceconfig.File{} }, nil},
		{"breaker threshold", func(f *resilienceconfig.File) {
			f.Breakers["inventory"] = circuitbreaker.Config{FailureRateThreshold: 1.5}
		}, []string{"resilienceconfig: breakers.inventory.failure_rate_threshold = 1.5: must be in (0, 1]"}},
		{"breaker every field", func(f *resilienceconfig.File) {
			f.Breakers["inventory"] = circuitbreaker.Config{Window: "sliding", WindowSize: -1, OpenDuration: -time.Second}
		}, []string{
			`resilienceconfig: breakers.inventory.window = "sliding": must be "count" or "time"`,
			"resilienceconfig: breakers.inventory.window_size = -1: must not be negative",
			"resilienceconfig: breakers.inventory.open_duration = -1s: must not be negative",
		}},
		{"bulkhead", func(f *resilienceconfig.File) {
			f.Bulkheads["inventory"] = bulkhead.Config{MaxQueue: -2}
		}, []string{"resilienceconfig: bulkheads.inventory.max_queue = -2: must not be negative"}},
		{"ratelimit", func(f *resilienceconfig.File) {
			f.RateLimits["api"] = ratelimit.Config{Rate: 0, Burst: -1}
		}, []string{
			"resilienceconfig: ratelimits.api.rate = 0: must be positive and finite",
			"resilienceconfig: ratelimits.api.burst = -1: must not be negative",
		}},
		{"budget", func(f *resilienceconfig.File) {
			f.Budgets["inventory"] = budget.Config{Algorithm: "tokens"}
		}, []string{`resilienceconfig: budgets.inventory.algorithm = "tokens": must be "grpc" or "percent"`}},
		{"retry and backoff", func(f *resilienceconfig.File) {
			f.Retries["inventory"] = resilienceconfig.Retry{
				Policy: retry.Policy{MaxAttempts: -1, Backoff: retry.Backoff{Multiplier: 0.5}},
				Budget: "inventory",
			}
		}, []string{
			"resilienceconfig: retries.inventory.max_attempts = -1: must not be negative",
			"resilienceconfig: retries.inventory.backoff.multiplier = 0.5: must be at least 1 and finite",
		}},
		{"retry unknown budget", func(f *resilienceconfig.File) {
			r := f.Retries["inventory"]
			r.Budget = "inventry"
			f.Retries["inventory"] = r
		}, []string{`resilienceconfig: retries.inventory.budget: unknown budget "inventry"`}},
		{"unknown policies", func(f *resilienceconfig.File) {
			f.Pipelines["inventory-client"] = []resilienceconfig.Stage{
				{Kind: "retry", Policy: "x"},
				{Kind: "circuitbreaker", Policy: "inventry"},
				{Kind: "bulkhead", Policy: "y"},
				{Kind: "ratelimit", Policy: "z"},
			}
		}, []string{
			`resilienceconfig: pipelines.inventory-client[0]: unknown retry "x"`,
			`resilienceconfig: pipelines.inventory-client[1]: unknown circuitbreaker "inventry"`,
			`resilienceconfig: pipelines.inventory-client[2]: unknown bulkhead "y"`,
			`resilienceconfig: pipelines.inventory-client[3]: unknown ratelimit "z"`,
		}},
		{"adaptive", func(f *resilienceconfig.File) {
			f.Adaptive = map[string]adaptive.Config{"db": {Algorithm: "cubic", MinLimit: -1}}
		}, []string{
			`resilienceconfig: adaptive.db.algorithm = "cubic": must be "aimd", "gradient2" or "vegas"`,
			"resilienceconfig: adaptive.db.min_limit = -1: must not be negative",
		}},
		{"shedder", func(f *resilienceconfig.File) {
			f.Shedders = map[string]shed.Config{"api": {CPUThreshold: 1.5, CoolOff: -time.Second}}
		}, []string{
			"resilienceconfig: shedders.api.cpu_threshold = 1.5: must be in [0, 1]",
			"resilienceconfig: shedders.api.cool_off = -1s: must not be negative",
		}},
		{"throttle", func(f *resilienceconfig.File) {
			f.Throttles = map[string]adaptive.ThrottleConfig{"inventory": {K: -1, MinRequests: -2}}
		}, []string{
			"resilienceconfig: throttles.inventory.k = -1: must not be negative",
			"resilienceconfig: throttles.inventory.min_requests = -2: must not be negative",
		}},
		{"hedge", func(f *resilienceconfig.File) {
			f.Hedges = map[string]resilienceconfig.Hedge{"inventory": {Config: hedge.Config{MaxHedges: 9}, Budget: "inventry"}}
		}, []string{
			"resilienceconfig: hedges.inventory.max_hedges = 9: must be in [1, 5]",
			`resilienceconfig: hedges.inventory.budget: unknown budget "inventry"`,
		}},
		{"unknown overload policies", func(f *resilienceconfig.File) {
			f.Pipelines["inventory-client"] = []resilienceconfig.Stage{
				{Kind: "adaptive", Policy: "a"},
				{Kind: "shed", Policy: "s"},
				{Kind: "throttle", Policy: "t"},
				{Kind: "hedge", Policy: "h"},
			}
		}, []string{
			`resilienceconfig: pipelines.inventory-client[0]: unknown adaptive "a"`,
			`resilienceconfig: pipelines.inventory-client[1]: unknown shed "s"`,
			`resilienceconfig: pipelines.inventory-client[2]: unknown throttle "t"`,
			`resilienceconfig: pipelines.inventory-client[3]: unknown hedge "h"`,
		}},
		{"unknown stage kind", func(f *resilienceconfig.File) {
			f.Pipelines["orders-server"] = append(f.Pipelines["orders-server"], resilienceconfig.Stage{Kind: "cache", Policy: "c"})
		}, []string{`resilienceconfig: pipelines.orders-server[2]: unknown stage kind "cache": want one of retry, circuitbreaker, bulkhead, ratelimit, timeout, adaptive, shed, throttle, hedge`}},
		{"no stage kind", func(f *resilienceconfig.File) {
			f.Pipelines["orders-server"][0] = resilienceconfig.Stage{}
		}, []string{`resilienceconfig: pipelines.orders-server[0]: no stage kind: want one of retry, circuitbreaker, bulkhead, ratelimit, timeout, adaptive, shed, throttle, hedge`}},
		{"empty pipeline", func(f *resilienceconfig.File) {
			f.Pipelines["empty"] = nil
		}, []string{"resilienceconfig: pipelines.empty: empty pipeline"}},
		{"negative timeout", func(f *resilienceconfig.File) {
			f.Pipelines["orders-server"][1].Timeout = -5 * time.Second
		}, []string{"resilienceconfig: pipelines.orders-server[1].timeout = -5s: must be positive"}},
		{"zero timeout", func(f *resilienceconfig.File) {
			f.Pipelines["orders-server"][1].Timeout = 0
		}, []string{"resilienceconfig: pipelines.orders-server[1].timeout = 0s: must be positive"}},
		{"empty names", func(f *resilienceconfig.File) {
			f.Breakers[""] = circuitbreaker.Config{}
			f.Bulkheads[""] = bulkhead.Config{}
			f.RateLimits[""] = ratelimit.Config{Rate: 1}
			f.Budgets[""] = budget.Config{}
			f.Retries[""] = resilienceconfig.Retry{}
			f.Adaptive = map[string]adaptive.Config{"": {}}
			f.Shedders = map[string]shed.Config{"": {}}
			f.Throttles = map[string]adaptive.ThrottleConfig{"": {}}
			f.Hedges = map[string]resilienceconfig.Hedge{"": {}}
			f.Pipelines[""] = []resilienceconfig.Stage{{Kind: "timeout", Timeout: time.Second}}
		}, []string{
			"resilienceconfig: breakers: empty policy name",
			"resilienceconfig: bulkheads: empty policy name",
			"resilienceconfig: ratelimits: empty policy name",
			"resilienceconfig: budgets: empty policy name",
			"resilienceconfig: adaptive: empty policy name",
			"resilienceconfig: shedders: empty policy name",
			"resilienceconfig: throttles: empty policy name",
			"resilienceconfig: hedges: empty policy name",
			"resilienceconfig: retries: empty policy name",
			"resilienceconfig: pipelines: empty policy name",
		}},
		{"every problem at once", func(f *resilienceconfig.File) {
			f.Breakers["inventory"] = circuitbreaker.Config{FailureRateThreshold: 2}
			f.Pipelines["orders-server"][0].Policy = "apj"
		}, []string{
			"resilienceconfig: breakers.inventory.failure_rate_threshold = 2: must be in (0, 1]",
			`resilienceconfig: pipelines.orders-server[0]: unknown ratelimit "apj"`,
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := sampleFile()
			tt.modify(f)
			err := f.Validate()
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Validate() lines mismatch (-want +got):\n%s", diff)
			}
			if _, err := resilienceconfig.New(f); (err != nil) != (tt.want != nil) {
				t.Errorf("New() = %v, want error %v", err, tt.want != nil)
			}
		})
	}
}

// TestValidateDerivedRateLimit checks that ratelimit's message about a
// derived value (the emission interval) still names its field.
func TestValidateDerivedRateLimit(t *testing.T) {
	f := &resilienceconfig.File{RateLimits: map[string]ratelimit.Config{"api": {Rate: 1e12, Per: time.Nanosecond}}}
	err := f.Validate()
	if err == nil || !strings.HasPrefix(err.Error(), "resilienceconfig: ratelimits.api.rate = ") {
		t.Errorf("Validate() = %v, want a ratelimits.api.rate error", err)
	}
}
