// Package budget limits how many retries (or hedged requests) a client may
// send, across all of its calls, so that retries cannot multiply the load on
// a dependency that is already failing.
//
// A [Budget] is shared by every call to one dependency. Before each retry the
// caller asks [Budget.Withdraw]; a false return means the retry must not be
// sent. The caller also reports traffic with [Budget.OnRequest],
// [Budget.OnSuccess] and [Budget.OnFailure]; each algorithm uses only some of
// these calls and ignores the others, so callers should always make all of
// them.
//
// Two algorithms are provided:
//
//   - [GRPC] implements gRPC retry throttling (gRPC proposal A6, "Retry
//     throttling"): a token count starts at MaxTokens, each failed attempt
//     takes one token, each successful attempt adds TokenRatio tokens, and
//     retries are allowed only while more than MaxTokens/2 tokens remain.
//   - [Percent] implements Finagle's RetryBudget
//     (https://twitter.github.io/finagle/guide/Clients.html#retries): each
//     request deposits Percent of a retry, each retry withdraws one, deposits
//     and withdrawals expire after TTL, and a reserve of MinPerSecond*TTL
//     retries is always available.
//
// Both are safe for concurrent use and do not allocate. Budgets report
// OpenTelemetry metrics: the counter resilience.budget.withdrawals by
// resilience.outcome (granted or denied) and the gauge
// resilience.budget.tokens, both with resilience.policy.name.
package budget
