package membership

import (
	"context"
	"net/netip"
	"time"
)

// A join storm (many members joining one seed at once) leaves the early
// joiners behind. A joiner learns from the seed's answer every member the
// seed held then, and later members by gossip. But the alive message of a
// member that joined while the group was small was gossiped λ·⌈log2(n+1)⌉
// times for that small n (SWIM §4.1), mostly to the few members there
// were, and then left the queues: a member that joined a moment earlier
// may miss it for seconds, until a member that holds it happens to gossip
// it to it again, or until the periodic push-pull. At N=64 the last node
// converged 1.0–2.8 s into the storm, 3–6× the median node, and it was an
// early joiner missing other early joiners (docs/joinstorm.md).
//
// So a joiner whose view grows after its join exchange (members joined
// after it) exchanges state with the same seed once more: the seed holds
// every member that joined before that. A member that joins a settled
// group learns nothing new and makes no second exchange.

// joinCatchUpAfter is how long after its join exchange a joiner first
// looks whether its view grew, in gossip intervals (probe intervals
// without a gossip timer): one round for the storm's first news to reach
// it. It looks again every quarter of that until joinCatchUpWindow
// intervals have passed: in a storm whose gossip rounds fall just after
// the first look, a late joiner's view may grow only then.
const (
	joinCatchUpAfter  = 1
	joinCatchUpWindow = 5
)

// joinCatchUp runs on the loop goroutine after our join exchange with seed
// was merged: unless a catch-up is already planned, it watches our view
// from joinCatchUpAfter intervals on, and exchanges state with seed once
// as soon as the view has grown, or gives up after joinCatchUpWindow
// intervals.
func (n *Node) joinCatchUp(seed netip.AddrPort) {
	select {
	case <-n.loopDone:
		return // after Shutdown, do runs us off the loop: start nothing
	default:
	}
	if !n.catchUp.CompareAndSwap(false, true) {
		return
	}
	members := n.core.NumMembers()
	wait := n.pcfg.GossipInterval
	if wait <= 0 {
		wait = n.pcfg.ProbeInterval
	}
	n.bg.Add(1)
	go func() {
		defer n.bg.Done()
		defer n.catchUp.Store(false)
		t := time.NewTimer(joinCatchUpAfter * wait)
		defer t.Stop()
		for elapsed := joinCatchUpAfter * wait; ; elapsed += wait / 4 {
			select {
			case <-t.C:
			case <-n.stop:
				return
			}
			grew := false
			n.do(func() { grew = n.core.NumMembers() > members })
			if !n.running() {
				return
			}
			if grew {
				break
			}
			if elapsed >= joinCatchUpWindow*wait {
				return // a settled group: nothing to catch up on
			}
			t.Reset(wait / 4)
		}
		ctx, cancel := context.WithTimeout(n.ctx, n.cfg.streamTimeout)
		defer cancel()
		if err := n.pushPull(ctx, seed, false); err != nil {
			n.log.Debug("catch-up exchange after a join failed", "seed", seed, "err", err)
		}
	}()
}
