package swim

import (
	"net/netip"
	"testing"
	"time"
)

// Regression tests for what a buggy or lying member could make the core do.
// Every one of them failed before the fix it guards.

// TestOneProbeMessagePerDatagram: a datagram of 200 pings gets one ack.
func TestOneProbeMessagePerDatagram(t *testing.T) {
	c := newTestCore(t, 1, nil)
	know(t, c, 4)
	var msgs []Message
	for i := 0; i < 200; i++ {
		msgs = append(msgs, Message{Kind: KindPing, Seq: uint32(i), From: testName(2), Name: testName(1)})
	}
	before := c.Count(CountMalformed)
	c.Step(t0, testAddr(2), msgs)
	if n := len(c.Ready().Datagrams); n != 1 {
		t.Fatalf("200 pings in one datagram gave %d datagrams, want 1", n)
	}
	if got := c.Count(CountMalformed) - before; got != 199 {
		t.Fatalf("counted %d extra probe messages as malformed, want 199", got)
	}
}

// TestPingReqCannotAimAtThirdParty: a ping-req is relayed only to the known
// address of a known member, at most twice per requester.
func TestPingReqCannotAimAtThirdParty(t *testing.T) {
	c := newTestCore(t, 1, nil)
	know(t, c, 4)
	victim := netip.MustParseAddrPort("192.0.2.99:9999")
	c.Step(t0, testAddr(2), []Message{{Kind: KindPingReq, Seq: 1, From: testName(2), Name: "stranger", Addr: victim}})
	if n := len(c.Ready().Datagrams); n != 0 {
		t.Fatalf("ping-req for an unknown member sent %d datagrams", n)
	}
	c.Step(t0, testAddr(2), []Message{{Kind: KindPingReq, Seq: 2, From: testName(2), Name: testName(3), Addr: victim}})
	out := c.Ready().Datagrams
	if len(out) != 1 || out[0].To != testAddr(3) {
		t.Fatalf("ping-req naming a victim address: datagrams %+v, want one ping to m3's known address", out)
	}
	c.Advance()
	for seq := uint32(3); seq < 10; seq++ {
		c.Step(t0, testAddr(2), []Message{{Kind: KindPingReq, Seq: seq, From: testName(2), Name: testName(3), Addr: testAddr(3)}})
	}
	if n := len(c.Ready().Datagrams); n != 1 {
		t.Fatalf("7 more ping-reqs from one requester sent %d pings, want 1 (two relays per requester)", n)
	}
	// Our own probes still have room.
	if _, err := c.Probe(testAddr(0)); err != nil {
		t.Fatalf("Probe after a ping-req flood: %v", err)
	}
}

// TestStaleTellingIsBounded: stale alive messages make us send at most a few
// datagrams, and only to members speaking for themselves.
func TestStaleTellingIsBounded(t *testing.T) {
	c := newTestCore(t, 1, nil)
	know(t, c, 300)
	// Raise everyone's incarnation in our view, so that incarnation 0 is
	// stale.
	s := Snapshot{From: "peer"}
	for i := 2; i < 300; i++ {
		s.Members = append(s.Members, MemberState{Name: testName(i), Addr: testAddr(i), Incarnation: 5})
	}
	if err := c.Merge(t0, &s); err != nil {
		t.Fatal(err)
	}
	c.Advance()
	victim := netip.MustParseAddrPort("192.0.2.99:9999")
	var msgs []Message
	for i := 2; i < 300; i++ {
		msgs = append(msgs, Message{Kind: KindAlive, Name: testName(i), Addr: victim})
	}
	c.Step(t0, victim, msgs) // even "from" the address they name
	if n := len(c.Ready().Datagrams); n > maxStalePerPeriod+1 {
		t.Fatalf("298 stale alive messages made us send %d datagrams, want at most %d", n, maxStalePerPeriod+1)
	}
	c.Advance()
	// A snapshot a little behind ours makes us tell only the peer.
	lag := Snapshot{From: testName(2)}
	for i := 2; i < 300; i++ {
		lag.Members = append(lag.Members, MemberState{Name: testName(i), Addr: testAddr(i), Incarnation: 4})
	}
	later := t0.Add(10 * time.Second)
	if err := c.Merge(later, &lag); err != nil {
		t.Fatal(err)
	}
	if n := len(c.Ready().Datagrams); n > 1 {
		t.Fatalf("merging a lagging snapshot sent %d datagrams, want at most 1", n)
	}
}

// TestIncarnationJumpsRejected: one message cannot push an incarnation
// (ours or a member's) far up, so nobody can be driven to the saturation
// point where it could no longer refute.
func TestIncarnationJumpsRejected(t *testing.T) {
	c := newTestCore(t, 1, nil)
	know(t, c, 4)
	c.Step(t0, testAddr(2), []Message{{Kind: KindSuspect, From: testName(2), Name: testName(1), Incarnation: MaxIncarnation - 2}})
	if inc := c.Myself().Incarnation; inc != 0 {
		t.Fatalf("an accusation far above us raised our incarnation to %d", inc)
	}
	victim := netip.MustParseAddrPort("192.0.2.99:9999")
	c.Step(t0, testAddr(2), []Message{{Kind: KindAlive, Name: testName(3), Addr: victim, Incarnation: MaxIncarnation - 1}})
	if m, _ := c.Member(testName(3)); m.Incarnation != 0 || m.Addr != testAddr(3) {
		t.Fatalf("a far jump hijacked m3: %+v", m)
	}
	// A restart that starts from the clock is a jump well within the bound.
	c.Step(t0, testAddr(3), []Message{{Kind: KindAlive, Name: testName(3), Addr: testAddr(3), Incarnation: 220_000_000}})
	if m, _ := c.Member(testName(3)); m.Incarnation != 220_000_000 {
		t.Fatalf("a clock-based restart was refused: %+v", m)
	}
	if c.Count(CountBadIncarnation) != 2 {
		t.Fatalf("bad-incarnation count %d, want 2", c.Count(CountBadIncarnation))
	}
}

// TestAccusationsCostHealthOncePerPeriod: a burst of accusations about us
// raises our health score by one, not to the maximum.
func TestAccusationsCostHealthOncePerPeriod(t *testing.T) {
	c := newTestCore(t, 1, nil)
	know(t, c, 4)
	var msgs []Message
	for inc := uint64(0); inc < 9; inc++ {
		msgs = append(msgs, Message{Kind: KindSuspect, From: testName(2), Name: testName(1), Incarnation: inc})
	}
	c.Step(t0, testAddr(2), msgs)
	if h := c.Health(); h != 1 {
		t.Fatalf("health %d after one datagram of accusations, want 1", h)
	}
}

// TestSuspicionIsNotProlonged: accusations at ever higher incarnations do
// not restart the suspicion timeout or repeat the Suspected event.
func TestSuspicionIsNotProlonged(t *testing.T) {
	c := newTestCore(t, 1, nil)
	know(t, c, 8)
	c.Step(t0, testAddr(2), []Message{{Kind: KindSuspect, From: testName(2), Name: testName(3), Incarnation: 0}})
	suspected := eventsOf(c.Ready(), EventSuspected, testName(3))
	c.Advance()
	_, hi, _ := c.suspicionBounds()
	deadline := t0.Add(time.Duration(hi))
	now := t0
	failed := false
	for inc := uint64(1); !failed && now.Before(deadline.Add(time.Second)); inc++ {
		now = now.Add(time.Second)
		c.Step(now, testAddr(2), []Message{{Kind: KindSuspect, From: testName(2), Name: testName(3), Incarnation: inc}})
		for c.NextDeadline().Before(now) || c.NextDeadline().Equal(now) {
			c.Tick(c.NextDeadline())
		}
		c.Tick(now)
		suspected += eventsOf(c.Ready(), EventSuspected, testName(3))
		failed = eventsOf(c.Ready(), EventFailed, testName(3)) > 0
		c.Advance()
	}
	if !failed {
		t.Fatalf("m3 still not failed %v after the suspicion started (max timeout %v)", now.Sub(t0), time.Duration(hi))
	}
	if suspected != 1 {
		t.Fatalf("%d Suspected events, want 1", suspected)
	}
}

// TestSuspectDoesNotResurrectDead: only an alive message brings a dead
// member back.
func TestSuspectDoesNotResurrectDead(t *testing.T) {
	c := newTestCore(t, 1, nil)
	know(t, c, 4)
	c.Step(t0, testAddr(2), []Message{{Kind: KindDead, From: testName(2), Name: testName(3), Incarnation: 0}})
	live := c.NumLive()
	c.Step(t0, testAddr(2), []Message{{Kind: KindSuspect, From: testName(2), Name: testName(3), Incarnation: 1}})
	if m, _ := c.Member(testName(3)); m.State != StateDead || c.NumLive() != live {
		t.Fatalf("a suspect message moved a dead member to %v (live %d, was %d)", m.State, c.NumLive(), live)
	}
}

func TestLeftEventOnce(t *testing.T) {
	c := newTestCore(t, 1, nil)
	know(t, c, 4)
	for inc := uint64(1); inc <= 3; inc++ {
		c.Step(t0, testAddr(2), []Message{{Kind: KindLeft, Name: testName(3), Addr: testAddr(3), Incarnation: inc}})
	}
	if n := eventsOf(c.Ready(), EventLeft, testName(3)); n != 1 {
		t.Fatalf("%d Left events, want 1", n)
	}
}

func TestMergeSkipsInvalidAddresses(t *testing.T) {
	c := newTestCore(t, 1, nil)
	know(t, c, 2)
	s := Snapshot{From: testName(0), Members: []MemberState{
		{Name: "ghost-s", State: StateSuspect},
		{Name: "ghost-d", State: StateDead},
		{Name: "zoned", Addr: netip.MustParseAddrPort("[fe80::1%eth0]:7946")},
	}}
	if err := c.Merge(t0, &s); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ghost-s", "ghost-d", "zoned"} {
		if _, ok := c.Member(name); ok {
			t.Errorf("Merge kept %s, whose address is invalid", name)
		}
	}
}

func TestZonedSelfRefused(t *testing.T) {
	_, err := New(DefaultConfig(), Member{Name: "z", Addr: netip.MustParseAddrPort("[fe80::1%eth0]:7946")}, newTestCore(t, 0, nil).rng, t0)
	if err == nil {
		t.Fatal("New accepted a zoned address, which the wire cannot carry")
	}
}
