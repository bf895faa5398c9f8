package swim

import (
	"net/netip"
	"testing"
	"time"
)

// lateAck drives c through one periodic probe whose datagram ack does not
// come, up to the ack timeout, and returns the ping and the stream pings
// the core asked for then.
func lateAck(t *testing.T, c *Core, now *time.Time) (Message, []StreamProbe) {
	t.Helper()
	var ping Message
	if c.probe.active {
		// The Tick that ended the last probe started this one: its ping
		// is in the output not yet advanced.
		for _, d := range c.Ready().Datagrams {
			if d.Msgs[0].Kind == KindPing {
				ping = d.Msgs[0]
			}
		}
	} else {
		_, ping = probeOnce(t, c, now)
	}
	if ping.Kind != KindPing {
		t.Fatal("no ping")
	}
	if n := len(c.Ready().StreamProbes); n != 0 {
		t.Fatalf("%d stream pings asked with the datagram ping, want none before the ack timeout", n)
	}
	c.Advance()
	*now = c.NextDeadline()
	c.Tick(*now) // the ack timeout: ping-reqs
	reqs := 0
	for _, d := range c.Ready().Datagrams {
		if d.Msgs[0].Kind == KindPingReq {
			reqs++
		}
	}
	if reqs == 0 {
		// Nobody to ask: the stream ping goes out at once.
		sp := append([]StreamProbe(nil), c.Ready().StreamProbes...)
		c.Advance()
		return ping, sp
	}
	if n := len(c.Ready().StreamProbes); n != 0 {
		t.Fatalf("%d stream pings asked with the ping-reqs, want none before they had their time", n)
	}
	c.Advance()
	*now = c.NextDeadline()
	c.Tick(*now) // the ping-reqs had their time: the stream ping
	sp := append([]StreamProbe(nil), c.Ready().StreamProbes...)
	c.Advance()
	return ping, sp
}

// TestStreamPingWaitsForThePingReqs: the stream ping goes out one ack
// timeout after the ping-reqs, not with them, so that a probe an indirect
// ack saves costs no stream; the stream keeps the rest of the period.
func TestStreamPingWaitsForThePingReqs(t *testing.T) {
	c := newTestCore(t, 0, nil)
	know(t, c, 8)
	now := t0
	_, ping := probeOnce(t, c, &now)
	start := now
	c.Advance()
	ackAt := c.NextDeadline()
	c.Tick(ackAt)
	var helper Message
	var helperAddr netip.AddrPort
	for _, d := range c.Ready().Datagrams {
		if d.Msgs[0].Kind == KindPingReq {
			helper, helperAddr = d.Msgs[0], d.To
		}
	}
	if helper.Kind != KindPingReq || len(c.Ready().StreamProbes) != 0 {
		t.Fatalf("at the ack timeout: ping-req %+v, %d stream pings; want ping-reqs and no stream ping", helper, len(c.Ready().StreamProbes))
	}
	c.Advance()
	due := c.NextDeadline()
	end := start.Add(c.cfg.ProbeInterval)
	if want := ackAt.Add(min(c.AckTimeout(), end.Sub(ackAt)/2)); !due.Equal(want) {
		t.Fatalf("stream ping due %v after the ping-reqs, want one ack timeout (%v) or half the %v left", due.Sub(ackAt), c.AckTimeout(), end.Sub(ackAt))
	}
	if due.Sub(ackAt) > end.Sub(due) {
		t.Fatalf("the stream ping leaves %v of the period, less than the ping-reqs had", end.Sub(due))
	}
	// An indirect ack before then: no stream ping at all.
	c.Step(due.Add(-time.Millisecond), helperAddr, []Message{{Kind: KindAck, Seq: ping.Seq, From: ping.Name}})
	c.Advance()
	for now := due; now.Before(start.Add(c.cfg.ProbeInterval)); now = now.Add(50 * time.Millisecond) {
		c.Tick(now)
		if n := len(c.Ready().StreamProbes); n != 0 {
			t.Fatalf("%d stream pings after an indirect ack", n)
		}
		c.Advance()
	}
	if c.Count(CountStreamProbes) != 0 {
		t.Fatalf("stream_probes %d, want 0", c.Count(CountStreamProbes))
	}
}

// TestStreamAckSparesSuspicion: a probe that no datagram ack answers but
// the stream does ends as ProbeStream, without a suspicion and without a
// change of health; StreamOnlyReport of them in a row report the member
// once, and a datagram-acked probe ends the run.
func TestStreamAckSparesSuspicion(t *testing.T) {
	c := newTestCore(t, 0, nil)
	know(t, c, 2) // one other member: every probe is of m1
	now := t0
	for run := 1; run <= StreamOnlyReport+1; run++ {
		ping, sp := lateAck(t, c, &now)
		if len(sp) != 1 || sp[0].Name != testName(1) || sp[0].Seq != ping.Seq || sp[0].To != testAddr(1) {
			t.Fatalf("probe %d: stream pings %+v at the ack timeout, want one for m1 seq %d", run, sp, ping.Seq)
		}
		if !sp[0].Deadline.Equal(c.NextDeadline()) {
			t.Fatalf("stream deadline %v, want the end of the period %v", sp[0].Deadline, c.NextDeadline())
		}
		// A wrong sequence number, a wrong name and a failure change nothing.
		c.StreamProbeResult(now, ping.Name, ping.Seq+1, true)
		c.StreamProbeResult(now, "m2", ping.Seq, true)
		c.StreamProbeResult(now, ping.Name, ping.Seq, false)
		c.StreamProbeResult(now.Add(3*time.Millisecond), ping.Name, ping.Seq, true)
		health := c.Health()
		c.Tick(sp[0].Deadline)
		out := c.Ready()
		if eventsOf(out, EventSuspected, ping.Name) != 0 {
			t.Fatalf("probe %d: m1 suspected although the stream acked", run)
		}
		if m, _ := c.Member(ping.Name); m.State != StateAlive {
			t.Fatalf("probe %d: m1 is %v, want alive", run, m.State)
		}
		if len(out.Probes) != 1 || out.Probes[0].Result != ProbeStream || out.Probes[0].StreamOnly != run {
			t.Fatalf("probe %d: outcomes %+v, want one stream outcome with a run of %d", run, out.Probes, run)
		}
		if rtt := out.Probes[0].RTT; rtt <= 3*time.Millisecond || rtt >= time.Second {
			t.Fatalf("probe %d: stream RTT %v, want from the ping to the stream ack", run, rtt)
		}
		if c.Health() != health {
			t.Fatalf("probe %d: health %d after a stream-only probe, was %d", run, c.Health(), health)
		}
		want := 0
		if run == StreamOnlyReport {
			want = 1
		}
		if got := eventsOf(out, EventStreamOnly, ping.Name); got != want {
			t.Fatalf("probe %d: %d stream-only reports, want %d", run, got, want)
		}
	}
	if c.Count(CountStreamProbes) != StreamOnlyReport+1 || c.Count(CountStreamAcks) != StreamOnlyReport+1 ||
		c.Count(CountStreamOnly) != 1 || c.Count(CountProbeFailures) != 0 {
		t.Fatalf("counts: stream probes %d, stream acks %d, reports %d, failures %d",
			c.Count(CountStreamProbes), c.Count(CountStreamAcks), c.Count(CountStreamOnly), c.Count(CountProbeFailures))
	}

	// A direct ack ends the run: the next stream-only probe starts a new one.
	var d Datagram
	for _, dg := range c.Ready().Datagrams {
		if dg.Msgs[0].Kind == KindPing {
			d = dg
		}
	}
	if len(d.Msgs) == 0 {
		t.Fatal("the Tick that ended the last probe started no new one")
	}
	first := d.Msgs[0]
	c.Advance()
	c.Step(now.Add(time.Millisecond), d.To, []Message{{Kind: KindAck, Seq: first.Seq, From: first.Name}})
	if out := c.Ready(); len(out.StreamProbes) != 0 || len(out.Probes) != 1 || out.Probes[0].Result != ProbeDirect {
		t.Fatalf("after a direct ack: stream pings %+v, outcomes %+v", out.StreamProbes, out.Probes)
	}
	c.Advance()
	ping, sp := lateAck(t, c, &now)
	c.StreamProbeResult(now, ping.Name, ping.Seq, true)
	c.Tick(sp[0].Deadline)
	if out := c.Ready(); len(out.Probes) != 1 || out.Probes[0].StreamOnly != 1 {
		t.Fatalf("after a direct ack, a stream-only probe reports %+v, want a run of 1", out.Probes)
	}
}

// TestStreamFailureStillSuspects: a crashed member fails the stream ping
// too, and is suspected as without the fallback; with the fallback off no
// stream ping is asked for.
func TestStreamFailureStillSuspects(t *testing.T) {
	for _, fallback := range []bool{true, false} {
		c := newTestCore(t, 0, func(cfg *Config) { cfg.StreamFallback = fallback })
		know(t, c, 2)
		now := t0
		ping, sp := lateAck(t, c, &now)
		if want := map[bool]int{true: 1, false: 0}[fallback]; len(sp) != want {
			t.Fatalf("fallback %v: %d stream pings, want %d", fallback, len(sp), want)
		}
		if fallback {
			c.StreamProbeResult(now, ping.Name, ping.Seq, false)
		}
		c.Tick(c.NextDeadline())
		out := c.Ready()
		if eventsOf(out, EventSuspected, ping.Name) != 1 || len(out.Probes) != 1 || out.Probes[0].Result != ProbeFailed {
			t.Fatalf("fallback %v: events %+v, outcomes %+v: want a failed probe and a suspicion", fallback, out.Events, out.Probes)
		}
		if c.Health() != 1 {
			t.Fatalf("fallback %v: health %d after a failed probe with no helper, want 1", fallback, c.Health())
		}
		c.Advance()
		// A stream ack after the period ended is too late.
		c.StreamProbeResult(now.Add(2*time.Second), ping.Name, ping.Seq, true)
		if m, _ := c.Member(ping.Name); m.State != StateSuspect {
			t.Fatalf("fallback %v: m1 is %v after a late stream ack, want still suspect", fallback, m.State)
		}
	}
}

// TestDatagramAckBeatsStream: an indirect ack that comes after the stream
// ack, within the period, still makes the probe an indirect success, and
// it is not counted as stream-only.
func TestDatagramAckBeatsStream(t *testing.T) {
	c := newTestCore(t, 0, nil)
	know(t, c, 8)
	now := t0
	ping, sp := lateAck(t, c, &now)
	if len(sp) != 1 {
		t.Fatalf("%d stream pings, want 1", len(sp))
	}
	c.StreamProbeResult(now, ping.Name, ping.Seq, true)
	helper := testAddr(nameIndex(ping.Name)%7 + 1)
	if helper == sp[0].To {
		helper = testAddr(nameIndex(ping.Name)%7 + 2)
	}
	c.Step(now.Add(10*time.Millisecond), helper, []Message{{Kind: KindAck, Seq: ping.Seq, From: ping.Name}})
	if out := c.Ready(); len(out.Probes) != 1 || out.Probes[0].Result != ProbeIndirect {
		t.Fatalf("outcomes %+v, want one indirect success", out.Probes)
	}
	c.Advance()
	c.Tick(sp[0].Deadline)
	if out := c.Ready(); len(out.Probes) != 0 || c.Count(CountStreamAcks) != 0 {
		t.Fatalf("the probe ended again at the period's end: %+v, stream acks %d", out.Probes, c.Count(CountStreamAcks))
	}
}

func nameIndex(name string) int {
	for i := range testNames {
		if testNames[i] == name {
			return i
		}
	}
	return -1
}
