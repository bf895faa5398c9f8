package swim

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// Allow-lists (memberlist's CIDRsAllowed; tarantool's allowed members):
// which members may be in the view at all. A member outside the list is
// never added, never probed, never gossiped about and never answered, and
// nobody probes it through us. The checks sit where news enters the core:
//
//   - Step drops a datagram whose source address, or whose probe message's
//     sender name, is outside the list, before reading anything else in it.
//   - learn ignores an update about a member outside the list, whatever its
//     kind and whoever passes it on (gossip from members that do not filter
//     carries such news); so does Merge for each snapshot entry, and Merge
//     refuses a snapshot whose sender is outside the list.
//   - A ping-req for a target outside the list is not relayed; the requester
//     gets a nack at once when it asked for one, so that its local health
//     (Lifeguard §4.1, §4.3) does not pay for our refusal.
//   - Probe and AddMember refuse an address outside the list.
//
// Members already in the view that fall outside a new list are forgotten
// (SetAllow). Since such a member is then unknown to us, the SWIM machinery
// never touches it: it is not in the probe order (§4.3), not in the
// dissemination queue (§4.1), not in snapshots, and a suspicion it raises
// about anyone comes from a non-member (§4.2) and is ignored.

// ErrNotAllowed is returned for an address or member outside the
// allow-list.
var ErrNotAllowed = errors.New("not on the allow-list")

// Allow is a compiled allow-list. A member is allowed when its name is
// listed, if any names are, and its address is listed or within a listed
// network, if any addresses or networks are. A nil *Allow allows everyone.
// It never changes once built and is safe for concurrent use.
type Allow struct {
	names map[string]struct{}
	addrs map[netip.AddrPort]struct{}
	ips   map[netip.Addr]struct{} // the IPs of addrs, for source checks
	cidrs []netip.Prefix
}

// NewAllow builds an allow-list from member names, exact member addresses
// (IP and port) and networks. It returns nil, which allows everyone, when
// all three are empty. Names must be 1 to MaxNameLen bytes, addresses valid
// with a port, networks valid; IPv4-mapped IPv6 forms are unmapped.
func NewAllow(names []string, addrs []netip.AddrPort, cidrs []netip.Prefix) (*Allow, error) {
	if len(names) == 0 && len(addrs) == 0 && len(cidrs) == 0 {
		return nil, nil
	}
	a := &Allow{}
	if len(names) > 0 {
		a.names = make(map[string]struct{}, len(names))
		for _, n := range names {
			if n == "" || len(n) > MaxNameLen {
				return nil, fmt.Errorf("swim: allow-list name must be 1 to %d bytes, got %d", MaxNameLen, len(n))
			}
			a.names[n] = struct{}{}
		}
	}
	if len(addrs) > 0 || len(cidrs) > 0 {
		a.addrs = make(map[netip.AddrPort]struct{}, len(addrs))
		a.ips = make(map[netip.Addr]struct{}, len(addrs))
	}
	for _, ap := range addrs {
		if !ap.IsValid() || ap.Port() == 0 {
			return nil, fmt.Errorf("swim: allow-list address %v: want IP:port with a port", ap)
		}
		ap = netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port())
		a.addrs[ap] = struct{}{}
		a.ips[ap.Addr()] = struct{}{}
	}
	for _, p := range cidrs {
		if !p.IsValid() {
			return nil, fmt.Errorf("swim: allow-list network %v is not valid", p)
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		a.cidrs = append(a.cidrs, p.Masked())
	}
	return a, nil
}

// filtersAddrs reports whether the list restricts addresses.
func (a *Allow) filtersAddrs() bool { return a.addrs != nil }

// AllowsName reports whether name passes the name part of the list.
func (a *Allow) AllowsName(name string) bool {
	if a == nil || a.names == nil {
		return true
	}
	_, ok := a.names[name]
	return ok
}

// AllowsAddr reports whether a member at addr passes the address part of
// the list: addr is listed, or its IP is within a listed network.
func (a *Allow) AllowsAddr(addr netip.AddrPort) bool {
	if a == nil || !a.filtersAddrs() {
		return true
	}
	ip := addr.Addr().Unmap().WithZone("")
	if _, ok := a.addrs[netip.AddrPortFrom(ip, addr.Port())]; ok {
		return true
	}
	return a.inCIDRs(ip)
}

// AllowsSource reports whether a datagram or stream may come from ip: it
// is the IP of a listed address or within a listed network. Ports are not
// checked, since streams come from ephemeral ports.
func (a *Allow) AllowsSource(ip netip.Addr) bool {
	if a == nil || !a.filtersAddrs() {
		return true
	}
	ip = ip.Unmap().WithZone("")
	if _, ok := a.ips[ip]; ok {
		return true
	}
	return a.inCIDRs(ip)
}

func (a *Allow) inCIDRs(ip netip.Addr) bool {
	for _, p := range a.cidrs {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Allows reports whether the member name at addr is allowed. An invalid
// addr (news that names no address, such as a suspicion) is checked by
// name alone.
func (a *Allow) Allows(name string, addr netip.AddrPort) bool {
	if !a.AllowsName(name) {
		return false
	}
	return !addr.IsValid() || a.AllowsAddr(addr)
}

// SetAllow replaces the allow-list (nil turns it off) and forgets every
// member of the view outside the new one, tombstones included, without
// telling anyone; it returns how many it forgot. We ourselves are never
// subject to the list.
func (c *Core) SetAllow(a *Allow) int {
	c.allow = a
	if a == nil {
		return 0
	}
	removed := 0
	// forget moves the last entry into the freed slot: walking down, that
	// entry has been looked at already.
	for i := len(c.all) - 1; i >= 0; i-- {
		m := c.all[i]
		if m != c.self && !a.Allows(m.name, m.addr) {
			c.forget(m)
			removed++
		}
	}
	return removed
}

// notAllowed counts input from or about a member outside the list.
func (c *Core) notAllowed() { c.count[CountNotAllowed]++ }

// admits reports whether a received datagram may be handled: its source
// address, and the sender named by its probe message, are allowed. A
// datagram of updates alone names no sender; each update is checked on its
// own (admitsUpdate).
func (c *Core) admits(from netip.AddrPort, msgs []Message) bool {
	a := c.allow
	if a == nil {
		return true
	}
	if from.IsValid() && !a.AllowsSource(from.Addr()) {
		c.notAllowed()
		return false
	}
	for i := range msgs {
		if m := &msgs[i]; m.Kind.IsProbe() {
			if m.From != c.self.name && !a.AllowsName(m.From) {
				c.notAllowed()
				return false
			}
			break
		}
	}
	return true
}

// admitsUpdate reports whether an update about another member may be
// learnt: the member, at the address the update names if it names one, is
// allowed.
func (c *Core) admitsUpdate(u *Message) bool {
	if c.allow == nil || c.allow.Allows(u.Name, u.Addr) {
		return true
	}
	c.notAllowed()
	return false
}

// admitsSnapshot reports whether a push-pull snapshot may be merged: its
// sender, at the address its own entry names, is allowed.
func (c *Core) admitsSnapshot(s *Snapshot) bool {
	if c.allow == nil {
		return true
	}
	var addr netip.AddrPort
	if i := slices.IndexFunc(s.Members, func(e MemberState) bool { return e.Name == s.From }); i >= 0 {
		addr = s.Members[i].Addr
	}
	if c.allow.Allows(s.From, addr) {
		return true
	}
	c.notAllowed()
	return false
}

// refuseRelay handles a ping-req for a target that is not in the view: if
// the target is outside the allow-list it is counted as such and, when the
// requester asked for nacks, answered with a bare nack at once (smaller than
// the ping-req, so it amplifies nothing). It reports whether it handled the
// ping-req.
func (c *Core) refuseRelay(from netip.AddrPort, p *Message) bool {
	if c.allow == nil || c.allow.Allows(p.Name, p.Addr) {
		return false
	}
	c.notAllowed()
	if p.Nack {
		start := len(c.arena)
		c.arena = append(c.arena, Message{Kind: KindNack, Seq: p.Seq, From: c.self.name})
		c.out.Datagrams = append(c.out.Datagrams, Datagram{To: from, Msgs: c.arena[start:len(c.arena):len(c.arena)]})
	}
	return true
}
