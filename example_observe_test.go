package membership_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"time"

	"github.com/meshward/membership"
	"github.com/meshward/membership/keyring"
	"github.com/meshward/membership/transport"
)

// Two independent subscribers: one for every event, one for failures and
// departures only. Neither can hold up the other, nor the protocol.
func ExampleNode_Subscribe() {
	net := transport.NewMemNetwork(1)
	defer net.Close()
	a, b := start(net, "a"), start(net, "b")
	defer a.Shutdown()

	everything := a.Subscribe(64)
	defer everything.Close()
	departures := a.Subscribe(16, membership.EventFailed, membership.EventLeft)
	defer departures.Close()

	b.Join(context.Background(), a.Myself().Addr.String())
	ev := <-everything.Events()
	fmt.Println("everything:", ev.Kind, ev.Member.Name)

	b.Leave(context.Background())
	b.Shutdown()
	ev = <-departures.Events()
	fmt.Println("departures:", ev.Kind, ev.Member.Name, "- dropped:", departures.Dropped())
	// Output:
	// everything: joined b
	// departures: left b - dropped: 0
}

func ExampleNode_Counts() {
	net := transport.NewMemNetwork(1)
	defer net.Close()
	a, b, c := start(net, "a"), start(net, "b"), start(net, "c")
	defer a.Shutdown()
	defer b.Shutdown()
	b.Join(context.Background(), a.Myself().Addr.String())
	c.Join(context.Background(), a.Myself().Addr.String())
	waitUntil(func() bool { return a.Counts().Alive == 3 })

	c.Leave(context.Background())
	c.Shutdown()
	waitUntil(func() bool { return a.Counts().Left == 1 })
	n := a.Counts() // no copy of the member list
	fmt.Printf("alive %d, suspect %d, dead %d, left %d: %d live of %d known\n",
		n.Alive, n.Suspect, n.Dead, n.Left, n.Live(), n.Total())
	// Output: alive 2, suspect 0, dead 0, left 1: 2 live of 3 known
}

// A health score above 0 means this node itself is struggling (Lifeguard):
// worth a look before trusting its accusations.
func ExampleNode_Health() {
	net := transport.NewMemNetwork(1)
	defer net.Close()
	a := start(net, "a")
	defer a.Shutdown()
	if h := a.Health(); h > 0 {
		fmt.Println("this node is slow or its network lossy, score", h)
	}
}

// Every member's clock offset from ours, estimated from the timestamps on
// the acks of our probes. Here the clocks are the same, so each estimate
// is 0 within its error bound.
func ExampleClockOffset() {
	net := transport.NewMemNetwork(1)
	defer net.Close()
	a, b := start(net, "a"), start(net, "b")
	defer a.Shutdown()
	defer b.Shutdown()
	b.Join(context.Background(), a.Myself().Addr.String())
	waitUntil(func() bool { m, _ := a.Member("b"); return m.Clock.Known() })

	m, _ := a.Member("b")
	c := m.Clock
	fmt.Println("known:", c.Known(), "- within the bound:", c.Offset <= c.Error && -c.Offset <= c.Error)
	// Output: known: true - within the bound: true
}

// Probe and AddMember take a host name, resolved with the caller's
// context; each of its addresses is tried.
func ExampleNode_AddMember() {
	var nodes []*membership.Node
	for _, name := range []string{"a", "b"} {
		ring, err := keyring.New(exampleKey)
		if err != nil {
			log.Fatal(err)
		}
		n, err := membership.New(membership.WithName(name), membership.WithKeyring(ring),
			membership.WithBindAddr("127.0.0.1:0"), membership.WithProfile(membership.ProfileLocal),
			membership.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
		if err != nil {
			log.Fatal(err)
		}
		defer n.Shutdown()
		nodes = append(nodes, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	addr := fmt.Sprintf("localhost:%d", nodes[1].Myself().Addr.Port())
	err := nodes[0].AddMember(ctx, addr)
	m, _ := nodes[0].Member("b")
	fmt.Println(err, m.Name, m.State)
	// Output: <nil> b alive
}

// The payload as a small key/value map, tarantool's set_payload(key,
// value): set keys, delete one with nil, read them on any member.
func ExampleNode_SetPayloadValue() {
	net := transport.NewMemNetwork(1)
	defer net.Close()
	a, b := start(net, "a"), start(net, "b")
	defer a.Shutdown()
	defer b.Shutdown()
	b.Join(context.Background(), a.Myself().Addr.String())

	b.SetPayloadValue("role", []byte("db"))
	b.SetPayloadValue("zone", []byte("eu-1"))
	b.SetPayloadValue("zone", nil) // deletes the key
	waitUntil(func() bool { m, _ := a.Member("b"); _, ok := m.PayloadValue("role"); return ok })

	m, _ := a.Member("b")
	kv, err := m.PayloadMap()
	fmt.Printf("%q %v\n", kv, err)
	// Output: map["role":"db"] <nil>
}

func ExampleNode_MemberByAddr() {
	net := transport.NewMemNetwork(1)
	defer net.Close()
	a, b := start(net, "a"), start(net, "b")
	defer a.Shutdown()
	defer b.Shutdown()
	b.Join(context.Background(), a.Myself().Addr.String())

	m, ok := a.MemberByAddr(b.Myself().Addr) // say, the source of a packet
	fmt.Println(m.Name, m.State, ok)
	// Output: b alive true
}
