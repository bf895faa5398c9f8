package swim

import (
	"fmt"
	"net/netip"
)

// Operator inputs beyond MarkLeft and RemoveMember: discovery of members on
// the local network, and whether news we hold has been disseminated.

// pendDiscover is the pending kind of a Discover ping.
const pendDiscover = pendTomb + 1

// Discover pings addr, a broadcast or multicast address (a LAN's IPv4
// broadcast address, or the IPv6 all-nodes group ff02::1 with the zone of
// an interface), by address: a ping that names no target, as AddMember
// sends, so that every member that receives it answers. Each answer
// introduces its sender, which joins the view as with AddMember. The ping
// carries our alive message, so every member that hears it learns of us
// too.
//
// The answers come as ProbeResults carrying the returned token: one with
// OK set for each ack, naming the member (Name) and the address it answered
// from (Addr), then one with OK unset once ProbeInterval has passed, which
// ends the discovery. An ack from ourselves (broadcasts loop back) yields
// nothing. Members whose socket is bound to a specific address rather than
// a wildcard do not receive broadcasts, and members on other links cannot
// be reached this way.
func (c *Core) Discover(addr netip.AddrPort) (uint64, error) {
	return c.probeAddr(addr, pendDiscover)
}

// checkTarget validates the address of a ping by address (probeAddr): a
// member's unicast address for Probe and AddMember, which must pass the
// allow-list; any address with a port for Discover, whose link-local
// multicast group needs the zone that the wire never carries (the answers
// come from unicast addresses, and are checked as any datagram is).
func (c *Core) checkTarget(addr netip.AddrPort, kind pendingKind) error {
	if kind == pendDiscover {
		if !addr.IsValid() || addr.Port() == 0 {
			return fmt.Errorf("swim: invalid discovery address %v", addr)
		}
		return nil
	}
	if !validAddr(addr) {
		return fmt.Errorf("swim: invalid address %v", addr)
	}
	if !c.allow.AllowsAddr(addr) {
		c.notAllowed()
		return fmt.Errorf("swim: probe %v: %w", addr, ErrNotAllowed)
	}
	return nil
}

// discoveryAck reports one answer to a discovery ping, whose pending entry
// stays until it expires so that every member that heard it is reported.
func (c *Core) discoveryAck(from netip.AddrPort, p *Message, q *pending) {
	if p.From == c.self.name {
		return
	}
	c.out.ProbeResults = append(c.out.ProbeResults, ProbeResult{
		Token: q.token, Addr: from, OK: true, Name: p.From, RTT: timeDur(c.now - q.start),
	})
}

// Disseminating reports whether our news about the named member is still
// queued for dissemination (SWIM §4.1: it is piggybacked λ·⌈log2(n+1)⌉
// times) while there is a live member to send it to. A runtime polls it
// after MarkLeft, as LeaveDone after Leave.
func (c *Core) Disseminating(name string) bool {
	m := c.members[name]
	return m != nil && m.qIdx >= 0 && len(c.order) > 0
}
