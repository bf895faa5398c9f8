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
// One goroutine owns a Core, built with New from a Config (DefaultConfig
// holds the protocol's base values; LANConfig, WANConfig and LocalConfig
// are the node runtime's profiles), our own Member identity, a *rand.Rand
// and the current time. The runtime loop is:
//
//   - on a received datagram: decode it into a []Message and call Step(now,
//     from, msgs);
//   - when the time returned by NextDeadline comes: call Tick(now);
//   - for the user's requests: Join(seeds), Leave, SetPayload, Probe(addr),
//     AddMember(addr), MarkLeft(name), RemoveMember(name), Discover(addr)
//     (a broadcast or multicast address), SetAllow(list), Broadcast(key,
//     payload);
//   - when a stream ping asked for in Output.StreamProbes ends: call
//     StreamProbeResult(now, name, seq, ok);
//   - after any of these: read Ready() and act on it, then call Advance.
//
// Ready returns an Output: Datagrams to encode and send (each a compound
// whose first message is the probe message when there is one, followed by
// piggybacked updates, within Config.MaxDatagram bytes as measured by
// Config.MessageSize; a datagram may also hold updates only), PushPulls to
// carry out over a stream (send our Snapshot, receive the peer's, pass it to
// Merge), StreamProbes to carry out over a stream (ping the named member,
// report with StreamProbeResult), membership Events, ProbeResults for
// Probe, AddMember and Discover calls, matched by token (a discovery reports every answer, then
// its end), and application Broadcasts received for the first time.
// Everything in it stays valid until Advance (the broadcasts' payloads for
// good).
//
// Read access: Myself, Member, MemberByAddr, AppendMembers, NumMembers,
// NumLive, NumInState, Health, QueueLen, BroadcastQueue,
// MaxBroadcastPayload, MaxDirectPayload, AckTimeout, Digest, LeaveDone,
// Disseminating, and Count for the counters of rejected input and protocol
// activity (see Counter), which map onto metrics.
//
// # What it implements
//
//   - Probing (SWIM §3.1, §4.3): one probe per period in randomized
//     round-robin order, a direct ping, then k indirect ping-reqs; helpers
//     answer a timeout with a nack (Lifeguard §4.3). With
//     Config.StreamFallback the runtime also pings the target over a stream
//     when the direct ack is late (Output.StreamProbes, answered with
//     StreamProbeResult), as memberlist does over TCP: a target that only
//     the stream answered is not suspected (ProbeStream), and one that
//     answers only that way StreamOnlyReport times in a row is reported
//     (EventStreamOnly). See streamprobe.go.
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
//     when we have no news in flight asks for a state exchange. An ack
//     from a member that does not know its prober carries digest 0
//     (StrangerDigest), and the prober sends it its alive message at once:
//     a member that missed every retransmission of a joiner's alive
//     message in a join storm under loss learns of the joiner at the
//     joiner's next probe of it, not at the next push-pull. Both are off
//     when RepairInterval is 0.
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
//   - Application broadcasts: see below.
//
// # Broadcasts
//
// Broadcast(key, payload) sends application data to every member on the
// protocol's own datagrams (KindUser), disseminated as membership news is
// (SWIM §4.1): every member that holds a broadcast piggybacks it
// λ·⌈log2(n+1)⌉ times, least-sent first (the oldest first among equals),
// and the gossip timer (GossipInterval, GossipFanout) runs while either
// queue holds news. Each member hands a broadcast to its application once,
// in Output.Broadcasts, and relays it; the origin never gets its own.
//
//   - Size: a broadcast must fit one datagram behind the largest probe
//     message, with our name as origin and its key: MaxBroadcastPayload
//     says how much that leaves, at most Config.MaxUserPayload. Broadcast
//     refuses more with ErrBroadcastTooLarge, naming the limit.
//   - Sharing the byte budget, membership news never starves: in every
//     datagram, while broadcasts are queued, membership updates are packed
//     first into the budget less a reserve of half of it, then broadcasts
//     fill what is left, then membership updates take what broadcasts left
//     unused. Membership news gets at least half of every datagram, and
//     broadcasts at least half while membership news waits (all of it when
//     none does). A broadcast larger than half a datagram therefore waits
//     for a datagram in which membership news leaves it room.
//   - Keys: a newer broadcast with the same key from the same origin
//     replaces the older one in every queue that still holds it (counted:
//     CountBroadcastReplaced), and a member never delivers the older after
//     the newer (CountBroadcastStale), so a member that receives both in
//     order delivers both, and one that receives the newer first delivers
//     only it. An empty key replaces nothing.
//   - Exactly once: a broadcast is named by its origin, the origin's epoch
//     (a random number each Core picks at New, so that a restarted process,
//     whose sequence numbers start at 1 again, is not taken for its previous
//     life) and its sequence number within the epoch (compared with RFC 1982
//     serial arithmetic). Per origin we remember its last two epochs, and for
//     each the sequence numbers seen among the last 1,024 below the highest:
//     a broadcast further behind is taken for a duplicate, so an origin that
//     sends more than 1,024 broadcasts while an early one is still spreading
//     may see the early one dropped by members that got the later ones first:
//     over 1,000 broadcasts within a delivery time (about a period), far more
//     than the byte budget carries (see Bounded), and the simulator's tests
//     see no such loss. Keys are remembered per origin, up to
//     256 (the least recently used goes), as a salted 64-bit hash. Broadcasts
//     of two epochs are not ordered by key: the later arrival counts as
//     newer. Origins need not be members (an origin's alive message may
//     travel behind its broadcasts); at most MaxMembers origins and 131,072
//     keys in all are remembered, the origins heard from least recently
//     being forgotten first (CountBroadcastOriginEvicted), and what we
//     remember of a member goes when the core forgets it (an expired
//     tombstone, RemoveMember). A forgotten origin's broadcasts still in
//     flight would be delivered again.
//   - Bounded: the queue holds at most MaxQueuedBroadcasts entries and
//     MaxQueuedBroadcastBytes encoded bytes; when full, the entry sent most
//     often goes (CountBroadcastDropped). Each member sends each broadcast
//     λ·⌈log2(n+1)⌉ times, so the broadcasts a cluster can carry are bounded
//     by what its datagrams hold: beyond it the queues fill, delivery slows
//     down and the most-sent entries are dropped. On the simulator at
//     n = 64 with the node runtime's LAN profile and 5 % loss, 64-byte
//     broadcasts at 10 a second cluster-wide all arrive within the
//     dissemination bound; at 20 a second 8 deliveries in 25,200 come late
//     (the slowest after 18 periods) or never; at 50 a second, 2.6 %.
//   - Delivery time: the simulator measures it at n = 64 with 5 % loss and
//     the node runtime's LAN profile (gossip every 200 ms to 3 members):
//     median 0.28, p99 0.60, max 1.3 periods over 12,600 deliveries, within
//     the bound λ·⌈log2(n+1)⌉·GossipInterval/GossipFanout = 1.4 periods
//     (the time in which a member spends its transmissions of a broadcast).
//   - Broadcasts flow while we keep quiet (they accuse nobody), ride the
//     answers to senders we cannot place within the same byte bound, are
//     refused after Leave (ErrLeft), and do not hold LeaveDone back: what
//     is still queued at the end is not sent.
//   - Direct messages (KindDirect) are the runtime's: Step ignores them.
//     MaxDirectPayload says how large one from us may be.
//
// This package imports only the standard library.
package swim
