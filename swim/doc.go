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
// virtual time (package swimtest).
//
// # Driving a Core
//
// One goroutine owns a Core, built with New from a Config (DefaultConfig is
// the LAN preset), our own Member identity, a *rand.Rand and the current
// time. The runtime loop is:
//
//   - on a received datagram: decode it into a []Message and call Step(now,
//     from, msgs);
//   - when the time returned by NextDeadline comes: call Tick(now);
//   - for the user's requests: Join(seeds), Leave, SetPayload, Probe(addr),
//     AddMember(addr), MarkLeft(name), RemoveMember(name), Discover(addr)
//     (a broadcast or multicast address), SetAllow(list);
//   - after any of these: read Ready() and act on it, then call Advance.
//
// Ready returns an Output: Datagrams to encode and send (each a compound
// whose first message is the probe message when there is one, followed by
// piggybacked updates, within Config.MaxDatagram bytes as measured by
// Config.MessageSize; a datagram may also hold updates only), PushPulls to
// carry out over a stream (send our Snapshot, receive the peer's, pass it to
// Merge), membership Events, and ProbeResults for Probe, AddMember and
// Discover calls, matched by token (a discovery reports every answer, then
// its end). Everything in it stays valid until Advance.
//
// Read access: Myself, Member, MemberByAddr, AppendMembers, NumMembers,
// NumLive, NumInState, Health, QueueLen, AckTimeout, Digest, LeaveDone,
// Disseminating, and Count for the counters of
// rejected input and protocol activity (see Counter), which map onto
// metrics.
//
// # What it implements
//
//   - Probing (SWIM §3.1, §4.3): one probe per period in randomized
//     round-robin order, a direct ping, then k indirect ping-reqs; helpers
//     answer a timeout with a nack (Lifeguard §4.3).
//   - Suspicion (SWIM §4.2, Lifeguard §4.2): a failed probe makes the target
//     suspect; the timeout starts at β·α·log10(n) periods and shrinks to
//     α·log10(n) with independent confirmations; the buddy system puts the
//     suspicion first in pings to the suspect.
//   - Local health (Lifeguard §4.1): a score of 0..HealthMax that stretches
//     the probe interval and ack timeout; while unhealthy or suspected we
//     keep accusations to ourselves.
//   - Dissemination (SWIM §4.1): updates ride on every datagram, each
//     λ·⌈log2(n+1)⌉ times, least-sent first, one per member (newer news
//     replaces older); under a backlog a few extra gossip datagrams go out.
//     Config.Validate caps MaxPayload so that every update fits one
//     datagram behind the largest ack (MaxPayloadFor); an update that
//     does not fit even an empty datagram all the same (a MessageSize at
//     odds with the check) is dropped and counted, never kept forever.
//   - Incarnations (SWIM §4.2): only a member raises its own, to refute, to
//     change its payload, to leave, or to move above what the cluster
//     remembers of a previous life. Stale news from a member about itself
//     is answered by telling it our newer view, so that mass restarts and
//     moves to new addresses heal. Incarnations saturate at MaxIncarnation,
//     and one message may raise one by at most MaxIncarnationJump.
//   - Tombstones: dead members are kept for TombstoneTimeout and pinged now
//     and then, so that healed partitions come back without a Join.
//   - Fast repair: pings and acks carry a digest of the view; a mismatch
//     when we have no news in flight asks for a state exchange.
//   - Allow-lists: members outside one (Allow: names, addresses, networks)
//     are never added, probed, gossiped about or answered, whoever passes
//     news of them on (allow.go).
//   - Hostile input: every message is validated; what is impossible is
//     ignored and counted; every table is capped. Nothing a received
//     datagram says can make the core send more than one answer and a few
//     rate-limited datagrams: one probe message per datagram is acted on,
//     ping-reqs are relayed only to known members at their known address,
//     and "your view is stale" goes only to a member speaking for itself.
//   - No amplification: a replayed datagram with a forged source address
//     must not make us send its victim more bytes than it sent (RFC 9000
//     §8.1's rule). Only a sender that was a live member at the datagram's
//     source address before the datagram arrived gets a full answer; to
//     anyone else the answer (an ack, a relayed ack or nack, a stale view)
//     is at most the datagram's encoded size, as Config.MessageSize counts
//     it plus CompoundOverhead, or the bare answer if that is larger. A
//     ping to a bare address (Probe, AddMember) is padded to MaxDatagram
//     with a pad message (KindPad), so that the answer can carry the
//     answerer's alive message.
//   - Name conflicts: one name claimed from two addresses (two processes
//     started under one name) makes them refute each other forever. We
//     report it with EventNameConflict (and CountNameConflict): about
//     ourselves, when our name is announced at another address at an
//     incarnation we have reached, which only we raise; about another
//     member, when its address goes A→B→A at rising incarnations within
//     four dissemination times. A restart at a new address is not one,
//     since a process's first incarnation comes from the clock.
//
// This package imports only the standard library.
package swim
