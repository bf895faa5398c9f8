package membership

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/meshward/membership/swim"
)

// recv waits for the next application message on nd.
func recv(t *testing.T, nd *Node) Message {
	t.Helper()
	select {
	case m := <-nd.Messages():
		return m
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no message within 10 s", nd.Myself().Name)
	}
	return Message{}
}

func TestSendReliableArrivesInOrder(t *testing.T) {
	c := newMemCluster(t, 3)
	c.joinAll()
	c.everyoneSees(c.nodes, names(c.nodes), StateAlive, 10*time.Second)
	a, b := c.nodes[1], c.nodes[2]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	big := bytes.Repeat([]byte("0123456789abcdef"), 20000) // 320 KB: several records
	if err := a.SendReliable(ctx, "node-2", big); err != nil {
		t.Fatalf("SendReliable of %d bytes: %v", len(big), err)
	}
	if m := recv(t, b); m.Kind != MessageReliable || m.From != "node-1" || !bytes.Equal(m.Payload, big) {
		t.Fatalf("got %v from %q with %d bytes, want reliable from node-1 with %d", m.Kind, m.From, len(m.Payload), len(big))
	}
	// Concurrent sends to one member arrive one by one, each whole; sends
	// made one after the other arrive in that order.
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.SendReliable(ctx, "node-2", []byte(fmt.Sprintf("c%d", i))); err != nil {
				t.Errorf("concurrent SendReliable: %v", err)
			}
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for range 10 {
		seen[string(recv(t, b).Payload)] = true
	}
	if len(seen) != 10 {
		t.Fatalf("concurrent sends: got %d distinct messages, want 10", len(seen))
	}
	for i := range 20 {
		if err := a.SendReliable(ctx, "node-2", []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 20 {
		if m := recv(t, b); string(m.Payload) != fmt.Sprint(i) {
			t.Fatalf("message %d is %q: out of order", i, m.Payload)
		}
	}
}

func TestSendReliableRefusesNonMembers(t *testing.T) {
	c := newMemCluster(t, 3)
	c.joinAll()
	c.everyoneSees(c.nodes, names(c.nodes), StateAlive, 10*time.Second)
	ctx := context.Background()
	if err := c.nodes[0].SendReliable(ctx, "nobody", []byte("x")); !errors.Is(err, ErrNotAlive) {
		t.Fatalf("SendReliable to an unknown name: %v, want ErrNotAlive", err)
	}
	c.nodes[2].Leave(ctx)
	waitFor(t, 10*time.Second, "node-2 to be seen as left", func() bool { return stateIn(c.nodes[0], "node-2") == "left" })
	if err := c.nodes[0].SendReliable(ctx, "node-2", []byte("x")); !errors.Is(err, ErrNotAlive) {
		t.Fatalf("SendReliable to a member that left: %v, want ErrNotAlive", err)
	}
	if err := c.nodes[0].SendReliable(ctx, "node-1", make([]byte, DefaultMaxReliableMessage+1)); !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("SendReliable above the limit: %v, want ErrMessageTooLarge", err)
	}
}

// TestSendReliableToKilledMember: a reliable send to a member that is
// killed while the send waits returns an error, never a false success.
func TestSendReliableToKilledMember(t *testing.T) {
	c := newMemCluster(t, 2)
	c.joinAll()
	victim := c.add("victim", WithMessageBuffer(1))
	if _, err := victim.Join(context.Background(), c.nodes[0].Myself().Addr.String()); err != nil {
		t.Fatal(err)
	}
	c.everyoneSees(c.nodes, names(c.nodes), StateAlive, 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Fill the victim's channel (nobody reads it), so the next send
	// waits for room.
	if err := c.nodes[1].SendReliable(ctx, "victim", []byte("fills the channel")); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.nodes[1].SendReliable(ctx, "victim", []byte("never delivered")) }()
	waitFor(t, 5*time.Second, "the send to be waiting on the victim", func() bool {
		return victim.msgWaiting.Load() == 1
	})
	victim.Shutdown()
	if err := <-done; err == nil {
		t.Fatal("SendReliable to a member killed mid-send returned success")
	} else {
		t.Logf("SendReliable: %v", err)
	}
}

// appState records what it merged, and sends its name.
type appState struct {
	name   string
	mu     sync.Mutex
	merged map[string]bool // remote state → join flag
}

func (s *appState) Local(join bool) []byte { return []byte(s.name) }

func (s *appState) Merge(remote []byte, join bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.merged == nil {
		s.merged = map[string]bool{}
	}
	s.merged[string(remote)] = s.merged[string(remote)] || join
}

func (s *appState) got(remote string) (seen, join bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	join, seen = s.merged[remote]
	return seen, join
}

// TestAppStateConverges: application state rides the join exchange both
// ways, with the join flag, and the periodic push-pull after it.
func TestAppStateConverges(t *testing.T) {
	t.Parallel()
	c := newMemCluster(t, 0)
	states := make([]*appState, 3)
	for i := range states {
		states[i] = &appState{name: fmt.Sprintf("state-of-%d", i)}
		c.add(fmt.Sprintf("node-%d", i), WithState(states[i], 0),
			WithProtocol(func(c *swim.Config) { c.PushPullInterval = 300 * time.Millisecond }))
	}
	c.joinAll()
	// Its state rides the periodic exchange, so the exchange is kept
	// with members whose view agrees with ours (swim.Config.PushPullAgreed).
	for _, nd := range c.nodes {
		if !nd.pcfg.PushPullAgreed {
			t.Fatalf("%s exchanges application state but skips periodic exchanges in agreement", nd.cfg.name)
		}
	}
	// The join exchanges: the seed got each joiner's state, and each
	// joiner the seed's, flagged as a join.
	for i := 1; i < 3; i++ {
		if seen, join := states[0].got(states[i].name); !seen || !join {
			t.Fatalf("seed merged %s: seen %v, join %v", states[i].name, seen, join)
		}
		if seen, join := states[i].got(states[0].name); !seen || !join {
			t.Fatalf("node-%d merged the seed's state: seen %v, join %v", i, seen, join)
		}
	}
	// The periodic push-pull (300 ms here) brings node-1 and node-2
	// together without a join.
	waitFor(t, 20*time.Second, "node-1 and node-2 to exchange state", func() bool {
		a, _ := states[1].got(states[2].name)
		b, _ := states[2].got(states[1].name)
		return a || b
	})
}

func TestAppStateBounded(t *testing.T) {
	c := newMemCluster(t, 0)
	big := &appState{name: string(make([]byte, 5000))}
	c.add("seed", WithState(&appState{name: "small"}, 1000))
	c.add("big", WithState(big, 10000))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := c.nodes[1].Join(ctx, c.nodes[0].Myself().Addr.String()); err == nil {
		t.Fatal("a join whose state is above the seed's limit succeeded")
	}
}
