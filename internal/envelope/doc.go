// Package envelope wraps encoded protocol messages for the wire, between the
// codec and the transport: the sender's timestamp inside every sealed
// datagram and the replay guard that checks it, and sealed, ordered,
// truncation-proof records for TCP streams.
//
// Datagrams and stream records are sealed with the same keyring but with
// associated data from disjoint domains, so a captured datagram can never be
// fed into a stream or the reverse (SECURITY.md).
package envelope
