// Package bench compares membership with hashicorp/memberlist on real
// loopback UDP and TCP: idle traffic, crash detection and join storms. It is
// a separate module so that memberlist never enters the library's go.mod.
// The tests run only with MEMBERSHIP_BENCH=1; see docs/bench.md.
package bench
