package swim

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Config holds every knob of the protocol. Start from DefaultConfig, or
// from one of the node runtime's profiles (LANConfig, WANConfig,
// LocalConfig), and change what you need; New validates the result. Each field's
// comment gives its default and the reason for it.
type Config struct {
	// ProbeInterval is the protocol period T' (SWIM §3.1): one probe of one
	// member starts every period. Default 1s, memberlist's LAN value: on a
	// LAN a crash is first noticed in about 1.6 s.
	ProbeInterval time.Duration

	// Jitter is the fraction by which every periodic timer is spread at
	// random: a period lasts ProbeInterval·(1 ± Jitter/2). Default 0.1, so
	// that members that started together do not probe in lock step.
	Jitter float64

	// IndirectChecks is k, the number of members asked to probe a target
	// indirectly when the direct ping got no ack in time (SWIM §3.1).
	// Default 3: the false-failure rate falls as (1−r⁴)^k and 3 is where
	// the paper's table reaches 1e-3 at 5 % loss.
	IndirectChecks int

	// RandomProbe picks each period's target uniformly at random (the
	// analysis of SWIM §3.1) instead of the randomized round-robin of
	// SWIM §4.3. Default false: round-robin bounds the time between two
	// probes of a member to 2n−1 periods. The simulator uses true to check
	// the paper's first-detection formula.
	RandomProbe bool

	// AckTimeout is how long the direct ping waits for its ack before the
	// indirect probes go out. It is the starting value of the adaptive
	// timeout, and the fixed value when AdaptiveAckTimeout is false.
	// Default 500ms (memberlist's LAN value); it must be below
	// ProbeInterval so that the indirect probes have time.
	AckTimeout time.Duration

	// AdaptiveAckTimeout sets the ack timeout from the round-trip times of
	// recent direct probes: their 99th percentile plus 10 %, clamped to
	// [AckTimeoutMin, AckTimeoutMax]. Default true: a fast LAN detects
	// sooner and a slow WAN suspects less.
	AdaptiveAckTimeout bool

	// AckTimeoutMin and AckTimeoutMax clamp the adaptive ack timeout.
	// Defaults 200ms (a garbage-collection pause must not look like a
	// failure) and 800ms (indirect probes still get a fifth of the period).
	AckTimeoutMin, AckTimeoutMax time.Duration

	// RetransmitMult is λ: every update is piggybacked λ·⌈log2(n+1)⌉ times
	// (SWIM §4.1). Default 3, the SWIM testbed's value, which leaves about
	// n^−(2λ−2) members uninformed; fast repair catches those.
	RetransmitMult int

	// Suspicion enables the suspicion subprotocol (SWIM §4.2). Default
	// true. With false a failed probe declares the target dead at once, as
	// in basic SWIM (§3); the simulator uses it to check the paper's
	// false-failure formula.
	Suspicion bool

	// SuspicionMult is α: the shortest suspicion timeout is
	// α·max(1, log10(n))·ProbeInterval (Lifeguard §4.2). Default 4
	// (memberlist's LAN value).
	SuspicionMult float64

	// SuspicionMaxMult is β: a suspicion starts at β times the shortest
	// timeout and shrinks with independent confirmations (Lifeguard §4.2).
	// Default 6 (memberlist's value). Without Lifeguard the timeout is the
	// shortest one.
	SuspicionMaxMult float64

	// SuspicionConfirmations is K, the number of independent confirmations
	// after which the suspicion timeout reaches its minimum (Lifeguard
	// §4.2). Default 3 (memberlist's α−2).
	SuspicionConfirmations int

	// StreamFallback also pings the target of a periodic probe over the
	// runtime's stream transport when neither its direct ack nor an
	// indirect one has come one ack timeout after the ping-reqs went out
	// (at most half the rest of the period; Output.StreamProbes, answered
	// with StreamProbeResult). If no datagram ack, direct or indirect,
	// has come by the end of the period but the stream ack has, the target
	// is not suspected (ProbeStream). Default true, as memberlist's TCP
	// ping: datagram loss alone (SWIM §5 measured its false positives
	// under it) then almost never leads to a suspicion, and with it the
	// refutation and the gossip burst that every suspicion costs the
	// cluster, since a stream retransmits what the network loses. It
	// hides nothing: a member reachable only over the stream is reported
	// (EventStreamOnly after StreamOnlyReport such probes in a row), and a
	// crashed or partitioned member fails the stream ping as well.
	StreamFallback bool

	// Lifeguard switches on the Lifeguard refinements as a whole: the local
	// health multiplier (§4.1), nacks from indirect helpers (§4.3), the
	// shrinking suspicion timeout (§4.2), the buddy system (§4.3), and
	// keeping quiet about others while unhealthy. Default true; false gives
	// plain SWIM for comparison.
	Lifeguard bool

	// HealthMax is the highest local health score (Lifeguard §4.1). The
	// probe interval and the ack timeout are multiplied by score+1. Default
	// 8: a member that sees every probe fail slows to one probe every nine
	// periods instead of accusing the cluster.
	HealthMax int

	// QuietHealth is the health score from which this member stops
	// spreading accusations (suspect, dead) about others, and does not
	// start new ones (tarantool's lesson: a member that is itself in
	// trouble spreads false rumours). The same holds while we are suspected
	// ourselves. Default 4, half of HealthMax.
	QuietHealth int

	// TombstoneTimeout is how long dead and left members are kept before
	// they are forgotten. Dead tombstones are probed now and then so that a
	// healed partition or a restarted member comes back by itself; left
	// ones are kept so that late news about them is recognised. Default
	// 1h: partitions longer than that need a new Join.
	TombstoneTimeout time.Duration

	// DeadProbeInterval is how often one random dead tombstone is pinged.
	// Default 5s: a tombstone costs one ping per 5 s cluster-wide per
	// member holding it, and a healed partition heals in seconds. Zero
	// disables tombstone probing.
	DeadProbeInterval time.Duration

	// PushPullInterval is how often a full state exchange with a random
	// member is asked for (anti-entropy, as memberlist). Default 30s. Above
	// 32 members it is stretched by one interval per doubling of n, as
	// memberlist does, since each exchange costs O(n). Zero disables it;
	// Join and fast repair still ask for exchanges.
	//
	// A periodic exchange is not asked for when the member chosen is known
	// to hold the view we hold: one of its pings or acks within the
	// interval carried our current digest. Fast repair then stands in for
	// it (a later digest that differs asks for an exchange), so this
	// needs RepairInterval above zero; PushPullAgreed turns it off.
	PushPullInterval time.Duration

	// PushPullAgreed asks for every periodic exchange, also with members
	// whose view is known to equal ours. Set it when the exchange carries
	// more than the view: the node sets it for applications that exchange
	// their own state with it (WithState).
	PushPullAgreed bool

	// RepairInterval is the shortest time between two exchanges triggered
	// by a digest mismatch (fast repair). Default 5s. Zero disables fast
	// repair, and with it the acks that tell a prober we do not know it
	// (StrangerDigest), which would otherwise fill partial views.
	RepairInterval time.Duration

	// MaxMembers caps the member table, tombstones included; news of more
	// members is dropped and counted. Default 65536.
	MaxMembers int

	// MaxPendingProbes caps outstanding probes on behalf of others
	// (ping-req), of Probe and of AddMember. Default 256.
	MaxPendingProbes int

	// MaxQueuedUpdates caps the dissemination queue; when it is full an
	// update that was already sent often is dropped and counted. Default
	// 8192.
	MaxQueuedUpdates int

	// GossipFanout is how many datagrams of updates alone a member sends,
	// to random members, each period while its queue holds more than its
	// ping carries, and each GossipInterval while it has news at all.
	// Default 2: a join storm spreads in O(log n) periods, and an idle
	// cluster sends nothing extra. Zero disables it (pure piggybacking,
	// SWIM §4.1).
	GossipFanout int

	// GossipInterval, when not zero, also sends the GossipFanout datagrams
	// on a timer of its own while the dissemination queue holds news
	// (memberlist's gossip interval), so that news does not wait a whole
	// period between transmissions. Default 0: dissemination as SWIM §4.1
	// analyses it, which the simulator's paper tests check. The node
	// runtime's profiles turn it on (200 ms with a fanout of 3 on a LAN):
	// joins and deaths then reach everyone in under a second instead of
	// several, at the cost of more datagrams while there is news, and none
	// while idle.
	GossipInterval time.Duration

	// MaxPayload is the longest payload in bytes. Default 512 (memberlist's
	// meta limit). Validate refuses a MaxPayload with which an update in
	// the worst case (an alive or left message with a MaxNameLen name, an
	// IPv6 address and MaxIncarnation) would not fit one datagram behind
	// the largest ack; MaxPayloadFor gives the largest one that fits.
	// Every update therefore leaves with the next answer we send, and so
	// does the alive message that introduces us to a Probe or AddMember
	// by address. With DefaultConfig that bound is 554 bytes; the node
	// runtime's 1400-byte datagrams allow 778 (XChaCha20-Poly1305).
	MaxPayload int

	// MaxUserPayload is the longest payload in bytes of an application
	// broadcast (Core.Broadcast) or direct message (KindDirect) that the
	// core sends or accepts: a received broadcast with a longer one is
	// counted as malformed. Every member must use the same value. Default:
	// what fits one datagram of DefaultConfig behind the largest probe
	// message, from a one-byte origin name without a key
	// (MaxUserPayloadFor), 553 bytes; a runtime with larger datagrams may
	// raise it to MaxUserPayloadFor of its own configuration. Validate
	// does not require it to fit: Broadcast refuses what does not fit one
	// datagram with our name and the key (MaxBroadcastPayload), whatever
	// this bound says.
	MaxUserPayload int

	// MaxQueuedBroadcasts caps the broadcast queue, which holds our own
	// broadcasts and those of others that we relay; when it is full, the
	// entry sent most often is dropped and counted
	// (CountBroadcastDropped). Default 1024.
	MaxQueuedBroadcasts int

	// MaxQueuedBroadcastBytes caps the encoded size of the broadcast
	// queue's entries, with the same policy. Default 1 MiB; it must be at
	// least MaxDatagram, so that any broadcast fits.
	MaxQueuedBroadcastBytes int

	// MaxDatagram is the byte budget for one encoded compound message list
	// (the probe message plus piggybacked updates). Default 1200: a
	// 1400-byte UDP payload minus the envelope (header, nonce, tag,
	// timestamp) with room to spare. It must hold every probe message with
	// the longest names, and the largest ack together with the largest
	// update (see MaxPayload). An update that does not fit behind a probe
	// message waits for one it fits behind (an ack, or a datagram of
	// updates alone).
	MaxDatagram int

	// CompoundOverhead is the encoded size of a compound list besides its
	// messages (the codec's HeaderSize). Default 8.
	CompoundOverhead int

	// MessageSize returns the exact encoded size of one message within a
	// compound (the codec's MessageSize). Nil uses EstimateSize, a
	// conservative estimate.
	MessageSize func(*Message) int
}

// DefaultConfig returns the values documented on each field: SWIM's and
// memberlist's LAN values, without a gossip timer, with α = 4. LANConfig,
// which the node runtime uses by default, adds the gossip timer and α = 2.
func DefaultConfig() Config {
	c := Config{
		ProbeInterval:           time.Second,
		Jitter:                  0.1,
		IndirectChecks:          3,
		AckTimeout:              500 * time.Millisecond,
		AdaptiveAckTimeout:      true,
		AckTimeoutMin:           200 * time.Millisecond,
		AckTimeoutMax:           800 * time.Millisecond,
		RetransmitMult:          3,
		Suspicion:               true,
		SuspicionMult:           4,
		SuspicionMaxMult:        6,
		SuspicionConfirmations:  3,
		StreamFallback:          true,
		Lifeguard:               true,
		HealthMax:               8,
		QuietHealth:             4,
		TombstoneTimeout:        time.Hour,
		DeadProbeInterval:       5 * time.Second,
		PushPullInterval:        30 * time.Second,
		RepairInterval:          5 * time.Second,
		MaxMembers:              1 << 16,
		MaxPendingProbes:        256,
		MaxQueuedUpdates:        8192,
		MaxPayload:              512,
		GossipFanout:            2,
		MaxDatagram:             1200,
		CompoundOverhead:        8,
		MaxQueuedBroadcasts:     1024,
		MaxQueuedBroadcastBytes: 1 << 20,
	}
	c.MaxUserPayload = MaxUserPayloadFor(c)
	return c
}

// ErrConfig is wrapped by every error Validate returns.
var ErrConfig = errors.New("swim: invalid config")

// Validate reports the first field that is out of range.
func (c *Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
	}
	switch {
	case c.ProbeInterval <= 0:
		return bad("ProbeInterval %v must be positive", c.ProbeInterval)
	case c.Jitter < 0 || c.Jitter > 1:
		return bad("Jitter %v must be in [0, 1]", c.Jitter)
	case c.IndirectChecks < 0 || c.IndirectChecks > 16:
		return bad("IndirectChecks %d must be in [0, 16]", c.IndirectChecks)
	case c.AckTimeout <= 0 || c.AckTimeout >= c.ProbeInterval:
		return bad("AckTimeout %v must be positive and below ProbeInterval %v", c.AckTimeout, c.ProbeInterval)
	case c.AdaptiveAckTimeout && (c.AckTimeoutMin <= 0 || c.AckTimeoutMax < c.AckTimeoutMin || c.AckTimeoutMax >= c.ProbeInterval):
		return bad("AckTimeoutMin %v and AckTimeoutMax %v must satisfy 0 < min <= max < ProbeInterval", c.AckTimeoutMin, c.AckTimeoutMax)
	case c.RetransmitMult < 1 || c.RetransmitMult > 64:
		return bad("RetransmitMult %d must be in [1, 64]", c.RetransmitMult)
	case c.Suspicion && (c.SuspicionMult <= 0 || c.SuspicionMult > 1000):
		return bad("SuspicionMult %v must be in (0, 1000]", c.SuspicionMult)
	case c.Suspicion && (c.SuspicionMaxMult < 1 || c.SuspicionMaxMult > 1000):
		return bad("SuspicionMaxMult %v must be in [1, 1000]", c.SuspicionMaxMult)
	case c.SuspicionConfirmations < 0 || c.SuspicionConfirmations > 32:
		return bad("SuspicionConfirmations %d must be in [0, 32]", c.SuspicionConfirmations)
	case c.HealthMax < 0 || c.HealthMax > 64:
		return bad("HealthMax %d must be in [0, 64]", c.HealthMax)
	case c.QuietHealth < 0:
		return bad("QuietHealth %d must not be negative", c.QuietHealth)
	case c.TombstoneTimeout <= 0:
		return bad("TombstoneTimeout %v must be positive", c.TombstoneTimeout)
	case c.DeadProbeInterval < 0 || c.PushPullInterval < 0 || c.RepairInterval < 0:
		return bad("DeadProbeInterval, PushPullInterval and RepairInterval must not be negative")
	case c.MaxMembers < 2:
		return bad("MaxMembers %d must be at least 2", c.MaxMembers)
	case c.MaxPendingProbes < 1:
		return bad("MaxPendingProbes %d must be positive", c.MaxPendingProbes)
	case c.MaxQueuedUpdates < 1:
		return bad("MaxQueuedUpdates %d must be positive", c.MaxQueuedUpdates)
	case c.MaxPayload < 0 || c.MaxPayload > 1<<16:
		return bad("MaxPayload %d must be in [0, 65536]", c.MaxPayload)
	case c.GossipFanout < 0 || c.GossipFanout > 16:
		return bad("GossipFanout %d must be in [0, 16]", c.GossipFanout)
	case c.GossipInterval < 0:
		return bad("GossipInterval %v must not be negative", c.GossipInterval)
	case c.MaxUserPayload < 0 || c.MaxUserPayload > maxUserPayload:
		return bad("MaxUserPayload %d must be in [0, %d]", c.MaxUserPayload, maxUserPayload)
	case c.MaxQueuedBroadcasts < 1:
		return bad("MaxQueuedBroadcasts %d must be positive", c.MaxQueuedBroadcasts)
	case c.MaxQueuedBroadcastBytes < c.MaxDatagram:
		return bad("MaxQueuedBroadcastBytes %d must be at least MaxDatagram %d", c.MaxQueuedBroadcastBytes, c.MaxDatagram)
	case c.CompoundOverhead < 0:
		return bad("CompoundOverhead %d must not be negative", c.CompoundOverhead)
	case c.MaxDatagram < c.CompoundOverhead+worstProbe(c.sizeFunc()):
		return bad("MaxDatagram %d is too small for a probe message with the longest names: it needs %d",
			c.MaxDatagram, c.CompoundOverhead+worstProbe(c.sizeFunc()))
	}
	if maxp := MaxPayloadFor(*c); maxp < 0 {
		return bad("MaxDatagram %d is too small for an ack and an alive message with the longest names: it needs %d",
			c.MaxDatagram, c.CompoundOverhead+worstAnswer(c.sizeFunc(), 0))
	} else if c.MaxPayload > maxp {
		return bad("MaxPayload %d does not fit one datagram of MaxDatagram %d bytes with the longest names (an alive message behind an ack needs %d): the largest MaxPayload that fits is %d; raise the datagram size or lower the payload",
			c.MaxPayload, c.MaxDatagram, c.CompoundOverhead+worstAnswer(c.sizeFunc(), c.MaxPayload), maxp)
	}
	return nil
}

// sizeFunc is MessageSize, or EstimateSize when it is nil.
func (c *Config) sizeFunc() func(*Message) int {
	if c.MessageSize != nil {
		return c.MessageSize
	}
	return EstimateSize
}

// zeros is read-only filler: the payload of the worst-case messages that
// Validate sizes, and of the pad messages that the core sends (KindPad).
var zeros [1 << 16]byte

// The widest values of the fields that vary in size.
var (
	longName  = strings.Repeat("x", MaxNameLen)
	widestIP  = netip.AddrPortFrom(netip.AddrFrom16([16]byte{0: 0x20, 1: 0x01, 15: 1}), 65535)
	widestSeq = ^uint32(0)
)

// worstProbe is the size of the largest probe message: a ping, ping-req,
// ack or nack with the longest names, an IPv6 address and the widest
// numbers.
func worstProbe(size func(*Message) int) int {
	return max(
		size(&Message{Kind: KindPing, Seq: widestSeq, From: longName, Name: longName, Digest: ^uint64(0)}),
		size(&Message{Kind: KindPingReq, Seq: widestSeq, From: longName, Name: longName, Addr: widestIP, Nack: true}),
		size(&Message{Kind: KindAck, Seq: widestSeq, From: longName, Digest: ^uint64(0)}),
		size(&Message{Kind: KindNack, Seq: widestSeq, From: longName}),
	)
}

// worstAnswer is the size of the messages of the largest ack carrying the
// largest alive or left message with a payload of p bytes, compound
// overhead excluded. (Suspect and dead messages carry no payload: the
// probe check bounds them, a ping being as large.)
func worstAnswer(size func(*Message) int, p int) int {
	ack := size(&Message{Kind: KindAck, Seq: widestSeq, From: longName, Digest: ^uint64(0)})
	pl := zeros[:p]
	u := max(
		size(&Message{Kind: KindAlive, Name: longName, Addr: widestIP, Incarnation: MaxIncarnation, Payload: pl}),
		size(&Message{Kind: KindLeft, Name: longName, Addr: widestIP, Incarnation: MaxIncarnation, Payload: pl}),
	)
	return ack + u
}

// MaxPayloadFor returns the largest MaxPayload that Validate accepts with
// cfg's MaxDatagram, CompoundOverhead and MessageSize (cfg.MaxPayload is
// ignored): the largest payload with which an alive or left message in the
// worst case (a MaxNameLen name, an IPv6 address, MaxIncarnation) fits one
// datagram behind the largest ack (a MaxNameLen name, the widest sequence
// number and digest). That is what lets every update leave with the next
// answer we send, and the alive message that introduces us ride on the
// answer to a Probe or AddMember by address. It returns -1 when
// MaxDatagram is too small even without a payload, and at most 65536, the
// range of MaxPayload.
//
// A runtime can quote it in the error for a payload cap that is too large,
// and use it to size MaxDatagram for a payload it needs. MessageSize must
// not shrink as the payload grows.
func MaxPayloadFor(cfg Config) int {
	size, budget := cfg.sizeFunc(), cfg.MaxDatagram-cfg.CompoundOverhead
	fits := func(p int) bool { return worstAnswer(size, p) <= budget }
	if !fits(0) {
		return -1
	}
	return largestFit(fits, len(zeros))
}

// largestFit returns the largest p in [0, top] with fits(p), given that
// fits(0) holds and fits is monotone (true, then false).
func largestFit(fits func(int) bool, top int) int {
	if fits(top) {
		return top
	}
	lo, hi := 0, top // fits(lo), !fits(hi)
	for hi-lo > 1 {
		if mid := lo + (hi-lo)/2; fits(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
}

// maxUserPayload is the range of Config.MaxUserPayload: what one UDP
// datagram can hold at most, as codec.MaxUserPayloadLimit.
const maxUserPayload = 1<<16 - 1

// userMsg is the largest broadcast with the given origin, key and payload
// length: the widest epoch and sequence number.
func userMsg(origin, key string, p int) Message {
	return Message{Kind: KindUser, From: origin, Name: key, Incarnation: ^uint64(0), Seq: widestSeq, Payload: zeros[:p:p]}
}

// MaxUserPayloadFor returns the largest broadcast payload that fits one
// datagram of cfg (MaxDatagram, CompoundOverhead and MessageSize) behind
// the largest probe message, from an origin with a one-byte name and
// without a key: the default of Config.MaxUserPayload (cfg.MaxUserPayload
// is ignored). A broadcast from a longer name, or with a key, fits less
// (Core.MaxBroadcastPayload). It returns -1 when not even an empty
// broadcast fits, and at most 65535.
func MaxUserPayloadFor(cfg Config) int {
	size := cfg.sizeFunc()
	room := cfg.MaxDatagram - cfg.CompoundOverhead - worstProbe(size)
	return fitPayload(size, room, "x", "")
}

// fitPayload returns the largest payload of a broadcast from origin with
// key whose size is at most room, -1 if none, and at most maxUserPayload.
func fitPayload(size func(*Message) int, room int, origin, key string) int {
	fits := func(p int) bool {
		m := userMsg(origin, key, p)
		return size(&m) <= room
	}
	if !fits(0) {
		return -1
	}
	return largestFit(fits, maxUserPayload)
}

// EstimateSize is the built-in upper bound on the encoded size of m within a
// compound, used when Config.MessageSize is nil: 64 bytes for framing and
// the fixed-width fields (kind, sequence number, incarnation, digest, flag,
// an IPv6 address and port, and the length prefixes; about 55 in msgpack's
// widest array encoding), plus the bytes of From, Name and Payload.
func EstimateSize(m *Message) int {
	return 64 + len(m.From) + len(m.Name) + len(m.Payload)
}
