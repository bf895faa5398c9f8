// Package membership is a secure SWIM gossip membership library.
//
// A group of processes that import it learns, at every moment, who is in the
// group, who is suspected, who failed and who left, and each member can
// attach a small payload (role, shard, version) to itself. Every datagram
// and stream is encrypted and authenticated with a keyring (package
// keyring), whose keys can be rotated while the cluster runs.
//
//	ring, _ := keyring.Load("/etc/myservice/keyring")
//	node, err := membership.New(
//		membership.WithName("api-7"),
//		membership.WithBindAddr("0.0.0.0:7946"),
//		membership.WithKeyring(ring),
//		membership.WithLabel("prod-eu"),
//		membership.WithPayload([]byte(`{"role":"api"}`)),
//	)
//	if err != nil { ... }
//	defer node.Shutdown()
//	n, err := node.Join(ctx, "10.0.0.1:7946", "10.0.0.2:7946")
//	for ev := range node.Events() { ... }   // joined, updated, suspected, alive, failed, left
//	node.Members()                          // the current view, sorted by name
//	node.Leave(ctx)                         // graceful: others report "left", not "failed"
//
// Applications gossip their own data through the same sealed channels:
// Broadcast (to every member, piggybacked on the protocol's datagrams),
// SendTo (one datagram) and SendReliable (a stream) to one member, Query
// (a request to every member, answers collected until a deadline), and
// WithState (state that must converge, in every push-pull). All of it
// arrives on the bounded Messages channel; docs/gossip.md has the rules.
// RotateKey and its steps (InstallKey, UseKey, RemoveKey, ListKeys) rotate
// the key of a running cluster with a report of who holds which key.
//
// One goroutine owns the protocol state (package swim, a pure state machine)
// and drives it from the transport (package transport) and timers. Methods
// of Node are safe for concurrent use and never call back into user code:
// events go to a bounded channel that never blocks the protocol, and an
// event consumer may call any method.
//
// The protocol is SWIM (Das, Gupta, Motivala, 2002) with the Lifeguard
// refinements (Dadgar, Phillips, Currey, 2018); the wire encoding is in
// package codec; SECURITY.md describes the threat model and wire format.
package membership
