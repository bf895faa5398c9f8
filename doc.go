// Package membership is a secure SWIM gossip membership library.
//
// A group of processes that import it learns, at every moment, who is in the
// group, who is suspected, who failed and who left, and each member can attach
// a small payload (role, shard, version) to itself. Every datagram is
// encrypted and authenticated with a keyring (package keyring), and keys can be
// rotated while the cluster runs.
//
// The runtime (a Node, its options and events) lives here; the protocol
// itself is the pure state machine in package swim, the wire encoding is in
// package codec, the authenticated encryption in package keyring, and the
// sockets in package transport. The runtime is being built: until it lands
// this package holds only this documentation.
package membership
