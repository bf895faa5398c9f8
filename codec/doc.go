// Package codec is the msgpack wire encoding of the messages that package swim
// defines: compound datagrams (a probe message followed by as many
// piggybacked updates as fit a byte budget) and streamed push-pull snapshots.
//
// Every length read from the wire is bounded, every decoder is fuzzed, and a
// protocol version travels in every datagram so that rolling upgrades work.
package codec
