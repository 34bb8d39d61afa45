package resilienceconfig_test

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cairnhq/cairn/resilience/resilienceconfig"
)

// FuzzDecode checks that Decode never panics, and that a File that decodes
// and validates survives a JSON round trip unchanged.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		sampleYAML,
		sampleJSON,
		"",
		"{}",
		"breakers: {b: {window: time, window_duration: 1s, buckets: 10}}",
		"retries: {r: {max_elapsed: 1500000000, backoff: {kind: linear, multiplier: 1.5}}}",
		"budgets: {b: {algorithm: percent, percent: 0.2, ttl: 10s}}",
		"ratelimits: {a: {rate: 0.5, per: 1m, algorithm: sliding_window_log, window: 30s}}",
		overloadYAML,
		"adaptive: {a: {algorithm: gradient2, rtt_tolerance: 2, timeout: 1s}}",
		"shedders: {s: {cpu_threshold: 1, window: 1s, buckets: 10, cool_off: 0}}",
		"throttles: {t: {k: 1.1, window: 30000000000, buckets: 3, min_requests: 5}}",
		"hedges: {h: {quantile: 0.9, min_delay: 1ms, max_delay: 1s, budget: b}}\nbudgets: {b: {}}",
		"hedges: {h: {budget: null}}",
		"pipelines: {p: [{shed: s}, {throttle: t}, {hedge: h}, {adaptive: a}]}",
		"pipelines: {p: [{timeout: 1}, {timeout: 1h}]}",
		"pipelines: {p: [{retry: r, timeout: 1s}]}",
		"breakers: {b: {windw: count}}",
		"breakers:\n\tb: {}",
		"[1, 2]",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := resilienceconfig.Decode(data)
		if err != nil {
			return
		}
		if file.Validate() != nil {
			return
		}
		js, err := json.Marshal(file)
		if err != nil {
			t.Fatalf("Marshal of a valid File = %v", err)
		}
		again, err := resilienceconfig.Decode(js)
		if err != nil {
			t.Fatalf("Decode(%s) of a marshalled valid File = %v", js, err)
		}
		if diff := cmp.Diff(file, again, cmpFile...); diff != "" {
			t.Errorf("round trip through %s mismatch (-first +second):\n%s", js, diff)
		}
		if err := again.Validate(); err != nil {
			t.Errorf("Validate after round trip = %v", err)
		}
	})
}
