package swim

import "net/netip"

// numStates is the number of member states, StateAlive to StateLeft.
const numStates = int(StateLeft) + 1

// NumInState returns the number of entries of the view in state s,
// ourselves and tombstones included. The counts are kept as states change,
// so a call costs nothing whatever the size of the view.
func (c *Core) NumInState(s State) int {
	if int(s) >= numStates {
		return 0
	}
	return c.byState[s]
}

// MemberByAddr returns the member at addr, ourselves included. Several
// entries can share an address (a member that restarted under another name
// leaves a tombstone behind): an alive one is preferred, then a suspect,
// then the one that changed state last. It scans the view: O(members).
func (c *Core) MemberByAddr(addr netip.AddrPort) (Member, bool) {
	var best *member
	for _, m := range c.all {
		if m.addr != addr {
			continue
		}
		if best == nil || addrRank(m) > addrRank(best) || (addrRank(m) == addrRank(best) && m.since > best.since) {
			best = m
		}
	}
	if best == nil {
		return Member{}, false
	}
	return best.info(c), true
}

// addrRank orders entries that share an address: alive, suspect, the rest.
func addrRank(m *member) int {
	switch m.state {
	case StateAlive:
		return 2
	case StateSuspect:
		return 1
	}
	return 0
}
