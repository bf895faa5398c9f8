package membership

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"
)

func TestMemberByAddr(t *testing.T) {
	t.Parallel()
	c := newMemCluster(t, 3)
	c.joinAll()
	c.everyoneSees(c.nodes, names(c.nodes), StateAlive, 10*time.Second)
	a := c.nodes[0]
	for _, nd := range c.nodes {
		addr := nd.Myself().Addr
		m, ok := a.MemberByAddr(addr)
		if !ok || m.Name != nd.Myself().Name || m.Addr != addr {
			t.Fatalf("MemberByAddr(%v) = %q at %v, %v", addr, m.Name, m.Addr, ok)
		}
		mapped := netip.AddrPortFrom(netip.AddrFrom16(addr.Addr().As16()), addr.Port())
		if m, ok := a.MemberByAddr(mapped); !ok || m.Name != nd.Myself().Name {
			t.Fatalf("MemberByAddr(%v) = %q, %v", mapped, m.Name, ok)
		}
	}
	if _, ok := a.MemberByAddr(netip.MustParseAddrPort("127.0.99.1:7946")); ok {
		t.Fatal("found a member at an address nobody has")
	}
	addr := c.nodes[1].Myself().Addr
	if _, ok := a.MemberByAddr(netip.AddrPortFrom(addr.Addr(), addr.Port()+1)); ok {
		t.Fatal("found a member at another port")
	}
	// A tombstone is found too, with its state.
	c.nodes[2].Shutdown()
	waitFor(t, 20*time.Second, "node-2 dead, found by address", func() bool {
		m, ok := a.MemberByAddr(c.nodes[2].Myself().Addr)
		return ok && m.Name == "node-2" && m.State == StateDead
	})
}

func TestMemberByAddrRealSockets(t *testing.T) {
	if testing.Short() {
		t.Skip("real sockets")
	}
	var nodes []*Node
	for i := range 2 {
		nd, err := New(WithName(fmt.Sprintf("udp-%d", i)), WithBindAddr("127.0.0.1:0"), WithKeyring(newRing(t, testKey)),
			WithProfile(ProfileLocal), WithLogger(quietLogger()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nd.Shutdown() })
		nodes = append(nodes, nd)
	}
	if _, err := nodes[1].Join(context.Background(), nodes[0].Myself().Addr.String()); err != nil {
		t.Fatal(err)
	}
	if m, ok := nodes[0].MemberByAddr(nodes[1].Myself().Addr); !ok || m.Name != "udp-1" || m.State != StateAlive {
		t.Fatalf("MemberByAddr(%v) = %q %v, %v", nodes[1].Myself().Addr, m.Name, m.State, ok)
	}
}
