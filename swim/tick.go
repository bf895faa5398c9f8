package swim

import (
	"math/bits"
	"time"
)

// Tick lets time pass: it starts the next probe when a period begins, sends
// the indirect probes when the direct ack is late, ends failed probes,
// expires suspicions and tombstones, probes a tombstone now and then, and
// asks for the periodic push-pull. Call it at NextDeadline (earlier or more
// often is harmless).
func (c *Core) Tick(now time.Time) {
	c.setNow(now)
	pr := &c.probe
	if pr.active && !pr.indirect && c.now >= pr.ackAt {
		c.goIndirect()
	}
	if pr.active && pr.indirect && c.now >= pr.streamFrom {
		c.askStream()
	}
	if pr.active && c.now >= pr.endAt {
		if pr.streamOK {
			c.probeStreamOnly()
		} else {
			c.probeFailed()
		}
	}
	c.expirePending()
	for len(c.timers) > 0 && c.timers[0].tAt <= c.now {
		c.fire(c.timers[0])
	}
	if c.now >= c.nextProbe {
		c.startProbe()
	}
	if c.cfg.DeadProbeInterval > 0 && c.now >= c.nextDeadProbe {
		c.nextDeadProbe = c.now + c.jittered(int64(c.cfg.DeadProbeInterval))
		c.probeTombstone()
	}
	// Gossip on its own faster timer while there is news (memberlist's
	// gossip interval); piggybacking alone (SWIM §4.1) waits a period.
	if c.cfg.GossipInterval > 0 && c.backlog() > 0 && c.now >= c.nextGossip {
		c.nextGossip = c.now + c.jittered(int64(c.cfg.GossipInterval))
		c.gossip(0, nil)
	}
	if c.cfg.PushPullInterval > 0 && c.now >= c.nextPushPull {
		c.nextPushPull = c.now + c.jittered(c.pushPullInterval())
		if len(c.order) > 0 && !c.leaving {
			m := c.order[c.rng.IntN(len(c.order))]
			if c.knownAgreed(m) {
				c.count[CountPushPullsAgreed]++
			} else {
				c.out.PushPulls = append(c.out.PushPulls, PushPull{To: m.addr, Name: m.name})
			}
		}
	}
}

// pushPullInterval is PushPullInterval, stretched for large clusters as
// memberlist does: a push-pull costs O(n) bytes, so above 32 members the
// interval grows by one interval per doubling, keeping the cluster-wide
// anti-entropy traffic from growing as n².
func (c *Core) pushPullInterval() int64 {
	scale := int64(1)
	if c.live > 32 {
		scale += int64(bits.Len(uint(c.live-1)) - 5)
	}
	return int64(c.cfg.PushPullInterval) * scale
}

// startProbe begins a protocol period (SWIM §3.1): ping the next member of
// the randomized round-robin order (§4.3). The period, and so the time the
// probe has to succeed, is stretched by the health multiplier (Lifeguard
// §4.1) and jittered.
func (c *Core) startProbe() {
	period := c.jittered(c.probeInterval())
	if c.nextProbe+period <= c.now {
		c.nextProbe = c.now + period // we were not called for a while
	} else {
		c.nextProbe += period
	}
	t := c.nextTarget()
	if t == nil {
		return
	}
	pr := &c.probe
	pr.active, pr.indirect = true, false
	pr.seq = c.nextSeq()
	pr.target = t
	pr.start = c.now
	pr.endAt = c.nextProbe
	pr.ackAt = c.now + c.ackTimeoutNow()
	if pr.ackAt >= pr.endAt {
		pr.ackAt = c.now + (pr.endAt-c.now)/2
	}
	pr.helpers = pr.helpers[:0]
	pr.nacks = 0
	pr.streamAsked, pr.streamOK = false, false
	c.count[CountProbes]++
	carried := c.send(t.addr, Message{Kind: KindPing, Seq: pr.seq, From: c.self.name, Name: t.name, Digest: c.Digest()}, t, false)
	c.gossip(carried, t)
}

// goIndirect asks k random members to probe the target (SWIM §3.1), with a
// nack on timeout when Lifeguard is on (§4.3), and sets when the runtime is
// to ping it over a stream if no ack has come by then (StreamFallback,
// streamprobe.go).
func (c *Core) goIndirect() {
	pr := &c.probe
	pr.indirect = true
	pr.streamFrom = c.streamPingAt()
	t := pr.target
	n := len(c.order)
	for tries := 0; len(pr.helpers) < c.cfg.IndirectChecks && tries < 3*c.cfg.IndirectChecks+3 && n > 1; tries++ {
		h := c.order[c.rng.IntN(n)]
		if h == t || h.state != StateAlive || c.isHelper(h.name) {
			continue
		}
		pr.helpers = append(pr.helpers, h.name)
		c.send(h.addr, Message{
			Kind: KindPingReq, Seq: pr.seq, From: c.self.name, Name: t.name, Addr: t.addr, Nack: c.cfg.Lifeguard,
		}, h, false)
	}
	if len(pr.helpers) == 0 {
		pr.streamFrom = c.now // nobody to wait for
	}
}

func (c *Core) isHelper(name string) bool {
	for _, h := range c.probe.helpers {
		if h == name {
			return true
		}
	}
	return false
}

// probeFailed ends a probe that got no ack: adjust health (Lifeguard §4.1:
// one point per missing nack, or one point when no helper could nack),
// then suspect the target (SWIM §4.2) or, with suspicion off, declare it
// dead (SWIM §3).
func (c *Core) probeFailed() {
	pr := &c.probe
	pr.active = false
	c.count[CountProbeFailures]++
	expected := len(pr.helpers)
	if expected > 0 && c.cfg.Lifeguard {
		c.addHealth(expected - pr.nacks)
	} else {
		c.addHealth(1)
	}
	t := pr.target
	pr.target = nil
	if t != nil {
		c.out.Probes = append(c.out.Probes, ProbeOutcome{Name: t.name, Result: ProbeFailed, Nacks: pr.nacks})
	}
	if t == nil || c.members[t.name] != t || !t.live() || c.leaving {
		return // the target changed under us: a stale probe
	}
	if c.quiet() {
		c.count[CountQuiet]++
		return
	}
	if !c.cfg.Suspicion {
		c.setState(t, StateDead, t.inc)
		c.emit(EventFailed, t)
		c.enqueue(t, c.self.name)
		return
	}
	if t.state == StateSuspect {
		if c.confirm(t, c.self.name) {
			c.enqueue(t, c.self.name)
		}
		return
	}
	c.startSuspicion(t, t.inc, c.self.name)
	c.emit(EventSuspected, t)
	c.enqueue(t, c.self.name)
}

// expirePending ends outstanding probes whose time is up: a helper sends
// the requester a nack when asked to (Lifeguard §4.3); Probe and AddMember
// report failure.
func (c *Core) expirePending() {
	for i := 0; i < len(c.pending); {
		q := &c.pending[i]
		if q.deadline > c.now {
			i++
			continue
		}
		switch q.kind {
		case pendRelay:
			if q.nack {
				c.sendWithin(q.addr, Message{Kind: KindNack, Seq: q.origSeq, From: c.self.name}, nil, false, q.limit)
			}
		case pendUser, pendAdd, pendDiscover:
			c.out.ProbeResults = append(c.out.ProbeResults, ProbeResult{Token: q.token, Addr: q.addr})
		}
		c.removePending(i)
	}
}

// fire handles a member's timer: a suspicion that timed out becomes dead
// (SWIM §4.2), a tombstone that timed out is forgotten.
func (c *Core) fire(m *member) {
	c.timerClear(m)
	switch m.state {
	case StateSuspect:
		c.setState(m, StateDead, m.inc)
		c.emit(EventFailed, m)
		c.enqueue(m, c.self.name)
	case StateDead, StateLeft:
		c.forget(m)
	}
}

// probeTombstone pings a random dead member, introducing ourselves and
// telling it that we hold it dead, so that a member behind a healed
// partition, or restarted, refutes and comes back by itself.
func (c *Core) probeTombstone() {
	if len(c.dead) == 0 || len(c.pending) >= c.cfg.MaxPendingProbes || c.leaving {
		return
	}
	m := c.dead[c.rng.IntN(len(c.dead))]
	seq := c.nextSeq()
	c.pending = append(c.pending, pending{
		kind: pendTomb, seq: seq, addr: m.addr, name: m.name,
		start: c.now, deadline: c.now + int64(c.cfg.ProbeInterval),
	})
	c.send(m.addr, Message{Kind: KindPing, Seq: seq, From: c.self.name, Name: m.name, Digest: c.Digest()}, m, true)
}
