package membership

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/meshward/membership/metrics"
)

// TestDuplicateNameRefused: a second process started with a live member's
// name cannot join: its Join fails naming the member's address, the seed
// counts the conflict and emits an event, and nobody's view of the member
// moves.
func TestDuplicateNameRefused(t *testing.T) {
	sink := metrics.NewInmem()
	c := newMemCluster(t, 0)
	seed := c.add("seed", WithMetrics(sink))
	real := c.add("api-7")
	c.add("other")
	c.joinAll()
	c.everyoneSees(c.nodes, names(c.nodes), StateAlive, 10*time.Second)
	realAddr := real.Myself().Addr

	impostor := c.add("api-7")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := impostor.Join(ctx, seed.Myself().Addr.String())
	var nc *NameConflictError
	if !errors.Is(err, ErrNameConflict) || !errors.As(err, &nc) || nc.Addr != realAddr || nc.Name != "api-7" {
		t.Fatalf("Join under a live member's name: %v, want a NameConflictError naming %v", err, realAddr)
	}
	t.Logf("Join: %v", err)

	waitFor(t, 5*time.Second, "the seed's conflict event", func() bool {
		for {
			select {
			case ev := <-seed.Events():
				if ev.Kind == EventNameConflict {
					if ev.Member.Name != "api-7" || ev.Member.Addr != realAddr || ev.ConflictAddr != impostor.Myself().Addr {
						t.Fatalf("conflict event %+v: want api-7 held at %v, claimed from %v", ev, realAddr, impostor.Myself().Addr)
					}
					return true
				}
			default:
				return false
			}
		}
	})
	if n, _ := sink.Counter(metrics.NameConflicts); n < 1 {
		t.Fatalf("name conflicts counted %v times, want at least 1", n)
	}
	// No flap: every member still holds api-7 at its own address, and it
	// had no reason to refute.
	for _, nd := range []*Node{c.nodes[0], c.nodes[2]} {
		if m, ok := nd.Member("api-7"); !ok || m.Addr != realAddr || m.State != StateAlive {
			t.Fatalf("%s holds api-7 as %+v, want alive at %v", nd.Myself().Name, m, realAddr)
		}
	}
	if got := real.Myself(); got.Addr != realAddr {
		t.Fatalf("the real member moved to %v", got.Addr)
	}
}

// TestRestartAtNewAddressJoinsAtOnce: a member that crashed and comes back
// under its name at a new address joins at once: its old address no longer
// answers, so it is not a conflict, and nobody waits for failure detection.
func TestRestartAtNewAddressJoinsAtOnce(t *testing.T) {
	c := newMemCluster(t, 0)
	seed := c.add("seed")
	old := c.add("api-7")
	c.add("other")
	c.joinAll()
	c.everyoneSees(c.nodes, names(c.nodes), StateAlive, 10*time.Second)
	old.Shutdown() // a crash: no leave

	again := c.add("api-7")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := again.Join(ctx, seed.Myself().Addr.String()); err != nil {
		t.Fatalf("Join after a restart at a new address: %v", err)
	}
	// Nobody declared the old instance dead on the way: the new one took
	// its place while it was still alive or at most suspect.
	waitFor(t, 10*time.Second, "every survivor to see api-7 alive at its new address", func() bool {
		for _, nd := range []*Node{seed, c.nodes[2]} {
			if m, ok := nd.Member("api-7"); !ok || m.State != StateAlive || m.Addr != again.Myself().Addr {
				return false
			}
		}
		return true
	})
	for _, nd := range []*Node{seed, c.nodes[2]} {
		for {
			select {
			case ev := <-nd.Events():
				if ev.Member.Name == "api-7" && (ev.Kind == EventFailed || ev.Kind == EventNameConflict) {
					t.Fatalf("%s: %v during a restart at a new address", nd.Myself().Name, ev)
				}
				continue
			default:
			}
			break
		}
	}
}
