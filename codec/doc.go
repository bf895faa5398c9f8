// Package codec is the msgpack wire encoding of the messages that package swim
// defines: compound datagrams (a probe message followed by as many
// piggybacked updates as fit a byte budget, SWIM §4.1) and streamed push-pull
// snapshots.
//
// # Datagrams
//
// Append and Encode write a []swim.Message as one datagram: a version byte,
// a fixed-width msgpack array header and one msgpack array per message. The
// size is exact: len(datagram) == HeaderSize + Σ MessageSize(m), and Fit says
// how many messages fit a budget. A Decoder reads datagrams into caller
// storage, allocating at most once per datagram.
//
// # Snapshots
//
// SnapshotWriter streams a snapshot as self-contained frames of bounded size
// to a FrameWriter (which the runtime implements to seal each frame);
// SnapshotReader reads them back from a FrameReader, frame by frame.
//
// # Hostile input
//
// Every length, count and nesting depth read from the wire is bounded
// (Limits, MaxDepth, swim.MaxNameLen) before it is used; every error is a
// *FieldError naming the field and wrapping one of ErrVersion, ErrTruncated,
// ErrMalformed, ErrLimit and ErrInvalid. The decoders never panic; they are
// fuzzed (FuzzDecode, FuzzSnapshot).
//
// # Versions
//
// A protocol version travels in every datagram and snapshot stream. Within a
// major version, newer peers may add message kinds and append fields, which
// older decoders skip; see docs/codec.md for the wire form and the
// compatibility rule.
package codec
