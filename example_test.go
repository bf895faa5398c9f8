package membership_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"slices"
	"time"

	"github.com/meshward/membership"
	"github.com/meshward/membership/keyring"
	"github.com/meshward/membership/transport"
)

// waitUntil polls cond for up to ten seconds.
func waitUntil(cond func() bool) {
	for deadline := time.Now().Add(10 * time.Second); !cond() && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
}

var exampleKey = []byte("an example 32-byte key, not real")

// start starts a node on an in-memory network, as tests do; a real program
// leaves out WithTransport and binds UDP and TCP (WithBindAddr).
func start(net *transport.MemNetwork, name string) *membership.Node {
	ring, err := keyring.New(exampleKey)
	if err != nil {
		log.Fatal(err)
	}
	n, err := membership.New(
		membership.WithName(name),
		membership.WithKeyring(ring),
		membership.WithTransport(net.NewTransport()),
		membership.WithProfile(membership.ProfileLocal),
		membership.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
	)
	if err != nil {
		log.Fatal(err)
	}
	return n
}

func ExampleNew() {
	ring, err := keyring.New(exampleKey) // keyring.Load(path) in production
	if err != nil {
		log.Fatal(err)
	}
	node, err := membership.New(
		membership.WithName("api-7"),
		membership.WithBindAddr("127.0.0.1:0"), // port 0: any free port
		membership.WithKeyring(ring),
		membership.WithLabel("prod-eu"),
		membership.WithPayload([]byte(`{"role":"api"}`)),
		membership.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer node.Shutdown()
	me := node.Myself()
	fmt.Println(me.Name, me.State, me.Addr.Port() != 0, string(me.Payload))
	// Output: api-7 alive true {"role":"api"}
}

func ExampleNode_Join() {
	net := transport.NewMemNetwork(1)
	defer net.Close()
	seed, other := start(net, "seed"), start(net, "other")
	defer seed.Shutdown()
	defer other.Shutdown()

	answered, err := other.Join(context.Background(), seed.Myself().Addr.String())
	fmt.Println(answered, err)
	// Output: 1 <nil>
}

func ExampleNode_Members() {
	net := transport.NewMemNetwork(1)
	defer net.Close()
	a, b, c := start(net, "a"), start(net, "b"), start(net, "c")
	defer a.Shutdown()
	defer b.Shutdown()
	defer c.Shutdown()
	b.Join(context.Background(), a.Myself().Addr.String())
	c.Join(context.Background(), b.Myself().Addr.String())
	waitUntil(func() bool { return len(a.Members()) == 3 })

	for _, m := range a.Members() { // sorted by name
		fmt.Println(m.Name, m.State)
	}
	// Output:
	// a alive
	// b alive
	// c alive
}

func ExampleNode_Leave() {
	net := transport.NewMemNetwork(1)
	defer net.Close()
	a, b := start(net, "a"), start(net, "b")
	defer a.Shutdown()
	b.Join(context.Background(), a.Myself().Addr.String())

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Leave(ctx); err != nil { // tell the group, then stop
		log.Fatal(err)
	}
	b.Shutdown()
	waitUntil(func() bool { m, _ := a.Member("b"); return m.State == membership.StateLeft })
	m, _ := a.Member("b")
	fmt.Println(m.Name, m.State)
	// Output: b left
}

// Rotating the cluster key while the cluster runs: install the new key on
// every node, then use it on every node, then remove the old one everywhere.
func Example_keyRotation() {
	net := transport.NewMemNetwork(1)
	defer net.Close()
	a, b := start(net, "a"), start(net, "b")
	defer a.Shutdown()
	defer b.Shutdown()
	b.Join(context.Background(), a.Myself().Addr.String())

	newKey, _ := keyring.Generate(keyring.XChaCha20Poly1305)
	nodes := []*membership.Node{a, b}
	for _, n := range nodes {
		n.Keyring().Install(newKey)
	}
	for _, n := range nodes {
		n.Keyring().Use(newKey)
	}
	for _, n := range nodes {
		n.Keyring().Remove(exampleKey)
	}
	_, err := a.Probe(context.Background(), b.Myself().Addr.String())
	fmt.Println("probe under the new key:", err, "- keys held:", len(a.Keyring().Keys()))
	// Output: probe under the new key: <nil> - keys held: 1
}

func ExampleNode_Broadcast() {
	net := transport.NewMemNetwork(1)
	defer net.Close()
	a, b := start(net, "a"), start(net, "b")
	defer a.Shutdown()
	defer b.Shutdown()
	if _, err := b.Join(context.Background(), a.Myself().Addr.String()); err != nil {
		log.Fatal(err)
	}
	waitUntil(func() bool { return len(a.Members()) == 2 })

	// A keyed broadcast: a newer one with the same key replaces it while
	// it spreads.
	if err := a.Broadcast("config", []byte("version 2")); err != nil {
		log.Fatal(err)
	}
	m := <-b.Messages()
	fmt.Println(m.Kind, m.From, m.Key, string(m.Payload))
	// Output: broadcast a config version 2
}

func ExampleNode_SendReliable() {
	net := transport.NewMemNetwork(1)
	defer net.Close()
	a, b := start(net, "a"), start(net, "b")
	defer a.Shutdown()
	defer b.Shutdown()
	if _, err := b.Join(context.Background(), a.Myself().Addr.String()); err != nil {
		log.Fatal(err)
	}
	// SendReliable returns once b's node holds the message.
	err := a.SendReliable(context.Background(), "b", []byte("order #42 shipped"))
	m := <-b.Messages()
	fmt.Println(err, m.Kind, m.From, string(m.Payload))
	// Output: <nil> reliable a order #42 shipped
}

func ExampleNode_SendTo() {
	net := transport.NewMemNetwork(1)
	defer net.Close()
	a, b := start(net, "a"), start(net, "b")
	defer a.Shutdown()
	defer b.Shutdown()
	if _, err := b.Join(context.Background(), a.Myself().Addr.String()); err != nil {
		log.Fatal(err)
	}
	// One datagram, best effort (the in-memory network loses nothing).
	if err := a.SendTo("b", []byte("ping from the app")); err != nil {
		log.Fatal(err)
	}
	m := <-b.Messages()
	fmt.Println(m.Kind, m.From, string(m.Payload))
	// Output: direct a ping from the app
}

func ExampleNode_Query() {
	net := transport.NewMemNetwork(1)
	defer net.Close()
	nodes := []*membership.Node{start(net, "a"), start(net, "b"), start(net, "c")}
	for _, n := range nodes {
		defer n.Shutdown()
		if _, err := n.Join(context.Background(), nodes[0].Myself().Addr.String()); err != nil {
			log.Fatal(err)
		}
		go func() { // each member answers with its name
			for m := range n.Messages() {
				if m.Kind == membership.MessageQuery {
					m.Respond([]byte("I am " + n.Myself().Name))
				}
			}
		}()
	}
	waitUntil(func() bool { return len(nodes[0].Members()) == 3 })

	res, err := nodes[0].Query(context.Background(), "who", nil, nil)
	if err != nil {
		log.Fatal(err)
	}
	var got []string
	for r := range res.Responses() { // closed once all 3 answered
		got = append(got, string(r.Payload))
	}
	slices.Sort(got)
	fmt.Println(res.Expected(), got)
	// Output: 3 [I am a I am b I am c]
}
