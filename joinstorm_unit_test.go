package membership

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/meshward/membership/metrics"
	"github.com/meshward/membership/swim"
)

// outboundPushPulls is how many exchanges nd started, failed ones included.
func outboundPushPulls(s *metrics.Inmem) int {
	n, _ := s.Counter(metrics.PushPulls, metrics.Label{Name: metrics.LabelDirection, Value: string(metrics.Outbound)})
	return int(n)
}

// TestJoinCatchUp: every joiner exchanges state with its seed once more
// one gossip interval after its join; a joiner whose view grows after that
// (a member joined the seed after its catch-up) catches up a second time,
// and none goes further. Periodic and repair exchanges are off, so that
// every exchange counted is a join or a catch-up.
func TestJoinCatchUp(t *testing.T) {
	t.Parallel()
	// A gossip interval of 400 ms gives d's join 2 s (five intervals
	// from b's join) to reach b and c, even on a loaded machine.
	noPeriodic := WithProtocol(func(c *swim.Config) {
		c.PushPullInterval, c.RepairInterval, c.GossipInterval = 0, 0, 400*time.Millisecond
	})
	cl := newMemCluster(t, 1, noPeriodic)
	seed := cl.nodes[0].Myself().Addr.String()
	sinks := map[string]*metrics.Inmem{}
	nodes := map[string]*Node{}
	for _, name := range []string{"b", "c", "d"} {
		sinks[name] = metrics.NewInmem()
		nodes[name] = cl.add(name, noPeriodic, WithMetrics(sinks[name]))
	}
	join := func(name string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := nodes[name].Join(ctx, seed); err != nil {
			t.Fatalf("%s: Join: %v", name, err)
		}
	}
	exchanges := func(name string, want int) {
		t.Helper()
		waitFor(t, 5*time.Second, fmt.Sprintf("%s to make %d exchanges", name, want), func() bool { return outboundPushPulls(sinks[name]) >= want })
	}
	join("b")
	join("c")
	exchanges("b", 2) // the join and the catch-up
	exchanges("c", 2)
	// d joins after b's and c's catch-ups, within their windows: their
	// views grow, and they catch up again.
	join("d")
	exchanges("b", 3)
	exchanges("c", 3)
	for name, nd := range nodes {
		waitFor(t, 5*time.Second, name+"'s catch-up watch to end", func() bool { return !nd.catchUp.Load() })
	}
	want := map[string]int{"b": 3, "c": 3, "d": 2}
	for name, sink := range sinks {
		if got := outboundPushPulls(sink); got != want[name] {
			t.Errorf("%s made %d exchanges, want %d", name, got, want[name])
		}
		if bad, _ := sink.Counter(metrics.PushPulls, metrics.Label{Name: metrics.LabelResult, Value: metrics.ResultError}); bad != 0 {
			t.Errorf("%s: %v exchanges failed", name, bad)
		}
	}
}

// TestJoinStormNoRetry: 47 real-socket nodes join one seed at once, and
// every Join gets in at its first attempt: the seed's transport queues the
// burst of connections (it closed those beyond 32, counting 5 to 30 of 63
// in a storm of 64 nodes; 5 to 14 of 47 here) and a joiner that finds every serving slot taken
// waits for one instead of being refused. Every node then holds all 48.
func TestJoinStormNoRetry(t *testing.T) {
	if testing.Short() {
		t.Skip("a join storm of 48 real-socket nodes; skipped with -short")
	}
	r := runJoinStorm(t, 48)
	t.Logf("%v", r)
	if r.failed != 0 || r.busy != 0 || r.queueDropped != 0 {
		t.Fatalf("%d failed exchanges, %.0f streams refused or evicted by the seed, %d closed by its transport; want none", r.failed, r.busy, r.queueDropped)
	}
}
