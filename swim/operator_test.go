package swim

import (
	"net/netip"
	"testing"
	"time"
)

func TestDiscover(t *testing.T) {
	a := newTestCore(t, 1, nil)
	b := newTestCore(t, 2, nil)
	c := newTestCore(t, 3, nil)
	bcast := netip.MustParseAddrPort("10.0.255.255:7946")
	tok, err := a.Discover(bcast)
	if err != nil {
		t.Fatal(err)
	}
	ds := a.Ready().Datagrams
	if len(ds) != 1 || ds[0].To != bcast || ds[0].Msgs[0].Kind != KindPing || ds[0].Msgs[0].Name != "" {
		t.Fatalf("discovery sent %+v, want one ping by address to the broadcast address", ds)
	}
	// Padded to a full datagram, as every ping by address is, so that an
	// answerer that cannot place us may answer with its alive message.
	if last := ds[0].Msgs[len(ds[0].Msgs)-1]; last.Kind != KindPad || a.datagramSize(ds[0].Msgs) != a.cfg.MaxDatagram {
		t.Fatalf("discovery ping of %d bytes ends with %v, want padding to %d", a.datagramSize(ds[0].Msgs), last.Kind, a.cfg.MaxDatagram)
	}
	ping := append([]Message(nil), ds[0].Msgs...)
	a.Advance()
	// The broadcast loops back to us, and reaches b and c.
	a.Step(t0, testAddr(1), ping)
	self := a.Ready().Datagrams[0].Msgs
	a.Advance()
	a.Step(t0, testAddr(1), self) // our own ack: ignored
	if n := len(a.Ready().ProbeResults); n != 0 {
		t.Fatalf("our own answer gave %d results", n)
	}
	a.Advance()
	for i, peer := range []*Core{b, c} {
		peer.Step(t0, testAddr(1), ping)
		if _, ok := peer.Member(testName(1)); !ok {
			t.Fatalf("m%d did not learn the discoverer from its ping", i+2)
		}
		ack := peer.Ready().Datagrams[0]
		a.Step(t0.Add(time.Millisecond), testAddr(i+2), ack.Msgs)
		rs := a.Ready().ProbeResults
		if len(rs) != 1 || !rs[0].OK || rs[0].Token != tok || rs[0].Name != testName(i+2) || rs[0].Addr != testAddr(i+2) {
			t.Fatalf("answer of m%d gave %+v", i+2, rs)
		}
		a.Advance()
		if m, ok := a.Member(testName(i + 2)); !ok || m.State != StateAlive {
			t.Fatalf("m%d not in the view after its answer", i+2)
		}
	}
	// The discovery ends after a period with a result that is not OK.
	a.Tick(t0.Add(a.cfg.ProbeInterval))
	rs := a.Ready().ProbeResults
	if len(rs) != 1 || rs[0].OK || rs[0].Token != tok || rs[0].Addr != bcast {
		t.Fatalf("end of discovery: %+v", rs)
	}
	a.Advance()

	// The all-nodes group needs the interface's zone; a zero port or an
	// invalid address is refused.
	if _, err := a.Discover(netip.MustParseAddrPort("[ff02::1%eth0]:7946")); err != nil {
		t.Fatalf("zoned multicast refused: %v", err)
	}
	for _, bad := range []netip.AddrPort{{}, netip.MustParseAddrPort("10.0.255.255:0")} {
		if _, err := a.Discover(bad); err == nil {
			t.Errorf("Discover(%v) accepted", bad)
		}
	}
	// Probe still refuses a zone.
	if _, err := a.Probe(netip.MustParseAddrPort("[fe80::1%eth0]:7946")); err == nil {
		t.Error("Probe accepted a zoned address")
	}
}

func TestDisseminating(t *testing.T) {
	c := newTestCore(t, 0, nil)
	know(t, c, 4)
	if c.Disseminating(testName(2)) || c.Disseminating("nobody") {
		t.Fatal("news reported in flight before there was any")
	}
	if err := c.MarkLeft(testName(2)); err != nil {
		t.Fatal(err)
	}
	c.Advance()
	if !c.Disseminating(testName(2)) {
		t.Fatal("MarkLeft's news is not in flight")
	}
	for i := 0; c.Disseminating(testName(2)); i++ {
		if i > 100 {
			t.Fatal("MarkLeft's news never finished spreading")
		}
		c.Tick(c.NextDeadline())
		c.Advance()
	}
	if m, _ := c.Member(testName(2)); m.State != StateLeft {
		t.Fatalf("m2 is %v", m.State)
	}
}
