// Package keyring seals and opens every datagram the library sends with an
// AEAD, and holds the keys that rotate while the cluster runs: one primary
// key that seals, and any number of installed keys that still open.
//
// The wire format and the threat model are in SECURITY.md at the root of the
// repository.
package keyring
