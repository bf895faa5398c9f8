package swim

import "time"

// GossipBy brings the next gossip round (GossipInterval's timer) forward to
// at, if it is due later, so that news the runtime knows to be urgent does
// not wait a whole interval: the runtime calls it after a join exchange, so
// that a newcomer's alive message, and the members it brought, spread at
// once instead of at the next tick (SWIM §4.1: the dissemination time is
// counted in rounds, and a join storm's first round need not wait for the
// timer). The round still sends only while there is news, and sets the
// timer an interval ahead as usual; calling GossipBy repeatedly never
// gossips more often than the caller's at says. Without a GossipInterval it
// does nothing.
func (c *Core) GossipBy(at time.Time) {
	if c.cfg.GossipInterval <= 0 {
		return
	}
	if t := int64(at.Sub(c.t0)); t < c.nextGossip {
		c.nextGossip = max(t, c.now)
	}
}
