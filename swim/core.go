package swim

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"
)

// Errors returned by the inputs that can fail.
var (
	// ErrLeft is returned by calls that make no sense after Leave.
	ErrLeft = errors.New("swim: member has left")
	// ErrUnknownMember is returned for a name that is not in the view.
	ErrUnknownMember = errors.New("swim: unknown member")
	// ErrPendingCap is returned when MaxPendingProbes probes are outstanding.
	ErrPendingCap = errors.New("swim: too many outstanding probes")
	// ErrIncarnation is returned when our incarnation cannot be raised
	// any further (it is at MaxIncarnation).
	ErrIncarnation = errors.New("swim: incarnation exhausted")
)

// longAgo is a time far enough in the past for any rate limit, yet far
// enough from the minimum that now − longAgo cannot overflow.
const longAgo = math.MinInt64 / 4

const rttWindow = 128

// Core is one member's protocol state: the SWIM failure detector and
// dissemination (Das et al. 2002) with the Lifeguard refinements (Dadgar et
// al. 2018). It owns no socket, reads no clock and starts no goroutine: every
// input carries the current time, and everything it wants done is collected
// in an Output read with Ready and released with Advance. A Core is not safe
// for concurrent use; one goroutine owns it.
type Core struct {
	cfg  Config
	rng  *rand.Rand
	t0   time.Time
	now  int64 // ns since t0
	size func(*Message) int

	self    *member
	leaving bool
	members map[string]*member
	all     []*member // every entry, in an order that depends only on history
	slab    []member  // current chunk of entries
	free    []*member // forgotten entries for reuse
	order   []*member // live members but ourselves, in probe order
	cursor  int
	dead    []*member // dead tombstones
	timers  []*member // heap by tAt
	queue   []*member // heap by (qSent, -qSeq)
	qSeq    uint64
	live    int    // alive or suspect members, ourselves included
	digest  uint64 // sum of live members' hashes
	allow   *Allow // the allow-list, or nil (allow.go)

	byState [numStates]int // entries by state, ourselves and tombstones included

	health         int
	suspectedUntil int64
	accusedHealth  int64 // when an accusation last cost us a health point

	// Step's datagram source, for tellStale; its encoded size
	// (CompoundOverhead plus its messages' sizes), which bounds what we
	// answer to a sender we cannot place; and whether we can (see
	// answerLimit). Zero outside Step.
	stepFrom   netip.AddrPort
	stepSize   int
	stepPlaced bool
	// Whether the update being learnt speaks for its subject (see learn).
	fromSubject bool
	// A window of one probe interval and the tellStale datagrams sent in it.
	staleWindow int64
	staleSent   int

	seq       uint32
	probe     probeState
	pending   []pending
	nextToken uint64

	nextProbe     int64
	nextDeadProbe int64
	nextPushPull  int64
	nextGossip    int64
	lastRepair    int64

	rtt        [rttWindow]int64
	rttN       int
	rttPos     int
	rttScratch [rttWindow]int64
	ackTimeout int64

	// Application broadcasts (broadcast.go): the queue, the delivery
	// state, our epoch and last sequence number, the salt of key hashes,
	// and the room behind the largest probe message.
	bq       bqueue
	dd       dedup
	bEpoch   uint64
	bSeq     uint32
	keySalt  uint64
	userRoom int

	out       Output
	arena     []Message
	scratch   []*member
	packStamp uint64 // numbers the datagrams being filled (member.packed)
	count     [NumCounters]uint64
}

type probeState struct {
	active   bool
	indirect bool
	seq      uint32
	target   *member
	start    int64
	ackAt    int64
	endAt    int64
	helpers  []string
	nacks    int
	// The stream fallback (streamprobe.go): when the stream ping is due
	// (once the ping-reqs have had their time), whether the runtime was
	// asked for it, whether it was acked and when.
	streamFrom  int64
	streamAsked bool
	streamOK    bool
	streamAt    int64
}

type pendingKind uint8

const (
	pendRelay pendingKind = iota + 1 // ping-req on someone's behalf
	pendUser                         // Probe
	pendAdd                          // AddMember
	pendTomb                         // ping of a dead tombstone
)

type pending struct {
	kind     pendingKind
	nack     bool
	seq      uint32
	origSeq  uint32
	deadline int64
	start    int64
	token    uint64
	addr     netip.AddrPort // where to reply (relay) or who was probed
	name     string         // the target's name, if known
	limit    int            // the size bound of the relayed ack or nack (answerLimit)
}

// New returns a Core for the member self, which starts alive at
// self.Incarnation with self.Payload. It announces itself when Join is
// called (or when it refutes or changes its payload). rng is the only source of randomness
// (probe order, helpers, jitter); now is the current time, from which all
// later times are measured.
func New(cfg Config, self Member, rng *rand.Rand, now time.Time) (*Core, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if rng == nil {
		return nil, errors.New("swim: nil rng")
	}
	if self.Name == "" || len(self.Name) > MaxNameLen {
		return nil, fmt.Errorf("swim: name must be 1 to %d bytes, got %d", MaxNameLen, len(self.Name))
	}
	if !validAddr(self.Addr) {
		return nil, fmt.Errorf("swim: invalid address %v", self.Addr)
	}
	if len(self.Payload) > cfg.MaxPayload {
		return nil, fmt.Errorf("swim: payload of %d bytes exceeds MaxPayload %d", len(self.Payload), cfg.MaxPayload)
	}
	if self.Incarnation > MaxIncarnation {
		return nil, fmt.Errorf("swim: incarnation above MaxIncarnation")
	}
	c := &Core{
		cfg:           cfg,
		rng:           rng,
		t0:            now,
		size:          cfg.MessageSize,
		members:       make(map[string]*member),
		ackTimeout:    int64(cfg.AckTimeout),
		lastRepair:    longAgo,
		accusedHealth: longAgo,
		staleWindow:   longAgo,
		seq:           rng.Uint32(),
		nextToken:     1,
	}
	if c.size == nil {
		c.size = EstimateSize
	}
	// A restarted process broadcasts under a new epoch, so that receivers
	// do not take its sequence numbers, which start again at 1, for its
	// previous life's.
	c.bEpoch = rng.Uint64()
	c.keySalt = memberHash("swim broadcast keys", c.bEpoch)
	c.userRoom = cfg.MaxDatagram - cfg.CompoundOverhead - worstProbe(c.size)
	c.bq.init()
	c.probe.helpers = make([]string, 0, cfg.IndirectChecks)
	m := c.newMember(self.Name, self.Addr, slices.Clone(self.Payload))
	c.self = m
	c.setState(m, StateAlive, self.Incarnation)
	// The first probe starts at a random point of the first period so that
	// members started together do not probe in step.
	c.nextProbe = int64(c.rng.Float64() * float64(cfg.ProbeInterval))
	c.nextDeadProbe = c.jittered(int64(cfg.DeadProbeInterval))
	c.nextPushPull = c.jittered(int64(cfg.PushPullInterval))
	return c, nil
}

// validAddr accepts a usable unicast address with a port. A zoned IPv6
// address is refused: the wire cannot carry the zone.
func validAddr(a netip.AddrPort) bool {
	return a.IsValid() && a.Port() != 0 && a.Addr().Zone() == ""
}

func timeDur(ns int64) time.Duration { return time.Duration(ns) }

func (c *Core) setNow(now time.Time) {
	if ns := int64(now.Sub(c.t0)); ns > c.now {
		c.now = ns
	}
}

func (c *Core) jittered(d int64) int64 {
	if c.cfg.Jitter == 0 {
		return d
	}
	return int64(float64(d) * (1 + c.cfg.Jitter*(c.rng.Float64()-0.5)))
}

func (c *Core) nextSeq() uint32 {
	c.seq++
	return c.seq
}

// mult is the Lifeguard local health multiplier (§4.1): probe interval and
// ack timeout are stretched by health score + 1.
func (c *Core) mult() int64 {
	if !c.cfg.Lifeguard {
		return 1
	}
	return int64(c.health + 1)
}

func (c *Core) probeInterval() int64 { return int64(c.cfg.ProbeInterval) * c.mult() }

func (c *Core) ackTimeoutNow() int64 { return c.ackTimeout * c.mult() }

// quiet reports whether we keep accusations about others to ourselves:
// while unhealthy or suspected (Lifeguard; tarantool's lesson).
func (c *Core) quiet() bool {
	if !c.cfg.Lifeguard {
		return false
	}
	return (c.cfg.QuietHealth > 0 && c.health >= c.cfg.QuietHealth) || c.now < c.suspectedUntil
}

func (c *Core) addHealth(d int) {
	if !c.cfg.Lifeguard {
		return
	}
	c.health = min(max(c.health+d, 0), c.cfg.HealthMax)
}

// retransmitLimit is λ·⌈log2(n+1)⌉ (SWIM §4.1); bits.Len(n) is ⌈log2(n+1)⌉.
func (c *Core) retransmitLimit() uint16 {
	return uint16(c.cfg.RetransmitMult * bits.Len(uint(max(c.live, 1))))
}

// suspicionBounds returns the Lifeguard suspicion timeout bounds (§4.2):
// min = α·max(1, log10(n))·period, max = β·min, and K, the confirmations
// that bring the timeout from max to min. Without Lifeguard the timeout is
// always min, as in SWIM §4.2.
func (c *Core) suspicionBounds() (lo, hi int64, k int) {
	n := float64(max(c.live, 1))
	lo = int64(c.cfg.SuspicionMult * max(1, math.Log10(n)) * float64(c.cfg.ProbeInterval))
	if !c.cfg.Lifeguard {
		return lo, lo, 0
	}
	hi = int64(c.cfg.SuspicionMaxMult * float64(lo))
	k = c.cfg.SuspicionConfirmations
	if c.live-2 < k {
		k = 0
	}
	return lo, hi, k
}

// timeout is the suspicion timeout after conf confirmations (Lifeguard §4.2):
// max − (max−min)·log(conf+1)/log(K+1), never below min.
func (s *suspicion) timeout(conf int) int64 {
	if s.k == 0 || s.max <= s.min {
		return s.min
	}
	frac := math.Log(float64(conf)+1) / math.Log(float64(s.k)+1)
	t := s.max - int64(frac*float64(s.max-s.min))
	return max(t, s.min)
}

func (c *Core) newMember(name string, addr netip.AddrPort, payload []byte) *member {
	m := c.allocMember()
	*m = member{
		name: name, addr: addr, payload: payload, state: StateLeft,
		orderIdx: -1, deadIdx: -1, qIdx: -1, tIdx: -1, toldAt: longAgo,
		movedAt: longAgo, conflictAt: longAgo,
	}
	c.members[name] = m
	c.byState[StateLeft]++
	m.allIdx = int32(len(c.all))
	c.all = append(c.all, m)
	return m
}

// allocMember takes an entry from the free list or the current chunk. Chunks
// grow with the view (up to 1024 entries) and are never reallocated, so
// pointers to entries stay valid.
func (c *Core) allocMember() *member {
	if n := len(c.free); n > 0 {
		m := c.free[n-1]
		c.free[n-1] = nil
		c.free = c.free[:n-1]
		return m
	}
	if len(c.slab) == cap(c.slab) {
		c.slab = make([]member, 0, min(max(16, len(c.members)), 1024))
	}
	c.slab = append(c.slab, member{})
	return &c.slab[len(c.slab)-1]
}

// setState moves m to state s at incarnation inc and keeps every index in
// step: digest, live count, probe order, tombstones, timers.
func (c *Core) setState(m *member, s State, inc uint64) {
	wasLive := m.counted
	if m.counted {
		c.digest -= memberHash(m.name, m.inc)
		m.counted = false
	}
	c.byState[m.state]--
	c.byState[s]++
	m.state, m.inc, m.since = s, inc, c.now
	if s != StateSuspect {
		m.susp = nil
	}
	if m.live() {
		c.digest += memberHash(m.name, inc)
		m.counted = true
	}
	switch {
	case wasLive && !m.live():
		c.live--
	case !wasLive && m.live():
		c.live++
	}
	if m == c.self {
		return
	}
	if m.live() {
		c.orderInsert(m)
	} else {
		c.orderRemove(m)
	}
	if s == StateDead {
		c.deadInsert(m)
	} else {
		c.deadRemove(m)
	}
	switch s {
	case StateAlive:
		c.timerClear(m)
	case StateDead, StateLeft:
		c.timerSet(m, c.now+int64(c.cfg.TombstoneTimeout))
	}
}

// forget removes m from the view entirely.
func (c *Core) forget(m *member) {
	if m.counted {
		c.digest -= memberHash(m.name, m.inc)
		m.counted = false
		c.live--
	}
	c.orderRemove(m)
	c.deadRemove(m)
	c.timerClear(m)
	c.dequeue(m)
	// Its broadcasts are long delivered by now. (A restart does not come
	// here: the new process broadcasts under a new epoch.)
	c.dd.forget(m.name)
	m.susp = nil
	c.byState[m.state]--
	delete(c.members, m.name)
	last := len(c.all) - 1
	c.all[m.allIdx] = c.all[last]
	c.all[m.allIdx].allIdx = m.allIdx
	c.all[last] = nil
	c.all = c.all[:last]
	if c.probe.target == m {
		c.probe.active = false
		c.probe.target = nil
	}
	*m = member{}
	c.free = append(c.free, m)
}

// memberHash is a member's contribution to the digest: a 64-bit mix of its
// name and incarnation (FNV-1a, then the splitmix64 finalizer).
func memberHash(name string, inc uint64) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(name); i++ {
		h ^= uint64(name[i])
		h *= 1099511628211
	}
	h ^= inc + 0x9e3779b97f4a7c15
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h | 1
}

func (c *Core) emit(k EventKind, m *member) {
	c.out.Events = append(c.out.Events, Event{Kind: k, Member: m.info(c)})
}

// answerLimit bounds the datagram that answers (or, for a ping-req,
// relays the outcome to) the sender of the datagram being stepped. A
// sender that was a live member at the address the datagram came from
// before the datagram arrived (stepPlaced) gets a full datagram. Anyone
// else (a stranger, a known name at another address, ourselves, a member
// we hold dead or left) gets no more bytes than the datagram had (stepSize),
// unless the bare answer alone is larger, which always goes. So an
// attacker who replays a captured datagram with a forged source address
// (the replay guard is per receiver) cannot make us send its victim more
// bytes than it sent us: RFC 9000 §8.1's anti-amplification rule, at a
// factor of one. A prober that may not be placed pads its ping (see pad).
func (c *Core) answerLimit() int {
	if c.stepPlaced {
		return c.cfg.MaxDatagram
	}
	return min(c.stepSize, c.cfg.MaxDatagram)
}

// updateMsg is the update that describes our current view of m.
func (c *Core) updateMsg(m *member) Message {
	switch m.state {
	case StateAlive:
		return Message{Kind: KindAlive, Name: m.name, Addr: m.addr, Incarnation: m.inc, Payload: m.payload}
	case StateSuspect:
		from := c.self.name
		if s := m.susp; s != nil && s.from != "" {
			from = s.from
		} else if s != nil && len(s.accusers) > 0 {
			from = s.accusers[0]
		}
		return Message{Kind: KindSuspect, From: from, Name: m.name, Incarnation: m.inc}
	case StateDead:
		// We pass a death on in our own name: we hold it, and a
		// receiver checks that the accuser is a member.
		return Message{Kind: KindDead, From: c.self.name, Name: m.name, Incarnation: m.inc}
	default:
		return Message{Kind: KindLeft, Name: m.name, Addr: m.addr, Incarnation: m.inc, Payload: m.payload}
	}
}

// Digest returns the digest of our view that pings and acks carry: a sum of
// a hash of (name, incarnation) over the live members, ourselves included,
// kept up to date in O(1) per change. Never zero, nor zero in its low 32
// bits.
func (c *Core) Digest() uint64 {
	// Never 0 in its low 32 bits either, which is all a compact datagram
	// carries: an ack with digest 0 says its sender does not know the
	// prober (StrangerDigest).
	if uint32(c.digest) == 0 {
		return c.digest | 1
	}
	return c.digest
}

// send appends one datagram to To: the probe message p, then
// piggybacked updates up to the byte budget of MaxDatagram: our own state
// first when introduce is set, news about the recipient first (Lifeguard
// §4.3, the buddy system; and our view of a member that seems not to know
// it is dead), then the dissemination queue, least-sent first (SWIM §4.1),
// sharing the budget with application broadcasts (see fill).
//
// It returns the number of updates and broadcasts carried.
func (c *Core) send(to netip.AddrPort, p Message, about *member, introduce bool) int {
	return c.sendWithin(to, p, about, introduce, c.cfg.MaxDatagram)
}

// sendWithin is send with the whole datagram (CompoundOverhead and every
// message) bounded by limit bytes instead of MaxDatagram. The probe message
// p goes whatever the limit; what follows it goes only as far as it fits.
func (c *Core) sendWithin(to netip.AddrPort, p Message, about *member, introduce bool, limit int) int {
	start := len(c.arena)
	c.packStamp++
	c.arena = append(c.arena, p)
	budget := min(limit, c.cfg.MaxDatagram) - c.cfg.CompoundOverhead - c.size(&c.arena[start])
	if about == c.self {
		about = nil
	}
	if introduce {
		c.forceUpdate(c.self, &budget)
	}
	if about != nil && (about.qIdx >= 0 || about.state == StateDead ||
		(about.state == StateSuspect && c.cfg.Lifeguard)) {
		c.forceUpdate(about, &budget)
	} else {
		about = nil
	}
	c.fill(&budget, about, introduce)
	c.out.Datagrams = append(c.out.Datagrams, Datagram{To: to, Msgs: c.arena[start:len(c.arena):len(c.arena)]})
	return len(c.arena) - start - 1
}

// backlog is the number of entries waiting in the two dissemination
// queues, membership news and broadcasts.
func (c *Core) backlog() int { return len(c.queue) + c.bq.len() }

// fill piggybacks queued news on the datagram being built, within budget.
// Membership news never starves: while broadcasts are queued, membership
// updates are packed first into the budget less a reserve of half of it,
// then broadcasts fill what is left, then membership updates take what the
// broadcasts left unused. So membership news gets at least half of every
// datagram, and broadcasts at least half while membership news waits (all
// of it when there is none).
func (c *Core) fill(budget *int, skip1 *member, skipSelf bool) {
	if c.bq.len() == 0 {
		c.pack(budget, skip1, skipSelf)
		return
	}
	reserve := *budget / 2
	rest := *budget - reserve
	c.pack(&rest, skip1, skipSelf)
	*budget = rest + reserve
	c.packBroadcasts(budget)
	c.pack(budget, skip1, skipSelf)
}

// gossip sends up to GossipFanout datagrams of updates (and broadcasts)
// alone to random alive members other than skip, when the queues hold more
// than one datagram carries (carried is what the probe's datagram took).
// Without a backlog it sends nothing, so the idle load stays one ping and
// one ack per member and period (SWIM §5); with one, news still spreads in
// O(log n) periods instead of queueing behind the byte budget (a join
// storm, or a burst of broadcasts).
func (c *Core) gossip(carried int, skip *member) {
	n := len(c.order)
	for i := 0; i < c.cfg.GossipFanout && c.backlog() > carried && n > 1; i++ {
		m := c.order[c.rng.IntN(n)]
		if m == skip || m.state != StateAlive {
			continue
		}
		start := len(c.arena)
		c.packStamp++
		budget := c.cfg.MaxDatagram - c.cfg.CompoundOverhead
		c.fill(&budget, nil, false)
		if len(c.arena) == start {
			return
		}
		c.out.Datagrams = append(c.out.Datagrams, Datagram{To: m.addr, Msgs: c.arena[start:len(c.arena):len(c.arena)]})
	}
}

// pad fills the datagram that the output ends with up to MaxDatagram with a
// pad message, so that its answer may be a full datagram although we are
// not (yet) a member the receiver can place: the receiver answers such a
// sender with no more bytes than it received (answerLimit), as a QUIC
// client pads its first datagram (RFC 9000 §8.1, §14.1).
func (c *Core) pad() {
	d := &c.out.Datagrams[len(c.out.Datagrams)-1]
	start := len(c.arena) - len(d.Msgs)
	room := c.cfg.MaxDatagram - c.datagramSize(d.Msgs)
	m := Message{Kind: KindPad}
	n := min(room-c.size(&m), len(zeros)-1)
	// The pad's own length header grows with n: a few steps down settle it.
	for range 4 {
		if n < 0 {
			return
		}
		m.Payload = zeros[:n:n]
		over := c.size(&m) - room
		if over <= 0 {
			c.arena = append(c.arena, m)
			d.Msgs = c.arena[start:len(c.arena):len(c.arena)]
			return
		}
		n -= over
	}
}

// datagramSize is the encoded size of a datagram holding msgs.
func (c *Core) datagramSize(msgs []Message) int {
	n := c.cfg.CompoundOverhead
	for i := range msgs {
		n += c.size(&msgs[i])
	}
	return n
}

// tooLarge reports whether an update of sz bytes cannot fit even an
// otherwise empty datagram. Validate makes that impossible for every
// update with the sizes it checks; should MessageSize disagree, the update
// is dropped from the queue and counted rather than kept (and retried, and
// holding back fast repair, the gossip timer and LeaveDone) forever.
func (c *Core) tooLarge(sz int) bool {
	if c.cfg.CompoundOverhead+sz <= c.cfg.MaxDatagram {
		return false
	}
	c.count[CountUpdateTooLarge]++
	return true
}

// forceUpdate appends our view of m ahead of the queue, counting it as one
// transmission if m is queued.
func (c *Core) forceUpdate(m *member, budget *int) {
	c.arena = append(c.arena, c.updateMsg(m))
	sz := c.size(&c.arena[len(c.arena)-1])
	if sz > *budget {
		c.arena[len(c.arena)-1] = Message{}
		c.arena = c.arena[:len(c.arena)-1]
		if m.qIdx >= 0 && c.tooLarge(sz) {
			c.dequeue(m)
		}
		return
	}
	*budget -= sz
	m.packed = c.packStamp
	if m.qIdx >= 0 {
		m.qSent++
		if m.qSent >= c.retransmitLimit() {
			c.dequeue(m)
		} else {
			c.queueFix(int(m.qIdx))
		}
	}
}

const (
	maxPackPops  = 64 // queue entries looked at per datagram
	maxPackSkips = 4  // entries too large for the rest of the budget before giving up
)

// pack appends queued membership updates, least-sent first, while they fit
// budget. An update already in the datagram (member.packed) is not added
// twice.
func (c *Core) pack(budget *int, skip1 *member, skipSelf bool) {
	limit := c.retransmitLimit()
	quiet := c.quiet()
	c.scratch = c.scratch[:0]
	skips := 0
	for pops := 0; len(c.queue) > 0 && pops < maxPackPops && skips < maxPackSkips && *budget > 0; pops++ {
		m := c.queue[0]
		c.dequeue(m)
		c.scratch = append(c.scratch, m)
		if m == skip1 || (skipSelf && m == c.self) || m.packed == c.packStamp {
			continue
		}
		if quiet && m != c.self && (m.state == StateSuspect || m.state == StateDead) {
			continue
		}
		c.arena = append(c.arena, c.updateMsg(m))
		sz := c.size(&c.arena[len(c.arena)-1])
		if sz > *budget {
			c.arena[len(c.arena)-1] = Message{}
			c.arena = c.arena[:len(c.arena)-1]
			if c.tooLarge(sz) {
				// Dropped: not put back in the queue.
				c.scratch = c.scratch[:len(c.scratch)-1]
				continue
			}
			skips++
			continue
		}
		*budget -= sz
		m.qSent++
		m.packed = c.packStamp
	}
	for _, m := range c.scratch {
		if m.qSent < limit {
			m.qIdx = int32(len(c.queue))
			c.queue = append(c.queue, m)
			c.queueUp(int(m.qIdx))
		}
	}
	clear(c.scratch)
	c.scratch = c.scratch[:0]
}

// Ready returns what the core wants done since the last Advance. The
// pointer and every slice in it stay valid until Advance.
func (c *Core) Ready() *Output { return &c.out }

// Advance releases the output returned by Ready, whose buffers are reused.
// Buffers that grew beyond a few hundred entries (after a large Merge) are
// released rather than kept.
func (c *Core) Advance() {
	c.out.Events = reuse(c.out.Events)
	c.out.Datagrams = reuse(c.out.Datagrams)
	c.out.PushPulls = reuse(c.out.PushPulls)
	c.out.ProbeResults = reuse(c.out.ProbeResults)
	c.out.Probes = reuse(c.out.Probes)
	c.out.Broadcasts = reuse(c.out.Broadcasts)
	c.out.StreamProbes = reuse(c.out.StreamProbes)
	c.arena = reuse(c.arena)
}

func reuse[T any](s []T) []T {
	if cap(s) > 256 {
		return nil
	}
	clear(s)
	return s[:0]
}

// NextDeadline returns when Tick must be called next at the latest. Calling
// Tick earlier or more often is harmless.
func (c *Core) NextDeadline() time.Time {
	d := c.nextProbe
	if c.probe.active {
		if !c.probe.indirect {
			d = min(d, c.probe.ackAt)
		} else if c.cfg.StreamFallback && !c.probe.streamAsked {
			d = min(d, c.probe.streamFrom)
		}
		d = min(d, c.probe.endAt)
	}
	for i := range c.pending {
		d = min(d, c.pending[i].deadline)
	}
	if len(c.timers) > 0 {
		d = min(d, c.timers[0].tAt)
	}
	if c.cfg.DeadProbeInterval > 0 && len(c.dead) > 0 {
		d = min(d, c.nextDeadProbe)
	}
	if c.cfg.PushPullInterval > 0 && len(c.order) > 0 {
		d = min(d, c.nextPushPull)
	}
	if c.cfg.GossipInterval > 0 && c.cfg.GossipFanout > 0 && c.backlog() > 0 && len(c.order) > 0 {
		d = min(d, c.nextGossip)
	}
	return c.t0.Add(timeDur(d))
}

// ---- accessors ----

// Myself returns our own member entry.
func (c *Core) Myself() Member { return c.self.info(c) }

// Member returns the named member, ourselves included.
func (c *Core) Member(name string) (Member, bool) {
	m := c.members[name]
	if m == nil {
		return Member{}, false
	}
	return m.info(c), true
}

// AppendMembers appends every member of the view, ourselves and tombstones
// included, to dst and returns the extended slice.
func (c *Core) AppendMembers(dst []Member) []Member {
	for _, m := range c.all {
		dst = append(dst, m.info(c))
	}
	return dst
}

// NumMembers returns the number of entries in the view, ourselves and
// tombstones included.
func (c *Core) NumMembers() int { return len(c.members) }

// NumLive returns the number of alive or suspect members, ourselves
// included: the n of the protocol's formulas.
func (c *Core) NumLive() int { return c.live }

// Health returns the Lifeguard local health score, 0..HealthMax (§4.1).
func (c *Core) Health() int { return c.health }

// QueueLen returns the number of updates waiting to be piggybacked.
func (c *Core) QueueLen() int { return len(c.queue) }

// AckTimeout returns the current ack timeout before the health multiplier.
func (c *Core) AckTimeout() time.Duration { return timeDur(c.ackTimeout) }

// Count returns the value of a counter.
func (c *Core) Count(k Counter) uint64 {
	if int(k) >= NumCounters {
		return 0
	}
	return c.count[k]
}

// Leaving reports whether Leave was called.
func (c *Core) Leaving() bool { return c.leaving }

// LeaveDone reports whether our left message has been sent as often as any
// update is (λ·⌈log2(n+1)⌉ times), or there is nobody to tell: the runtime
// may then stop. Broadcasts still queued do not hold it back: they are
// best effort, and whatever of them other members already hold they relay.
func (c *Core) LeaveDone() bool {
	return c.leaving && (c.self.qIdx < 0 || len(c.order) == 0)
}

// ---- inputs besides Step and Tick ----

// Join asks for a state exchange with each seed (our own address is
// skipped) and queues our alive message for dissemination. It returns the
// number of exchanges asked for.
func (c *Core) Join(seeds []netip.AddrPort) int {
	n := 0
	for _, s := range seeds {
		if !validAddr(s) || s == c.self.addr {
			continue
		}
		c.out.PushPulls = append(c.out.PushPulls, PushPull{To: s, Join: true})
		n++
	}
	if !c.leaving {
		c.enqueue(c.self, "")
	}
	return n
}

// Leave makes us leave the group: our state becomes left at a higher
// incarnation, with our payload, and is disseminated like any update. We
// keep probing (so that the news travels) but accuse nobody. Poll LeaveDone.
func (c *Core) Leave() {
	if c.leaving {
		return
	}
	c.leaving = true
	inc := c.self.inc
	if inc < MaxIncarnation {
		inc++
	}
	c.setState(c.self, StateLeft, inc)
	c.enqueue(c.self, "")
}

// SetPayload replaces our payload (which the core copies), raises our
// incarnation and disseminates the new alive message.
func (c *Core) SetPayload(p []byte) error {
	if c.leaving {
		return ErrLeft
	}
	if len(p) > c.cfg.MaxPayload {
		return fmt.Errorf("swim: payload of %d bytes exceeds MaxPayload %d", len(p), c.cfg.MaxPayload)
	}
	if c.self.inc >= MaxIncarnation {
		return ErrIncarnation
	}
	c.self.payload = slices.Clone(p)
	c.setState(c.self, StateAlive, c.self.inc+1)
	c.enqueue(c.self, "")
	return nil
}

// Probe pings addr once; the answer comes as a ProbeResult carrying the
// returned token, within one ProbeInterval. If the peer is new to us, its
// ack introduces it and it joins our view.
func (c *Core) Probe(addr netip.AddrPort) (uint64, error) {
	return c.probeAddr(addr, pendUser)
}

// AddMember probes addr, whose member's name we do not know yet. The ack
// names it and carries its alive message, which adds it to the view; the
// outcome also comes as a ProbeResult with the returned token.
func (c *Core) AddMember(addr netip.AddrPort) (uint64, error) {
	return c.probeAddr(addr, pendAdd)
}

func (c *Core) probeAddr(addr netip.AddrPort, kind pendingKind) (uint64, error) {
	if err := c.checkTarget(addr, kind); err != nil {
		return 0, err
	}
	if len(c.pending) >= c.cfg.MaxPendingProbes {
		c.count[CountPendingCap]++
		return 0, ErrPendingCap
	}
	tok := c.nextToken
	c.nextToken++
	seq := c.nextSeq()
	c.pending = append(c.pending, pending{
		kind: kind, seq: seq, token: tok, addr: addr,
		start: c.now, deadline: c.now + int64(c.cfg.ProbeInterval),
	})
	c.send(addr, Message{Kind: KindPing, Seq: seq, From: c.self.name, Digest: c.Digest()}, nil, true)
	// The receiver may not know us, or not at this address: padding lets
	// its answer carry its alive message, which names it (see pad).
	c.pad()
	return tok, nil
}

// MarkLeft records that the named member left (for members expelled by an
// operator) and disseminates it. A member that is in fact running refutes.
func (c *Core) MarkLeft(name string) error {
	m := c.members[name]
	if m == nil {
		return ErrUnknownMember
	}
	if m == c.self {
		c.Leave()
		return nil
	}
	if m.state == StateLeft {
		return nil
	}
	c.setState(m, StateLeft, m.inc)
	c.emit(EventLeft, m)
	c.enqueue(m, "")
	return nil
}

// RemoveMember forgets the named member at once, without telling anyone.
// If it is alive, gossip brings it back.
func (c *Core) RemoveMember(name string) error {
	m := c.members[name]
	if m == nil {
		return ErrUnknownMember
	}
	if m == c.self {
		return errors.New("swim: cannot remove ourselves")
	}
	c.forget(m)
	return nil
}

// Snapshot returns our full view for a push-pull exchange, ourselves and
// tombstones included. The payload slices are shared and read-only.
func (c *Core) Snapshot() Snapshot {
	s := Snapshot{From: c.self.name, Members: make([]MemberState, 0, len(c.members))}
	for _, m := range c.all {
		s.Members = append(s.Members, MemberState{
			Name: m.name, Addr: m.addr, Incarnation: m.inc, State: m.state, Payload: m.payload,
		})
	}
	return s
}

// Merge merges a peer's snapshot into our view, with the same precedence
// rules as gossip. A peer's "dead" about a member we hold live counts as a
// suspicion, so the member gets its chance to refute (as memberlist does).
// Only news about the peer itself (and our refutations) is re-gossiped: the
// other entries spread by anti-entropy, not by the queue. Invalid entries
// are skipped and counted; Merge returns an error only when the snapshot's
// sender name is invalid.
func (c *Core) Merge(now time.Time, s *Snapshot) error {
	c.setNow(now)
	if s.From == "" || len(s.From) > MaxNameLen {
		c.count[CountMalformed]++
		return fmt.Errorf("swim: snapshot sender name of %d bytes", len(s.From))
	}
	if !c.admitsSnapshot(s) {
		return fmt.Errorf("swim: snapshot from %q: %w", s.From, ErrNotAllowed)
	}
	if len(s.Members) > 2*len(c.members)+64 {
		// A join: size the index once instead of growing it step by step,
		// but never beyond the member cap, whatever the snapshot claims.
		grown := make(map[string]*member, min(len(s.Members)+len(c.members), c.cfg.MaxMembers))
		for k, v := range c.members {
			grown[k] = v
		}
		c.members = grown
	}
	for i := range s.Members {
		e := &s.Members[i]
		u := Message{Name: e.Name, Addr: e.Addr, Incarnation: e.Incarnation, Payload: e.Payload, From: s.From}
		switch e.State {
		case StateAlive:
			u.Kind = KindAlive
		case StateSuspect:
			u.Kind = KindSuspect
		case StateDead:
			u.Kind = KindDead
		case StateLeft:
			u.Kind = KindLeft
		default:
			c.count[CountMalformed]++
			continue
		}
		// Every entry names where the member lives, whatever its state.
		if !validAddr(e.Addr) {
			c.count[CountMalformed]++
			continue
		}
		if !c.validUpdate(&u) {
			continue
		}
		c.learn(&u, s.From)
	}
	return nil
}

// ---- RTT and the adaptive ack timeout ----

func (c *Core) sampleRTT(d int64) {
	c.rtt[c.rttPos] = d
	c.rttPos = (c.rttPos + 1) % rttWindow
	if c.rttN < rttWindow {
		c.rttN++
	}
	if !c.cfg.AdaptiveAckTimeout || c.rttN < 16 || c.rttPos%16 != 0 {
		return
	}
	// Recompute every 16 samples: p99 of the window plus 10 %, clamped.
	s := c.rttScratch[:c.rttN]
	copy(s, c.rtt[:c.rttN])
	slices.Sort(s)
	p99 := s[(len(s)*99+99)/100-1]
	t := p99 + p99/10
	c.ackTimeout = min(max(t, int64(c.cfg.AckTimeoutMin)), int64(c.cfg.AckTimeoutMax))
}

// payloadEqual reports whether two payloads hold the same bytes.
func payloadEqual(a, b []byte) bool { return bytes.Equal(a, b) }
