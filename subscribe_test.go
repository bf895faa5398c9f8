package membership

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/meshward/membership/metrics"
)

// collect reads a subscription into a slice until it is closed.
type collector struct {
	mu   sync.Mutex
	evs  []Event
	done chan struct{}
}

func collect(ch <-chan Event) *collector {
	c := &collector{done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for ev := range ch {
			c.mu.Lock()
			c.evs = append(c.evs, ev)
			c.mu.Unlock()
		}
	}()
	return c
}

// count returns how many events of kind k about name were received.
func (c *collector) count(k EventKind, name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, ev := range c.evs {
		if ev.Kind == k && (name == "" || ev.Member.Name == name) {
			n++
		}
	}
	return n
}

func (c *collector) kinds() map[EventKind]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[EventKind]int{}
	for _, ev := range c.evs {
		out[ev.Kind]++
	}
	return out
}

// TestSubscriptionsAreIndependent: a subscriber that never reads loses
// events and counts them, while another gets every event, a filtered one
// gets only its kinds, and the protocol goes on.
func TestSubscriptionsAreIndependent(t *testing.T) {
	t.Parallel()
	sink := metrics.NewInmem()
	c := newMemCluster(t, 0)
	a := c.add("node-0", WithEventBuffer(0), WithMetrics(sink))
	for i := 1; i < 5; i++ {
		c.add(fmt.Sprintf("node-%d", i))
	}
	stuck := a.Subscribe(1) // never read
	all := collect(a.Subscribe(0).Events())
	failures := a.Subscribe(4, EventFailed, EventLeft)
	fails := collect(failures.Events())

	c.joinAll()
	c.everyoneSees(c.nodes, names(c.nodes), StateAlive, 10*time.Second)
	waitFor(t, 5*time.Second, "4 joined events", func() bool { return all.count(EventJoined, "") == 4 })
	if got := stuck.Dropped(); got < 3 {
		t.Fatalf("a subscriber with room for 1 event that never reads dropped %d of 4 joins", got)
	}
	if len(stuck.Events()) != 1 {
		t.Fatalf("the stuck subscriber holds %d events, want its buffer full with 1", len(stuck.Events()))
	}

	c.nodes[4].Shutdown()
	if err := c.nodes[3].Leave(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "node-4 failed and node-3 left, on the filtered subscription and on the full one", func() bool {
		return fails.count(EventFailed, "node-4") == 1 && fails.count(EventLeft, "node-3") == 1 &&
			all.count(EventFailed, "node-4") == 1 && all.count(EventLeft, "node-3") == 1
	})
	if k := fails.kinds(); len(k) != 2 {
		t.Fatalf("the subscription to failed and left got %v", k)
	}
	if failures.Dropped() != 0 || all.count(EventFailed, "node-4") != 1 {
		t.Fatalf("dropped %d of the filtered; %d failed events on the full subscription", failures.Dropped(), all.count(EventFailed, "node-4"))
	}
	// The default channel is off: nothing is counted against it.
	if _, open := <-a.Events(); open || a.EventsDropped() != 0 {
		t.Fatalf("with WithEventBuffer(0): Events() open %v, %d dropped", open, a.EventsDropped())
	}
	waitFor(t, 5*time.Second, "the stuck subscriber's drops in membership.events.dropped", func() bool {
		n, _ := sink.Counter(metrics.EventsDropped)
		return n >= float64(stuck.Dropped()) && n > 0
	})
}

// TestSubscriptionCloseAndShutdown: Close ends one subscription and no
// other; Shutdown ends the rest; Subscribe after Shutdown is closed at once.
func TestSubscriptionCloseAndShutdown(t *testing.T) {
	c := newMemCluster(t, 3)
	a := c.nodes[0]
	gone, kept := a.Subscribe(8), a.Subscribe(64)
	gone.Close()
	gone.Close() // again: nothing
	if _, open := <-gone.Events(); open {
		t.Fatal("a closed subscription's channel is open")
	}
	got := collect(kept.Events())
	c.joinAll()
	waitFor(t, 10*time.Second, "joins on the subscription still open", func() bool { return got.count(EventJoined, "") == 2 })
	// Closing while events flow, from another goroutine: no event is sent
	// on a closed channel (the race detector watches).
	var wg sync.WaitGroup
	for range 8 {
		s := a.Subscribe(1)
		wg.Add(1)
		go func() { defer wg.Done(); s.Close() }()
	}
	if err := c.nodes[1].SetPayload([]byte("new")); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	a.Shutdown()
	select {
	case <-got.done:
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not close the subscription")
	}
	late := a.Subscribe(1)
	if _, open := <-late.Events(); open {
		t.Fatal("a subscription after Shutdown is open")
	}
	late.Close()
}

// TestSubscriptionsOwnTheirPayload: each subscriber gets its own copy of
// the member's payload, so that one changing it cannot change another's.
func TestSubscriptionsOwnTheirPayload(t *testing.T) {
	c := newMemCluster(t, 2)
	a, b := c.nodes[0], c.nodes[1]
	s1, s2 := a.Subscribe(16, EventJoined), a.Subscribe(16, EventJoined)
	if err := b.SetPayload([]byte("role=db")); err != nil {
		t.Fatal(err)
	}
	c.joinAll()
	var e1, e2 Event
	for _, x := range []struct {
		s  *Subscription
		ev *Event
	}{{s1, &e1}, {s2, &e2}} {
		select {
		case *x.ev = <-x.s.Events():
		case <-time.After(10 * time.Second):
			t.Fatal("no joined event")
		}
	}
	e1.Member.Payload[0] = 'X'
	if string(e2.Member.Payload) != "role=db" {
		t.Fatalf("one subscriber's change shows in another's event: %q", e2.Member.Payload)
	}
}

// TestSubscriptionRealSockets: subscriptions over real UDP and TCP.
func TestSubscriptionRealSockets(t *testing.T) {
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
	s1, s2 := nodes[0].Subscribe(4, EventJoined), nodes[0].Subscribe(4)
	if _, err := nodes[1].Join(context.Background(), nodes[0].Myself().Addr.String()); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Subscription{s1, s2} {
		select {
		case ev := <-s.Events():
			if ev.Kind != EventJoined || ev.Member.Name != "udp-1" {
				t.Fatalf("first event %v, want udp-1 joined", ev)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no joined event")
		}
	}
}
