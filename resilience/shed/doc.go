// Package shed is an adaptive load shedder: it rejects requests a server
// cannot serve in time before they pile up, after go-zero's adaptive
// shedder (github.com/zeromicro/go-zero, package core/load), with its own
// code and with request priorities added.
//
// A [Shedder] watches two signals: the CPU usage, from a [CPU] (by
// default a sampler of the cgroup's or the machine's CPU usage, read
// every 250ms), and the server's own throughput and response times. From
// the latter it estimates by Little's law how many requests the server
// can have in flight: the most requests completed in one bucket of time
// times the least average response time of a bucket, divided by the
// bucket duration, over the last Config.Window split into Config.Buckets
// buckets ([Shedder.MaxInFlight]). For instance, 100 completions in a
// 100ms bucket with a least average of 10ms give 100 × 10ms / 100ms = 10.
//
// While the CPU usage is below Config.CPUThreshold and no request was
// shed for exceeding the estimate in the last Config.CoolOff, every
// request is admitted. Otherwise a request is shed when admitting it
// would exceed its [Priority]'s share of the estimate: twice it for
// [CriticalPlus], all of it for [Critical] (the default), half of it for
// [SheddablePlus], and nothing for [Sheddable]. [Shedder.Allow] documents
// the rules exactly.
//
// [Shedder.Allow] reads the priority from the context ([WithPriority],
// [PriorityFrom]); servers take it from the X-Cairn-Priority HTTP header
// ([FromHeader], [SetHeader]) or the cairn-priority gRPC metadata key
// ([MetadataKey]). An admitted request gets a [Permit] whose
// [Permit.Done] records its response time; admitting allocates nothing.
// A shed request gets a [*ShedError] (errors.Is(err, [ErrShed])) whose
// RetryAfter suggests one bucket; [WriteHTTP] answers it with 503 Service
// Unavailable and Retry-After, and gRPC servers should use
// [GRPCCodeName].
//
// [Shedder.Close] stops the CPU sampler goroutine.
//
// Shedders report OpenTelemetry metrics: the counter resilience.shed.calls
// by resilience.outcome (admitted or shed) and resilience.shed.priority,
// and the gauges resilience.shed.inflight, resilience.shed.max_inflight
// and resilience.shed.cpu, all with resilience.policy.name. A shed request
// adds the span event resilience.shed.rejected to the span of its context.
package shed
