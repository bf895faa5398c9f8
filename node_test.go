package membership

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshward/membership/keyring"
	"github.com/meshward/membership/metrics"
	"github.com/meshward/membership/transport"
)

var testKey = bytes.Repeat([]byte{0x42}, 32)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newRing(t testing.TB, key []byte) *keyring.Keyring {
	t.Helper()
	r, err := keyring.New(key)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// waitFor polls cond until it holds or the deadline passes: a condition
// with a deadline, never a bare sleep.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

type testCluster struct {
	t     testing.TB
	net   *transport.MemNetwork
	nodes []*Node
}

// newMemCluster starts n nodes on an in-memory network, not yet joined.
func newMemCluster(t testing.TB, n int, opts ...Option) *testCluster {
	t.Helper()
	c := &testCluster{t: t, net: transport.NewMemNetwork(1)}
	t.Cleanup(func() {
		for _, nd := range c.nodes {
			nd.Shutdown()
		}
		c.net.Close()
	})
	for i := 0; i < n; i++ {
		c.add(fmt.Sprintf("node-%d", i), opts...)
	}
	return c
}

func (c *testCluster) add(name string, opts ...Option) *Node {
	c.t.Helper()
	base := []Option{
		WithName(name),
		WithTransport(c.net.NewTransport()),
		WithKeyring(newRing(c.t, testKey)),
		WithProfile(ProfileLocal),
		WithLogger(quietLogger()),
	}
	nd, err := New(append(base, opts...)...)
	if err != nil {
		c.t.Fatalf("New(%s): %v", name, err)
	}
	c.nodes = append(c.nodes, nd)
	return nd
}

// joinAll makes every node join the first one.
func (c *testCluster) joinAll() {
	c.t.Helper()
	seed := c.nodes[0].Myself().Addr.String()
	for _, nd := range c.nodes[1:] {
		if n, err := nd.Join(context.Background(), seed); err != nil || n != 1 {
			c.t.Fatalf("Join: %d, %v", n, err)
		}
	}
}

// stateOf returns what nd thinks of name, or "unknown".
func stateIn(nd *Node, name string) string {
	m, ok := nd.Member(name)
	if !ok {
		return "unknown"
	}
	return m.State.String()
}

// everyoneSees waits until every node in nodes holds each name in want
// with the given state.
func (c *testCluster) everyoneSees(nodes []*Node, names []string, state State, timeout time.Duration) {
	c.t.Helper()
	waitFor(c.t, timeout, fmt.Sprintf("every node to see %v as %v", names, state), func() bool {
		for _, nd := range nodes {
			for _, name := range names {
				if m, ok := nd.Member(name); !ok || m.State != state {
					return false
				}
			}
		}
		return true
	})
}

func names(nodes []*Node) []string {
	var out []string
	for _, nd := range nodes {
		out = append(out, nd.Myself().Name)
	}
	return out
}

func TestNewRequiresEncryptionChoice(t *testing.T) {
	net := transport.NewMemNetwork(1)
	defer net.Close()
	_, err := New(WithName("a"), WithTransport(net.NewTransport()))
	if !errors.Is(err, ErrNoEncryption) || !strings.Contains(err.Error(), "WithoutEncryption") {
		t.Fatalf("New without keyring: %v", err)
	}
	nd, err := New(WithName("a"), WithTransport(net.NewTransport()), WithoutEncryption(), WithLogger(quietLogger()))
	if err != nil {
		t.Fatalf("New(WithoutEncryption): %v", err)
	}
	nd.Shutdown()
	if nd.Keyring() != nil {
		t.Fatal("plaintext node has a keyring")
	}
}

func TestOptionErrors(t *testing.T) {
	net := transport.NewMemNetwork(1)
	defer net.Close()
	cases := []struct {
		opt  Option
		want string
	}{
		{WithName(""), "name must be 1 to 255 bytes"},
		{WithLabel("bad\x00label"), "control character"},
		{WithMaxDatagramSize(100), "at least 1134 bytes"},
		{WithMetrics(42), "neither a go-metrics MetricSink"},
		{WithPayload(make([]byte, 600)), "cap is 512"},
		{WithProbeInterval(-1), "ProbeInterval"},
		{WithKeyring(nil), "nil keyring"},
	}
	for _, c := range cases {
		_, err := New(WithName("x"), WithTransport(net.NewTransport()), WithKeyring(newRing(t, testKey)), c.opt)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v, want an error saying %q", err, c.want)
		}
	}
}

func TestJoinConvergeAndEvents(t *testing.T) {
	c := newMemCluster(t, 5)
	joined := make(chan Event, 100)
	go func() {
		for ev := range c.nodes[0].Events() {
			// Calling back into the node from the event consumer is fine.
			_ = c.nodes[0].Members()
			if ev.Kind == EventJoined {
				joined <- ev
			}
		}
	}()
	c.joinAll()
	c.everyoneSees(c.nodes, names(c.nodes), StateAlive, 10*time.Second)
	seen := map[string]bool{}
	waitFor(t, 5*time.Second, "joined events for the 4 others on node-0", func() bool {
		for {
			select {
			case ev := <-joined:
				seen[ev.Member.Name] = true
			default:
				return len(seen) == 4
			}
		}
	})
	ms := c.nodes[2].Members()
	if len(ms) != 5 {
		t.Fatalf("Members() = %d, want 5", len(ms))
	}
	for i := 1; i < len(ms); i++ {
		if ms[i-1].Name >= ms[i].Name {
			t.Fatalf("Members() not sorted by name: %s before %s", ms[i-1].Name, ms[i].Name)
		}
	}
}

func TestCrashDetection(t *testing.T) {
	t.Parallel()
	c := newMemCluster(t, 5)
	c.joinAll()
	c.everyoneSees(c.nodes, names(c.nodes), StateAlive, 10*time.Second)
	failed := make(chan Event, 100)
	go func() {
		for ev := range c.nodes[1].Events() {
			if ev.Kind == EventFailed {
				failed <- ev
			}
		}
	}()
	victim := c.nodes[4]
	victim.Shutdown()
	c.everyoneSees(c.nodes[:4], []string{"node-4"}, StateDead, 20*time.Second)
	select {
	case ev := <-failed:
		if ev.Member.Name != "node-4" || ev.Member.State != StateDead {
			t.Fatalf("failed event = %v", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no EventFailed on node-1")
	}
	if _, err := victim.Join(context.Background(), "127.0.0.1:1"); !errors.Is(err, ErrShutdown) {
		t.Fatalf("Join after Shutdown: %v", err)
	}
	if m := victim.Myself(); m.Name != "node-4" {
		t.Fatalf("Myself after Shutdown: %v", m)
	}
}

func TestLeave(t *testing.T) {
	c := newMemCluster(t, 4)
	c.joinAll()
	c.everyoneSees(c.nodes, names(c.nodes), StateAlive, 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.nodes[3].Leave(ctx); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	c.nodes[3].Shutdown()
	c.everyoneSees(c.nodes[:3], []string{"node-3"}, StateLeft, 10*time.Second)
}

func TestPayloadPropagation(t *testing.T) {
	c := newMemCluster(t, 4, WithPayload([]byte(`{"role":"api"}`)))
	c.joinAll()
	c.everyoneSees(c.nodes, names(c.nodes), StateAlive, 10*time.Second)
	if m, _ := c.nodes[3].Member("node-0"); string(m.Payload) != `{"role":"api"}` {
		t.Fatalf("initial payload = %q", m.Payload)
	}
	before := c.nodes[0].Myself().Incarnation
	if err := c.nodes[0].SetPayload([]byte(`{"role":"db"}`)); err != nil {
		t.Fatal(err)
	}
	if after := c.nodes[0].Myself().Incarnation; after <= before {
		t.Fatalf("SetPayload did not raise the incarnation: %d -> %d", before, after)
	}
	waitFor(t, 10*time.Second, "the new payload everywhere", func() bool {
		for _, nd := range c.nodes[1:] {
			if m, _ := nd.Member("node-0"); string(m.Payload) != `{"role":"db"}` {
				return false
			}
		}
		return true
	})
	if err := c.nodes[0].SetPayload(make([]byte, 513)); err == nil {
		t.Fatal("payload above the cap accepted")
	}
}

func TestProbeAndAddMember(t *testing.T) {
	c := newMemCluster(t, 3)
	a, b := c.nodes[0], c.nodes[1]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rtt, err := a.Probe(ctx, b.Myself().Addr.String())
	if err != nil || rtt <= 0 {
		t.Fatalf("Probe: %v, %v", rtt, err)
	}
	if _, err := a.Probe(ctx, "127.0.99.1:7946"); !errors.Is(err, ErrNoAck) {
		t.Fatalf("Probe of nobody: %v, want ErrNoAck", err)
	}
	if _, err := a.Probe(ctx, "not an address"); err == nil {
		t.Fatal("Probe of garbage succeeded")
	}
	if err := a.AddMember(ctx, c.nodes[2].Myself().Addr.String()); err != nil {
		t.Fatalf("AddMember: %v", err)
	}
	if st := stateIn(a, "node-2"); st != "alive" {
		t.Fatalf("after AddMember node-0 sees node-2 as %s", st)
	}
	waitFor(t, 10*time.Second, "node-2 to learn node-0", func() bool { return stateIn(c.nodes[2], "node-0") == "alive" })
}

// TestMetricsFlow: a running cluster emits the probe, RTT, member and
// message metrics that docs/metrics.md promises.
func TestMetricsFlow(t *testing.T) {
	t.Parallel()
	sink := metrics.NewInmem()
	c := newMemCluster(t, 0)
	c.add("node-0", WithMetrics(sink))
	c.add("node-1")
	c.add("node-2")
	c.joinAll()
	c.everyoneSees(c.nodes, names(c.nodes), StateAlive, 10*time.Second)
	waitFor(t, 10*time.Second, "probe, RTT and member metrics", func() bool {
		acks, _ := sink.Counter(metrics.Probes, metrics.Label{Name: metrics.LabelResult, Value: string(metrics.ProbeAck)})
		rtts, _, _, _ := sink.Samples(metrics.ProbeRTT, metrics.Label{Name: metrics.LabelPath, Value: string(metrics.PathDirect)})
		alive, ok := sink.Gauge(metrics.Members, metrics.Label{Name: metrics.LabelState, Value: metrics.StateAlive})
		pings, _ := sink.Counter(metrics.MessagesSent, metrics.Label{Name: metrics.LabelType, Value: "ping"})
		return acks >= 2 && rtts >= 2 && ok && alive == 3 && pings >= 2
	})
	c.nodes[2].Shutdown()
	waitFor(t, 20*time.Second, "a failed probe and a death to be counted", func() bool {
		failed, _ := sink.Counter(metrics.Probes, metrics.Label{Name: metrics.LabelResult, Value: string(metrics.ProbeFailed)})
		deaths, _ := sink.Counter(metrics.Deaths)
		return failed >= 1 && deaths >= 1
	})
}

func TestWrongKeyAndLabelRejected(t *testing.T) {
	sink := metrics.NewInmem()
	c := newMemCluster(t, 1, WithMetrics(sink))
	other := c.add("intruder", WithKeyring(newRing(t, bytes.Repeat([]byte{9}, 32))))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := other.Join(ctx, c.nodes[0].Myself().Addr.String()); !errors.Is(err, ErrNoSeed) || !strings.Contains(err.Error(), "same key and label?") {
		t.Fatalf("Join with the wrong key: %v, want ErrNoSeed with a hint about the key", err)
	}
	if _, err := other.Probe(ctx, c.nodes[0].Myself().Addr.String()); !errors.Is(err, ErrNoAck) {
		t.Fatalf("Probe with the wrong key: %v", err)
	}
	labelled := c.add("labelled", WithLabel("other-cluster"))
	if _, err := labelled.Join(ctx, c.nodes[0].Myself().Addr.String()); !errors.Is(err, ErrNoSeed) {
		t.Fatalf("Join with another label: %v", err)
	}
	if _, err := labelled.Probe(ctx, c.nodes[0].Myself().Addr.String()); !errors.Is(err, ErrNoAck) {
		t.Fatalf("Probe with another label: %v", err)
	}
	if st := stateIn(c.nodes[0], "intruder"); st != "unknown" {
		t.Fatalf("node-0 knows the intruder as %s", st)
	}
	plain, err := New(WithName("plain"), WithTransport(c.net.NewTransport()), WithoutEncryption(), WithProfile(ProfileLocal), WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Shutdown()
	if _, err := plain.Join(ctx, c.nodes[0].Myself().Addr.String()); !errors.Is(err, ErrNoSeed) {
		t.Fatalf("plaintext Join to an encrypted node: %v", err)
	}
	if _, err := plain.Probe(ctx, c.nodes[0].Myself().Addr.String()); !errors.Is(err, ErrNoAck) {
		t.Fatalf("plaintext Probe of an encrypted node: %v", err)
	}
	// node-0 counted each kind of rejected datagram by reason.
	for _, reason := range []metrics.DropReason{metrics.DropUnknownKey, metrics.DropAuth, metrics.DropUnencrypted} {
		if sum, _ := sink.Counter(metrics.Dropped, metrics.Label{Name: metrics.LabelReason, Value: string(reason)}); sum < 1 {
			t.Errorf("node-0 counted %v datagrams dropped for %s, want at least 1", sum, reason)
		}
	}
}

func TestSlowEventConsumerNeverBlocks(t *testing.T) {
	c := newMemCluster(t, 5, WithEventBuffer(1))
	c.joinAll() // nobody reads Events
	c.everyoneSees(c.nodes, names(c.nodes), StateAlive, 10*time.Second)
	if c.nodes[0].EventsDropped() == 0 {
		t.Fatal("no event was counted as dropped with a full channel")
	}
}

func TestKeyRotationWhileRunning(t *testing.T) {
	c := newMemCluster(t, 4)
	c.joinAll()
	c.everyoneSees(c.nodes, names(c.nodes), StateAlive, 10*time.Second)
	newKey := bytes.Repeat([]byte{0x43}, 32)
	for _, step := range []func(*keyring.Keyring) error{
		func(r *keyring.Keyring) error { return r.Install(newKey) },
		func(r *keyring.Keyring) error { return r.Use(newKey) },
		func(r *keyring.Keyring) error { return r.Remove(testKey) },
	} {
		for _, nd := range c.nodes {
			if err := step(nd.Keyring()); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A node with only the old key is now locked out; the others still
	// talk: a new member with the new key joins.
	late := c.add("late", WithKeyring(newRing(t, newKey)))
	if _, err := late.Join(context.Background(), c.nodes[1].Myself().Addr.String()); err != nil {
		t.Fatalf("Join with the new key: %v", err)
	}
	c.everyoneSees(c.nodes, names(c.nodes), StateAlive, 10*time.Second)
	stale := c.add("stale")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := stale.Join(ctx, c.nodes[1].Myself().Addr.String()); !errors.Is(err, ErrNoSeed) {
		t.Fatalf("Join with the removed key: %v", err)
	}
}

func TestRealLoopback(t *testing.T) {
	if testing.Short() {
		t.Skip("real sockets")
	}
	const n = 4
	var nodes []*Node
	t.Cleanup(func() {
		for _, nd := range nodes {
			nd.Shutdown()
		}
	})
	for i := 0; i < n; i++ {
		nd, err := New(
			WithName(fmt.Sprintf("udp-%d", i)),
			WithBindAddr("127.0.0.1:0"),
			WithKeyring(newRing(t, testKey)),
			WithLabel("loopback-test"),
			WithProfile(ProfileLocal),
			WithLogger(quietLogger()),
		)
		if err != nil {
			t.Fatal(err)
		}
		if addr := nd.Myself().Addr; !addr.Addr().IsLoopback() || addr.Port() == 0 {
			t.Fatalf("Myself().Addr = %v, want loopback with the real port", addr)
		}
		nodes = append(nodes, nd)
	}
	for _, nd := range nodes[1:] {
		if _, err := nd.Join(context.Background(), nodes[0].Myself().Addr.String()); err != nil {
			t.Fatal(err)
		}
	}
	c := &testCluster{t: t}
	c.everyoneSees(nodes, names(nodes), StateAlive, 10*time.Second)
	nodes[3].Shutdown()
	c.everyoneSees(nodes[:3], []string{"udp-3"}, StateDead, 20*time.Second)
}

func TestBindInUse(t *testing.T) {
	a, err := New(WithName("a"), WithBindAddr("127.0.0.1:0"), WithKeyring(newRing(t, testKey)), WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown()
	_, err = New(WithName("b"), WithBindAddr(a.Myself().Addr.String()), WithKeyring(newRing(t, testKey)), WithLogger(quietLogger()))
	if err == nil || !strings.Contains(err.Error(), a.Myself().Addr.String()) {
		t.Fatalf("second bind on %v: %v", a.Myself().Addr, err)
	}
}

func TestConcurrentAPI(t *testing.T) {
	c := newMemCluster(t, 3)
	c.joinAll()
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				_ = c.nodes[0].Members()
				_, _ = c.nodes[0].Member("node-1")
				_ = c.nodes[0].SetPayload([]byte{byte(j)})
			}
		}()
	}
	wg.Wait()
	c.everyoneSees(c.nodes, names(c.nodes), StateAlive, 10*time.Second)
}

// TestDuplicatesDropped: every datagram is delivered twice; the copies are
// dropped as replays and the cluster works as before.
func TestDuplicatesDropped(t *testing.T) {
	t.Parallel()
	sink := metrics.NewInmem()
	c := newMemCluster(t, 0)
	c.net.SetDefaultLink(transport.LinkConfig{Duplicate: 1})
	c.add("node-0", WithMetrics(sink))
	for i := 1; i < 3; i++ {
		c.add(fmt.Sprintf("node-%d", i))
	}
	c.joinAll()
	c.everyoneSees(c.nodes, names(c.nodes), StateAlive, 10*time.Second)
	waitFor(t, 10*time.Second, "replayed copies to be counted", func() bool {
		sum, _ := sink.Counter(metrics.Dropped, metrics.Label{Name: metrics.LabelReason, Value: string(metrics.DropReplay)})
		return sum >= 5
	})
}

// TestIdleStreamsCannotLockOutJoin: connections that never say a word fill
// the waiting room for unauthenticated streams, and a real member still
// joins at once: a silent connection is evicted to make room.
func TestIdleStreamsCannotLockOutJoin(t *testing.T) {
	c := newMemCluster(t, 1)
	attacker := c.net.NewTransport()
	defer attacker.Close()
	target := c.nodes[0].Myself().Addr
	// Dial until the waiting room is full (the transport's accept queue
	// drops some of a burst, and a silent stream times out after
	// helloTimeout).
	waitFor(t, 5*time.Second, "the idle streams to fill the waiting room", func() bool {
		for range 64 {
			conn, err := attacker.DialStream(context.Background(), target)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { conn.Close() })
		}
		c.nodes[0].streamMu.Lock()
		defer c.nodes[0].streamMu.Unlock()
		return c.nodes[0].inPending == c.nodes[0].cfg.maxPending
	})
	late := c.add("late")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if n, err := late.Join(ctx, target.String()); err != nil || n != 1 {
		t.Fatalf("Join past idle connections: %d, %v", n, err)
	}
}

// TestJoinStorm: many members join one seed at once; all succeed (a refused
// stream is retried) and the cluster converges.
func TestJoinStorm(t *testing.T) {
	c := newMemCluster(t, 40)
	seed := c.nodes[0].Myself().Addr.String()
	var wg sync.WaitGroup
	errs := make(chan error, len(c.nodes))
	for _, nd := range c.nodes[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := nd.Join(context.Background(), seed); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Join in a storm: %v", err)
	}
	c.everyoneSees(c.nodes, names(c.nodes), StateAlive, 20*time.Second)
}

func TestShutdownClosesEventsAndStopsGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	net := transport.NewMemNetwork(1)
	var nodes []*Node
	for i := 0; i < 3; i++ {
		nd, err := New(WithName(fmt.Sprintf("g%d", i)), WithTransport(net.NewTransport()), WithKeyring(newRing(t, testKey)),
			WithProfile(ProfileLocal), WithLogger(quietLogger()))
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, nd)
	}
	for _, nd := range nodes[1:] {
		if _, err := nd.Join(context.Background(), nodes[0].Myself().Addr.String()); err != nil {
			t.Fatal(err)
		}
	}
	for _, nd := range nodes {
		if err := nd.Shutdown(); err != nil {
			t.Fatal(err)
		}
		if err := nd.Shutdown(); err != nil {
			t.Fatalf("second Shutdown: %v", err)
		}
		for range nd.Events() { // drains, then ends: the channel is closed
		}
	}
	net.Close()
	waitFor(t, 5*time.Second, "goroutines to return to the count before the test", func() bool {
		return runtime.NumGoroutine() <= before
	})
}

func TestNewClosesTransportOnFailure(t *testing.T) {
	net := transport.NewMemNetwork(1)
	defer net.Close()
	tr := net.NewTransport()
	if _, err := New(WithName("x"), WithTransport(tr)); !errors.Is(err, ErrNoEncryption) {
		t.Fatalf("New: %v", err)
	}
	if err := tr.WriteTo([]byte("x"), tr.LocalAddr()); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("transport after failed New: WriteTo = %v, want ErrClosed", err)
	}
}

func TestJoinByHostName(t *testing.T) {
	if testing.Short() {
		t.Skip("real sockets")
	}
	var nodes []*Node
	for i := 0; i < 2; i++ {
		nd, err := New(WithName(fmt.Sprintf("h%d", i)), WithBindAddr("127.0.0.1:0"), WithKeyring(newRing(t, testKey)),
			WithProfile(ProfileLocal), WithLogger(quietLogger()))
		if err != nil {
			t.Fatal(err)
		}
		defer nd.Shutdown()
		nodes = append(nodes, nd)
	}
	seed := fmt.Sprintf("localhost:%d", nodes[0].Myself().Addr.Port())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if n, err := nodes[1].Join(ctx, seed); err != nil || n < 1 {
		t.Fatalf("Join(%q): %d, %v", seed, n, err)
	}
	if _, err := nodes[1].Join(ctx, "localhost:notaport"); err == nil {
		t.Fatal("Join with a bad port succeeded")
	}
}

// TestJumboDatagrams: with a larger datagram size, large payloads travel on
// real UDP and nothing is dropped as too large.
func TestJumboDatagrams(t *testing.T) {
	if testing.Short() {
		t.Skip("real sockets")
	}
	var nodes []*Node
	for i := 0; i < 3; i++ {
		nd, err := New(WithName(fmt.Sprintf("j%d", i)), WithBindAddr("127.0.0.1:0"), WithKeyring(newRing(t, testKey)),
			WithProfile(ProfileLocal), WithLogger(quietLogger()),
			WithMaxDatagramSize(16000), WithMaxPayload(4000), WithPayload(bytes.Repeat([]byte{byte('a' + i)}, 4000)))
		if err != nil {
			t.Fatal(err)
		}
		defer nd.Shutdown()
		nodes = append(nodes, nd)
	}
	for _, nd := range nodes[1:] {
		if _, err := nd.Join(context.Background(), nodes[0].Myself().Addr.String()); err != nil {
			t.Fatal(err)
		}
	}
	c := &testCluster{t: t}
	c.everyoneSees(nodes, names(nodes), StateAlive, 10*time.Second)
	if err := nodes[0].SetPayload(bytes.Repeat([]byte{'z'}, 4000)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the 4000-byte payload to spread by gossip", func() bool {
		for _, nd := range nodes[1:] {
			if m, _ := nd.Member("j0"); !bytes.Equal(m.Payload, bytes.Repeat([]byte{'z'}, 4000)) {
				return false
			}
		}
		return true
	})
	for _, nd := range nodes {
		if d := nd.tr.Stats().TooLarge; d != 0 {
			t.Fatalf("%s dropped %d datagrams as too large", nd.Myself().Name, d)
		}
	}
}
