package membership

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/meshward/membership/metrics"
	"github.com/meshward/membership/swim"
)

// notAllowed returns nd's count of datagrams dropped by source address
// and of protocol input ignored for the allow-list.
func notAllowed(nd *Node) (dropped, ignored uint64) {
	nd.do(func() {
		dropped = nd.drops[metrics.DropNotAllowed]
		ignored = nd.core.Count(swim.CountNotAllowed)
	})
	return dropped, ignored
}

func TestSetAllowList(t *testing.T) {
	c := newMemCluster(t, 4)
	c.joinAll()
	c.everyoneSees(c.nodes, names(c.nodes), StateAlive, 5*time.Second)
	a, out := c.nodes[0], c.nodes[3]

	if err := a.SetAllowList(AllowList{Names: []string{""}}); err == nil {
		t.Fatal("an empty name was accepted")
	}
	if err := a.SetAllowList(AllowList{Addrs: []netip.AddrPort{netip.MustParseAddrPort("10.0.0.1:0")}}); err == nil {
		t.Fatal("an address without a port was accepted")
	}
	if got := a.AllowList(); got.Names != nil || got.Addrs != nil || got.CIDRs != nil {
		t.Fatalf("a refused list took effect: %+v", got)
	}

	// By name: node-3 is forgotten at once and never comes back, although
	// node-1 and node-2 do not filter and keep gossiping about it.
	list := AllowList{Names: []string{"node-0", "node-1", "node-2"}}
	if err := a.SetAllowList(list); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Member("node-3"); ok {
		t.Fatal("node-3 is still in the view")
	}
	if got := a.AllowList(); !slices.Equal(got.Names, list.Names) {
		t.Fatalf("AllowList() = %+v", got)
	}
	if err := out.SetPayload([]byte("news")); err != nil { // fresh gossip about it
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "node-1 to learn node-3's payload", func() bool {
		m, _ := c.nodes[1].Member("node-3")
		return string(m.Payload) == "news"
	})
	waitFor(t, 5*time.Second, "node-0 to ignore news of node-3", func() bool {
		_, ignored := notAllowed(a)
		return ignored > 0
	})
	if _, ok := a.Member("node-3"); ok {
		t.Fatal("gossip brought node-3 back")
	}
	// It is not answered: its probes of us fail, and so do ours of it.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := out.Probe(ctx, a.Myself().Addr.String()); !errors.Is(err, ErrNoAck) {
		t.Fatalf("node-3's probe of node-0 = %v, want ErrNoAck", err)
	}

	// An empty list turns the filter off: gossip brings node-3 back.
	if err := a.SetAllowList(AllowList{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "node-3 back in node-0's view", func() bool {
		m, ok := a.Member("node-3")
		return ok && m.State == StateAlive
	})
}

func TestAllowListBySource(t *testing.T) {
	t.Parallel()
	// node-0 admits only its own network address and node-1's: node-2,
	// with the right key, is dropped before any cryptography.
	c := newMemCluster(t, 3)
	a, b, out := c.nodes[0], c.nodes[1], c.nodes[2]
	list := AllowList{
		Addrs: []netip.AddrPort{b.Myself().Addr},
		CIDRs: []netip.Prefix{netip.PrefixFrom(a.Myself().Addr.Addr(), 32)},
	}
	if err := a.SetAllowList(list); err != nil {
		t.Fatal(err)
	}
	joinTo(t, a, b)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := out.Join(ctx, a.Myself().Addr.String()); err == nil {
		t.Fatal("a member outside the list joined through a node that filters")
	}
	if _, err := out.Probe(context.Background(), a.Myself().Addr.String()); !errors.Is(err, ErrNoAck) {
		t.Fatalf("probe from outside the list = %v, want ErrNoAck", err)
	}
	if dropped, _ := notAllowed(a); dropped == 0 {
		t.Fatal("no datagram counted as dropped by source address")
	}
	// The filtering node refuses to contact an address outside the list.
	if _, err := a.Probe(ctx, out.Myself().Addr.String()); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("Probe outside the list = %v, want ErrNotAllowed", err)
	}
	if err := a.AddMember(ctx, out.Myself().Addr.String()); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("AddMember outside the list = %v, want ErrNotAllowed", err)
	}
	if _, err := a.Join(ctx, out.Myself().Addr.String()); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("Join outside the list = %v, want ErrNotAllowed", err)
	}
	if _, ok := a.Member(out.Myself().Name); ok {
		t.Fatal("the outsider is in the view")
	}
}

func TestWithAllowList(t *testing.T) {
	if _, err := New(WithName("x"), WithoutEncryption(), WithAllowList(AllowList{CIDRs: []netip.Prefix{{}}})); err == nil {
		t.Fatal("an invalid network was accepted")
	}
	c := newMemCluster(t, 2)
	a := c.add("filtered", WithAllowList(AllowList{Names: []string{"node-0"}}))
	joinTo(t, c.nodes[0], c.nodes[1], a)
	waitFor(t, 5*time.Second, "the filtering node to see node-0", func() bool { _, ok := a.Member("node-0"); return ok })
	c.everyoneSees(c.nodes[:2], []string{"filtered"}, StateAlive, 5*time.Second)
	// node-1 is alive and node-0 gossips about it: the news reaches the
	// filtering node, which ignores it.
	waitFor(t, 5*time.Second, "news of node-1 to be ignored", func() bool {
		_, ignored := notAllowed(a)
		return ignored > 0
	})
	if _, ok := a.Member("node-1"); ok {
		t.Fatal("node-1 entered the view of a node that does not allow it")
	}
	if got := a.AllowList(); !slices.Equal(got.Names, []string{"node-0"}) {
		t.Fatalf("AllowList() = %+v", got)
	}
}

// TestAllowListUDP is the done-means check on real sockets: three members
// filter by network, two do not, and an outsider with the right key lives
// on another address. Over 100 protocol periods of gossip and push-pull
// from the members that do not filter, the outsider never appears in the
// view of a member that filters, checked every few milliseconds and in
// their events.
func TestAllowListUDP(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("100 protocol periods on real sockets")
	}
	const period = 50 * time.Millisecond
	fast := WithProtocol(func(c *swim.Config) {
		c.ProbeInterval, c.AckTimeout, c.AckTimeoutMin, c.AckTimeoutMax = period, 25*time.Millisecond, 10*time.Millisecond, 40*time.Millisecond
		c.PushPullInterval = 10 * period
		c.SuspicionMult = 6 // short periods, but no false deaths on a loaded machine
	})
	list := WithAllowList(AllowList{CIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	var filtering, open []*Node
	for i := range 3 {
		filtering = append(filtering, newUDPNode(t, fmt.Sprintf("f%d", i), "127.0.0.1:0", fast, list))
	}
	for i := range 2 {
		open = append(open, newUDPNode(t, fmt.Sprintf("o%d", i), "127.0.0.1:0", fast))
	}
	out := newUDPNode(t, "outsider", "127.0.0.9:0", fast)
	joinTo(t, filtering[0], filtering[1], filtering[2], open[0], open[1])
	joinTo(t, open[0], out)
	inView := func() string {
		for _, f := range filtering {
			if m, ok := f.Member("outsider"); ok {
				return fmt.Sprintf("%s holds the outsider as %v", f.Myself().Name, m.State)
			}
		}
		return ""
	}
	for end := time.Now().Add(100 * period); time.Now().Before(end); {
		if s := inView(); s != "" {
			t.Fatal(s)
		}
		time.Sleep(5 * time.Millisecond) // sampling the views, not waiting for an outcome
	}
	for _, f := range filtering {
		for _, ev := range drain(f) {
			if ev.Member.Name == "outsider" {
				t.Fatalf("%s had an event about the outsider: %v", f.Myself().Name, ev)
			}
		}
		dropped, ignored := notAllowed(f)
		if dropped == 0 || ignored == 0 {
			t.Errorf("%s: %d datagrams dropped by source, %d items of news ignored: the outsider was not at work", f.Myself().Name, dropped, ignored)
		}
		for _, o := range open {
			if m, ok := f.Member(o.Myself().Name); !ok || m.State == StateDead || m.State == StateLeft {
				t.Errorf("%s lost %s", f.Myself().Name, o.Myself().Name)
			}
		}
	}
	for _, o := range open {
		if m, ok := o.Member("outsider"); !ok || m.State == StateDead || m.State == StateLeft {
			t.Errorf("%s does not hold the outsider live (%v): the gossip did not flow", o.Myself().Name, m.State)
		}
	}
}
