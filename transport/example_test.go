package transport_test

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/meshward/membership/transport"
)

// Two transports on loopback exchange a datagram and a stream on the same
// port. Port 0 picks a free port that UDP and TCP both get.
func ExampleNewNet() {
	a, err := transport.NewNet(transport.Config{BindAddr: "127.0.0.1:0"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer a.Close()
	b, err := transport.NewNet(transport.Config{BindAddr: "127.0.0.1:0"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()

	if err := a.WriteTo([]byte("ping"), b.LocalAddr()); err != nil {
		fmt.Println(err)
		return
	}
	p := <-b.Packets()
	fmt.Println(string(p.Data), p.From == a.LocalAddr())
	p.Release() // the buffer goes back to the pool

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := a.DialStream(ctx, b.LocalAddr())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	go c.Write([]byte("state"))
	s := <-b.Streams()
	defer s.Close()
	buf := make([]byte, 5)
	io.ReadFull(s, buf)
	fmt.Println(string(buf))
	// Output:
	// ping true
	// state
}

// A bind address may be a go-sockaddr template; the advertise address
// defaults to the bound one, with the real port.
func ExampleResolveAddr() {
	for _, s := range []string{"10.0.0.1", "[::1]:0", `{{ "192.168.1.20" }}:7000`} {
		ap, err := transport.ResolveAddr(s, transport.DefaultPort)
		fmt.Println(ap, err)
	}
	// Output:
	// 10.0.0.1:7946 <nil>
	// [::1]:0 <nil>
	// 192.168.1.20:7000 <nil>
}

// An in-memory network for runtime tests: endpoints get addresses, links
// get faults, and the network can be partitioned and healed.
func ExampleMemNetwork() {
	n := transport.NewMemNetwork(1)
	defer n.Close()
	a, b, c := n.NewTransport(), n.NewTransport(), n.NewTransport()
	fmt.Println(a.LocalAddr(), b.LocalAddr(), c.LocalAddr())

	n.SetLink(a.LocalAddr(), b.LocalAddr(), transport.LinkConfig{Delay: 10 * time.Millisecond, Jitter: 5 * time.Millisecond})
	n.Partition([]netip.AddrPort{a.LocalAddr(), b.LocalAddr()}, []netip.AddrPort{c.LocalAddr()})
	a.WriteTo([]byte("to b"), b.LocalAddr()) // delayed
	a.WriteTo([]byte("to c"), c.LocalAddr()) // cut by the partition
	p := <-b.Packets()
	fmt.Println(string(p.Data), "from", p.From)
	p.Release()
	fmt.Printf("%+v\n", n.Stats())

	n.Heal()
	a.WriteTo([]byte("to c"), c.LocalAddr())
	p = <-c.Packets()
	fmt.Println(string(p.Data), "after heal")
	p.Release()
	// Output:
	// 127.0.10.1:7946 127.0.10.2:7946 127.0.10.3:7946
	// to b from 127.0.10.1:7946
	// {Sent:2 Delivered:1 Lost:0 Cut:1 Undeliverable:0 Duplicated:0 Reordered:0 Overflow:0}
	// to c after heal
}

// The shape of the runtime's loop: one goroutine owns the protocol state and
// selects over datagrams, streams and its timer. Datagrams are released as
// soon as they are decoded; streams are handed to their own goroutine,
// because a stream exchange blocks.
func Example_runtimeLoop() {
	n := transport.NewMemNetwork(1)
	defer n.Close()
	self, peer := n.NewTransport(), n.NewTransport()
	peer.WriteTo([]byte("ping"), self.LocalAddr())

	tick := time.NewTimer(time.Second)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case p, ok := <-self.Packets():
			if !ok {
				return // transport closed
			}
			// open, decode, step the protocol core ...
			fmt.Printf("%s from %s\n", p.Data, p.From)
			p.Release()
			self.WriteTo([]byte("ack"), p.From)
			done = true
		case c := <-self.Streams():
			go c.Close() // push-pull exchange, with deadlines
		case <-tick.C:
			// tick the protocol core
		}
	}
	p := <-peer.Packets()
	fmt.Printf("%s\n", p.Data)
	p.Release()
	// Output:
	// ping from 127.0.10.2:7946
	// ack
}
