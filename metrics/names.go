package metrics

// This file is the one list of every metric the library emits. docs/metrics.md
// documents each (type, labels, meaning); TestNamesDocumented keeps the two in
// step.
//
// Names are dotted; a sink renders them its own way (statsd keeps the dots
// and appends label values as further segments, Prometheus turns dots into
// underscores and keeps labels as labels).

// Prefix is the first segment of every metric name.
const Prefix = "membership"

// Metric names. The comment of each gives its type and labels.
const (
	// MessagesSent counts protocol messages sent. Counter; labels: type.
	MessagesSent = Prefix + ".messages.sent"
	// MessagesReceived counts protocol messages received and decoded.
	// Counter; labels: type.
	MessagesReceived = Prefix + ".messages.received"
	// BytesSent counts encoded bytes of messages sent, before sealing.
	// Counter; labels: type.
	BytesSent = Prefix + ".bytes.sent"
	// BytesReceived counts encoded bytes of messages received, after
	// opening. Counter; labels: type.
	BytesReceived = Prefix + ".bytes.received"
	// WireBytesSent counts sealed bytes sent on the wire: whole datagrams
	// as handed to the socket, and stream bytes as written. Counter;
	// labels: channel.
	WireBytesSent = Prefix + ".wire.bytes.sent"
	// WireBytesReceived counts sealed bytes received: datagrams that
	// opened and decoded, and stream bytes as read. Counter; labels:
	// channel.
	WireBytesReceived = Prefix + ".wire.bytes.received"

	// Probes counts completed probes of other members by outcome (SWIM
	// §3.1). Counter; labels: result.
	Probes = Prefix + ".probes"
	// Nacks counts nacks received from indirect probe helpers (Lifeguard
	// §4.3). Counter.
	Nacks = Prefix + ".probes.nacks"
	// ProbeRTT samples the round-trip time of acknowledged probes, in
	// milliseconds. Sample; labels: path.
	ProbeRTT = Prefix + ".probes.rtt"
	// StreamProbes counts the stream pings of the fallback probe
	// (swim.Config.StreamFallback), sent when a periodic probe's datagram
	// ack is late, by result: ok, failed, or skipped when too many were in
	// flight. Counter; labels: result.
	StreamProbes = Prefix + ".probes.stream"

	// Suspicions counts members this node marked suspect (SWIM §4.2).
	// Counter.
	Suspicions = Prefix + ".suspicions"
	// Refutations counts suspicions about this node that it refuted by
	// raising its incarnation (SWIM §4.2). Counter.
	Refutations = Prefix + ".refutations"
	// Deaths counts members declared failed. Counter.
	Deaths = Prefix + ".deaths"
	// Leaves counts members that left gracefully. Counter.
	Leaves = Prefix + ".leaves"
	// Members is the number of known members in each state. Gauge;
	// labels: state.
	Members = Prefix + ".members"

	// Protocol counts what the protocol core counted since the last
	// report: input it rejected or ignored (malformed, stale, from a
	// non-member...) and its own activity (probes, refutations, repairs),
	// by the core's counter name (swim.Counter). Counter; labels: reason.
	Protocol = Prefix + ".protocol"

	// Health is the local health multiplier score (Lifeguard §4.1): 0 is
	// healthy, higher means this node itself is slow. Gauge.
	Health = Prefix + ".health"
	// GossipQueue is the number of updates waiting to be disseminated.
	// Gauge.
	GossipQueue = Prefix + ".gossip.queue"

	// PushPulls counts full state exchanges over streams (join and
	// anti-entropy). Counter; labels: direction, result.
	PushPulls = Prefix + ".pushpull"
	// PushPullDuration samples the duration of a push-pull exchange, in
	// milliseconds. Sample; labels: direction.
	PushPullDuration = Prefix + ".pushpull.duration"

	// Dropped counts received datagrams and stream frames dropped before
	// reaching the protocol, by reason. Counter; labels: reason.
	Dropped = Prefix + ".dropped"
	// AESGCMSeals counts AES-GCM seals per key: random 96-bit nonces bound
	// a key's safe use (NIST SP 800-38D: 2^32 seals cluster-wide), so the
	// count tells when to rotate. Counter; labels: key.
	AESGCMSeals = Prefix + ".keyring.aesgcm.seals"

	// EventsDropped counts events not delivered because a subscriber's
	// bounded channel was full (the Events channel or a Subscription's).
	// Counter.
	EventsDropped = Prefix + ".events.dropped"
	// UserMessages counts application messages by how they travelled and
	// what became of them. Counter; labels: type, result.
	UserMessages = Prefix + ".user.messages"
	// UserBroadcasts counts application broadcasts through the
	// dissemination queue by what happened. Counter; labels: result.
	UserBroadcasts = Prefix + ".user.broadcasts"
	// UserBroadcastQueue is the number of application broadcasts waiting
	// to be disseminated. Gauge.
	UserBroadcastQueue = Prefix + ".user.broadcast.queue"
	// UserBroadcastQueueBytes is their encoded size in bytes. Gauge.
	UserBroadcastQueueBytes = Prefix + ".user.broadcast.queue.bytes"
	// UserQueries counts queries by what happened. Counter; labels:
	// result.
	UserQueries = Prefix + ".user.queries"

	// NameConflicts counts names claimed by two processes at once (a
	// joiner refused because a live member holds its name, or gossip that
	// shows two addresses taking turns under one name). Counter.
	NameConflicts = Prefix + ".name.conflicts"
	// TransportDropped counts datagrams and streams the transport dropped,
	// by reason. Counter; labels: reason.
	TransportDropped = Prefix + ".transport.dropped"

	// ReplayWindow is how far back, in seconds, the replay cache still
	// tells replays apart: the configured window unless a flood filled the
	// cache. Gauge.
	ReplayWindow = Prefix + ".replay.window"

	// KeyMismatches counts datagrams and streams that did not open for a
	// reason about keys (a key we do not hold, failed authentication,
	// another suite, plaintext where encryption is required or the
	// reverse). Counter; labels: key (a fingerprint seen from a member's
	// address, at most 16 of them; "other"; "none" for plaintext), reason.
	KeyMismatches = Prefix + ".key.mismatches"
	// KeyMismatchAddrs is the number of addresses that sent such traffic
	// in the last two minutes and nothing that opened since. Gauge.
	KeyMismatchAddrs = Prefix + ".key.mismatch.addrs"
	// KeyringSaves counts saves of the key file (WithKeyringFile) after a
	// change of the keyring, and their retries. Counter; labels: result.
	KeyringSaves = Prefix + ".keyring.saves"
	// EncryptionMode is the node's encryption mode as a number: 0
	// required, 1 send-sealed, 2 accept-sealed, 3 off. Gauge.
	EncryptionMode = Prefix + ".encryption.mode"
	// EncryptionPlaintext counts plaintext datagrams and stream records
	// accepted by a node with a keyring in a transitional mode. Counter.
	EncryptionPlaintext = Prefix + ".encryption.plaintext"

	// ClockOffsetMax is the largest clock offset, in absolute value and
	// milliseconds, that this node estimates for any member from its
	// direct probes (Member.Clock). A gauge, not one per member, so that
	// its cardinality does not grow with the cluster; 0 while no member
	// has an estimate. Gauge.
	ClockOffsetMax = Prefix + ".clock.offset.max"
)

// Label names.
const (
	LabelType      = "type"      // message type, e.g. "ping", "ack", "alive"
	LabelResult    = "result"    // outcome: ProbeResult or PushPullResult values
	LabelPath      = "path"      // "direct" or "indirect"
	LabelState     = "state"     // member state: "alive", "suspect", "dead", "left"
	LabelDirection = "direction" // "outbound" (we initiated) or "inbound"
	LabelReason    = "reason"    // DropReason or TransportDropReason values
	LabelKey       = "key"       // key fingerprint, hex
	LabelChannel   = "channel"   // "datagram" (UDP) or "stream" (TCP)
	LabelNode      = "node"      // the local node's name (a base label)
)

// ProbeResult is the outcome of one probe (SWIM §3.1, §4.1).
type ProbeResult string

// Probe outcomes.
const (
	ProbeAck         ProbeResult = "ack"          // direct ack within the timeout
	ProbeIndirectAck ProbeResult = "indirect_ack" // ack through a ping-req helper
	ProbeFailed      ProbeResult = "failed"       // no ack by any path: target suspected
	ProbeStreamAck   ProbeResult = "stream_ack"   // no datagram ack, but the stream ping was acked: not suspected
)

// Results on StreamProbes.
const (
	StreamProbeOK      = "ok"      // the target acked over the stream
	StreamProbeFailed  = "failed"  // no ack: dial, handshake or answer failed, or the period ended
	StreamProbeSkipped = "skipped" // not dialed: too many stream pings in flight
)

// Path is how an acknowledged probe's ack came back.
type Path string

// Probe paths.
const (
	PathDirect   Path = "direct"
	PathIndirect Path = "indirect"
)

// Direction says who initiated a stream exchange.
type Direction string

// Directions.
const (
	Outbound Direction = "outbound" // this node dialed
	Inbound  Direction = "inbound"  // a peer dialed this node
)

// Channel is how bytes crossed the wire.
type Channel string

// Channels.
const (
	ChannelDatagram Channel = "datagram" // sealed datagrams (UDP)
	ChannelStream   Channel = "stream"   // streams (TCP): push-pull and reliable messages
)

// Push-pull results, values of LabelResult on PushPulls; ok and error
// also end reliable sends (UserMessages, type reliable_sent).
const (
	ResultOK    = "ok"
	ResultError = "error"
)

// Results of application messages received (UserMessages): handed to the
// application, or dropped because its channel was full.
const (
	ResultDelivered = "delivered"
	ResultDropped   = "dropped"
)

// Results on UserBroadcasts.
const (
	BroadcastQueued    = "queued"    // Broadcast accepted here
	BroadcastSent      = "sent"      // one transmission, piggybacked or gossiped
	BroadcastDelivered = "delivered" // first receipt, handed to the application
	BroadcastDuplicate = "duplicate" // receipt of one already seen
	BroadcastReplaced  = "replaced"  // a queued one replaced by a newer with its key
	BroadcastStale     = "stale"     // older than one delivered with its key: not delivered
	BroadcastDropped   = "dropped"   // the queue was full
)

// Results on UserQueries.
const (
	QuerySent      = "sent"      // Query called here
	QueryReceived  = "received"  // a query handed to the application here
	QueryResponded = "responded" // Respond called here
	QueryResponse  = "response"  // a response that reached the querier
	QueryAck       = "ack"       // a delivery acknowledgement that reached the querier
	QueryTimedOut  = "timed_out" // a query whose deadline passed with responses missing
	QueryComplete  = "complete"  // a query that heard from every member it expected
)

// Member states, values of LabelState on Members.
const (
	StateAlive   = "alive"
	StateSuspect = "suspect"
	StateDead    = "dead"
	StateLeft    = "left"
)

// DropReason says why a received datagram or frame was dropped before the
// protocol saw it.
type DropReason string

// Drop reasons.
const (
	DropUnknownKey  DropReason = "unknown_key" // key fingerprint matches no installed key, and no key opened it
	DropAuth        DropReason = "auth"        // authentication failed (wrong key, wrong label, tampering)
	DropReplay      DropReason = "replay"      // duplicate inside the replay window
	DropTooOld      DropReason = "too_old"     // sender timestamp older than the replay window
	DropTooNew      DropReason = "too_new"     // sender timestamp further in the future than the window
	DropMalformed   DropReason = "malformed"   // envelope too short, unknown version or suite
	DropDecode      DropReason = "decode"      // opened, but the message did not decode
	DropUnencrypted DropReason = "unencrypted" // plaintext datagram at a node with a keyring

	// Streams (push-pull). A record that fails to open counts as
	// unknown_key or auth, one that opens but does not decode as decode.
	DropStreamBusy      DropReason = "stream_busy"      // refused for load: every slot taken (the initiator is told so)
	DropStreamEvicted   DropReason = "stream_evicted"   // unauthenticated stream closed to make room for a newcomer
	DropStreamBadHello  DropReason = "stream_bad_hello" // hello with an unknown version
	DropStreamTooLarge  DropReason = "stream_too_large" // a record's length, or the stream's total, above its limit
	DropStreamTruncated DropReason = "stream_truncated" // the peer hung up before its final record
	DropStreamTimeout   DropReason = "stream_timeout"   // the peer was too slow: hello timeout or stream deadline
	// DropWindowShrunk: the timestamp is inside the replay window, but the
	// full replay cache has forgotten datagrams that recent, so it cannot
	// tell a replay apart. The cache is too small; the clocks are fine.
	DropWindowShrunk DropReason = "window_shrunk"
	// DropNotAllowed: the datagram or stream comes from a source address
	// outside the node's allow-list; it is dropped before any
	// cryptography.
	DropNotAllowed DropReason = "not_allowed"
)

// DropReasons lists every DropReason.
var DropReasons = []DropReason{
	DropUnknownKey, DropAuth, DropReplay, DropTooOld, DropTooNew, DropWindowShrunk, DropMalformed, DropDecode, DropUnencrypted,
	DropStreamBusy, DropStreamEvicted, DropStreamBadHello, DropStreamTooLarge, DropStreamTruncated, DropStreamTimeout,
	DropNotAllowed,
}

// TransportDropReason says why the transport dropped a datagram or stream.
type TransportDropReason string

// Transport drop reasons.
const (
	TransportQueueFull       TransportDropReason = "queue_full"        // datagram queue full (slow consumer)
	TransportTooLarge        TransportDropReason = "too_large"         // datagram above the maximum size
	TransportStreamQueueFull TransportDropReason = "stream_queue_full" // accept queue full
)

// allNames lists every metric name, for key precomputation and the
// documentation test.
var allNames = []string{
	MessagesSent, MessagesReceived, BytesSent, BytesReceived,
	WireBytesSent, WireBytesReceived,
	Probes, Nacks, ProbeRTT, StreamProbes,
	Suspicions, Refutations, Deaths, Leaves, Members,
	Protocol, Health, GossipQueue,
	PushPulls, PushPullDuration,
	Dropped, AESGCMSeals,
	EventsDropped, TransportDropped, NameConflicts, ReplayWindow,
	KeyMismatches, KeyMismatchAddrs, KeyringSaves, EncryptionMode, EncryptionPlaintext,
	UserMessages, UserBroadcasts, UserBroadcastQueue, UserBroadcastQueueBytes, UserQueries,
	ClockOffsetMax,
}
