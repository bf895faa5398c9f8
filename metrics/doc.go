// Package metrics names every metric the library emits, in one place
// (names.go, documented in docs/metrics.md), and emits them to an
// armon/go-metrics sink such as statsd.
//
// Metrics wraps the sink it is given, never go-metrics' process-global one,
// adds base labels (the node's name) to every metric, and offers one typed
// method per concept (Probe, Suspicion, MemberCounts, Drop, ...). A nil
// *Metrics is a valid no-op, so the runtime calls it unconditionally. The
// counters counted per message or datagram are summed in Metrics and reach
// the sink on Flush, which the node calls once a second and at Shutdown.
//
// NewDogStatsd builds a statsd sink that sends labels as DogStatsD tags
// (name:1|c|#node:api-7,reason:auth), which statsd_exporter, Datadog and
// Telegraf read: the recommended way to statsd. NewStatsd builds go-metrics'
// plain statsd sink, which appends label values to the name, for servers
// that read no tags. NewInmem builds an in-memory sink with lookups for
// tests. For Prometheus, use go-metrics' Prometheus sink
// (examples/prometheus).
package metrics
