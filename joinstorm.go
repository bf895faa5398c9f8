package membership

import (
	"context"
	"net/netip"
	"time"
)

// A join storm (many members joining one seed at once) leaves two gaps
// that gossip alone closes slowly.
//
// The first is the gossip timer: news waits for the next tick, up to
// GossipInterval (200 ms on a LAN), before it leaves. After a join
// exchange, both sides gossip within joinGossipDelay instead: the seed
// tells the group about the newcomer, the newcomer announces itself to the
// members the seed told it about.
//
// The second is the early joiners. A joiner learns from the seed's answer
// every member the seed held then, and later members by gossip. But the
// alive message of a member that joined while the group was small was
// gossiped λ·⌈log2(n+1)⌉ times for that small n (SWIM §4.1), mostly to
// the few members there were, and then left the queues: a member that
// joined a moment earlier may miss it for seconds, until a member that
// holds it happens to gossip it to it again, or until the periodic
// push-pull (at N=64 the last node converged 1.2–2.8 s into the storm,
// 3–6× the median node, always an early joiner missing other early
// joiners). So a joiner whose view grew after its join exchange (members
// joined after it) exchanges state with the same seed once more,
// joinCatchUpAfter later: the seed holds every member that joined before
// that, and the news of later joiners is gossiped for a group that is
// already large. A member that joins a settled group learns nothing new
// and makes no second exchange.

// joinGossipDelay is how soon after a join exchange the node gossips. The
// delay lets the exchanges of a join storm that arrive together leave in
// one round.
const joinGossipDelay = 5 * time.Millisecond

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

// gossipJoin brings the next gossip round forward after a join exchange
// was merged. It runs on the loop goroutine.
func (n *Node) gossipJoin(now time.Time) {
	n.core.GossipBy(now.Add(joinGossipDelay))
}

// joinCatchUp runs on the loop goroutine after our join exchange with seed
// was merged: unless a catch-up is already planned, it plans one
// joinCatchUpAfter intervals later, made only if our view has grown by
// then.
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
