package membership

import (
	"context"
	"errors"
	"testing"
	"time"
)

// newUDPNode starts a node on real UDP and TCP sockets at bind (port 0
// picks a free one) with the test key and the local profile.
func newUDPNode(t testing.TB, name, bind string, opts ...Option) *Node {
	t.Helper()
	base := []Option{
		WithName(name),
		WithBindAddr(bind),
		WithKeyring(newRing(t, testKey)),
		WithProfile(ProfileLocal),
		WithLogger(quietLogger()),
	}
	nd, err := New(append(base, opts...)...)
	if err != nil {
		t.Fatalf("New(%s): %v", name, err)
	}
	t.Cleanup(func() { nd.Shutdown() })
	return nd
}

// joinTo makes each node join seed, failing the test if one cannot.
func joinTo(t testing.TB, seed *Node, nodes ...*Node) {
	t.Helper()
	for _, nd := range nodes {
		if n, err := nd.Join(context.Background(), seed.Myself().Addr.String()); err != nil || n != 1 {
			t.Fatalf("%s: Join: %d, %v", nd.Myself().Name, n, err)
		}
	}
}

func TestMarkLeft(t *testing.T) {
	c := newMemCluster(t, 4)
	c.joinAll()
	c.everyoneSees(c.nodes, names(c.nodes), StateAlive, 5*time.Second)
	a, gone := c.nodes[0], c.nodes[3]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	if err := a.MarkLeft(ctx, "node-0"); !errors.Is(err, ErrSelf) {
		t.Fatalf("MarkLeft(ourselves) = %v, want ErrSelf", err)
	}
	if err := a.MarkLeft(ctx, "nobody"); !errors.Is(err, ErrUnknownMember) {
		t.Fatalf("MarkLeft(unknown) = %v, want ErrUnknownMember", err)
	}

	// An expelled member: stopped first, then marked left by one node.
	gone.Shutdown()
	if err := a.MarkLeft(ctx, "node-3"); err != nil {
		t.Fatalf("MarkLeft: %v", err)
	}
	if m, _ := a.Member("node-3"); m.State != StateLeft {
		t.Fatalf("after MarkLeft our view holds node-3 as %v", m.State)
	}
	// The others learn it like a real leave: left, never failed.
	c.everyoneSees(c.nodes[:3], []string{"node-3"}, StateLeft, 5*time.Second)
	for _, nd := range c.nodes[:3] {
		if err := nd.MarkLeft(ctx, "node-3"); err != nil {
			t.Fatalf("MarkLeft of a member already left: %v", err)
		}
	}
	for _, ev := range drain(a) {
		if ev.Member.Name == "node-3" && ev.Kind == EventFailed {
			t.Fatal("node-3 was reported failed")
		}
	}

	// A member that is still running refutes and is alive again.
	if err := a.MarkLeft(ctx, "node-2"); err != nil {
		t.Fatalf("MarkLeft: %v", err)
	}
	c.everyoneSees(c.nodes[:3], []string{"node-2"}, StateAlive, 5*time.Second)

	a.Shutdown()
	if err := a.MarkLeft(ctx, "node-1"); !errors.Is(err, ErrShutdown) {
		t.Fatalf("MarkLeft after Shutdown = %v", err)
	}
}

// drain returns the events buffered on nd's channel so far.
func drain(nd *Node) []Event {
	var out []Event
	for {
		select {
		case ev, ok := <-nd.Events():
			if !ok {
				return out
			}
			out = append(out, ev)
		default:
			return out
		}
	}
}

func TestMarkLeftWaitsForItsNews(t *testing.T) {
	c := newMemCluster(t, 3)
	c.joinAll()
	c.everyoneSees(c.nodes, names(c.nodes), StateAlive, 5*time.Second)
	a := c.nodes[0]
	c.nodes[2].Shutdown()
	spreading := func() (s bool) {
		a.do(func() { s = a.core.Disseminating("node-2") })
		return s
	}
	// A context that has ended: the view is marked and the news queued,
	// and MarkLeft says it could not wait for it.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := a.MarkLeft(ctx, "node-2"); !errors.Is(err, context.Canceled) {
		t.Fatalf("MarkLeft with an ended context = %v, want context.Canceled", err)
	}
	if m, _ := a.Member("node-2"); m.State != StateLeft {
		t.Fatalf("node-2 is %v", m.State)
	}
	if !spreading() {
		t.Fatal("the news is not queued")
	}
	// With time to wait, MarkLeft returns once the news is out.
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.MarkLeft(ctx, "node-2"); err != nil {
		t.Fatal(err)
	}
	if spreading() {
		t.Fatal("MarkLeft returned while its news was still queued")
	}
}

func TestRemoveMember(t *testing.T) {
	c := newMemCluster(t, 3)
	c.joinAll()
	c.everyoneSees(c.nodes, names(c.nodes), StateAlive, 5*time.Second)
	a := c.nodes[0]
	if err := a.RemoveMember("node-0"); !errors.Is(err, ErrSelf) {
		t.Fatalf("RemoveMember(ourselves) = %v, want ErrSelf", err)
	}
	if err := a.RemoveMember("nobody"); !errors.Is(err, ErrUnknownMember) {
		t.Fatalf("RemoveMember(unknown) = %v, want ErrUnknownMember", err)
	}
	drain(a)
	if err := a.RemoveMember("node-2"); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Member("node-2"); ok {
		t.Fatal("node-2 still in the view")
	}
	if len(a.Members()) != 2 {
		t.Fatalf("Members() = %v", a.Members())
	}
	// Nobody else forgot it, and it is alive: it comes back.
	if m, _ := c.nodes[1].Member("node-2"); m.State != StateAlive {
		t.Fatalf("node-1 holds node-2 as %v", m.State)
	}
	waitFor(t, 10*time.Second, "node-2 back in node-0's view", func() bool {
		m, ok := a.Member("node-2")
		return ok && m.State == StateAlive
	})
	joined := false
	for _, ev := range drain(a) {
		joined = joined || (ev.Kind == EventJoined && ev.Member.Name == "node-2")
	}
	if !joined {
		t.Fatal("node-2 came back without an EventJoined")
	}
	a.Shutdown()
	if err := a.RemoveMember("node-1"); !errors.Is(err, ErrShutdown) {
		t.Fatalf("RemoveMember after Shutdown = %v", err)
	}
}

// On real sockets: an expelled member is marked left by one node and
// every other reports it left.
func TestMarkLeftUDP(t *testing.T) {
	a := newUDPNode(t, "a", "127.0.0.1:0")
	b := newUDPNode(t, "b", "127.0.0.1:0")
	x := newUDPNode(t, "x", "127.0.0.1:0")
	joinTo(t, a, b, x)
	waitFor(t, 5*time.Second, "b to see x", func() bool { m, ok := b.Member("x"); return ok && m.State == StateAlive })
	x.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.MarkLeft(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "b to see x left", func() bool { m, _ := b.Member("x"); return m.State == StateLeft })
	if err := b.RemoveMember("x"); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.Member("x"); ok {
		t.Fatal("b still holds x after RemoveMember")
	}
}
