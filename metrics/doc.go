// Package metrics names every metric the library emits, in one place
// (names.go, documented in docs/metrics.md), and emits them to an
// armon/go-metrics sink such as statsd.
//
// Metrics wraps the sink it is given, never go-metrics' process-global one,
// adds base labels (the node's name) to every metric, and offers one typed
// method per concept (Probe, Suspicion, MemberCounts, Drop, ...). A nil
// *Metrics is a valid no-op, so the runtime calls it unconditionally. NewStatsd
// builds a statsd sink; NewInmem an in-memory sink with lookups for tests.
package metrics
