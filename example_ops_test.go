package membership_test

import (
	"context"
	"fmt"
	"time"

	"github.com/meshward/membership"
	"github.com/meshward/membership/transport"
)

// Expelling a member: stop it, then mark it left from any node. Everyone
// reports it left, not failed, and forgets it after the tombstone timeout.
func ExampleNode_MarkLeft() {
	net := transport.NewMemNetwork(1)
	defer net.Close()
	a, b, x := start(net, "a"), start(net, "b"), start(net, "x")
	defer a.Shutdown()
	defer b.Shutdown()
	b.Join(context.Background(), a.Myself().Addr.String())
	x.Join(context.Background(), a.Myself().Addr.String())
	waitUntil(func() bool { _, ok := b.Member("x"); return ok })

	x.Shutdown() // the expelled process is stopped first
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.MarkLeft(ctx, "x"); err != nil {
		fmt.Println(err)
	}
	waitUntil(func() bool { m, _ := b.Member("x"); return m.State == membership.StateLeft })
	m, _ := b.Member("x")
	fmt.Println(m.Name, m.State)
	// Output: x left
}

// Forgetting a member locally: it is gone from our view at once, and
// since it is alive, gossip brings it back.
func ExampleNode_RemoveMember() {
	net := transport.NewMemNetwork(1)
	defer net.Close()
	a, b := start(net, "a"), start(net, "b")
	defer a.Shutdown()
	defer b.Shutdown()
	b.Join(context.Background(), a.Myself().Addr.String())

	if err := a.RemoveMember("b"); err != nil {
		fmt.Println(err)
	}
	_, known := a.Member("b")
	fmt.Println("known after RemoveMember:", known)
	waitUntil(func() bool { _, ok := a.Member("b"); return ok })
	m, _ := a.Member("b")
	fmt.Println("back through gossip:", m.Name, m.State)
	// Output:
	// known after RemoveMember: false
	// back through gossip: b alive
}

// An allow-list by name: c holds the key, joins through b (which does not
// filter), and never enters a's view.
func ExampleNode_SetAllowList() {
	net := transport.NewMemNetwork(1)
	defer net.Close()
	a, b, c := start(net, "a"), start(net, "b"), start(net, "c")
	defer a.Shutdown()
	defer b.Shutdown()
	defer c.Shutdown()
	if err := a.SetAllowList(membership.AllowList{Names: []string{"a", "b"}}); err != nil {
		fmt.Println(err)
	}
	b.Join(context.Background(), a.Myself().Addr.String())
	c.Join(context.Background(), b.Myself().Addr.String())
	waitUntil(func() bool { _, ok := c.Member("a"); return ok }) // c learnt a from b

	for _, m := range a.Members() {
		fmt.Println(m.Name, m.State)
	}
	// Output:
	// a alive
	// b alive
}

// LAN discovery: three nodes that know nothing of each other. One
// discovery finds the other two (MemNetwork delivers broadcasts; on a real
// network, the broadcast address of each interface and ff02::1 are used).
// WithDiscovery does the same at start, without a call.
func ExampleNode_Discover() {
	net := transport.NewMemNetwork(1)
	defer net.Close()
	a, b, c := start(net, "a"), start(net, "b"), start(net, "c")
	defer a.Shutdown()
	defer b.Shutdown()
	defer c.Shutdown()

	answered, err := a.Discover(context.Background())
	fmt.Println("answered:", answered, err)
	for _, m := range a.Members() {
		fmt.Println(m.Name, m.State)
	}
	// Output:
	// answered: 2 <nil>
	// a alive
	// b alive
	// c alive
}
