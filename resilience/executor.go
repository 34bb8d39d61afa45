package resilience

import "context"

// Executor runs calls through resilience policies: a [*Pipeline], or a
// handle that swaps pipelines at runtime as a configuration is reloaded.
// The HTTP and gRPC adapters take an Executor so they work with both.
// Implementations must be safe for concurrent use.
type Executor[T any] interface {
	// Execute runs fn with ctx through the policies and returns its result,
	// or the error of the policy that stopped it.
	Execute(ctx context.Context, fn func(context.Context) (T, error)) (T, error)
}

var _ Executor[struct{}] = (*Pipeline[struct{}])(nil)
