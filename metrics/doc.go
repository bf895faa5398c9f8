// Package metrics names every metric the library emits, in one place, and
// maps protocol events and runtime counters onto an armon/go-metrics sink
// (for example statsd).
package metrics
