package swim

import (
	"fmt"
	"net/netip"
	"time"
)

// Member describes one member: our own identity when passed to New, and a
// member of the view as the accessors and events report it.
type Member struct {
	// Name identifies the member in the cluster; at most MaxNameLen bytes.
	Name string
	// Addr is where the member receives datagrams.
	Addr netip.AddrPort
	// Incarnation is the member's incarnation number (SWIM §4.2).
	Incarnation uint64
	// Payload is the member's opaque payload. Treat it as read-only: the
	// core shares it with the events and messages it hands out.
	Payload []byte
	// State is the member's state in our view (New ignores it).
	State State
	// Since is when the member entered State in our view (New ignores it).
	Since time.Time
}

// EventKind says what happened to a member.
type EventKind uint8

// The membership events.
const (
	// EventJoined: a member we did not know (or knew as left) is alive.
	EventJoined EventKind = iota + 1
	// EventUpdated: an alive member changed its payload or address.
	EventUpdated
	// EventSuspected: a member became suspect (SWIM §4.2).
	EventSuspected
	// EventAlive: a suspect or dead member refuted and is alive again.
	EventAlive
	// EventFailed: a member was declared dead (SWIM §4.2, confirm).
	EventFailed
	// EventLeft: a member left on purpose, or was marked left.
	EventLeft
	// EventNameConflict: two processes seem to claim one name from two
	// addresses, Member.Addr and Event.Addr. About ourselves (Member is
	// our own entry): someone announced our name at Event.Addr with an
	// incarnation at least ours, which only we raise, so we did not send
	// it; we refute as usual. About another member: its address went from
	// Event.Addr to another and back (or on alternating) at rising
	// incarnations within a few dissemination times, which is two
	// claimants refuting each other, not a restart at a new address. The
	// view is unchanged by the event; it is reported at most once per
	// ProbeInterval about ourselves and once per detection window about
	// each other member (see Core's name conflict detection, step.go).
	EventNameConflict
	// EventStreamOnly: the member answered StreamOnlyReport periodic
	// probes in a row only over the stream fallback (Config.StreamFallback):
	// it is alive, but no datagram ack came back, directly or through a
	// helper, so its datagram path looks broken. Reported once per run of
	// such probes; a probe acked by a datagram ends the run. The view is
	// unchanged by the event.
	EventStreamOnly
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
		return "name-conflict"
	case EventStreamOnly:
		return "stream-only"
	}
	return fmt.Sprintf("event(%d)", uint8(k))
}

// Event is one membership change, with the member as it is after the change.
type Event struct {
	Kind   EventKind
	Member Member
	// Addr is, for EventNameConflict, the address of the other claimant
	// of Member.Name: the one that is not Member.Addr. It is the zero
	// AddrPort for the other kinds.
	Addr netip.AddrPort
}

// Datagram is one compound message to send to To. The first message is the
// probe message (ping, ping-req, ack, nack) when there is one; piggybacked
// updates follow, and a ping to a bare address ends with a pad message
// (KindPad). Its encoded size is within Config.MaxDatagram.
type Datagram struct {
	To   netip.AddrPort
	Msgs []Message
}

// PushPull asks the runtime for a full state exchange with the member at To
// (memberlist's push-pull): send our Snapshot (with Join set as here),
// receive the peer's, and pass it to Merge.
type PushPull struct {
	To netip.AddrPort
	// Name is the peer's name, or empty for a seed we do not know yet.
	Name string
	// Join is set for the exchanges Join asks for.
	Join bool
}

// ProbeResult is the outcome of a Probe or AddMember call.
type ProbeResult struct {
	// Token is what Probe or AddMember returned.
	Token uint64
	// Addr is the probed address.
	Addr netip.AddrPort
	// OK is true when an ack came back in time.
	OK bool
	// Name is the name the ack came from.
	Name string
	// RTT is the round-trip time when OK.
	RTT time.Duration
}

// ProbeResultKind is how a periodic probe ended.
type ProbeResultKind uint8

// The ways a periodic probe ends (SWIM §3.1).
const (
	// ProbeDirect: the target acked our ping.
	ProbeDirect ProbeResultKind = iota + 1
	// ProbeIndirect: a helper relayed the target's ack to our ping-req.
	ProbeIndirect
	// ProbeFailed: no ack came by any path within the protocol period.
	ProbeFailed
	// ProbeStream: no datagram ack came, but the runtime's stream ping
	// (Config.StreamFallback) was acked: the target is not suspected.
	ProbeStream
)

// String returns "direct", "indirect", "failed" or "stream".
func (k ProbeResultKind) String() string {
	switch k {
	case ProbeDirect:
		return "direct"
	case ProbeIndirect:
		return "indirect"
	case ProbeFailed:
		return "failed"
	case ProbeStream:
		return "stream"
	}
	return fmt.Sprintf("probe(%d)", uint8(k))
}

// ProbeOutcome reports how one periodic probe of a member ended, for
// metrics: the probe itself already had its effect on the view.
type ProbeOutcome struct {
	// Name is the probed member.
	Name string
	// Result says by which path the ack came, or that none did.
	Result ProbeResultKind
	// RTT is the time from our ping to the ack (zero when failed).
	RTT time.Duration
	// Nacks is how many helpers reported that their own ping timed out
	// (Lifeguard §4.3).
	Nacks int
	// StreamOnly is, for ProbeStream, how many periodic probes of the
	// member in a row ended that way, this one included.
	StreamOnly int
}

// StreamProbe asks the runtime to ping a member over a stream (its
// reliable, connection-oriented transport) because the datagram ping of a
// periodic probe got no ack in time (Config.StreamFallback). The runtime
// dials To, sends a ping naming Name with Seq, waits for the matching ack
// until Deadline (the end of the probe period) and reports the outcome
// with Core.StreamProbeResult.
type StreamProbe struct {
	To       netip.AddrPort
	Name     string
	Seq      uint32
	Deadline time.Time
}

// Output is what the core wants done. It is filled by Step, Tick and the
// other inputs, and read through Ready. All slices point into buffers the
// core reuses after Advance: copy what must outlive that.
type Output struct {
	Datagrams    []Datagram
	PushPulls    []PushPull
	Events       []Event
	ProbeResults []ProbeResult
	// Probes reports how periodic probes ended, for metrics.
	Probes []ProbeOutcome
	// Broadcasts are the application broadcasts received for the first
	// time, to hand to the application. Their payloads are the
	// application's: they stay valid after Advance.
	Broadcasts []Broadcast
	// StreamProbes are the stream pings to carry out for the fallback
	// probe (Config.StreamFallback).
	StreamProbes []StreamProbe
}

// Empty reports whether there is nothing to do.
func (o *Output) Empty() bool {
	return len(o.Datagrams) == 0 && len(o.PushPulls) == 0 && len(o.Events) == 0 && len(o.ProbeResults) == 0 &&
		len(o.Probes) == 0 && len(o.Broadcasts) == 0 && len(o.StreamProbes) == 0
}

// Counter names a count the core keeps: of rejected or ignored input by
// reason, and of protocol activity. Read them with Core.Count.
type Counter uint8

// The counters.
const (
	// Rejected or ignored input.
	CountMalformed      Counter = iota // unknown kind, bad name or address, missing fields
	CountPayloadTooLong                // payload above MaxPayload
	CountBadIncarnation                // incarnation above MaxIncarnation, or an accusation at it
	CountUnknownSeq                    // ack or nack for no outstanding probe
	CountWrongSender                   // ack or nack from someone other than who was asked
	CountMisdirected                   // ping for another name
	CountFromNonMember                 // accusation by a member we do not know
	CountUnknownMember                 // news about a member we do not know that cannot add it
	CountStale                         // news older than what we hold
	CountConflict                      // same name and incarnation, different address or payload
	CountMemberCap                     // member table full
	CountPendingCap                    // too many outstanding probes
	CountQueueDrop                     // update dropped because the queue was full
	CountQuiet                         // accusation not started or not spread while unhealthy or suspected
	CountNotAllowed                    // input from or about a member outside the allow-list
	// Activity.
	CountProbes        // probes started
	CountProbeFailures // probes that got no ack, direct or indirect
	CountRefutations   // times we raised our incarnation to refute
	CountToldStale     // times we told a member that our view of it is newer
	CountRepairs       // state exchanges asked for because of a digest mismatch
	// Added later, so numbered after the others.
	CountUpdateTooLarge // update or broadcast dropped because it does not fit an empty datagram
	CountNameConflict   // one name claimed from two addresses (see EventNameConflict)
	// Application broadcasts.
	CountBroadcastQueued        // Broadcast calls accepted
	CountBroadcastSent          // broadcast transmissions, piggybacked or gossiped
	CountBroadcastDelivered     // broadcasts received for the first time and handed out
	CountBroadcastDuplicate     // broadcasts received again (or our own, coming back)
	CountBroadcastReplaced      // queued broadcasts replaced by a newer one with the same key, here or on relay
	CountBroadcastStale         // broadcasts older than one delivered with the same key: not delivered
	CountBroadcastDropped       // queued broadcasts dropped because the queue was full (the most-sent first)
	CountBroadcastOriginEvicted // origins whose delivery state was forgotten to make room
	// The stream fallback probe (Config.StreamFallback).
	CountStreamProbes // stream pings asked of the runtime
	CountStreamAcks   // periodic probes saved by a stream ack alone (ProbeStream)
	CountStreamOnly   // EventStreamOnly reports
	// Added later still.
	CountIntroductions   // alive messages sent to a member whose ack said it did not know us
	CountPushPullsAgreed // periodic state exchanges not asked for: the member's view was known to equal ours
	numCounters
)

// NumCounters is the number of counters; they are numbered from 0.
const NumCounters = int(numCounters)

var counterNames = [...]string{
	"malformed", "payload_too_long", "bad_incarnation", "unknown_seq", "wrong_sender",
	"misdirected", "from_non_member", "unknown_member", "stale", "conflict",
	"member_cap", "pending_cap", "queue_drop", "quiet", "not_allowed",
	"probes", "probe_failures", "refutations", "told_stale", "repairs",
	"update_too_large",
	"name_conflict",
	"broadcast_queued", "broadcast_sent", "broadcast_delivered", "broadcast_duplicate",
	"broadcast_replaced", "broadcast_stale", "broadcast_dropped", "broadcast_origin_evicted",
	"stream_probes", "stream_acks", "stream_only",
	"introductions",
	"push_pulls_agreed",
}

// String returns the counter's snake_case metric name.
func (c Counter) String() string {
	if int(c) < len(counterNames) {
		return counterNames[c]
	}
	return fmt.Sprintf("counter(%d)", uint8(c))
}
