package swim

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"
)

var t0 = time.Unix(1_700_000_000, 0)

func testAddr(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 7946)
}

var testNames [1024]string

func init() {
	for i := range testNames {
		testNames[i] = fmt.Sprintf("m%d", i)
	}
}

func testName(i int) string { return testNames[i] }

func newTestCore(t testing.TB, i int, mut func(*Config)) *Core {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Jitter = 0
	if mut != nil {
		mut(&cfg)
	}
	c, err := New(cfg, Member{Name: testName(i), Addr: testAddr(i)}, rand.New(rand.NewPCG(uint64(i), 1)), t0)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// know makes c know members 0..n-1 (but itself) as alive at incarnation 0.
func know(t testing.TB, c *Core, n int) {
	t.Helper()
	s := Snapshot{From: "test"}
	for i := 0; i < n; i++ {
		s.Members = append(s.Members, MemberState{Name: testName(i), Addr: testAddr(i)})
	}
	if err := c.Merge(t0, &s); err != nil {
		t.Fatal(err)
	}
	c.Advance()
}

func datagramsTo(o *Output, to netip.AddrPort) []Datagram {
	var out []Datagram
	for _, d := range o.Datagrams {
		if d.To == to {
			out = append(out, d)
		}
	}
	return out
}

func eventsOf(o *Output, k EventKind, name string) int {
	n := 0
	for _, e := range o.Events {
		if e.Kind == k && e.Member.Name == name {
			n++
		}
	}
	return n
}

func TestConfigValidate(t *testing.T) {
	def := DefaultConfig()
	if err := def.Validate(); err != nil {
		t.Fatalf("DefaultConfig invalid: %v", err)
	}
	tests := []struct {
		name string
		mut  func(*Config)
	}{
		{"zero period", func(c *Config) { c.ProbeInterval = 0 }},
		{"ack timeout above period", func(c *Config) { c.AckTimeout = 2 * time.Second }},
		{"adaptive max above period", func(c *Config) { c.AckTimeoutMax = time.Second }},
		{"negative jitter", func(c *Config) { c.Jitter = -1 }},
		{"too many helpers", func(c *Config) { c.IndirectChecks = 100 }},
		{"zero lambda", func(c *Config) { c.RetransmitMult = 0 }},
		{"beta below one", func(c *Config) { c.SuspicionMaxMult = 0.5 }},
		{"tiny datagram", func(c *Config) { c.MaxDatagram = 100 }},
		{"no members", func(c *Config) { c.MaxMembers = 1 }},
		{"huge payload", func(c *Config) { c.MaxPayload = 1 << 20 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mut(&c)
			if err := c.Validate(); !errors.Is(err, ErrConfig) {
				t.Fatalf("Validate = %v, want ErrConfig", err)
			}
		})
	}
}

func TestNewRejectsBadIdentity(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	cfg := DefaultConfig()
	for _, self := range []Member{
		{Name: "", Addr: testAddr(1)},
		{Name: strings.Repeat("x", MaxNameLen+1), Addr: testAddr(1)},
		{Name: "a"},
		{Name: "a", Addr: testAddr(1), Payload: make([]byte, cfg.MaxPayload+1)},
		{Name: "a", Addr: testAddr(1), Incarnation: MaxIncarnation + 1},
	} {
		if _, err := New(cfg, self, rng, t0); err == nil {
			t.Errorf("New(%q, %v) succeeded", self.Name, self.Addr)
		}
	}
	if _, err := New(cfg, Member{Name: "a", Addr: testAddr(1)}, nil, t0); err == nil {
		t.Error("New with nil rng succeeded")
	}
}

func TestPingIsAcked(t *testing.T) {
	c := newTestCore(t, 1, nil)
	know(t, c, 3)
	c.Step(t0, testAddr(2), []Message{{Kind: KindPing, Seq: 77, From: testName(2), Name: testName(1)}})
	ds := datagramsTo(c.Ready(), testAddr(2))
	if len(ds) != 1 {
		t.Fatalf("got %d datagrams to the prober, want 1", len(ds))
	}
	ack := ds[0].Msgs[0]
	if ack.Kind != KindAck || ack.Seq != 77 || ack.From != testName(1) || ack.Digest != c.Digest() {
		t.Fatalf("answer %+v, want ack seq 77 from m1 with our digest", ack)
	}
	c.Advance()
	c.Step(t0, testAddr(2), []Message{{Kind: KindPing, Seq: 78, From: testName(2), Name: "someone-else"}})
	if len(c.Ready().Datagrams) != 0 || c.Count(CountMisdirected) != 1 {
		t.Fatalf("misdirected ping answered (%d datagrams) or not counted (%d)", len(c.Ready().Datagrams), c.Count(CountMisdirected))
	}
}

// probeOnce ticks c until it pings someone, and returns that ping.
func probeOnce(t *testing.T, c *Core, now *time.Time) (Datagram, Message) {
	t.Helper()
	for range 100 {
		*now = c.NextDeadline()
		c.Tick(*now)
		for _, d := range c.Ready().Datagrams {
			if d.Msgs[0].Kind == KindPing {
				return d, d.Msgs[0]
			}
		}
		c.Advance()
	}
	t.Fatal("no ping in 100 deadlines")
	return Datagram{}, Message{}
}

func TestProbeSuccessAndFailure(t *testing.T) {
	c := newTestCore(t, 0, nil)
	know(t, c, 8)
	now := t0
	d, ping := probeOnce(t, c, &now)
	c.Advance()
	// An ack from the target ends the probe: no ping-req follows.
	c.Step(now.Add(time.Millisecond), d.To, []Message{{Kind: KindAck, Seq: ping.Seq, From: ping.Name}})
	if got := c.Ready().Probes; len(got) != 1 || got[0] != (ProbeOutcome{Name: ping.Name, Result: ProbeDirect, RTT: time.Millisecond}) {
		t.Fatalf("probe outcome after a direct ack = %+v", got)
	}
	c.Advance()
	c.Tick(now.Add(600 * time.Millisecond))
	for _, d := range c.Ready().Datagrams {
		if d.Msgs[0].Kind == KindPingReq {
			t.Fatal("ping-req sent although the ack came")
		}
	}
	c.Advance()

	// The next probe goes unanswered: ping-reqs to k helpers after the ack
	// timeout, then a suspicion at the end of the period.
	d, ping = probeOnce(t, c, &now)
	c.Advance()
	ackAt := now.Add(c.AckTimeout() * time.Duration(c.Health()+1))
	if got := c.NextDeadline(); !got.Equal(ackAt) {
		t.Fatalf("next deadline %v after ping, want the ack timeout %v", got.Sub(now), ackAt.Sub(now))
	}
	c.Tick(ackAt)
	reqs := 0
	for _, d := range c.Ready().Datagrams {
		if m := d.Msgs[0]; m.Kind == KindPingReq {
			reqs++
			if m.Seq != ping.Seq || m.Name != ping.Name || m.Addr != d.To && m.Addr != testAddr(0) && !m.Nack {
				t.Fatalf("bad ping-req %+v", m)
			}
		}
	}
	if reqs != 3 {
		t.Fatalf("%d ping-reqs, want k = 3", reqs)
	}
	c.Advance()
	endProbe(c)
	if eventsOf(c.Ready(), EventSuspected, ping.Name) != 1 {
		t.Fatalf("no Suspected event for %s after a failed probe: %+v", ping.Name, c.Ready().Events)
	}
	if got := c.Ready().Probes; len(got) != 1 || got[0] != (ProbeOutcome{Name: ping.Name, Result: ProbeFailed}) {
		t.Fatalf("probe outcome after no ack = %+v", got)
	}
	if c.Count(CountProbeFailures) != 1 || c.Health() != 3 {
		t.Fatalf("probe failures %d health %d, want 1 and 3 (three missing nacks)", c.Count(CountProbeFailures), c.Health())
	}
	m, _ := c.Member(ping.Name)
	if m.State != StateSuspect {
		t.Fatalf("target state %v, want suspect", m.State)
	}
}

func TestNacksSpareHealth(t *testing.T) {
	c := newTestCore(t, 0, nil)
	know(t, c, 8)
	now := t0
	_, ping := probeOnce(t, c, &now)
	c.Advance()
	now = c.NextDeadline()
	c.Tick(now)
	var helpers []Datagram
	for _, d := range c.Ready().Datagrams {
		if d.Msgs[0].Kind == KindPingReq {
			helpers = append(helpers, d)
		}
	}
	c.Advance()
	// Every helper nacks: the network works, the target does not, so our
	// health does not suffer (Lifeguard §4.3).
	for _, h := range helpers {
		name := ""
		for i := 0; i < 8; i++ {
			if testAddr(i) == h.To {
				name = testName(i)
			}
		}
		c.Step(now, h.To, []Message{{Kind: KindNack, Seq: ping.Seq, From: name}})
	}
	// A nack from someone not asked is counted and ignored.
	c.Step(now, testAddr(9), []Message{{Kind: KindNack, Seq: ping.Seq, From: "m9"}})
	endProbe(c)
	if c.Health() != 0 {
		t.Fatalf("health %d after a failed probe with all nacks, want 0", c.Health())
	}
	if got := c.Ready().Probes; len(got) != 1 || got[0].Result != ProbeFailed || got[0].Nacks != len(helpers) {
		t.Fatalf("probe outcome with %d nacks = %+v", len(helpers), got)
	}
	if c.Count(CountWrongSender) != 1 {
		t.Fatalf("wrong-sender count %d, want 1", c.Count(CountWrongSender))
	}
}

func TestRefutation(t *testing.T) {
	c := newTestCore(t, 1, nil)
	know(t, c, 4)
	// m2 suspects us at incarnation 0 and tells us in a ping.
	c.Step(t0, testAddr(2), []Message{
		{Kind: KindPing, Seq: 5, From: testName(2), Name: testName(1)},
		{Kind: KindSuspect, From: testName(2), Name: testName(1), Incarnation: 0},
	})
	if got := c.Myself().Incarnation; got != 1 {
		t.Fatalf("incarnation %d after refuting, want 1", got)
	}
	ds := datagramsTo(c.Ready(), testAddr(2))
	if len(ds) != 1 || len(ds[0].Msgs) < 2 {
		t.Fatalf("want one ack with piggybacked refutation, got %+v", ds)
	}
	if u := ds[0].Msgs[1]; u.Kind != KindAlive || u.Name != testName(1) || u.Incarnation != 1 {
		t.Fatalf("first piggybacked update %+v, want alive m1 at 1", u)
	}
	// Stale accusations at an older incarnation are ignored.
	c.Advance()
	c.Step(t0, testAddr(3), []Message{{Kind: KindDead, From: testName(3), Name: testName(1), Incarnation: 0}})
	if c.Myself().Incarnation != 1 || c.Count(CountStale) != 1 {
		t.Fatalf("stale dead changed us: inc %d stale %d", c.Myself().Incarnation, c.Count(CountStale))
	}
	if c.Count(CountRefutations) != 1 {
		t.Fatalf("refutations %d, want 1", c.Count(CountRefutations))
	}
}

func TestSuspicionTimeoutShrinks(t *testing.T) {
	// n = 10: min = 4·log10(10)·1s = 4s, max = 6·min = 24s, K = 3.
	c := newTestCore(t, 0, nil)
	know(t, c, 10)
	c.Step(t0, testAddr(1), []Message{{Kind: KindSuspect, From: testName(1), Name: testName(5), Incarnation: 0}})
	m := c.members[testName(5)]
	if m.state != StateSuspect || m.tAt != int64(24*time.Second) {
		t.Fatalf("suspicion deadline %v, want 24s (β·min)", time.Duration(m.tAt))
	}
	// Each independent confirmation shortens it to
	// max − (max−min)·log(c+1)/log(K+1); a repeated accuser does not.
	frac := func(conf int) float64 { return math.Log(float64(conf)+1) / math.Log(4) }
	steps := []struct {
		accuser int
		want    time.Duration
	}{
		{2, 24*time.Second - time.Duration(frac(1)*20e9)},
		{2, 24*time.Second - time.Duration(frac(1)*20e9)},
		{3, 24*time.Second - time.Duration(frac(2)*20e9)},
		{4, 4 * time.Second},
	}
	for _, st := range steps {
		c.Step(t0, testAddr(st.accuser), []Message{{Kind: KindSuspect, From: testName(st.accuser), Name: testName(5), Incarnation: 0}})
		if d := time.Duration(m.tAt) - st.want; d < -time.Microsecond || d > time.Microsecond {
			t.Fatalf("after accuser %d: deadline %v, want %v", st.accuser, time.Duration(m.tAt), st.want)
		}
	}
	c.Advance()
	c.Tick(t0.Add(4 * time.Second))
	if eventsOf(c.Ready(), EventFailed, testName(5)) != 1 {
		t.Fatalf("no Failed event at the minimum timeout: %+v", c.Ready().Events)
	}
}

func TestHostileInputIsCounted(t *testing.T) {
	c := newTestCore(t, 1, nil)
	know(t, c, 4)
	long := strings.Repeat("n", MaxNameLen+1)
	cases := []struct {
		msg     Message
		counter Counter
	}{
		{Message{Kind: 0}, CountMalformed},
		{Message{Kind: 99}, CountMalformed},
		{Message{Kind: KindPing, From: long, Seq: 1}, CountMalformed},
		{Message{Kind: KindPing, Seq: 1}, CountMalformed},
		{Message{Kind: KindPingReq, From: "m2", Name: "m3"}, CountMalformed},
		{Message{Kind: KindAck, From: "m2", Seq: 12345}, CountUnknownSeq},
		{Message{Kind: KindNack, From: "m2", Seq: 12345}, CountUnknownSeq},
		{Message{Kind: KindAlive, Name: "x", Addr: testAddr(9), Payload: make([]byte, 513)}, CountPayloadTooLong},
		{Message{Kind: KindAlive, Name: "x"}, CountMalformed},
		{Message{Kind: KindAlive, Name: "x", Addr: testAddr(9), Incarnation: ^uint64(0)}, CountBadIncarnation},
		{Message{Kind: KindSuspect, From: "m2", Name: "m3", Incarnation: MaxIncarnation}, CountBadIncarnation},
		{Message{Kind: KindSuspect, From: "stranger", Name: "m3"}, CountFromNonMember},
		{Message{Kind: KindDead, From: "stranger", Name: "m3"}, CountFromNonMember},
		{Message{Kind: KindSuspect, From: "m2", Name: "unknown"}, CountUnknownMember},
		{Message{Kind: KindLeft, Name: "unknown", Addr: testAddr(9)}, CountUnknownMember},
		{Message{Kind: KindSuspect, Name: "m3"}, CountMalformed},
	}
	for _, tc := range cases {
		before := c.Count(tc.counter)
		c.Step(t0, testAddr(2), []Message{tc.msg})
		if c.Count(tc.counter) != before+1 {
			t.Errorf("%+v: counter %v went %d -> %d, want +1", tc.msg, tc.counter, before, c.Count(tc.counter))
		}
	}
	for i := 0; i < 4; i++ {
		if m, _ := c.Member(testName(i)); m.State != StateAlive || m.Incarnation != 0 {
			t.Errorf("member %s changed to %v@%d by hostile input", m.Name, m.State, m.Incarnation)
		}
	}
	if c.Myself().Incarnation != 0 {
		t.Errorf("our incarnation changed to %d", c.Myself().Incarnation)
	}
}

func TestIncarnationSaturates(t *testing.T) {
	cfg := DefaultConfig()
	c, err := New(cfg, Member{Name: testName(1), Addr: testAddr(1), Incarnation: MaxIncarnation - 5}, rand.New(rand.NewPCG(1, 1)), t0)
	if err != nil {
		t.Fatal(err)
	}
	know(t, c, 3)
	// Someone claims we are alive above the maximum: impossible.
	c.Step(t0, testAddr(2), []Message{{Kind: KindAlive, Name: testName(1), Addr: testAddr(7), Incarnation: MaxIncarnation + 1}})
	if c.Myself().Incarnation != MaxIncarnation-5 || c.Count(CountBadIncarnation) != 1 {
		t.Fatalf("inc %d, bad-incarnation count %d; want Max-5 and 1", c.Myself().Incarnation, c.Count(CountBadIncarnation))
	}
	// An accusation we could not refute is impossible too.
	c.Step(t0, testAddr(2), []Message{{Kind: KindSuspect, From: testName(2), Name: testName(1), Incarnation: MaxIncarnation - 1}})
	if c.Myself().Incarnation != MaxIncarnation-5 || c.Count(CountBadIncarnation) != 2 {
		t.Fatalf("after an accusation at Max-1: inc %d, bad count %d", c.Myself().Incarnation, c.Count(CountBadIncarnation))
	}
	// A claim at Max-1 is refuted at the maximum, where we stop.
	c.Step(t0, testAddr(2), []Message{{Kind: KindAlive, Name: testName(1), Addr: testAddr(7), Incarnation: MaxIncarnation - 1}})
	if c.Myself().Incarnation != MaxIncarnation {
		t.Fatalf("inc %d, want MaxIncarnation", c.Myself().Incarnation)
	}
	if err := c.SetPayload([]byte("x")); !errors.Is(err, ErrIncarnation) {
		t.Fatalf("SetPayload at MaxIncarnation = %v, want ErrIncarnation", err)
	}
}

func TestNewerNewsReplacesOlder(t *testing.T) {
	c := newTestCore(t, 1, nil)
	know(t, c, 4)
	c.Advance()
	before := c.QueueLen()
	for inc := uint64(1); inc <= 5; inc++ {
		c.Step(t0, testAddr(2), []Message{{Kind: KindAlive, Name: testName(3), Addr: testAddr(3), Incarnation: inc}})
	}
	c.Step(t0, testAddr(2), []Message{{Kind: KindSuspect, From: testName(2), Name: testName(3), Incarnation: 5}})
	if got := c.QueueLen(); got != before+1 {
		t.Fatalf("queue length %d, want %d: one entry per member", got, before+1)
	}
	c.Advance()
	c.Step(t0, testAddr(2), []Message{{Kind: KindPing, Seq: 1, From: testName(2), Name: testName(1)}})
	found := 0
	for _, m := range c.Ready().Datagrams[0].Msgs[1:] {
		if m.Name == testName(3) {
			found++
			if m.Kind != KindSuspect || m.Incarnation != 5 {
				t.Fatalf("piggybacked %+v, want suspect m3 at 5", m)
			}
		}
	}
	if found != 1 {
		t.Fatalf("m3 piggybacked %d times, want once", found)
	}
}

func TestRetransmitLimitAndBudget(t *testing.T) {
	c := newTestCore(t, 0, func(cfg *Config) { cfg.MaxDatagram, cfg.MaxPayload = 750, 100 })
	know(t, c, 16)
	payload := make([]byte, 100)
	for i := 100; i < 130; i++ {
		c.Step(t0, testAddr(1), []Message{{Kind: KindAlive, Name: testName(i), Addr: testAddr(i), Payload: payload}})
	}
	c.Advance()
	limit := int(c.retransmitLimit())
	if limit != 3*6 { // n = 46 live: ⌈log2(47)⌉ = 6
		t.Fatalf("retransmit limit %d, want 18", limit)
	}
	sent := map[string]int{}
	for i := 0; i < 1000 && c.QueueLen() > 0; i++ {
		c.Step(t0, testAddr(1), []Message{{Kind: KindPing, Seq: uint32(i), From: testName(1), Name: testName(0)}})
		for _, d := range c.Ready().Datagrams {
			size := c.cfg.CompoundOverhead
			for j := range d.Msgs {
				size += EstimateSize(&d.Msgs[j])
				if j > 0 {
					sent[d.Msgs[j].Name]++
				}
			}
			if size > 750 {
				t.Fatalf("datagram of %d bytes exceeds the 750-byte budget", size)
			}
		}
		c.Advance()
	}
	for i := 100; i < 130; i++ {
		if got := sent[testName(i)]; got != limit {
			t.Errorf("%s sent %d times, want %d", testName(i), got, limit)
		}
	}
}

func TestStaleAliveIsToldNewerView(t *testing.T) {
	// A member we hold dead at incarnation 3 restarts and announces itself
	// at incarnation 0 from a new address: we tell it, and its refutation
	// above 3 brings it back (memberlist #311, #157).
	c := newTestCore(t, 1, nil)
	know(t, c, 4)
	c.Step(t0, testAddr(2), []Message{{Kind: KindDead, From: testName(2), Name: testName(3), Incarnation: 3}})
	c.Advance()
	newAddr := testAddr(33)
	// Gossip from a third party naming the new address is not answered
	// there: nobody may aim our datagrams at an address of their choice.
	c.Step(t0, testAddr(2), []Message{{Kind: KindAlive, Name: testName(3), Addr: newAddr, Incarnation: 0}})
	if ds := datagramsTo(c.Ready(), newAddr); len(ds) != 0 {
		t.Fatalf("answered third-party gossip at the address it named: %+v", ds)
	}
	c.Advance()
	// The member itself, from that address, is told.
	c.Step(t0, newAddr, []Message{{Kind: KindAlive, Name: testName(3), Addr: newAddr, Incarnation: 0}})
	ds := datagramsTo(c.Ready(), newAddr)
	if len(ds) != 1 || ds[0].Msgs[0].Kind != KindDead || ds[0].Msgs[0].Incarnation != 3 {
		t.Fatalf("want our dead@3 view sent to the new address, got %+v", ds)
	}
	c.Advance()
	c.Step(t0, newAddr, []Message{{Kind: KindAlive, Name: testName(3), Addr: newAddr, Incarnation: 4}})
	m, _ := c.Member(testName(3))
	if m.State != StateAlive || m.Addr != newAddr || m.Incarnation != 4 {
		t.Fatalf("member %+v, want alive at 4 at the new address", m)
	}
	if eventsOf(c.Ready(), EventAlive, testName(3)) != 1 {
		t.Fatalf("no Alive event: %+v", c.Ready().Events)
	}
}

func TestRoundRobinBound(t *testing.T) {
	// SWIM §4.3: no member waits more than 2n−1 probes between two probes
	// of it; a member joining during the wait can add one more each.
	c := newTestCore(t, 0, nil)
	know(t, c, 20)
	last := map[string]int{}
	var sizes, inserts []int
	next := 100
	for p := 0; p < 5000; p++ {
		if p%37 == 0 {
			c.Step(t0, testAddr(1), []Message{{Kind: KindAlive, Name: testName(next), Addr: testAddr(next)}})
			next++
		}
		if p%53 == 0 && len(c.order) > 10 {
			victim := c.order[c.rng.IntN(len(c.order))]
			delete(last, victim.name)
			_ = c.RemoveMember(victim.name)
		}
		sizes = append(sizes, len(c.order))
		inserts = append(inserts, next)
		m := c.nextTarget()
		if prev, ok := last[m.name]; ok {
			n := 0
			for _, s := range sizes[prev:] {
				n = max(n, s)
			}
			joined := inserts[p] - inserts[prev]
			if gap := p - prev; gap > 2*n-1+joined {
				t.Fatalf("probe %d: %s waited %d probes with n = %d and %d joins", p, m.name, gap, n, joined)
			}
		}
		last[m.name] = p
	}
}

func TestLeave(t *testing.T) {
	c := newTestCore(t, 1, nil)
	know(t, c, 4)
	c.SetPayload([]byte("role=db"))
	inc := c.Myself().Incarnation
	c.Leave()
	if c.Myself().State != StateLeft || c.Myself().Incarnation != inc+1 {
		t.Fatalf("after Leave: %+v", c.Myself())
	}
	if c.LeaveDone() {
		t.Fatal("LeaveDone before anything was sent")
	}
	now := t0
	var left Message
	for i := 0; i < 200 && !c.LeaveDone(); i++ {
		now = c.NextDeadline()
		c.Tick(now)
		for _, d := range c.Ready().Datagrams {
			for _, m := range d.Msgs {
				if m.Kind == KindLeft && m.Name == testName(1) {
					left = m
				}
			}
		}
		c.Advance()
	}
	if !c.LeaveDone() {
		t.Fatal("LeaveDone never became true")
	}
	if left.Incarnation != inc+1 || string(left.Payload) != "role=db" {
		t.Fatalf("left message %+v, want incarnation %d with the payload", left, inc+1)
	}
	// A receiver marks us left, does not probe us, and reports Left.
	r := newTestCore(t, 2, nil)
	know(t, r, 4)
	r.Step(now, testAddr(1), []Message{left})
	if eventsOf(r.Ready(), EventLeft, testName(1)) != 1 {
		t.Fatalf("no Left event: %+v", r.Ready().Events)
	}
	for _, m := range r.order {
		if m.name == testName(1) {
			t.Fatal("a left member is still in the probe order")
		}
	}
}

func TestAddMemberLearnsName(t *testing.T) {
	a := newTestCore(t, 1, nil)
	b := newTestCore(t, 2, func(c *Config) {})
	b.SetPayload([]byte("hello"))
	b.Advance()
	tok, err := a.AddMember(testAddr(2))
	if err != nil {
		t.Fatal(err)
	}
	ping := a.Ready().Datagrams[0]
	b.Step(t0, testAddr(1), ping.Msgs)
	a.Advance()
	ack := b.Ready().Datagrams[0]
	a.Step(t0.Add(time.Millisecond), testAddr(2), ack.Msgs)
	out := a.Ready()
	if len(out.ProbeResults) != 1 || !out.ProbeResults[0].OK || out.ProbeResults[0].Token != tok || out.ProbeResults[0].Name != testName(2) {
		t.Fatalf("probe results %+v, want OK for token %d named m2", out.ProbeResults, tok)
	}
	m, ok := a.Member(testName(2))
	if !ok || m.State != StateAlive || string(m.Payload) != "hello" || m.Incarnation != 1 {
		t.Fatalf("member m2 = %+v (%v), want alive at 1 with payload", m, ok)
	}
	// b learned a too, from the alive message our ping carried.
	if _, ok := b.Member(testName(1)); !ok {
		t.Fatal("the probed member did not learn the prober")
	}
	// A probe of an address where nobody answers fails after one period.
	a.Advance()
	tok, _ = a.Probe(testAddr(50))
	a.Advance()
	a.Tick(t0.Add(2 * time.Second))
	out = a.Ready()
	if len(out.ProbeResults) != 1 || out.ProbeResults[0].OK || out.ProbeResults[0].Token != tok {
		t.Fatalf("probe results %+v, want one failure for token %d", out.ProbeResults, tok)
	}
}

func TestSnapshotMergeAndRestart(t *testing.T) {
	// A restarted member (incarnation 0) learns from a seed's snapshot that
	// the cluster holds it dead at 7 and refutes at 8.
	seed := newTestCore(t, 1, nil)
	know(t, seed, 5)
	seed.Step(t0, testAddr(2), []Message{{Kind: KindDead, From: testName(2), Name: testName(3), Incarnation: 7}})
	seed.Advance()
	r := newTestCore(t, 3, nil)
	s := seed.Snapshot()
	if err := r.Merge(t0, &s); err != nil {
		t.Fatal(err)
	}
	if got := r.Myself().Incarnation; got != 8 {
		t.Fatalf("restarted member at incarnation %d, want 8", got)
	}
	if r.NumLive() != 5 {
		t.Fatalf("restarted member knows %d live, want 5", r.NumLive())
	}
	// The seed accepts its refutation.
	s = r.Snapshot()
	if err := seed.Merge(t0, &s); err != nil {
		t.Fatal(err)
	}
	if m, _ := seed.Member(testName(3)); m.State != StateAlive || m.Incarnation != 8 {
		t.Fatalf("seed holds %+v, want alive at 8", m)
	}
}

func TestBuildFromSnapshot16k(t *testing.T) {
	const n = 16384
	s := Snapshot{From: "peer", Members: make([]MemberState, n)}
	for i := range s.Members {
		s.Members[i] = MemberState{Name: fmt.Sprintf("member-%05d", i), Addr: testAddr(i)}
	}
	c := newTestCore(t, 0, nil)
	if err := c.Merge(t0, &s); err != nil {
		t.Fatal(err)
	}
	if c.NumLive() != n+1 || len(c.order) != n {
		t.Fatalf("live %d order %d, want %d and %d", c.NumLive(), len(c.order), n+1, n)
	}
}

func BenchmarkBuildFromSnapshot16k(b *testing.B) {
	const n = 16384
	s := Snapshot{From: "peer", Members: make([]MemberState, n)}
	for i := range s.Members {
		s.Members[i] = MemberState{Name: fmt.Sprintf("member-%05d", i), Addr: testAddr(i)}
	}
	b.ReportAllocs()
	for b.Loop() {
		c := newTestCore(b, 0, nil)
		if err := c.Merge(t0, &s); err != nil {
			b.Fatal(err)
		}
		c.Advance()
	}
}

// endProbe ticks through the rest of a probe whose ping-reqs went out: the
// stream ping, when due and not answered here (StreamFallback), then the
// end of the period, whose output it leaves unadvanced.
func endProbe(c *Core) time.Time {
	if c.probe.active && c.probe.indirect && !c.probe.streamAsked {
		c.Tick(c.NextDeadline())
		c.Advance()
	}
	end := c.NextDeadline()
	c.Tick(end)
	return end
}
