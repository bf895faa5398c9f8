package swim

import (
	"net/netip"
)

// member is one entry of the view. Entries live in chunks (see
// Core.allocMember), so that a view of thousands of members is a few
// hundred allocations rather than one per member, and are addressed by
// pointer from the name index, the probe order, the tombstone
// list, the dissemination queue and the timer heap; each structure keeps the
// entry's position in it so that removal is O(1) or O(log n).
type member struct {
	name    string
	addr    netip.AddrPort
	inc     uint64
	payload []byte
	state   State
	since   int64 // ns since Core.t0

	allIdx   int32 // position in Core.all
	orderIdx int32 // position in Core.order, or -1
	deadIdx  int32 // position in Core.dead, or -1

	// Dissemination (SWIM §4.1): at most one queued update per member,
	// always describing our current view of it, so newer news replaces
	// older news about the same member.
	qIdx  int32  // position in Core.queue, or -1
	qSent uint16 // transmissions so far
	qSeq  uint64 // queue order: newer first among equally sent
	// packed is Core.packStamp of the last datagram that carried the
	// update, so that filling a datagram in two rounds (Core.fill) never
	// carries one twice.
	packed uint64

	// Timer (suspicion expiry or tombstone reaping), one per member.
	tIdx int32 // position in Core.timers, or -1
	tAt  int64 // deadline, ns since Core.t0

	susp *suspicion // while suspect

	counted bool  // whether memberHash(name, inc) is in Core.digest
	toldAt  int64 // last time we told it our newer view of it (rate limit)

	// Name conflicts (see Core.noteMove): the address it last moved from
	// and when, and when we last reported a conflict about it.
	prevAddr   netip.AddrPort
	movedAt    int64
	conflictAt int64

	// agreedDigest is the low 32 bits of our digest when a ping or ack
	// from it last carried the same digest, at agreedAt (ns since
	// Core.t0); 0 if none has, a value our digest never takes
	// (Core.Digest). See Core.knownAgreed.
	agreedDigest uint32
	agreedAt     int64

	// streamOnly counts our periodic probes of it in a row that only the
	// stream fallback acked (streamprobe.go).
	streamOnly int
}

// suspicion is the state of a suspicion (Lifeguard §4.2): who confirmed it
// and the timeout bounds.
type suspicion struct {
	start    int64
	min, max int64
	k        int      // confirmations wanted
	accusers []string // distinct accusers, the first one included; at most k+1
	from     string   // the accuser named when the suspicion is gossiped
}

func (m *member) live() bool { return m.state == StateAlive || m.state == StateSuspect }

func (m *member) info(c *Core) Member {
	return Member{
		Name:        m.name,
		Addr:        m.addr,
		Incarnation: m.inc,
		Payload:     m.payload,
		State:       m.state,
		Since:       c.t0.Add(timeDur(m.since)),
	}
}

// ---- probe order: randomized round-robin (SWIM §4.3) ----
//
// Core.order holds the live members other than ourselves. Positions before
// Core.cursor have been probed in this round, the rest have not. A new member
// goes to a random position among the unprobed ones, so it is probed within
// this round; a removed member's slot is refilled without moving any member
// across the cursor. When the round ends the order is shuffled. Every member
// is therefore probed once per round, and at most 2n−1 periods pass between
// two probes of it.

func (c *Core) orderInsert(m *member) {
	if m.orderIdx >= 0 {
		return
	}
	c.order = append(c.order, m)
	i := len(c.order) - 1
	m.orderIdx = int32(i)
	if c.cursor < i {
		j := c.cursor + c.rng.IntN(i-c.cursor+1)
		c.orderSwap(i, j)
	}
}

func (c *Core) orderSwap(i, j int) {
	c.order[i], c.order[j] = c.order[j], c.order[i]
	c.order[i].orderIdx = int32(i)
	c.order[j].orderIdx = int32(j)
}

func (c *Core) orderRemove(m *member) {
	i := int(m.orderIdx)
	if i < 0 {
		return
	}
	if i < c.cursor {
		c.orderSwap(i, c.cursor-1)
		c.cursor--
		i = c.cursor
	}
	last := len(c.order) - 1
	c.orderSwap(i, last)
	c.order[last] = nil
	c.order = c.order[:last]
	m.orderIdx = -1
}

// nextTarget returns the next member to probe, or nil when there is none.
func (c *Core) nextTarget() *member {
	n := len(c.order)
	if n == 0 {
		return nil
	}
	if c.cfg.RandomProbe {
		return c.order[c.rng.IntN(n)]
	}
	if c.cursor >= n {
		for i := n - 1; i > 0; i-- {
			c.orderSwap(i, c.rng.IntN(i+1))
		}
		c.cursor = 0
	}
	m := c.order[c.cursor]
	c.cursor++
	return m
}

// ---- tombstones: dead members, probed at a low rate ----

func (c *Core) deadInsert(m *member) {
	if m.deadIdx >= 0 {
		return
	}
	m.deadIdx = int32(len(c.dead))
	c.dead = append(c.dead, m)
}

func (c *Core) deadRemove(m *member) {
	i := int(m.deadIdx)
	if i < 0 {
		return
	}
	last := len(c.dead) - 1
	c.dead[i] = c.dead[last]
	c.dead[i].deadIdx = int32(i)
	c.dead[last] = nil
	c.dead = c.dead[:last]
	m.deadIdx = -1
}

// ---- timer heap: one deadline per member (suspicion or reaping) ----

func (c *Core) timerSet(m *member, at int64) {
	m.tAt = at
	if m.tIdx >= 0 {
		c.timerFix(int(m.tIdx))
		return
	}
	m.tIdx = int32(len(c.timers))
	c.timers = append(c.timers, m)
	c.timerUp(int(m.tIdx))
}

func (c *Core) timerClear(m *member) {
	i := int(m.tIdx)
	if i < 0 {
		return
	}
	last := len(c.timers) - 1
	if i != last {
		c.timerSwap(i, last)
	}
	c.timers[last] = nil
	c.timers = c.timers[:last]
	m.tIdx = -1
	if i != last {
		c.timerFix(i)
	}
}

func (c *Core) timerSwap(i, j int) {
	t := c.timers
	t[i], t[j] = t[j], t[i]
	t[i].tIdx = int32(i)
	t[j].tIdx = int32(j)
}

func (c *Core) timerFix(i int) {
	if !c.timerDown(i) {
		c.timerUp(i)
	}
}

func (c *Core) timerUp(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if c.timers[p].tAt <= c.timers[i].tAt {
			return
		}
		c.timerSwap(i, p)
		i = p
	}
}

func (c *Core) timerDown(i int) bool {
	start := i
	n := len(c.timers)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		j := l
		if r := l + 1; r < n && c.timers[r].tAt < c.timers[l].tAt {
			j = r
		}
		if c.timers[i].tAt <= c.timers[j].tAt {
			break
		}
		c.timerSwap(i, j)
		i = j
	}
	return i > start
}

// ---- dissemination queue: least-sent first, newest first among equals ----

func (c *Core) queueLess(a, b *member) bool {
	if a.qSent != b.qSent {
		return a.qSent < b.qSent
	}
	return a.qSeq > b.qSeq
}

// enqueue (re)queues our current view of m for dissemination, replacing any
// older news about m (SWIM §4.1). from is the accuser for suspect and dead.
func (c *Core) enqueue(m *member, from string) {
	c.qSeq++
	m.qSeq = c.qSeq
	m.qSent = 0
	if m.susp != nil && from != "" {
		m.susp.from = from
	}
	if m.qIdx >= 0 {
		c.queueFix(int(m.qIdx))
		return
	}
	if len(c.queue) >= c.cfg.MaxQueuedUpdates {
		// Full: drop an entry from the heap's bottom half, where the
		// most-sent news lives.
		// Our own news (a refutation, our leave) is never dropped.
		n := len(c.queue)
		victim := c.queue[n/2+c.rng.IntN(n-n/2)]
		if victim == c.self {
			victim = c.queue[(int(c.self.qIdx)+1)%n]
		}
		if victim == c.self { // a queue of one, holding our news
			c.count[CountQueueDrop]++
			return
		}
		c.dequeue(victim)
		c.count[CountQueueDrop]++
	}
	m.qIdx = int32(len(c.queue))
	c.queue = append(c.queue, m)
	c.queueUp(int(m.qIdx))
}

func (c *Core) dequeue(m *member) {
	i := int(m.qIdx)
	if i < 0 {
		return
	}
	last := len(c.queue) - 1
	if i != last {
		c.queueSwap(i, last)
	}
	c.queue[last] = nil
	c.queue = c.queue[:last]
	m.qIdx = -1
	if i != last {
		c.queueFix(i)
	}
}

func (c *Core) queueSwap(i, j int) {
	q := c.queue
	q[i], q[j] = q[j], q[i]
	q[i].qIdx = int32(i)
	q[j].qIdx = int32(j)
}

func (c *Core) queueFix(i int) {
	if !c.queueDown(i) {
		c.queueUp(i)
	}
}

func (c *Core) queueUp(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !c.queueLess(c.queue[i], c.queue[p]) {
			return
		}
		c.queueSwap(i, p)
		i = p
	}
}

func (c *Core) queueDown(i int) bool {
	start := i
	n := len(c.queue)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		j := l
		if r := l + 1; r < n && c.queueLess(c.queue[r], c.queue[l]) {
			j = r
		}
		if !c.queueLess(c.queue[j], c.queue[i]) {
			break
		}
		c.queueSwap(i, j)
		i = j
	}
	return i > start
}
