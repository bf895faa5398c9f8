// Package examples holds runnable programs that show the library in use: a
// local encrypted cluster, key rotation, statsd export and a small agent with
// flags. Each program lives in its own directory and runs with "go run".
package examples
