// Package degrade is a graceful-degradation switch: it turns optional
// features off, in ordered levels, as the load on a service rises, so
// that the service keeps serving its essential work instead of failing
// all of it.
//
// Shedding ([github.com/cairnhq/cairn/resilience/shed]) refuses whole
// requests; a circuit breaker stops calling a failing dependency.
// Degrading keeps answering every request but does less for each: a
// product page without recommendations, a search box without
// suggestions, a write to an audit log deferred. The Google SRE book
// recommends serving degraded responses, which contain less data or are
// less accurate but cheaper to compute, when a server is overloaded
// (Site Reliability Engineering, 2016,
// chapter 21 "Handling Overload" and chapter 22 "Addressing Cascading
// Failures", section "Load Shedding and Graceful Degradation"), as does
// the AWS Well-Architected Framework's reliability pillar, best practice
// REL05-BP01 "Implement graceful degradation to transform applicable
// hard dependencies into soft dependencies".
//
// A [Switch] has a level, from 0 (full service) to the number of
// Config.Levels; by default three: 1 "optional" drops optional work, 2
// "expensive" drops expensive work, 3 "essential" serves essential work
// only ([DefaultLevels]). Config.Features registers each feature with the
// level at which it is turned off. On the hot path, code asks
// [Switch.Enabled] with a feature's name, a [Feature] handle resolved
// once by [Switch.Feature] (which also turns a misspelt name into an
// error), or [Switch.Allow] with a level: one atomic load, no lock, no
// allocation.
//
// The level follows the pressure of a [Signal]: a number where 1 means
// at capacity. [SignalFunc] adapts any function, such as a shed.CPU's
// Usage method; [Ratio] divides requests in flight by a limit;
// [ErrorRate] counts failures; [Max] combines signals. [Switch.Update]
// reads the signal and moves the level, with hysteresis and a dwell
// time so it does not flap: a level is entered when the pressure reaches
// its Enter threshold (jumping straight to the highest such level), and
// left, one level at a time, only when the pressure is below its lower
// Exit threshold and the level has not changed for Config.MinDwell.
// [Switch.Run] calls Update every Config.Interval in a goroutine the
// caller owns, until its context is done; tests call Update with the
// time they choose. A Switch starts no goroutine of its own.
//
// Operators override the signal with [Switch.Force] and give control
// back with [Switch.Auto], in code or through [Switch.Handler], an admin
// HTTP endpoint (GET shows the [Status], PUT {"level":2} or
// {"auto":true}) that answers errors as problem+json.
//
// Switches report OpenTelemetry metrics, all with resilience.policy.name:
// the gauges resilience.degrade.level and resilience.degrade.pressure,
// the counter resilience.degrade.transitions by resilience.degrade.from
// and resilience.degrade.to, and the counter resilience.degrade.skipped
// by resilience.degrade.feature, counting the calls of [Switch.Enabled]
// that answered false. A level change adds a [LevelChangeEventName]
// event to the recording span of the context given to Update or Force,
// if there is one.
package degrade
