// Package examples holds runnable programs that show the library in use: a
// local encrypted cluster, key rotation, statsd export and a small agent with
// flags. Each program lives in its own directory and runs with "go run".
// examples/prometheus, Prometheus export, is a module of its own (run it
// from its directory), so that Prometheus's client library stays out of the
// library's go.mod.
package examples
