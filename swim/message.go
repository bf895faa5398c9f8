package swim

import (
	"fmt"
	"net/netip"
)

// Kind identifies the type of a Message. The numeric values are part of the
// wire format (package codec writes them as they are) and never change.
type Kind uint8

// The message kinds. Probe messages (ping, ping-req, ack, nack) lead a
// datagram; membership updates (alive, suspect, dead, left) are piggybacked
// behind them (SWIM §4.1, "infection-style dissemination").
const (
	// KindPing is a direct probe of Name (SWIM §3.1). From is the prober.
	KindPing Kind = 1
	// KindPingReq asks the receiver to probe Name at Addr on the sender's
	// behalf and to relay the ack (SWIM §3.1, indirect probing). With Nack
	// set, the helper also reports a timeout with a nack (Lifeguard §4.3).
	KindPingReq Kind = 2
	// KindAck answers a ping, or relays an indirect probe's answer.
	KindAck Kind = 3
	// KindNack tells the requester of a ping-req that the helper's own probe
	// of the target timed out (Lifeguard §4.3).
	KindNack Kind = 4
	// KindAlive announces Name at Addr, Incarnation, with Payload (SWIM §4.2).
	KindAlive Kind = 5
	// KindSuspect says From suspects Name at Incarnation (SWIM §4.2).
	KindSuspect Kind = 6
	// KindDead says From declared Name at Incarnation failed (SWIM §4.2,
	// "confirm").
	KindDead Kind = 7
	// KindLeft says Name left the group on purpose at Incarnation, with its
	// last Payload.
	KindLeft Kind = 8
	// KindPad is padding: its Payload is filler that carries nothing and
	// that the receiver ignores. A ping to a bare address (Probe,
	// AddMember) is padded to MaxDatagram so that the answer, which must
	// carry the answerer's alive message, may be as large: an answer to a
	// sender we cannot place is never larger than what it answers (the
	// client pads its first datagram in QUIC, RFC 9000 §8.1 and §14.1).
	// Older peers' decoders skip the kind (docs/codec.md).
	KindPad Kind = 9
)

// String returns the lower-case name of the kind, or "kind(N)" for an unknown
// value.
func (k Kind) String() string {
	switch k {
	case KindPing:
		return "ping"
	case KindPingReq:
		return "ping-req"
	case KindAck:
		return "ack"
	case KindNack:
		return "nack"
	case KindAlive:
		return "alive"
	case KindSuspect:
		return "suspect"
	case KindDead:
		return "dead"
	case KindLeft:
		return "left"
	case KindPad:
		return "pad"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// IsProbe reports whether k is a probe message (ping, ping-req, ack, nack),
// as opposed to a membership update or padding.
func (k Kind) IsProbe() bool { return k >= KindPing && k <= KindNack }

// IsUpdate reports whether k is a membership update (alive, suspect, dead,
// left), which is what dissemination piggybacks.
func (k Kind) IsUpdate() bool { return k >= KindAlive && k <= KindLeft }

// Message is one protocol message. It is a single flat struct rather than one
// type per kind (as etcd raft's Message is) so that the core can build, queue
// and hand out messages without boxing them in interfaces, which keeps the
// steady state free of allocations. Which fields a kind uses is listed below;
// the codec sends only those, and the core ignores the rest.
//
//	kind      Seq  From  Name  Addr  Incarnation  Payload  Digest  Nack
//	ping       x    x     x                                  x
//	ping-req   x    x     x     x                                    x
//	ack        x    x                                        x
//	nack       x    x
//	alive                 x     x        x           x
//	suspect         x     x              x
//	dead            x     x              x
//	left                  x     x        x           x
//	pad                                          x (filler)
type Message struct {
	// Kind says which of the kinds above this is.
	Kind Kind
	// Seq is the probe sequence number: chosen by the prober for ping and
	// ping-req and echoed in ack and nack. Sequence numbers are compared by
	// equality only, so wrapping is harmless.
	Seq uint32
	// From is the name of the member that sent (ping, ping-req, ack, nack)
	// or accused (suspect, dead).
	From string
	// Name is the member the message is about: the probe target for ping
	// and ping-req, the subject for updates.
	Name string
	// Addr is the subject's address: where the target of a ping-req is
	// reached, or where an alive or left member lives.
	Addr netip.AddrPort
	// Incarnation is the subject's incarnation number (SWIM §4.2).
	Incarnation uint64
	// Payload is the subject's opaque payload (alive, left). The core never
	// retains a slice it did not allocate, and never changes one it handed
	// out.
	Payload []byte
	// Digest is a compact summary of the sender's membership view, carried
	// on ping and ack; a mismatch with our own view triggers a targeted
	// state exchange. Zero means "no digest".
	Digest uint64
	// Nack asks the helper of a ping-req to answer with a nack if its own
	// probe times out (Lifeguard §4.3).
	Nack bool
}

// State is a member's state as this node sees it. The numeric values are
// part of the wire format (push-pull snapshots) and never change. At equal
// incarnation a higher state overrides a lower one (SWIM §4.2), except that
// left is final.
type State uint8

// The member states.
const (
	StateAlive   State = 0
	StateSuspect State = 1
	StateDead    State = 2
	StateLeft    State = 3
)

// String returns "alive", "suspect", "dead", "left" or "state(N)".
func (s State) String() string {
	switch s {
	case StateAlive:
		return "alive"
	case StateSuspect:
		return "suspect"
	case StateDead:
		return "dead"
	case StateLeft:
		return "left"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// MemberState is one member's entry in a push-pull snapshot: everything
// another node needs to merge our view of that member into its own.
type MemberState struct {
	Name        string
	Addr        netip.AddrPort
	Incarnation uint64
	State       State
	Payload     []byte
}

// Snapshot is a full membership view exchanged in push-pull anti-entropy
// (memberlist's push-pull; SWIM leaves full-state exchange out). A joining
// node sends one with Join set to a seed; the seed answers with its own.
type Snapshot struct {
	// From is the sender's name.
	From string
	// Join is set when the sender is joining and wants the full view back.
	Join bool
	// Members holds every member the sender knows, itself included.
	Members []MemberState
}

// MaxNameLen is the longest member name, in bytes, that the core accepts and
// the codec reads from the wire.
const MaxNameLen = 255

// MaxIncarnation is the highest valid incarnation number. Incarnation
// arithmetic saturates at it instead of wrapping, and a message that carries
// a higher value (only 1<<64-1 is) is rejected as impossible. So is an
// accusation that could not be refuted (at MaxIncarnation or one below),
// and news that raises a member's incarnation by more than MaxIncarnationJump
// at once.
const MaxIncarnation = ^uint64(0) - 1

// MaxIncarnationJump is the largest step by which one message may raise an
// incarnation we hold (ours or a member's). Members raise theirs one at a
// time, or, when a restarted member starts from the clock, by the seconds
// since its previous start: far below 2^32. A larger step comes from a bug or
// a lie, and accepting it would let one message push a member to the
// saturation point, where it could no longer refute.
const MaxIncarnationJump = 1 << 32
