package membership

import (
	"net/netip"

	"github.com/meshward/membership/swim"
)

// MemberByAddr returns the member at addr, ourselves included, if we know
// one: a lookup by address as Member is by name (an IPv4 address written
// as IPv4-mapped IPv6 finds the same member). Several entries can share
// an address when a member restarted there under another name: the alive
// one is returned before a suspect, and a suspect before a tombstone. It
// scans the view without copying it.
func (n *Node) MemberByAddr(addr netip.AddrPort) (Member, bool) {
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	var (
		m  swim.Member
		ok bool
	)
	n.do(func() { m, ok = n.core.MemberByAddr(addr) })
	if !ok {
		return Member{}, false
	}
	return n.withClock(memberOf(m)), true
}
