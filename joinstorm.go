package membership

import (
	"context"
	"net/netip"
	"time"
)

// A join storm (many members joining one seed at once) leaves joiners
// behind. A joiner learns from the seed's answer every member the seed
// held then, and later members by gossip only. But the alive message of a
// member that joined while the group was small was gossiped λ·⌈log2(n+1)⌉
// times for that small n (SWIM §4.1), mostly to the few members there
// were, and then left the queues: a member that joined a moment earlier
// may miss it for seconds, until a member that holds it happens to gossip
// it to it again, or until the periodic push-pull. At N=64 the last node
// converged 1.0–2.8 s into the storm, 3–6× the median node, and it was an
// early joiner missing other early joiners (docs/joinstorm.md).
//
// So a joiner exchanges state with the same seed once more, one gossip
// interval after its join exchange (joinCatchUpAfter): the seed then
// holds every member that joined it before that, and the joiner learns
// them all at once, however early it joined. Catching up only when our
// view had grown meanwhile missed the late joiners: their view lacked
// only the one or two members that joined just after them, and grew only
// when gossip brought those, up to 1–2 s later at N=128. The second
// exchange costs one push-pull per Join, also when the group is settled
// (the periodic push-pull makes one every 30–60 s per member). Until
// joinCatchUpWindow intervals after the join, the joiner then watches its
// view: if it grows after the catch-up (the seed's storm was still going),
// it catches up once more, and that is all.

// joinCatchUpAfter is how long after its join exchange a joiner catches
// up, in gossip intervals (probe intervals without a gossip timer): time
// for the members joining the seed at the same moment to get in.
// joinCatchUpWindow is how long from the join it watches its view for
// growth after that, looking every quarter interval.
const (
	joinCatchUpAfter  = 1
	joinCatchUpWindow = 5
)

// joinCatchUp runs on the loop goroutine after our join exchange with seed
// was merged: unless catch-ups are already planned, it exchanges state
// with seed joinCatchUpAfter intervals later, and once more if our view
// grows after that within joinCatchUpWindow intervals of the join.
func (n *Node) joinCatchUp(seed netip.AddrPort) {
	select {
	case <-n.loopDone:
		return // after Shutdown, do runs us off the loop: start nothing
	default:
	}
	if !n.catchUp.CompareAndSwap(false, true) {
		return
	}
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
		members, caught := 0, 0
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
			if caught == 0 || grew {
				ctx, cancel := context.WithTimeout(n.ctx, n.cfg.streamTimeout)
				if err := n.pushPull(ctx, seed, false); err != nil {
					n.log.Debug("catch-up exchange after a join failed", "seed", seed, "err", err)
				}
				cancel()
				if caught++; caught == 2 {
					return
				}
				n.do(func() { members = n.core.NumMembers() })
			}
			if elapsed >= joinCatchUpWindow*wait {
				return
			}
			t.Reset(wait / 4)
		}
	}()
}
