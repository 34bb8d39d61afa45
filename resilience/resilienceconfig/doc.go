// Package resilienceconfig reads resilience policies and the pipelines
// composed of them from a YAML or JSON file, builds them, and reloads them
// at runtime without losing the state of the policies that did not change.
//
// # The file
//
// A [File] names policies in one section per kind and composes pipelines
// from them by name, outermost stage first:
//
//	breakers:
//	  inventory: {window: count, window_size: 50, failure_rate_threshold: 0.5, open_duration: 5s}
//	bulkheads:
//	  inventory: {max_concurrent: 32, max_queue: 64, max_wait: 100ms}
//	ratelimits:
//	  api: {algorithm: token_bucket, rate: 100, per: 1s, burst: 20}
//	budgets:
//	  inventory: {max_tokens: 10, token_ratio: 0.1}
//	retries:
//	  inventory: {max_attempts: 3, backoff: {initial: 50ms, max: 1s, jitter: full}, budget: inventory}
//	pipelines:
//	  inventory-client:
//	    - retry: inventory
//	    - circuitbreaker: inventory
//	    - bulkhead: inventory
//	    - timeout: 2s
//	  orders-server:
//	    - ratelimit: api
//	    - timeout: 5s
//
// Each policy is the JSON form of its package's config, decoded by that
// package's own UnmarshalJSON: [circuitbreaker.Config], [bulkhead.Config],
// [ratelimit.Config], [budget.Config], [retry.Policy] plus a "budget" key
// naming an entry of budgets, and for the overload policies
// [adaptive.Config] (section adaptive), [shed.Config] (shedders),
// [adaptive.ThrottleConfig] (throttles) and [hedge.Config] plus a "budget"
// key (hedges). Durations are strings such as "250ms" or
// numbers of nanoseconds; zero or absent fields take the policy's
// defaults. A policy whose name field is empty is named after its key. A
// stage is an object with exactly one key: retry, circuitbreaker,
// bulkhead, ratelimit, adaptive, shed, throttle or hedge with the name of a
// policy, or timeout with a positive duration; they become the stages of
// the same names in package resilience ([resilience.Adaptive],
// [resilience.Shed], [resilience.Throttle], [resilience.Hedge] for the
// overload ones). Pipelines that name the same policy share it.
//
// [Decode] converts YAML to JSON with sigs.k8s.io/yaml (JSON is YAML, so
// both decode the same way) and rejects unknown fields, duplicate keys and
// stage entries without exactly one key, each with its path; YAML syntax
// errors carry their line. [File.Validate] reports every problem at once,
// each with the path of its field, such as
// "breakers.inventory.failure_rate_threshold = 1.5: must be in (0, 1]" or
// "pipelines.inventory-client[1]: unknown circuitbreaker \"inventry\"".
//
// # Building
//
// [New] validates a File and builds a [Set] of live policies. [Pipeline]
// returns a named pipeline for a result type, inside outer stages given by
// code: what a file cannot express, a [resilience.Fallback] or a
// [resilience.Custom] policy, goes there, and [Set.Stages] gives the
// stages to compose any other way. Function fields of the policies
// (a breaker's IsFailure, a retry's RetryIf) come from [WithBreakerConfig]
// and [WithRetryConfig]. Policies register gauge callbacks with the
// MeterProvider, and a shedder runs a CPU sampler goroutine: close a Set
// with [Set.Close] when done with it.
//
// # Reloading
//
// A [Reloader] holds the current Set. [Reloader.Reload],
// [Reloader.ReloadFile] and [Reloader.Apply] build a new Set against the
// current one, reusing every policy whose file config is unchanged (a
// hedger only if its budget is reused too), and swap it in atomically,
// closing the policies the new Set no longer holds, so that a replaced
// policy's gauges do not report beside its replacement's; calls still
// running on an old pipeline keep working, since Close only drops a
// policy's gauges and stops a shedder's sampler. [Reloader.Close] closes
// the current ones. An open breaker stays open across a reload of an
// unrelated change, while a breaker whose config changed starts closed. A bad configuration is
// rejected with its error and the current Set keeps serving. Reloads are
// counted in the resilience.config.reloads counter by resilience.outcome
// ("ok" or "error"). [Reloader.Watch] polls a file's content and reloads
// it when it changes, until its context ends. A [Live] handle runs each
// call through the pipeline of the Set current at the call's start,
// allocating nothing beyond what the pipeline itself does.
package resilienceconfig
