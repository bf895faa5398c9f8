package swim

import "time"

// The stream fallback probe (Config.StreamFallback).
//
// SWIM §3.1 ends a probe as failed when neither the direct ping nor any of
// the k indirect ping-reqs brought an ack back within the period. With
// independent datagram loss r per hop that happens with probability about
// (1−(1−r)²)·(1−(1−r)⁴)^k (SWIM §5), 0.8 % of probes at r = 10 % and k = 3:
// each such probe is a suspicion that reaches every member, a refutation
// and a burst of gossip, for a member that is fine. memberlist therefore
// also pings the target over TCP when the direct ack is late (its
// probeNode), and does not suspect a target that answered there. We do the
// same, a little later: when the direct ack is late the ping-reqs go out,
// and when no indirect ack has come one ack timeout after them
// (streamPingAt), the core asks the runtime for a stream ping
// (Output.StreamProbes); the runtime reports the outcome with
// StreamProbeResult. memberlist dials at the moment its ping-reqs go out,
// which costs a stream for every probe whose direct ping or ack was lost
// (36 % of probes at 20 % loss), most of which an indirect ack saves
// anyway (docs/probing.md). At the end of the
// period a datagram ack, direct or indirect, still wins (ProbeDirect,
// ProbeIndirect); only when none came does the stream ack count
// (ProbeStream), and the target is not suspected.
//
// A member that answers only over the stream is not healthy: its datagrams
// (or ours to it) are lost while its stream works, so it cannot help probe
// others, and others' probes of it cost a stream each. memberlist logs a
// warning per such probe. We count every such probe (CountStreamAcks, and
// ProbeOutcome.StreamOnly, the length of the run for that member) and after
// StreamOnlyReport of them in a row report the member once with
// EventStreamOnly; a datagram-acked probe of it ends the run.
//
// Local health (Lifeguard §4.1): a probe that only the stream answered
// leaves our health score as it is. It is no evidence that we are slow (a
// stream round trip finished within our period), so it is not scored as a
// failed probe; but no datagram ack came either, so it is not scored as a
// success. memberlist scores it as a success (its awarenessDelta stays at
// −1 when the TCP ping answers); the difference matters only while every
// probe needs the stream, which is when a member's own datagram path is
// broken, and then we would rather not talk our health down.

// StreamOnlyReport is the number of periodic probes of one member in a row
// that only the stream fallback acked after which EventStreamOnly reports
// the member.
const StreamOnlyReport = 3

// streamPingAt is when the stream ping of a probe whose ping-reqs go out
// now is due: one more ack timeout, the time an indirect ack takes on a
// path whose round trip the ack timeout covers once per hop pair, but at
// most half of what is left of the period, so that the stream has the
// other half. On a LAN period of 1 s with the 200 ms minimum ack timeout,
// the ping-reqs have 200 ms and the stream 600 ms.
func (c *Core) streamPingAt() int64 {
	left := c.probe.endAt - c.now
	return c.now + max(0, min(c.ackTimeoutNow(), left/2))
}

// askStream asks the runtime for a stream ping of the current probe's
// target, once per probe, when StreamFallback is on.
func (c *Core) askStream() {
	pr := &c.probe
	if pr.streamAsked {
		return
	}
	pr.streamAsked = true // due or not, once per probe
	t := pr.target
	if !c.cfg.StreamFallback || t == nil || c.leaving {
		return
	}
	c.count[CountStreamProbes]++
	c.out.StreamProbes = append(c.out.StreamProbes, StreamProbe{
		To: t.addr, Name: t.name, Seq: pr.seq, Deadline: c.t0.Add(timeDur(pr.endAt)),
	})
}

// StreamProbeResult reports the outcome of a stream ping asked for in
// Output.StreamProbes: ok when the member named name acked seq over the
// stream. A result for a probe that has ended already (a datagram ack came
// first, or the period is over) is ignored, as is a failure: the probe then
// ends as it would have without the stream.
func (c *Core) StreamProbeResult(now time.Time, name string, seq uint32, ok bool) {
	c.setNow(now)
	pr := &c.probe
	if !ok || !pr.active || !pr.streamAsked || pr.seq != seq || pr.target == nil || pr.target.name != name {
		return
	}
	pr.streamOK = true
	pr.streamAt = c.now
}

// probeStreamOnly ends a probe that no datagram ack answered but the
// stream did: the target is not suspected, our health is unchanged, and a
// run of StreamOnlyReport such probes is reported.
func (c *Core) probeStreamOnly() {
	pr := &c.probe
	pr.active = false
	t := pr.target
	pr.target = nil
	if t == nil || c.members[t.name] != t {
		return // the target was forgotten under us
	}
	c.count[CountStreamAcks]++
	t.streamOnly++
	c.out.Probes = append(c.out.Probes, ProbeOutcome{
		Name: t.name, Result: ProbeStream, RTT: timeDur(pr.streamAt - pr.start), Nacks: pr.nacks, StreamOnly: t.streamOnly,
	})
	if t.streamOnly == StreamOnlyReport && t.live() {
		c.count[CountStreamOnly]++
		c.emit(EventStreamOnly, t)
	}
}
