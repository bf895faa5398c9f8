// Package integration holds multi-process and multi-host tests: real
// binaries, real UDP and TCP, with members killed, paused and partitioned.
package integration
