// Package crashtest proves the checkout saga crash-safe: its tests run the
// order service (the saga's orchestrator) as a child process, SIGKILL it at
// every step boundary of the checkout saga (before and after each call to a
// participant, on the happy path and on the compensating paths), restart it
// on the same data directory, and check that every saga ends completed or
// compensated, that no payment is captured twice and that no stock is
// reserved twice. The participants (inventory, payment with its simulated
// provider, shipping) run in the test's process, so that their state
// survives the orchestrator's death and can be checked. One more test
// kills the payment service, also a child process, between the provider's
// capture of a charge and the service's record of it.
//
// The package holds no code besides its tests.
package crashtest
