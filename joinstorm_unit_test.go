package membership

import (
	"context"
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

// TestJoinCatchUp: a joiner whose view grows after its join exchange (a
// member joined the seed after it) exchanges state with the seed once
// more; a joiner that learns nothing new after its join makes no second
// exchange. Periodic and repair exchanges are off, so that every exchange
// counted is a join or a catch-up.
func TestJoinCatchUp(t *testing.T) {
	// A gossip interval of 300 ms gives c's join 1.5 s to reach b (five
	// intervals) even on a loaded machine.
	noPeriodic := WithProtocol(func(c *swim.Config) {
		c.PushPullInterval, c.RepairInterval, c.GossipInterval = 0, 0, 300*time.Millisecond
	})
	c := newMemCluster(t, 1, noPeriodic)
	sinkB, sinkC := metrics.NewInmem(), metrics.NewInmem()
	b := c.add("node-b", noPeriodic, WithMetrics(sinkB))
	cc := c.add("node-c", noPeriodic, WithMetrics(sinkC))
	seed := c.nodes[0].Myself().Addr.String()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := b.Join(ctx, seed); err != nil {
		t.Fatal(err)
	}
	// c joins before b looks whether its view grew (one gossip interval
	// after its join): b learns c from the seed's or c's gossip.
	if _, err := cc.Join(ctx, seed); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "b's catch-up exchange", func() bool { return outboundPushPulls(sinkB) == 2 })
	waitFor(t, 5*time.Second, "c's catch-up watch to end", func() bool { return !cc.catchUp.Load() })
	if got := outboundPushPulls(sinkC); got != 1 {
		t.Fatalf("c, whose view held everyone from its join on, made %d exchanges, want 1 (no catch-up)", got)
	}
	if bad, _ := sinkB.Counter(metrics.PushPulls, metrics.Label{Name: metrics.LabelResult, Value: metrics.ResultError}); bad != 0 {
		t.Fatalf("b: %v exchanges failed", bad)
	}
	waitFor(t, 5*time.Second, "b's catch-up watch to end", func() bool { return !b.catchUp.Load() })
	if got := outboundPushPulls(sinkB); got != 2 {
		t.Fatalf("b made %d exchanges, want its join and one catch-up", got)
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
