// Package resiliencegrpc runs gRPC calls through a resilience.Pipeline, on
// both sides of the wire; it is the gRPC counterpart of resiliencehttp.
//
// On the client side, [UnaryClientInterceptor] runs every unary call
// through a Pipeline[struct{}], each attempt with the invoker. Attempts
// that end with a retryable status code (UNAVAILABLE by default, as gRPC
// proposal A6 recommends) or another failure code (INTERNAL, UNKNOWN,
// DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED by default) become a
// [*StatusError] inside the pipeline, so a retry stage and a circuit
// breaker see a failure; any other code (INVALID_ARGUMENT, NOT_FOUND...)
// is an answer, a success for the pipeline. [Pushback], set as a
// retry.Policy's Pushback, retries only the retryable codes and honours
// the server's grpc-retry-pushback-ms trailer, read per attempt. When the
// pipeline gives up after server failures, the caller receives the last
// attempt's error unchanged, so it sees the server's real status; when the
// pipeline rejects a call itself, the caller receives the pipeline's error
// with a status (errors.Is(err, circuitbreaker.ErrOpen) and
// status.Code(err) == codes.Unavailable both hold).
//
// [StreamClientInterceptor] runs the establishment of streams through a
// pipeline; what the stream does after it is returned is not covered.
// [UnaryClientHedgeInterceptor] sends hedged attempts of idempotent unary
// methods with hedge.Do, each into its own copy of the reply, and copies
// the winner's into the caller's reply. [UnaryClientPriorityInterceptor]
// sends the shed priority of the call's context in the cairn-priority
// metadata key.
//
// A client typically chains them, hedging outermost:
//
//	p, err := resilience.New[struct{}](
//		resilience.Retry(retry.Policy{Pushback: resiliencegrpc.Pushback}),
//		resilience.CircuitBreaker(breaker),
//		resilience.Timeout(time.Second),
//	)
//	conn, err := grpc.NewClient(target,
//		grpc.WithTransportCredentials(creds),
//		grpc.WithChainUnaryInterceptor(
//			resiliencegrpc.UnaryClientPriorityInterceptor(),
//			resiliencegrpc.UnaryClientHedgeInterceptor(hedger, resiliencegrpc.HedgeConfig{
//				Hedgeable: resiliencegrpc.Methods("/orders.Orders/Get"),
//			}),
//			resiliencegrpc.UnaryClientInterceptor(p, resiliencegrpc.ClientConfig{}),
//		),
//		grpc.WithChainStreamInterceptor(resiliencegrpc.StreamClientInterceptor(p, resiliencegrpc.ClientConfig{})),
//	)
//
// On the server side, [UnaryServerInterceptor] and [StreamServerInterceptor]
// run a handler inside a Pipeline[struct{}] (typically a rate limit, a
// shedder in a custom stage, a bulkhead, a circuit breaker and a timeout),
// after putting the request's shed priority in the context, and answer the
// pipeline's rejections with status codes: RESOURCE_EXHAUSTED for a rate
// limit or a shed request, UNAVAILABLE for a full bulkhead or an open
// breaker, DEADLINE_EXCEEDED for a timeout, with a grpc-retry-pushback-ms
// trailer where the delay is known. A handler's own errors with a failure
// code count as failures for the pipeline's breaker and reach the client
// unchanged.
//
// gRPC's own retry support (the service config's retryPolicy) retries below
// the interceptors, invisibly to them; use one or the other for a method.
package resiliencegrpc
