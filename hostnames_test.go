package membership

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// fakeDNS answers host names from a table, and records that each lookup
// ran under the caller's context.
type fakeDNS struct {
	mu      sync.Mutex
	hosts   map[string][]netip.Addr
	lookups int
}

type ctxKey struct{}

func (d *fakeDNS) lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	if ctx.Value(ctxKey{}) != "caller" {
		return nil, errors.New("lookup without the caller's context")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lookups++
	if as, ok := d.hosts[host]; ok {
		return as, nil
	}
	return nil, fmt.Errorf("no such host %q", host)
}

// TestProbeAndAddMemberByHostName: host names resolve with the caller's
// context; a name with several addresses tries each: Probe succeeds with
// any that answers, AddMember adds every member that answers.
func TestProbeAndAddMemberByHostName(t *testing.T) {
	dns := &fakeDNS{}
	c := newMemCluster(t, 0)
	a := c.add("node-0", withLookup(dns.lookup))
	for i := 1; i < 4; i++ {
		c.add(fmt.Sprintf("node-%d", i))
	}
	ip := func(nd *Node) netip.Addr { return nd.Myself().Addr.Addr() }
	nobody := netip.MustParseAddr("127.0.99.1")
	dns.hosts = map[string][]netip.Addr{
		"one.test":    {nobody, ip(c.nodes[1])},                 // the first address is dead
		"pair.test":   {ip(c.nodes[2]), nobody, ip(c.nodes[3])}, // two members and a dead address
		"nobody.test": {nobody, netip.MustParseAddr("127.0.99.2")},
	}
	ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), ctxKey{}, "caller"), 10*time.Second)
	defer cancel()

	if rtt, err := a.Probe(ctx, "one.test:7946"); err != nil || rtt <= 0 {
		t.Fatalf("Probe(one.test): %v, %v", rtt, err)
	}
	if _, ok := a.Member("node-1"); !ok {
		t.Fatal("node-1 answered a Probe by name, but is not in the view")
	}
	if err := a.AddMember(ctx, "pair.test:7946"); err != nil {
		t.Fatalf("AddMember(pair.test): %v", err)
	}
	for _, name := range []string{"node-2", "node-3"} {
		if st := stateIn(a, name); st != "alive" {
			t.Fatalf("after AddMember of a name with both their addresses, %s is %s", name, st)
		}
	}
	if _, err := a.Probe(ctx, "nobody.test:7946"); !errors.Is(err, ErrNoAck) {
		t.Fatalf("Probe of a name whose addresses are all dead: %v, want ErrNoAck", err)
	}
	if err := a.AddMember(ctx, "unknown.test:7946"); err == nil {
		t.Fatal("AddMember of a name that does not resolve succeeded")
	}
	if _, err := a.Probe(ctx, "one.test:notaport"); err == nil {
		t.Fatal("Probe with a bad port succeeded")
	}
	if dns.lookups != 4 {
		t.Fatalf("%d lookups, want 4", dns.lookups)
	}
	// An address is still an address: no lookup.
	if _, err := a.Probe(ctx, c.nodes[1].Myself().Addr.String()); err != nil || dns.lookups != 4 {
		t.Fatalf("Probe by address: %v, %d lookups", err, dns.lookups)
	}
}

// TestHostNameRealSockets: "localhost:port" over real UDP, where localhost
// may well resolve to ::1 as well, where nobody listens.
func TestHostNameRealSockets(t *testing.T) {
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
	host := fmt.Sprintf("localhost:%d", nodes[1].Myself().Addr.Port())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if rtt, err := nodes[0].Probe(ctx, host); err != nil || rtt <= 0 {
		t.Fatalf("Probe(%q): %v, %v", host, rtt, err)
	}
	if err := nodes[0].AddMember(ctx, host); err != nil {
		t.Fatalf("AddMember(%q): %v", host, err)
	}
	if st := stateIn(nodes[0], "udp-1"); st != "alive" {
		t.Fatalf("after AddMember(%q), udp-1 is %s", host, st)
	}
}
