package swim

import (
	"net/netip"
	"slices"
	"time"
)

// Step handles one received compound message from the address from: the
// probe message and the piggybacked updates, in any order. Updates are
// applied first, so that a refutation they cause rides on our answer to the
// probe. Every message is validated; what is impossible is ignored and
// counted (see Counter). Step never panics and never retains msgs; it copies
// any payload it keeps.
//
// A datagram carries at most one probe message (SWIM §4.1: a ping, ping-req
// or ack with gossip piggybacked): further ones are counted as malformed and
// ignored, so that one datagram never makes us send more than one answer.
// Pad messages (KindPad) are ignored, but count towards the datagram's
// size, which bounds what we answer a sender we cannot place: msgs must be
// the whole datagram as received. Broadcasts (KindUser) received for the
// first time go to Output.Broadcasts and are relayed. Direct messages
// (KindDirect) are the runtime's to handle: Step ignores them.
func (c *Core) Step(now time.Time, from netip.AddrPort, msgs []Message) {
	if !c.admits(from, msgs) {
		return
	}
	c.setNow(now)
	c.stepFrom = from
	c.stepSize = c.datagramSize(msgs)
	c.stepPlaced = c.placed(from, msgs)
	defer func() { c.stepFrom, c.stepSize, c.stepPlaced = netip.AddrPort{}, 0, false }()
	for i := range msgs {
		m := &msgs[i]
		switch {
		case m.Kind.IsUpdate() && c.validUpdate(m):
			c.learn(m, "")
		case m.Kind == KindUser:
			c.receiveBroadcast(m)
		}
	}
	probed := false
	for i := range msgs {
		m := &msgs[i]
		switch {
		case m.Kind.IsProbe() && probed:
			c.count[CountMalformed]++
		case m.Kind.IsProbe():
			probed = true
			if c.validProbe(m) {
				c.handleProbe(from, m)
			}
		case !m.Kind.IsUpdate() && m.Kind != KindPad && !m.Kind.IsUser():
			c.count[CountMalformed]++
		}
	}
}

// placed reports whether the sender of the probe message of msgs (the
// first one, the one acted on) is a live member that we hold at from, the
// address the datagram came from, before the datagram's own updates are
// applied: a datagram cannot vouch for its own source. See answerLimit.
func (c *Core) placed(from netip.AddrPort, msgs []Message) bool {
	for i := range msgs {
		if msgs[i].Kind.IsProbe() {
			m := c.members[msgs[i].From]
			return m != nil && m != c.self && m.live() && m.addr == from
		}
	}
	return false
}

func (c *Core) validName(s string) bool { return s != "" && len(s) <= MaxNameLen }

func (c *Core) validUpdate(u *Message) bool {
	switch {
	case !c.validName(u.Name) || len(u.From) > MaxNameLen:
		c.count[CountMalformed]++
		return false
	case len(u.Payload) > c.cfg.MaxPayload:
		c.count[CountPayloadTooLong]++
		return false
	case u.Incarnation > MaxIncarnation:
		c.count[CountBadIncarnation]++
		return false
	}
	switch u.Kind {
	case KindAlive, KindLeft:
		if !validAddr(u.Addr) {
			c.count[CountMalformed]++
			return false
		}
	case KindSuspect, KindDead:
		if u.From == "" {
			c.count[CountMalformed]++
			return false
		}
	}
	// An accusation we could not refute (our refutation must be higher
	// and incarnations saturate) is rejected as impossible.
	if (u.Kind == KindSuspect || u.Kind == KindDead) && u.Incarnation >= MaxIncarnation-1 {
		c.count[CountBadIncarnation]++
		return false
	}
	return true
}

// jumpsTooFar reports whether inc raises held by more than one message may
// (MaxIncarnationJump), and counts it.
func (c *Core) jumpsTooFar(inc, held uint64) bool {
	if inc > held && inc-held > MaxIncarnationJump {
		c.count[CountBadIncarnation]++
		return true
	}
	return false
}

func (c *Core) validProbe(p *Message) bool {
	switch {
	case !c.validName(p.From) || len(p.Name) > MaxNameLen:
		c.count[CountMalformed]++
		return false
	case p.Kind == KindPingReq && (p.Name == "" || !validAddr(p.Addr)):
		c.count[CountMalformed]++
		return false
	}
	return true
}

// accuser reports whether name may accuse: a live member we know, or us.
func (c *Core) accuser(name string) bool {
	m := c.members[name]
	return m != nil && (m.live() || m == c.self)
}

// learn applies one update (SWIM §4.2 precedence: a higher incarnation
// wins; at equal incarnation suspect beats alive, dead beats both, left is
// final). peer is the sender of a snapshot being merged, or "" for gossip.
func (c *Core) learn(u *Message, peer string) {
	if u.Name == c.self.name {
		c.aboutSelf(u)
		return
	}
	if !c.admitsUpdate(u) {
		return
	}
	merge := peer != ""
	gossip := !merge || u.Name == peer
	m := c.members[u.Name]
	if m != nil && c.jumpsTooFar(u.Incarnation, m.inc) {
		return
	}
	// Whether the news speaks for the member itself: its own datagram, or
	// its own entry in the snapshot it sent us. Only then do we answer at
	// the address it names (tellStale), so that nobody can aim our answers
	// at a third party.
	c.fromSubject = (merge && u.Name == peer) || (!merge && c.stepFrom.IsValid() && c.stepFrom == u.Addr)
	switch u.Kind {
	case KindAlive:
		c.learnAlive(m, u, gossip)
	case KindSuspect:
		if !merge && !c.accuser(u.From) {
			c.count[CountFromNonMember]++
			return
		}
		if m == nil {
			if !merge {
				c.count[CountUnknownMember]++
				return
			}
			// A member the peer suspects that we never heard of: it is
			// alive as far as we know, under suspicion.
			if m = c.addNew(u, StateAlive); m == nil {
				return
			}
		}
		c.learnSuspect(m, u.Incarnation, u.From, gossip)
	case KindDead:
		if !merge && !c.accuser(u.From) {
			c.count[CountFromNonMember]++
			return
		}
		if m == nil {
			if merge {
				c.addNew(u, StateDead) // a tombstone, so that it is probed
			} else {
				c.count[CountUnknownMember]++
			}
			return
		}
		if merge && m.live() {
			c.learnSuspect(m, u.Incarnation, u.From, gossip)
			return
		}
		if m.state == StateLeft || u.Incarnation < m.inc || (m.state == StateDead && u.Incarnation == m.inc) {
			c.count[CountStale]++
			return
		}
		wasLive := m.live()
		c.setState(m, StateDead, u.Incarnation)
		if wasLive {
			c.emit(EventFailed, m)
		}
		if gossip {
			c.enqueue(m, u.From)
		}
	case KindLeft:
		if m == nil {
			c.count[CountUnknownMember]++
			return
		}
		if u.Incarnation < m.inc || (m.state == StateLeft && u.Incarnation == m.inc) {
			c.count[CountStale]++
			return
		}
		if len(u.Payload) > 0 && !payloadEqual(u.Payload, m.payload) {
			m.payload = slices.Clone(u.Payload)
		}
		// A left message names where the member lived: a claim like an
		// alive one (a second process that leaves under the name).
		oldAddr := m.addr
		m.addr = u.Addr
		wasLeft := m.state == StateLeft
		c.setState(m, StateLeft, u.Incarnation)
		if !wasLeft {
			c.emit(EventLeft, m)
		}
		c.noteMove(m, oldAddr)
		if gossip {
			c.enqueue(m, "")
		}
	}
}

// addNew adds a member we did not know, if there is room.
func (c *Core) addNew(u *Message, s State) *member {
	if len(c.members) >= c.cfg.MaxMembers {
		c.count[CountMemberCap]++
		return nil
	}
	m := c.newMember(u.Name, u.Addr, slices.Clone(u.Payload))
	c.setState(m, s, u.Incarnation)
	if s == StateAlive {
		c.emit(EventJoined, m)
	}
	return m
}

func (c *Core) learnAlive(m *member, u *Message, gossip bool) {
	if m == nil {
		if m = c.addNew(u, StateAlive); m != nil && gossip {
			c.enqueue(m, "")
		}
		return
	}
	if u.Incarnation < m.inc || (u.Incarnation == m.inc && m.state != StateAlive) {
		// Stale news: the member (or whoever gossips about it) does not
		// know what we know. Tell the member, at the address the news
		// names, so that it refutes above our view: this is how a mass
		// restart or a move to a new address recovers (memberlist #311).
		c.count[CountStale]++
		if c.fromSubject {
			c.tellStale(m, u.Addr)
		}
		return
	}
	if u.Incarnation == m.inc {
		if u.Addr != m.addr || !payloadEqual(u.Payload, m.payload) {
			// Two claims to one name at one incarnation: tell the
			// newcomer, whose refutation then settles it.
			c.count[CountConflict]++
			if c.fromSubject {
				c.tellStale(m, u.Addr)
			}
		}
		return
	}
	old, oldAddr := m.state, m.addr
	changed := u.Addr != m.addr || !payloadEqual(u.Payload, m.payload)
	m.addr = u.Addr
	if !payloadEqual(u.Payload, m.payload) {
		m.payload = slices.Clone(u.Payload)
	}
	c.setState(m, StateAlive, u.Incarnation)
	switch {
	case old == StateLeft:
		c.emit(EventJoined, m)
	case old != StateAlive:
		c.emit(EventAlive, m)
	case changed:
		c.emit(EventUpdated, m)
	}
	c.noteMove(m, oldAddr)
	if gossip {
		c.enqueue(m, "")
	}
}

// noteMove detects one name claimed from two addresses, after m's address
// may have changed from prev at a higher incarnation. A member that moves
// A→B (a restart at a new address) is not a conflict; one that moves back
// to A within flapWindow is: only the member raises its incarnation (SWIM
// §4.2), so two processes are refuting each other's claims under one name.
func (c *Core) noteMove(m *member, prev netip.AddrPort) {
	if m.addr == prev {
		return
	}
	w := c.flapWindow()
	if m.addr == m.prevAddr && c.now-m.movedAt <= w {
		c.nameConflict(m, prev, w)
	}
	m.prevAddr, m.movedAt = prev, c.now
}

// flapWindow is how far apart two moves of a member may be for a move back
// to count as a name conflict: four dissemination times, 4·λ·⌈log2(n+1)⌉
// periods. An update reaches every member within about λ·⌈log2(n+1)⌉
// periods (SWIM §4.1: that is how often it is retransmitted), and each
// claimant refutes the other's claim as soon as it hears of it, so two live
// claimants alternate well within the window on every member that hears
// them; a restart at a new address and another back to the first address
// within it is implausible (60 s at 16 members with the defaults).
func (c *Core) flapWindow() int64 {
	return 4 * int64(c.retransmitLimit()) * int64(c.cfg.ProbeInterval)
}

// nameConflict counts a name claimed from two addresses, m.addr and other,
// and reports it with EventNameConflict at most once per every.
func (c *Core) nameConflict(m *member, other netip.AddrPort, every int64) {
	c.count[CountNameConflict]++
	if c.now-m.conflictAt < every {
		return
	}
	m.conflictAt = c.now
	c.out.Events = append(c.out.Events, Event{Kind: EventNameConflict, Member: m.info(c), Addr: other})
}

func (c *Core) learnSuspect(m *member, inc uint64, from string, gossip bool) {
	switch {
	case !m.live() || inc < m.inc:
		// Only an alive message brings a dead member back (memberlist
		// ignores suspicions of members not alive, too).
		c.count[CountStale]++
	case m.state == StateSuspect:
		// Already suspected: the suspicion keeps its start and timer, so
		// repeated accusations cannot prolong it; a higher incarnation is
		// recorded, and an independent accuser shortens the timeout and is
		// passed on (Lifeguard §4.2).
		raised := inc > m.inc
		if raised {
			since := m.since
			c.setState(m, StateSuspect, inc)
			m.since = since
		}
		if (c.confirm(m, from) || raised) && gossip {
			c.enqueue(m, from)
		}
	default:
		c.startSuspicion(m, inc, from)
		c.emit(EventSuspected, m)
		if gossip {
			c.enqueue(m, from)
		}
	}
}

// startSuspicion makes m suspect at inc (SWIM §4.2) with a timeout that
// starts at the Lifeguard maximum (§4.2).
func (c *Core) startSuspicion(m *member, inc uint64, accuser string) {
	lo, hi, k := c.suspicionBounds()
	s := &suspicion{start: c.now, min: lo, max: hi, k: k, accusers: make([]string, 1, k+1)}
	s.accusers[0] = accuser
	c.setState(m, StateSuspect, inc)
	m.susp = s
	c.timerSet(m, c.now+s.timeout(0))
}

// confirm records an independent accuser and shortens the suspicion timeout
// to max − (max−min)·log(c+1)/log(K+1) (Lifeguard §4.2). It reports whether
// the accuser was new.
func (c *Core) confirm(m *member, accuser string) bool {
	s := m.susp
	if s == nil || len(s.accusers) > s.k || slices.Contains(s.accusers, accuser) {
		return false
	}
	s.accusers = append(s.accusers, accuser)
	c.timerSet(m, s.start+s.timeout(len(s.accusers)-1))
	return true
}

// aboutSelf handles news about ourselves: only we raise our incarnation, to
// refute (SWIM §4.2), or to move above what the cluster remembers of a
// previous life of ours.
func (c *Core) aboutSelf(u *Message) {
	s := c.self
	if c.leaving {
		return
	}
	if u.Incarnation < s.inc {
		c.count[CountStale]++
		return
	}
	if c.jumpsTooFar(u.Incarnation, s.inc) {
		return
	}
	// Our name announced at another address at an incarnation we have
	// reached: only we raise ours (SWIM §4.2), so another process claims
	// our name. A previous life of ours at an old address is below us,
	// since a process's first incarnation comes from the clock, and was
	// dismissed as stale above. We refute as for any news about us.
	conflict := (u.Kind == KindAlive || u.Kind == KindLeft) && u.Addr != s.addr
	switch u.Kind {
	case KindAlive:
		if u.Incarnation == s.inc && u.Addr == s.addr && payloadEqual(u.Payload, s.payload) {
			return
		}
	case KindSuspect, KindDead:
		// Being accused means others cannot hear us well: Lifeguard §4.1
		// counts a refutation against our health, at most once a period
		// so that a burst of accusations cannot silence us at once, and
		// we keep quiet about others for a while.
		if c.now-c.accusedHealth >= int64(c.cfg.ProbeInterval) {
			c.accusedHealth = c.now
			c.addHealth(1)
		}
		c.suspectedUntil = c.now + 2*int64(c.cfg.ProbeInterval)
	}
	c.refute(u.Incarnation)
	if conflict {
		c.nameConflict(s, u.Addr, int64(c.cfg.ProbeInterval))
	}
}

// refute raises our incarnation above inc, saturating at MaxIncarnation.
func (c *Core) refute(inc uint64) {
	if inc >= MaxIncarnation {
		c.count[CountBadIncarnation]++
		return
	}
	c.setState(c.self, StateAlive, inc+1)
	c.enqueue(c.self, "")
	c.count[CountRefutations]++
}

// maxStalePerPeriod bounds the tellStale datagrams of one probe interval,
// so that one message (or one snapshot full of stale entries) cannot make us
// send more than a few datagrams.
const maxStalePerPeriod = 4

// tellStale sends m our view of it at addr, at most once per period per
// member and maxStalePerPeriod in all, so that it refutes above it.
func (c *Core) tellStale(m *member, addr netip.AddrPort) {
	if !validAddr(addr) || c.now-m.toldAt < int64(c.cfg.ProbeInterval) {
		return
	}
	if c.now-c.staleWindow >= int64(c.cfg.ProbeInterval) {
		c.staleWindow, c.staleSent = c.now, 0
	}
	if c.staleSent >= maxStalePerPeriod {
		return
	}
	c.staleSent++
	m.toldAt = c.now
	c.count[CountToldStale]++
	// During Step, the datagram that told us the stale news bounds the
	// answer, since its source may be forged (see answerLimit): the news
	// came from the address it names, but a replay can come from there
	// too.
	limit := c.cfg.MaxDatagram
	if c.stepFrom.IsValid() {
		limit = min(limit, c.stepSize)
	}
	start := len(c.arena)
	c.arena = append(c.arena, c.updateMsg(m))
	if u := &c.arena[start]; c.cfg.CompoundOverhead+c.size(u) > limit {
		// Only the incarnation matters to the member; drop the payload
		// rather than exceed the bound.
		u.Payload = nil
	}
	c.out.Datagrams = append(c.out.Datagrams, Datagram{To: addr, Msgs: c.arena[start:len(c.arena):len(c.arena)]})
}

// handleProbe answers pings and ping-reqs and matches acks and nacks.
func (c *Core) handleProbe(from netip.AddrPort, p *Message) {
	switch p.Kind {
	case KindPing:
		if p.Name != "" && p.Name != c.self.name {
			c.count[CountMisdirected]++
			return
		}
		sender := c.members[p.From]
		c.repair(p.Digest, from, sender)
		// A ping by address (Probe, AddMember) or from a stranger gets
		// our own alive message first, so that it learns who we are, if
		// the answer's bound leaves room (the prober pads for it).
		introduce := p.Name == "" || sender == nil
		// An ack to a named ping from a member we do not know carries
		// digest 0 (StrangerDigest): the prober then sends us its alive
		// message, instead of waiting for push-pull to tell us of it.
		digest := c.Digest()
		if sender == nil && p.From != c.self.name && c.cfg.RepairInterval > 0 {
			digest = StrangerDigest
		}
		c.sendWithin(from, Message{Kind: KindAck, Seq: p.Seq, From: c.self.name, Digest: digest}, sender, introduce,
			c.answerLimit())
	case KindPingReq:
		// SWIM §3.1: probe the target on the requester's behalf. Only a
		// member we know (alive, suspect, or a dead tombstone: our view may
		// lag), at the address we know, so that a ping-req cannot aim our
		// pings at a third party; a requester has one probe at a time, so
		// at most two relays each; and relays use at most half of the
		// pending slots, leaving the rest to our own probes. The relay
		// waits our base ack timeout, not one stretched by our health
		// (memberlist does the same): the requester's probe ends on its
		// own clock, and a nack that comes after it counts there as
		// missing and raises the requester's health score, so one
		// unhealthy member would make the members it helps unhealthy too.
		if p.Name == c.self.name {
			c.count[CountMisdirected]++
			return
		}
		target := c.members[p.Name]
		if target == nil || target.state == StateLeft {
			if !c.refuseRelay(from, p) {
				c.count[CountUnknownMember]++
			}
			return
		}
		relays, fromReq := 0, 0
		for i := range c.pending {
			if c.pending[i].kind == pendRelay {
				relays++
				if c.pending[i].addr == from {
					fromReq++
				}
			}
		}
		if len(c.pending) >= c.cfg.MaxPendingProbes || relays >= max(1, c.cfg.MaxPendingProbes/2) || fromReq >= 2 {
			c.count[CountPendingCap]++
			return
		}
		seq := c.nextSeq()
		c.pending = append(c.pending, pending{
			kind: pendRelay, seq: seq, origSeq: p.Seq, addr: from, name: p.Name,
			nack: p.Nack, start: c.now, deadline: c.now + c.ackTimeout, // our base timeout, whatever our health (see above)
			// The relayed ack or nack goes back to from: bounded like a
			// ping's answer.
			limit: c.answerLimit(),
		})
		c.send(target.addr, Message{Kind: KindPing, Seq: seq, From: c.self.name, Name: p.Name, Digest: c.Digest()}, target, false)
	case KindAck:
		c.handleAck(from, p)
	case KindNack:
		pr := &c.probe
		if !pr.active || pr.seq != p.Seq {
			c.count[CountUnknownSeq]++
			return
		}
		i := slices.Index(pr.helpers, p.From)
		if i < 0 {
			c.count[CountWrongSender]++
			return
		}
		// Count each helper once.
		pr.helpers[i] = ""
		pr.nacks++
	}
}

func (c *Core) handleAck(from netip.AddrPort, p *Message) {
	pr := &c.probe
	if pr.active && pr.seq == p.Seq {
		t := pr.target
		if p.From != t.name {
			c.count[CountWrongSender]++
			return
		}
		result := ProbeIndirect
		if from == t.addr {
			result = ProbeDirect
			c.sampleRTT(c.now - pr.start)
			if p.Digest == StrangerDigest {
				// Its view lacks us, so it differs from ours: introduce
				// ourselves at once, and repair as for any mismatch.
				c.introduceSelf(t)
				c.repairWith(from, t)
			} else {
				c.repair(p.Digest, from, t)
			}
		}
		c.out.Probes = append(c.out.Probes, ProbeOutcome{Name: t.name, Result: result, RTT: timeDur(c.now - pr.start), Nacks: pr.nacks})
		pr.active = false
		t.streamOnly = 0 // its datagram path works (streamprobe.go)
		c.addHealth(-1)  // Lifeguard §4.1: a successful probe
		return
	}
	for i := range c.pending {
		q := &c.pending[i]
		if q.seq != p.Seq {
			continue
		}
		if q.name != "" && p.From != q.name {
			c.count[CountWrongSender]++
			return
		}
		if q.kind == pendDiscover {
			c.discoveryAck(from, p, q)
			return
		}
		switch q.kind {
		case pendRelay:
			c.sendWithin(q.addr, Message{Kind: KindAck, Seq: q.origSeq, From: p.From}, nil, false, q.limit)
		case pendUser, pendAdd:
			c.out.ProbeResults = append(c.out.ProbeResults, ProbeResult{
				Token: q.token, Addr: q.addr, OK: true, Name: p.From, RTT: timeDur(c.now - q.start),
			})
			c.repair(p.Digest, from, c.members[p.From])
		}
		c.removePending(i)
		return
	}
	c.count[CountUnknownSeq]++
}

func (c *Core) removePending(i int) {
	last := len(c.pending) - 1
	c.pending[i] = c.pending[last]
	c.pending[last] = pending{}
	c.pending = c.pending[:last]
}

// repair asks for a state exchange with the sender of a digest that differs
// from ours (fast repair), when we have no news of our own in flight (a
// mismatch is then expected and gossip will settle it) and the rate limit
// allows. The sender must be a live member at the address the digest came
// from, so that a replayed ping with a forged source cannot aim our stream
// at a third party.
func (c *Core) repair(d uint64, from netip.AddrPort, sender *member) {
	// Digests compare on their low 32 bits, all a compact datagram carries
	// (docs/codec.md): views that differ match by chance with probability
	// 2^-32, and the periodic push-pull repairs them anyway.
	if d == 0 {
		return
	}
	if uint32(d) == uint32(c.Digest()) {
		if c.atItsAddress(sender, from) {
			sender.agreedDigest, sender.agreedAt = uint32(d), c.now
		}
		return
	}
	c.repairWith(from, sender)
}

// atItsAddress reports whether sender is a live member other than us and
// from is its address: only then may what it sent about its view change
// how we exchange state with it.
func (c *Core) atItsAddress(sender *member, from netip.AddrPort) bool {
	return sender != nil && sender != c.self && sender.live() && sender.addr == from
}

// knownAgreed reports whether m's view is known to equal ours: within the
// last push-pull interval, a ping or ack of m's carried the digest we
// still have. A periodic exchange with it would then carry nothing either
// side lacks (but for a 2^-32 chance of equal digests of different views).
// It needs fast repair: with it, a digest that differs in a later ping or
// ack asks for an exchange, so skipping the periodic one loses nothing;
// without it, the periodic exchange is the only anti-entropy there is.
// Config.PushPullAgreed turns the skipping off.
func (c *Core) knownAgreed(m *member) bool {
	return !c.cfg.PushPullAgreed && c.cfg.RepairInterval > 0 &&
		m.agreedDigest == uint32(c.Digest()) && c.now-m.agreedAt < c.pushPullInterval()
}

// repairWith asks for a state exchange with sender, whose view differs from
// ours, under repair's conditions.
func (c *Core) repairWith(from netip.AddrPort, sender *member) {
	if c.cfg.RepairInterval <= 0 || len(c.queue) > 0 || !c.atItsAddress(sender, from) ||
		c.now-c.lastRepair < int64(c.cfg.RepairInterval) {
		return
	}
	c.lastRepair = c.now
	c.count[CountRepairs]++
	c.out.PushPulls = append(c.out.PushPulls, PushPull{To: from, Name: sender.name})
}

// StrangerDigest is the digest an ack carries when its sender does not know
// the member that pinged it: a view digest is never zero (Core.Digest), and
// members before this rule ignore a zero digest.
const StrangerDigest = 0

// introduceSelf sends our alive message to t, a live member that has just
// acked our ping saying it does not know us. Without it, a member that
// missed every retransmission of our alive message during a join storm
// under loss waits for a push-pull to learn of us, up to PushPullInterval.
// It happens at most once per probe of t, and only to a member of our view
// at the address our ping reached, so it cannot be aimed elsewhere.
func (c *Core) introduceSelf(t *member) {
	c.count[CountIntroductions]++
	c.sendWithin(t.addr, c.updateMsg(c.self), t, false, c.cfg.MaxDatagram)
}
