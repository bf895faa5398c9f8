package membership

import "github.com/meshward/membership/swim"

// Counts is how many members a node knows in each state, itself included.
type Counts struct {
	Alive, Suspect, Dead, Left int
}

// Live returns the number of alive and suspect members: those the
// protocol still counts as in the group (a suspect may yet refute).
func (c Counts) Live() int { return c.Alive + c.Suspect }

// Total returns the number of entries of the view, tombstones (dead and
// left members, kept for swim.Config.TombstoneTimeout) included: the
// length of Members().
func (c Counts) Total() int { return c.Alive + c.Suspect + c.Dead + c.Left }

// Counts returns how many members we know in each state, ourselves
// included. The protocol keeps the counts as states change, so this costs
// the same whatever the size of the view, and copies nothing.
func (n *Node) Counts() Counts {
	var c Counts
	n.do(func() { c = n.counts() })
	return c
}

// counts reads the core's counts; loop goroutine only.
func (n *Node) counts() Counts {
	return Counts{
		Alive:   n.core.NumInState(swim.StateAlive),
		Suspect: n.core.NumInState(swim.StateSuspect),
		Dead:    n.core.NumInState(swim.StateDead),
		Left:    n.core.NumInState(swim.StateLeft),
	}
}

// Health returns this node's local health score (Lifeguard §4.1): 0 when
// healthy, up to swim.Config.HealthMax (8 by default). Each point is
// evidence that this node itself is slow (missed acks and nacks, refuted
// suspicions) and stretches its probe interval and ack timeout, so that a
// struggling node accuses others less. A score that stays high means the
// host is overloaded or its network lossy. The same number is the
// membership.health gauge.
func (n *Node) Health() int {
	var h int
	n.do(func() { h = n.core.Health() })
	return h
}
