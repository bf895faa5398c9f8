package swim

import (
	"errors"
	"net/netip"
	"testing"
)

func TestNewAllowMatches(t *testing.T) {
	if a, err := NewAllow(nil, nil, nil); a != nil || err != nil {
		t.Fatalf("empty list = %v, %v; want nil (off)", a, err)
	}
	var off *Allow
	if !off.Allows("anyone", testAddr(9)) || !off.AllowsSource(testAddr(9).Addr()) {
		t.Fatal("a nil list refuses")
	}
	a, err := NewAllow(nil,
		[]netip.AddrPort{netip.MustParseAddrPort("[::ffff:192.168.1.7]:7946")},
		[]netip.Prefix{netip.MustParsePrefix("10.0.0.0/24"), netip.MustParsePrefix("fd00::/64")})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"10.0.0.5:7946", true},
		{"10.0.0.5:1", true}, // a network admits any port
		{"10.0.1.5:7946", false},
		{"192.168.1.7:7946", true}, // listed, mapped form unmapped
		{"192.168.1.7:7947", false},
		{"[::ffff:10.0.0.9]:7946", true},
		{"[fd00::1]:7946", true},
		{"[fd00:0:0:1::1]:7946", false},
	} {
		if got := a.AllowsAddr(netip.MustParseAddrPort(tc.addr)); got != tc.want {
			t.Errorf("AllowsAddr(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
	// Sources are checked by IP: streams come from ephemeral ports.
	if !a.AllowsSource(netip.MustParseAddr("192.168.1.7")) || a.AllowsSource(netip.MustParseAddr("192.168.1.8")) {
		t.Error("source check of a listed address is wrong")
	}
	if !a.Allows("any-name", netip.AddrPort{}) {
		t.Error("an address-only list refuses a name")
	}
	b, err := NewAllow([]string{"m1", "m2"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !b.Allows("m1", testAddr(99)) || b.Allows("m3", testAddr(3)) || !b.AllowsSource(testAddr(99).Addr()) {
		t.Error("a name-only list is wrong")
	}
	for _, bad := range []func() error{
		func() error { _, err := NewAllow([]string{""}, nil, nil); return err },
		func() error {
			_, err := NewAllow(nil, []netip.AddrPort{netip.MustParseAddrPort("10.0.0.1:0")}, nil)
			return err
		},
		func() error { _, err := NewAllow(nil, nil, []netip.Prefix{{}}); return err },
	} {
		if bad() == nil {
			t.Error("an invalid entry was accepted")
		}
	}
}

// allowAllBut returns an allow-list of the names m0..m(n-1) except skip.
func allowAllBut(t *testing.T, n int, skip ...int) *Allow {
	t.Helper()
	var names []string
outer:
	for i := 0; i < n; i++ {
		for _, s := range skip {
			if i == s {
				continue outer
			}
		}
		names = append(names, testName(i))
	}
	a, err := NewAllow(names, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAllowListForgetsAndIgnores(t *testing.T) {
	c := newTestCore(t, 0, nil)
	know(t, c, 8)
	// m5 is dead in our view: the list forgets tombstones too.
	c.Merge(t0, &Snapshot{From: testName(1), Members: []MemberState{{Name: testName(6), Addr: testAddr(6), State: StateDead, Incarnation: 1}}})
	c.Advance()
	if n := c.SetAllow(allowAllBut(t, 8, 5, 6)); n != 2 {
		t.Fatalf("SetAllow forgot %d members, want 2", n)
	}
	checkInvariants(t, c)
	for _, i := range []int{5, 6} {
		if _, ok := c.Member(testName(i)); ok {
			t.Fatalf("m%d still in the view", i)
		}
	}
	if _, ok := c.Member(testName(0)); !ok {
		t.Fatal("we forgot ourselves")
	}

	// Gossip about m5 from a member that does not filter: ignored.
	before := c.Count(CountNotAllowed)
	c.Step(t0, testAddr(2), []Message{
		{Kind: KindPing, Seq: 1, From: testName(2), Name: testName(0)},
		{Kind: KindAlive, Name: testName(5), Addr: testAddr(5), Incarnation: 9},
	})
	if _, ok := c.Member(testName(5)); ok {
		t.Fatal("gossip brought m5 back")
	}
	if len(datagramsTo(c.Ready(), testAddr(2))) != 1 {
		t.Fatal("the allowed prober got no ack")
	}
	c.Advance()
	// A ping from m5 itself: not answered, and its news not learnt.
	c.Step(t0, testAddr(5), []Message{
		{Kind: KindPing, Seq: 2, From: testName(5), Name: testName(0)},
		{Kind: KindAlive, Name: testName(5), Addr: testAddr(5), Incarnation: 10},
		{Kind: KindAlive, Name: testName(9), Addr: testAddr(9)},
	})
	if len(c.Ready().Datagrams) != 0 {
		t.Fatal("m5's ping was answered")
	}
	if _, ok := c.Member(testName(9)); ok {
		t.Fatal("news carried by m5's ping was learnt")
	}
	// A suspicion m5 raises reaches us through m2: from a non-member.
	c.Step(t0, testAddr(2), []Message{{Kind: KindSuspect, From: testName(5), Name: testName(3)}})
	if m, _ := c.Member(testName(3)); m.State != StateAlive {
		t.Fatalf("m5's suspicion of m3 was accepted: %v", m.State)
	}
	// m5's own snapshot is refused whole; m2's skips m5.
	err := c.Merge(t0, &Snapshot{From: testName(5), Members: []MemberState{{Name: testName(5), Addr: testAddr(5)}, {Name: testName(10), Addr: testAddr(10)}}})
	if !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("Merge from m5 = %v, want ErrNotAllowed", err)
	}
	if _, ok := c.Member(testName(10)); ok {
		t.Fatal("m5's snapshot was merged")
	}
	if err := c.Merge(t0, &Snapshot{From: testName(2), Members: []MemberState{{Name: testName(5), Addr: testAddr(5), State: StateSuspect}}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Member(testName(5)); ok {
		t.Fatal("a snapshot entry brought m5 back")
	}
	// A ping-req for m5: not relayed, nacked at once.
	c.Advance()
	c.Step(t0, testAddr(2), []Message{{Kind: KindPingReq, Seq: 3, From: testName(2), Name: testName(5), Addr: testAddr(5), Nack: true}})
	out := c.Ready()
	if len(datagramsTo(out, testAddr(5))) != 0 {
		t.Fatal("a ping-req was relayed to m5")
	}
	if ds := datagramsTo(out, testAddr(2)); len(ds) != 1 || len(ds[0].Msgs) != 1 || ds[0].Msgs[0].Kind != KindNack || ds[0].Msgs[0].Seq != 3 {
		t.Fatalf("answer to the ping-req: %+v, want one bare nack", ds)
	}
	c.Advance()
	if got := c.Count(CountNotAllowed) - before; got != 5 {
		t.Errorf("CountNotAllowed rose by %d, want 5", got)
	}
	// Never probed.
	now := t0
	for range 40 {
		d, _ := probeOnce(t, c, &now)
		if d.To == testAddr(5) || d.To == testAddr(6) {
			t.Fatalf("probed %v", d.To)
		}
		c.Advance()
	}
	checkInvariants(t, c)

	// An empty list turns it off: m5 is learnt again.
	c.SetAllow(nil)
	c.Step(now, testAddr(2), []Message{{Kind: KindAlive, Name: testName(5), Addr: testAddr(5), Incarnation: 11}})
	if m, ok := c.Member(testName(5)); !ok || m.State != StateAlive {
		t.Fatal("with the list off, m5 was not learnt")
	}
}

func TestAllowListByNetwork(t *testing.T) {
	c := newTestCore(t, 0, nil)
	know(t, c, 4)
	// 10.0.0.0/30 holds m0..m3; m7 lives outside.
	a, err := NewAllow(nil, nil, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/30")})
	if err != nil {
		t.Fatal(err)
	}
	if n := c.SetAllow(a); n != 0 {
		t.Fatalf("forgot %d members inside the network", n)
	}
	// A datagram from a source outside the network is dropped whole, even
	// when it claims an allowed name.
	c.Step(t0, testAddr(7), []Message{{Kind: KindPing, Seq: 1, From: testName(1), Name: testName(0)}})
	if len(c.Ready().Datagrams) != 0 || c.Count(CountNotAllowed) != 1 {
		t.Fatalf("a ping from outside the network: %d datagrams, %d counted", len(c.Ready().Datagrams), c.Count(CountNotAllowed))
	}
	// An allowed member cannot be moved outside the network by gossip.
	c.Step(t0, testAddr(1), []Message{{Kind: KindAlive, Name: testName(2), Addr: testAddr(7), Incarnation: 5}})
	if m, _ := c.Member(testName(2)); m.Addr != testAddr(2) || m.Incarnation != 0 {
		t.Fatalf("m2 moved to %v at %d", m.Addr, m.Incarnation)
	}
	// Probe and AddMember refuse an address outside it.
	if _, err := c.Probe(testAddr(7)); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("Probe outside the network = %v", err)
	}
	if _, err := c.AddMember(testAddr(7)); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("AddMember outside the network = %v", err)
	}
	if _, err := c.Probe(testAddr(3)); err != nil {
		t.Fatalf("Probe inside the network = %v", err)
	}
}
