package membership

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshward/membership/keyring"
	"github.com/meshward/membership/metrics"
	"github.com/meshward/membership/transport"
)

// mismatchWatcher collects a node's EventKeyMismatch events.
type mismatchWatcher struct {
	mu  sync.Mutex
	evs []Event
}

func watchMismatches(nd *Node) *mismatchWatcher {
	w := &mismatchWatcher{}
	go func() {
		for ev := range nd.Events() {
			if ev.Kind == EventKeyMismatch {
				w.mu.Lock()
				w.evs = append(w.evs, ev)
				w.mu.Unlock()
			}
		}
	}()
	return w
}

// find returns the first event that match accepts.
func (w *mismatchWatcher) find(match func(Event) bool) (Event, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, ev := range w.evs {
		if match(ev) {
			return ev, true
		}
	}
	return Event{}, false
}

func (w *mismatchWatcher) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.evs)
}

func fpHex(key []byte) string { return fmt.Sprintf("%x", keyring.Fingerprint(key)) }

// TestKeyMismatchAfterRestartWithOldKey is the scenario: after a
// rotation, a member restarts with only the old key (its key file restored
// from an old copy). Both sides report the mismatch, naming the key the
// other speaks, the restarted node on the first datagram that does not
// open (Count 1) and the seed on the restarted node's join stream, and
// the member rejoins once its key file is fixed and it restarts, with no
// other member restarted.
func TestKeyMismatchAfterRestartWithOldKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys")
	c := newMemCluster(t, 3)
	lost := c.add("lost", WithKeyringFile(path))
	c.joinAll()
	c.everyoneSees(c.nodes, names(c.nodes), StateAlive, 10*time.Second)
	oldFile := filepath.Join(dir, "keys.old")
	if err := lost.Keyring().Save(oldFile); err != nil {
		t.Fatal(err)
	}
	// Rotate as an operator would: install everywhere, then use, then
	// remove. Rotating node by node would let a member that still speaks
	// the old key reach one that has removed it, a mismatch of its own.
	for _, step := range []func(*keyring.Keyring) error{
		func(r *keyring.Keyring) error { return r.Install(testKey2) },
		func(r *keyring.Keyring) error { return r.Use(testKey2) },
		func(r *keyring.Keyring) error { return r.Remove(testKey) },
	} {
		for _, nd := range c.nodes {
			if err := step(nd.Keyring()); err != nil {
				t.Fatal(err)
			}
		}
	}
	addr := lost.Myself().Addr
	lost.Shutdown()

	seed := c.nodes[0]
	seedEvents := watchMismatches(seed)
	// The key file comes back from an old copy: only the old key.
	restarted := c.restart("lost", addr, WithKeyringFile(oldFile))
	events := watchMismatches(restarted)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := restarted.Join(ctx, seed.Myself().Addr.String()); err == nil {
		t.Fatal("a node with only the old key joined")
	}

	// The seed: the joiner's stream speaks the old key, and the seed names
	// the member at that address.
	// Datagrams and streams sealed before a member switched keys may still
	// arrive after the seed removed the old key, the lost member's old
	// process's among them (a datagram from the same address, counted in
	// the same entry): the report that matters is the one about the
	// restarted process's join stream.
	fromLost := func(ev Event) bool {
		return ev.KeyMismatch.Fingerprint == fpHex(testKey) && ev.KeyMismatch.Addr == addr && ev.KeyMismatch.Stream
	}
	waitFor(t, 5*time.Second, "the seed to report the old key", func() bool {
		_, ok := seedEvents.find(fromLost)
		return ok
	})
	ev, _ := seedEvents.find(fromLost)
	km := ev.KeyMismatch
	if km.Reason != MismatchUnknownKey || km.Addr != addr || km.Member != "lost" || ev.Member.Name != "lost" || !km.Stream {
		t.Fatalf("seed's event: %#v", km)
	}
	want := fmt.Sprintf("node at %v (member lost) speaks key %s, which we do not hold", addr, fpHex(testKey))
	if km.String() != want {
		t.Fatalf("seed's event says %q, want %q", km.String(), want)
	}

	// The restarted node: the others' datagrams (probes of the member they
	// knew at its address) speak the new key.
	waitFor(t, 10*time.Second, "the restarted node to report the new key", func() bool {
		_, ok := events.find(func(ev Event) bool { return ev.KeyMismatch.Fingerprint == fpHex(testKey2) })
		return ok
	})
	ev, _ = events.find(func(ev Event) bool { return ev.KeyMismatch.Fingerprint == fpHex(testKey2) })
	if km := ev.KeyMismatch; km.Reason != MismatchUnknownKey || km.Count != 1 {
		t.Fatalf("restarted node's first event: %+v, want an unknown key, reported on the first datagram or stream", km)
	}
	if !strings.Contains(ev.String(), "speaks key "+fpHex(testKey2)+", which we do not hold") {
		t.Fatalf("event string: %q", ev.String())
	}
	list := restarted.KeyMismatches()
	if len(list) == 0 || list[0].Fingerprint != fpHex(testKey2) {
		t.Fatalf("restarted node's KeyMismatches: %+v", list)
	}
	var lostInSeed []KeyMismatch
	for _, km := range seed.KeyMismatches() {
		if km.Addr == addr {
			lostInSeed = append(lostInSeed, km)
		}
	}
	if len(lostInSeed) != 1 || lostInSeed[0].Member != "lost" {
		t.Fatalf("seed's KeyMismatches about %v: %+v", addr, lostInSeed)
	}

	// Fix the key file and restart the lost member; nobody else restarts.
	restarted.Shutdown()
	if err := keyringOf(t, testKey2).Save(oldFile); err != nil {
		t.Fatal(err)
	}
	fixed := c.restart("lost", addr, WithKeyringFile(oldFile))
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if _, err := fixed.Join(ctx2, seed.Myself().Addr.String()); err != nil {
		t.Fatalf("the fixed node cannot rejoin: %v", err)
	}
	c.everyoneSees(append(c.nodes[:3:3], fixed), []string{"node-0", "node-1", "node-2", "lost"}, StateAlive, 10*time.Second)
	waitFor(t, 5*time.Second, "the seed to take the fixed member out of its mismatches", func() bool {
		return len(seed.KeyMismatches()) == 0
	})
	if got := fixed.KeyMismatches(); len(got) != 0 {
		t.Fatalf("the fixed node still lists mismatches: %+v", got)
	}
}

// keyringOf returns a keyring whose only key is key.
func keyringOf(t testing.TB, key []byte) *keyring.Keyring { return newRing(t, key) }

// TestKeyMismatchFixedLive: a node that runs with an old key can be fixed
// without a restart, by installing and using the cluster's key on its
// keyring. Back at the address where the cluster knew it, it needs nothing
// else: the others still probe that address, now get answers, and the node
// is alive everywhere again. A node the cluster never knew must Join again.
func TestKeyMismatchFixedLive(t *testing.T) {
	c := newMemCluster(t, 3)
	lost := c.add("lost")
	c.joinAll()
	c.everyoneSees(c.nodes, names(c.nodes), StateAlive, 10*time.Second)
	for _, nd := range c.nodes[:3] {
		rotate(t, nd.Keyring(), testKey, testKey2)
	}
	addr := lost.Myself().Addr
	lost.Shutdown()
	restarted := c.restart("lost", addr, WithKeyring(newRing(t, testKey)))
	seed := c.nodes[0].Myself().Addr.String()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := restarted.Join(ctx, seed); err == nil {
		t.Fatal("a node with only the old key joined")
	}
	waitFor(t, 10*time.Second, "the others' datagrams to be reported", func() bool { return len(restarted.KeyMismatches()) > 0 })
	if err := restarted.Keyring().Install(testKey2); err != nil {
		t.Fatal(err)
	}
	if err := restarted.Keyring().Use(testKey2); err != nil {
		t.Fatal(err)
	}
	live := []*Node{c.nodes[0], c.nodes[1], c.nodes[2], restarted}
	c.everyoneSees(live, names(live), StateAlive, 30*time.Second)

	stranger := c.add("stranger") // the old key, and unknown to the cluster
	if _, err := stranger.Join(ctx, seed); err == nil {
		t.Fatal("a node with only the old key joined")
	}
	if err := stranger.Keyring().Install(testKey2); err != nil {
		t.Fatal(err)
	}
	if err := stranger.Keyring().Use(testKey2); err != nil {
		t.Fatal(err)
	}
	if _, err := stranger.Join(ctx, seed); err != nil {
		t.Fatalf("Join after fixing the keyring: %v", err)
	}
	live = append(live, stranger)
	c.everyoneSees(live, names(live), StateAlive, 10*time.Second)
}

// TestKeyMismatchBounded: a flood of forged datagrams from many source
// addresses, each naming its own fingerprint, yields at most
// mismatchBudget events, at most mismatchSlots listed addresses, and only
// the label "other" on the metric, while a member's address keeps its place
// and its fingerprint label; and once the budget is spent, recording more
// costs no allocation.
func TestKeyMismatchBounded(t *testing.T) {
	sink := metrics.NewInmem()
	var logs syncBuffer
	c := newMemCluster(t, 2)
	nd := c.add("target", WithMetrics(sink), WithEventBuffer(4096), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	c.joinAll()
	c.everyoneSees(c.nodes, names(c.nodes), StateAlive, 10*time.Second)
	events := watchMismatches(nd)
	member := c.nodes[1].Myself().Addr
	// Nothing genuine from the member while the flood is checked: its
	// first datagram that opens would take it out of the list.
	c.net.Block(member, nd.Myself().Addr)
	memberKey := bytes.Repeat([]byte{0x77}, 32)
	forge := func(key []byte) []byte {
		d, err := newRing(t, key).Seal(nil, make([]byte, 40), nil)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	fromMember := forge(memberKey)
	const strangers = 1000
	forged := make([][]byte, strangers)
	for i := range forged {
		key := bytes.Repeat([]byte{byte(i), byte(i >> 8), 1, 2}, 8)
		forged[i] = forge(key)
	}
	nd.do(func() {
		p := transport.Packet{Data: fromMember, From: member, At: time.Now()}
		nd.receive(&p)
		for i, d := range forged {
			p := transport.Packet{Data: d, From: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i)}), 7946), At: time.Now()}
			nd.receive(&p)
		}
	})
	waitFor(t, 5*time.Second, "the member's mismatch to be reported", func() bool {
		_, ok := events.find(func(ev Event) bool { return ev.KeyMismatch.Addr == member })
		return ok
	})
	waitFor(t, 5*time.Second, "the counts to be published", func() bool {
		n, _ := sink.Counter(metrics.KeyMismatches)
		return n >= strangers+1
	})
	if n := events.count(); n > mismatchBudget {
		t.Fatalf("%d events, want at most %d", n, mismatchBudget)
	}
	if n := strings.Count(logs.String(), "which we do not hold"); n > mismatchBudget {
		t.Fatalf("%d log lines, want at most %d", n, mismatchBudget)
	}
	list := nd.KeyMismatches()
	if len(list) > mismatchSlots {
		t.Fatalf("%d addresses listed, want at most %d", len(list), mismatchSlots)
	}
	var memberListed bool
	for _, m := range list {
		if m.Addr == member {
			memberListed = m.Member == "node-1" && m.Fingerprint == fpHex(memberKey)
		}
	}
	if !memberListed {
		t.Fatal("the member's mismatch was pushed out of the list by strangers")
	}
	if n, _ := sink.Counter(metrics.KeyMismatches, metrics.Label{Name: metrics.LabelKey, Value: fpHex(memberKey)}); n != 1 {
		t.Fatalf("the member's fingerprint label counts %v, want 1", n)
	}
	if n, _ := sink.Counter(metrics.KeyMismatches, metrics.Label{Name: metrics.LabelKey, Value: "other"}); n != strangers {
		t.Fatalf("label other counts %v, want %d", n, strangers)
	}
	if g, _ := sink.Gauge(metrics.KeyMismatchAddrs); g < 1 || g > mismatchSlots {
		t.Fatalf("addresses gauge %v", g)
	}

	// The member speaks our key: its next datagram opens, which takes it
	// out of the list.
	c.net.Unblock(member, nd.Myself().Addr)
	waitFor(t, 10*time.Second, "the member's next datagram to clear it", func() bool {
		for _, m := range nd.KeyMismatches() {
			if m.Addr == member {
				return false
			}
		}
		return true
	})

	if raceEnabled {
		return
	}
	var allocs float64
	nd.do(func() {
		i := 0
		allocs = testing.AllocsPerRun(1000, func() {
			i++
			p := transport.Packet{Data: forged[i%strangers], From: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 8, byte(i >> 8), byte(i)}), 7946), At: time.Now()}
			nd.receive(&p)
		})
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per forged datagram from a new address once the budget is spent, want 0", allocs)
	}
}
