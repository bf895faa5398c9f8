package swimtest

import (
	"testing"
	"time"

	"github.com/meshward/membership/swim"
)

// TestScenarioHalfPartitionDetection: ten members at LAN settings (the
// library's ProfileLAN: the default configuration with a 200 ms gossip
// timer) split 5/5. In each of 20 seeded runs every member of each half
// holds every member of the other dead within 60 periods. Half of every
// member's probes fail, and helpers on the far side send no nack, so every
// health score rises; the bound holds only if the helpers of a member's own
// half nack in time however unhealthy they are themselves. With nacks
// stretched by the helper's health, runs took a median of 52 periods and
// up to 457 in 2000 seeds; without, a median of 19 and at most 49.
func TestScenarioHalfPartitionDetection(t *testing.T) {
	const n, runs, bound = 10, 20, 60
	cfg := swim.DefaultConfig()
	cfg.GossipFanout, cfg.GossipInterval = 3, 200*time.Millisecond
	worst := 0
	for seed := uint64(1); seed <= runs; seed++ {
		s, err := New(Options{Nodes: n, Seed: seed, Config: cfg, Link: lan})
		if err != nil {
			t.Fatal(err)
		}
		s.Run(10 * s.Period())
		var a, b []int
		for i := range n {
			if i < n/2 {
				a = append(a, i)
			} else {
				b = append(b, i)
			}
		}
		s.Partition(a, b)
		split := func() bool {
			for _, nd := range s.Nodes() {
				if nd.Core.NumLive() != n/2 {
					return false
				}
			}
			return true
		}
		p := 0
		for ; p <= bound && !split(); p++ {
			s.Run(s.Period())
		}
		if !split() {
			t.Errorf("seed %d: the halves did not hold each other dead within %d periods", seed, bound)
		}
		worst = max(worst, p)
	}
	t.Logf("5/5 partition of %d members: the slowest of %d runs took %d periods", n, runs, worst)
}
