// Package swim is the SWIM membership protocol (Das, Gupta, Motivala, DSN
// 2002) with the Lifeguard refinements (Dadgar, Phillips, Currey, 2018) as a
// pure, deterministic state machine.
//
// The core owns no socket, reads no clock and starts no goroutine: received
// messages and the passing of time come in as method calls that carry "now",
// randomness comes from a caller-supplied source, and everything the core
// wants done (messages to send, events, probe results, the next deadline)
// comes out as data. The same code therefore runs in production, in a unit
// test that steps time by hand, and in a simulator of thousands of members in
// virtual time.
//
// This package imports only the standard library.
package swim
