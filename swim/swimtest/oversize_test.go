package swimtest

import (
	"math/bits"
	"testing"

	"github.com/meshward/membership/swim"
)

func TestScenarioOversizedUpdateDrains(t *testing.T) {
	// Member 3's payload and left message are larger than a datagram (here
	// because MessageSize says so; Validate keeps real payloads below it).
	// They leave the queue instead of staying in it forever, and Leave
	// completes within λ·⌈log2(n+1)⌉ periods, the time any update takes.
	const n = 16
	s := newSim(t, n, 76, func(c *swim.Config) {
		c.MessageSize = func(m *swim.Message) int {
			if string(m.Payload) == "oversize" {
				return 1 << 20
			}
			return swim.EstimateSize(m)
		}
	})
	s.Run(5 * s.Period())
	s.Do(3, func(c *swim.Core) { _ = c.SetPayload([]byte("oversize")) })
	s.Do(3, func(c *swim.Core) { c.Leave() })
	limit := swim.DefaultConfig().RetransmitMult * bits.Len(uint(n))
	p := runUntil(t, s, limit, "leave done", s.Node(3).Core.LeaveDone)
	runUntil(t, s, 5, "every queue drained", func() bool {
		for _, nd := range s.Nodes() {
			if nd.Core.QueueLen() != 0 {
				return false
			}
		}
		return true
	})
	if s.Node(3).Core.Count(swim.CountUpdateTooLarge) == 0 {
		t.Error("the oversized updates were not counted")
	}
	t.Logf("leave done after %d periods (limit %d)", p, limit)
}
