package membership

import (
	"net/netip"
	"sync"
	"time"

	"github.com/meshward/membership/metrics"
	"github.com/meshward/membership/swim"
)

// Every datagram's plaintext starts with the sender's clock (unix
// milliseconds, see SECURITY.md). A direct probe therefore measures the
// target's clock as NTP does: we sent the ping at t0 by our clock, the
// target stamped its ack t1 by its own, and the ack reached us at t2 by
// ours. Whatever the two one-way delays, the target's offset lies within
// [t1 − t2, t1 − t0], so we take the middle, t1 − (t0+t2)/2, with an error
// bound of half the round trip (plus half a millisecond for the
// timestamp's resolution). Of the recent samples, the one with the
// smallest round trip has the tightest bound, and is the estimate (NTP's
// clock filter, RFC 5905 §10). A sample whose interval does not meet the
// estimate's proves that the offset moved (a clock stepped, or drifted
// beyond the bound): the older samples are then thrown away.

// ClockOffset is this node's estimate of how far a member's clock is from
// its own, from the timestamps on the datagrams of direct probes (see
// Member.Clock).
type ClockOffset struct {
	// Offset is the member's clock minus ours: positive when the member's
	// clock is ahead.
	Offset time.Duration
	// Error bounds the estimate when it was made: the true offset was
	// within Offset ± Error, whatever the network delays. It is half the
	// round trip of the probe the estimate comes from, plus half a
	// millisecond for the resolution of the timestamps.
	Error time.Duration
	// At is when the estimate's sample was taken, by our clock; the zero
	// time when there is no estimate.
	At time.Time
}

// Known reports whether there is an estimate.
func (c ClockOffset) Known() bool { return !c.At.IsZero() }

// Keeping samples: the estimate is the smallest-round-trip sample among
// the last clockSamples direct probes of the member that are at most
// clockMaxAge old (the newest is kept whatever its age).
const (
	clockSamples = 8
	clockMaxAge  = 10 * time.Minute
	// clockResolution is the timestamps' resolution: they are unix
	// milliseconds, truncated.
	clockResolution = time.Millisecond
)

type clockSample struct {
	offset, err time.Duration
	at          time.Time // when the ack arrived, with its monotonic reading
}

func (s clockSample) meets(o clockSample) bool {
	d := s.offset - o.offset
	return max(d, -d) <= s.err+o.err
}

// clockEntry is one member's recent samples, oldest first.
type clockEntry struct {
	addr    netip.AddrPort
	samples []clockSample
	best    clockSample
	warned  bool // its offset was last seen beyond half the replay window, and logged
}

func (e *clockEntry) add(s clockSample) {
	if len(e.samples) > 0 && !s.meets(e.best) {
		e.samples = e.samples[:0] // the offset moved: older samples mislead
	}
	keep := e.samples[:0]
	for _, o := range e.samples {
		if s.at.Sub(o.at) <= clockMaxAge {
			keep = append(keep, o)
		}
	}
	if len(keep) == clockSamples {
		keep = append(keep[:0], keep[1:]...)
	}
	e.samples = append(keep, s)
	e.best = e.samples[0]
	for _, o := range e.samples[1:] {
		if o.err <= e.best.err {
			e.best = o
		}
	}
}

func (e *clockEntry) estimate() ClockOffset {
	return ClockOffset{Offset: e.best.offset, Error: e.best.err, At: e.best.at}
}

// clockState holds the estimates. The loop goroutine writes them; readers
// (Members, the event path, the report) take mu.
type clockState struct {
	mu      sync.Mutex
	members map[string]*clockEntry // guarded by mu
}

// withClockSkew makes the node's wall clock (its datagram timestamps, and
// the time it checks received timestamps against) run skew() away from
// the real one: for tests of clock offsets and the replay window.
func withClockSkew(skew func() time.Duration) Option {
	return func(c *config) error { c.clockSkew = skew; return nil }
}

// wall turns a reading of the real clock into the node's wall clock.
func (n *Node) wall(t time.Time) time.Time {
	if n.cfg.clockSkew == nil {
		return t
	}
	return t.Add(n.cfg.clockSkew())
}

// clockMark notes how much output the core holds before a Step, so that
// clockStepped looks only at what that Step added.
type clockMark struct{ probes, results int }

func (n *Node) clockMark() clockMark {
	out := n.core.Ready()
	return clockMark{len(out.Probes), len(out.ProbeResults)}
}

// clockStepped turns the direct probes that a datagram just completed into
// samples: the datagram came from `from`, stamped sent by its sender's
// clock, and arrived at `at`. A periodic probe counts when its ack came
// straight from the target (swim.ProbeDirect), a Probe or AddMember when
// the ack came from the probed address.
func (n *Node) clockStepped(mark clockMark, from netip.AddrPort, sent, at time.Time) {
	out := n.core.Ready()
	for _, p := range out.Probes[mark.probes:] {
		if p.Result != swim.ProbeDirect {
			continue
		}
		if m, ok := n.core.Member(p.Name); ok && m.Addr == from {
			n.clockSample(p.Name, from, sent, at, p.RTT)
		}
	}
	for _, r := range out.ProbeResults[mark.results:] {
		if r.OK && r.Addr == from && r.Name != "" && r.Name != n.cfg.name {
			n.clockSample(r.Name, from, sent, at, r.RTT)
		}
	}
}

// clockEvent returns our estimate of the clock of the member an event is
// about, and forgets it when the member failed, left or came back as a
// new process, whose clock may be another.
func (n *Node) clockEvent(ev Event) ClockOffset {
	est := n.clock.clockOf(ev.Member.Name)
	switch ev.Kind {
	case EventJoined, EventFailed, EventLeft:
		n.clock.forget(ev.Member.Name)
	}
	return est
}

// clockSample records a direct probe of name, whose ack came from addr
// stamped sent by name's clock and arrived at at, rtt after the ping.
func (n *Node) clockSample(name string, addr netip.AddrPort, sent, at time.Time, rtt time.Duration) {
	c := &n.clock
	t2 := n.wall(at)
	t1 := sent.Add(clockResolution / 2) // the middle of the millisecond
	s := clockSample{
		offset: t1.Sub(t2) + rtt/2, // t1 − (t0+t2)/2 with t0 = t2 − rtt
		err:    rtt/2 + clockResolution/2,
		at:     at, // with the monotonic reading, for ages
	}
	c.mu.Lock()
	if c.members == nil {
		c.members = make(map[string]*clockEntry)
	}
	e := c.members[name]
	if e == nil {
		if len(c.members) >= n.core.NumLive() {
			n.clockPrune()
		}
		e = &clockEntry{samples: make([]clockSample, 0, clockSamples)}
		c.members[name] = e
	}
	e.addr = addr
	e.add(s)
	est := e.estimate()
	far := max(est.Offset, -est.Offset)-est.Error > n.cfg.replayWindow/2
	warn := far && !e.warned
	e.warned = far
	c.mu.Unlock()
	if warn {
		if ok, suppressed := n.limiter.allow("clock", time.Now()); ok {
			n.log.Warn("a member's clock is more than half the replay window away from ours: run NTP on both hosts; beyond the window, datagrams are dropped",
				"member", name, "clock_offset", est.Offset.Round(time.Millisecond), "offset_error", est.Error.Round(time.Microsecond),
				"replay_window", n.cfg.replayWindow, "suppressed", suppressed)
		}
	}
}

// clockPrune drops the entries of members that are not live in the view
// (removed, say, without an event), so that the table stays about the
// size of the live view. Called with mu held, on the loop goroutine.
func (n *Node) clockPrune() {
	for name := range n.clock.members {
		if m, ok := n.core.Member(name); !ok || (m.State != swim.StateAlive && m.State != swim.StateSuspect) {
			delete(n.clock.members, name)
		}
	}
}

func (c *clockState) forget(name string) {
	c.mu.Lock()
	delete(c.members, name)
	c.mu.Unlock()
}

// clockOf returns the estimate for name.
func (c *clockState) clockOf(name string) ClockOffset {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.members[name]; e != nil {
		return e.estimate()
	}
	return ClockOffset{}
}

// fill sets the Clock of each member.
func (c *clockState) fill(ms []Member) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range ms {
		if e := c.members[ms[i].Name]; e != nil {
			ms[i].Clock = e.estimate()
		}
	}
}

// byAddr returns the name and estimate of the member whose last sample
// came from addr.
func (c *clockState) byAddr(addr netip.AddrPort) (string, ClockOffset, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, e := range c.members {
		if e.addr == addr {
			return name, e.estimate(), true
		}
	}
	return "", ClockOffset{}, false
}

// maxOffset returns the largest |offset| among the members with an
// estimate, 0 when there is none.
func (c *clockState) maxOffset() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	var worst time.Duration
	for _, e := range c.members {
		worst = max(worst, e.best.offset, -e.best.offset)
	}
	return worst
}

// clockReport publishes the largest offset; report calls it once a second.
// It sets the gauge even to 0, so that it never shows the offset of a
// member whose estimate is gone.
func (n *Node) clockReport() {
	n.met.SetGauge(metrics.ClockOffsetMax, float32(n.clock.maxOffset())/float32(time.Millisecond))
}

// clockLogAttrs returns what a replay-window log line says of the sender's
// clock: our estimate of its offset, when we have one.
func (n *Node) clockLogAttrs(reason metrics.DropReason, from netip.AddrPort) []any {
	if reason != metrics.DropTooOld && reason != metrics.DropTooNew {
		return nil
	}
	name, est, ok := n.clock.byAddr(from)
	if !ok {
		return []any{"sender_clock_offset", "unknown"}
	}
	return []any{
		"sender", name,
		"sender_clock_offset", est.Offset.Round(time.Millisecond),
		"offset_error", est.Error.Round(time.Microsecond),
		"offset_age", time.Since(est.At).Round(time.Millisecond),
	}
}

// withClock returns m with our estimate of its clock.
func (n *Node) withClock(m Member) Member {
	m.Clock = n.clock.clockOf(m.Name)
	return m
}
