package membership

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/meshward/membership/swim"
)

// State is a member's state as this node sees it.
type State uint8

// The member states. A member is alive until it fails to answer probes
// (suspect), then dead when nobody could reach it within the suspicion
// timeout; left means it announced its departure.
const (
	StateAlive State = iota
	StateSuspect
	StateDead
	StateLeft
)

// String returns "alive", "suspect", "dead" or "left".
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

func stateOf(s swim.State) State {
	switch s {
	case swim.StateSuspect:
		return StateSuspect
	case swim.StateDead:
		return StateDead
	case swim.StateLeft:
		return StateLeft
	}
	return StateAlive
}

// Member is one member of the group as this node sees it. It is a copy:
// changing it changes nothing in the node.
type Member struct {
	// Name identifies the member in the cluster.
	Name string
	// Addr is where the member receives datagrams and streams.
	Addr netip.AddrPort
	// State is the member's state in our view.
	State State
	// Incarnation is the member's incarnation number; only the member
	// itself raises it (on refutation, payload change, rejoin, leave).
	Incarnation uint64
	// Payload is the member's opaque payload (role, shard, version...).
	Payload []byte
	// Since is when the member entered State in our view.
	Since time.Time
	// Clock is our estimate of the member's clock offset from ours, from
	// the timestamps of our direct probes' acks (see ClockOffset); not
	// Known for ourselves, nor before a direct probe of the member.
	Clock ClockOffset
}

func memberOf(m swim.Member) Member {
	return Member{
		Name:        m.Name,
		Addr:        m.Addr,
		State:       stateOf(m.State),
		Incarnation: m.Incarnation,
		Payload:     append([]byte(nil), m.Payload...),
		Since:       m.Since,
	}
}

// EventKind says what happened to a member.
type EventKind uint8

// The membership events.
const (
	// EventJoined: a member we did not know, or knew as left, is alive.
	EventJoined EventKind = iota + 1
	// EventUpdated: an alive member changed its payload or address.
	EventUpdated
	// EventSuspected: a member stopped answering probes and is suspected.
	EventSuspected
	// EventAlive: a suspected or failed member is alive again.
	EventAlive
	// EventFailed: a member was declared failed.
	EventFailed
	// EventLeft: a member left the group on purpose (or was marked left).
	EventLeft
	// EventNameConflict: two processes claim one name. Member is the one
	// that holds it in our view (ourselves, when the name is ours) and
	// Event.ConflictAddr is where the other claim comes from. The protocol
	// keeps the member that holds the name (a joiner's Join fails with
	// ErrNameConflict); the application decides what else to do, such as
	// alerting an operator or, on the newcomer, shutting down.
	EventNameConflict
	// EventKeyMismatch: traffic came from an address that holds other keys
	// than ours (Event.KeyMismatch says which; see KeyMismatches). Member
	// is the member at that address in our view, or only its address when
	// we know none there. One event per address per minute at most, unless
	// what it sends changes.
	EventKeyMismatch
	// EventUDPBroken: Member answered several periodic probes of ours in
	// a row (swim.StreamOnlyReport) only over the stream fallback: it is
	// alive, but its datagrams, or ours to it, are lost, so it cannot help
	// probe others and every probe of it costs a stream. Check firewalls
	// and UDP routing between the two hosts. Reported once per run of
	// such probes (a probe acked by a datagram ends the run), logged as a
	// warning at a limited rate, and counted (membership.protocol,
	// reason stream_only). See docs/probing.md.
	EventUDPBroken
)

// String returns the lower-case name of the event kind.
func (k EventKind) String() string {
	switch k {
	case EventJoined:
		return "joined"
	case EventUpdated:
		return "updated"
	case EventSuspected:
		return "suspected"
	case EventAlive:
		return "alive"
	case EventFailed:
		return "failed"
	case EventLeft:
		return "left"
	case EventNameConflict:
		return "name_conflict"
	case EventKeyMismatch:
		return "key_mismatch"
	case EventUDPBroken:
		return "udp_broken"
	}
	return fmt.Sprintf("event(%d)", uint8(k))
}

func eventKindOf(k swim.EventKind) EventKind {
	switch k {
	case swim.EventJoined:
		return EventJoined
	case swim.EventUpdated:
		return EventUpdated
	case swim.EventSuspected:
		return EventSuspected
	case swim.EventAlive:
		return EventAlive
	case swim.EventFailed:
		return EventFailed
	case swim.EventLeft:
		return EventLeft
	case swim.EventNameConflict:
		return EventNameConflict
	case swim.EventStreamOnly:
		return EventUDPBroken
	}
	return 0
}

// Event is one membership change, with the member as it is after the
// change.
type Event struct {
	Kind   EventKind
	Member Member
	// ConflictAddr, for EventNameConflict only, is the address of the
	// other process that claims Member.Name.
	ConflictAddr netip.AddrPort
	// KeyMismatch, for EventKeyMismatch only, says what the peer sent
	// that we could not open.
	KeyMismatch KeyMismatch
}

// String describes the event in one line, for logs.
func (e Event) String() string {
	if e.Kind == EventKeyMismatch {
		return e.Kind.String() + ": " + e.KeyMismatch.String()
	}
	return fmt.Sprintf("%s %s %v inc=%d", e.Kind, e.Member.Name, e.Member.Addr, e.Member.Incarnation)
}
