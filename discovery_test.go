package membership

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/meshward/membership/transport"
)

func TestDiscover(t *testing.T) {
	// Four nodes that know nothing of each other on one in-memory LAN
	// (MemNetwork delivers broadcasts); one of them holds another key.
	c := newMemCluster(t, 3)
	stranger := c.add("stranger", WithKeyring(newRing(t, bytes.Repeat([]byte{7}, 32))))
	a := c.nodes[0]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	found, err := a.Discover(ctx)
	if err != nil || found != 2 {
		t.Fatalf("Discover = %d, %v; want the 2 members with our key", found, err)
	}
	c.everyoneSees(c.nodes[:3], names(c.nodes[:3]), StateAlive, 5*time.Second)
	for _, nd := range c.nodes[:3] {
		if _, ok := nd.Member("stranger"); ok {
			t.Fatalf("%s let in a member with another key", nd.Myself().Name)
		}
	}
	if _, ok := stranger.Member("node-0"); ok {
		t.Fatal("the stranger learnt the discoverer")
	}
	// Members we know answer again; nobody listens on another port.
	if found, err := a.Discover(ctx); err != nil || found != 2 {
		t.Fatalf("second Discover = %d, %v", found, err)
	}
	if found, err := a.Discover(ctx, 7000); err != nil || found != 0 {
		t.Fatalf("Discover on an empty port = %d, %v", found, err)
	}
	// The context bounds the wait.
	short, cancelShort := context.WithCancel(context.Background())
	cancelShort()
	if _, err := a.Discover(short); !errors.Is(err, context.Canceled) {
		t.Fatalf("Discover with an ended context = %v", err)
	}
	a.Shutdown()
	if _, err := a.Discover(ctx); !errors.Is(err, ErrShutdown) {
		t.Fatalf("Discover after Shutdown = %v", err)
	}
}

func TestDiscoverRespectsAllowList(t *testing.T) {
	c := newMemCluster(t, 3)
	a := c.nodes[0]
	out := c.nodes[2].Myself().Addr.Addr()
	if err := a.SetAllowList(AllowList{CIDRs: []netip.Prefix{netip.PrefixFrom(a.Myself().Addr.Addr(), 32), netip.PrefixFrom(c.nodes[1].Myself().Addr.Addr(), 32)}}); err != nil {
		t.Fatal(err)
	}
	found, err := a.Discover(context.Background())
	if err != nil || found != 1 {
		t.Fatalf("Discover = %d, %v; want only node-1", found, err)
	}
	if _, ok := a.Member("node-2"); ok {
		t.Fatalf("node-2 at %v, outside the list, was added", out)
	}
}

// opaque hides a transport's DiscoveryAddrs.
type opaque struct{ transport.Transport }

func TestDiscoverNeedsABroadcastTransport(t *testing.T) {
	net := transport.NewMemNetwork(1)
	defer net.Close()
	nd, err := New(WithName("a"), WithTransport(opaque{net.NewTransport()}), WithoutEncryption(), WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	defer nd.Shutdown()
	if _, err := nd.Discover(context.Background()); !errors.Is(err, ErrNoDiscovery) {
		t.Fatalf("Discover = %v, want ErrNoDiscovery", err)
	}
	if _, err := New(WithDiscovery(-time.Second)); err == nil {
		t.Fatal("a negative discovery interval was accepted")
	}
}

func TestWithDiscovery(t *testing.T) {
	// A node started with WithDiscovery and no seed keeps looking while it
	// is alone: b and c, which do not look, are down (a paused process)
	// during its first discoveries, and found once they are up.
	c := newMemCluster(t, 0)
	b, cc := c.add("b"), c.add("c")
	c.net.SetDown(b.Myself().Addr, true)
	c.net.SetDown(cc.Myself().Addr, true)
	c.add("a", WithDiscovery(50*time.Millisecond))
	waitFor(t, 5*time.Second, "two discoveries to reach the down nodes", func() bool {
		return c.net.Stats().Cut >= 4 // each broadcast is cut on its way to b and c
	})
	c.net.SetDown(b.Myself().Addr, false)
	c.net.SetDown(cc.Myself().Addr, false)
	c.everyoneSees(c.nodes, names(c.nodes), StateAlive, 5*time.Second)
}
