package membership

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/meshward/membership/metrics"
	"github.com/meshward/membership/swim"
)

// ErrNotAllowed: an address or member outside the allow-list (Probe,
// AddMember and Join refuse such an address).
var ErrNotAllowed = swim.ErrNotAllowed

// AllowList says which members may be in the group as this node sees it:
// memberlist's CIDRsAllowed and tarantool's allowed members, together. A
// member is allowed when its name is in Names, if Names is not empty, and
// its address is in Addrs or within one of CIDRs, if either is not empty.
// The zero AllowList allows everyone.
//
// A member outside the list is never added to the view, never probed,
// never gossiped about and never answered, and nobody probes it through
// us; members that fall outside a new list are forgotten. The node itself
// is never subject to it. The key stays what keeps strangers out: the list
// narrows who, among those who hold the key, may be a member (another
// cluster on the same key, a host that was expelled).
//
// Datagrams and streams from a source address outside Addrs and CIDRs are
// dropped before any cryptography, cheaply (counted as membership.dropped
// with reason not_allowed, logged at a limited rate); a member bound to a
// wildcard address sends from the address its route picks, which must be
// on the list. Names are checked once a datagram or stream has opened.
//
// Members that do not share the list still take the outsider in and gossip
// about it; this node ignores that news, whoever passes it on (counted as
// membership.protocol with reason not_allowed). The outsider reaches this
// node's peers but never this node, so its direct probes of us fail and,
// when the helpers it picks share our list too, so do its indirect ones:
// its suspicions of us then spread through the members that let it in, and
// we refute them (SWIM §4.2). Keep the list the same on every member. See
// docs/operator.md.
type AllowList struct {
	// Names lists the allowed member names. Empty: any name.
	Names []string
	// Addrs lists allowed member addresses exactly (IP and port, as each
	// member advertises itself); a datagram or stream may come from the
	// IP with any port.
	Addrs []netip.AddrPort
	// CIDRs lists allowed networks ("10.0.0.0/8"; a single host is a /32
	// or a /128).
	CIDRs []netip.Prefix
}

// clone returns a deep copy of l.
func (l AllowList) clone() AllowList {
	return AllowList{Names: slices.Clone(l.Names), Addrs: slices.Clone(l.Addrs), CIDRs: slices.Clone(l.CIDRs)}
}

// compile checks l and returns the matcher the core and the runtime use,
// nil when l is empty.
func (l AllowList) compile() (*swim.Allow, error) {
	a, err := swim.NewAllow(l.Names, l.Addrs, l.CIDRs)
	if err != nil {
		return nil, fmt.Errorf("allow-list: %w", err)
	}
	return a, nil
}

// allowState is the list in force, as the runtime reads it from any
// goroutine.
type allowState struct {
	list  AllowList
	allow *swim.Allow
}

// WithAllowList sets the initial allow-list (see AllowList); SetAllowList
// changes it while the node runs. Default: none, everyone with the key is
// allowed.
func WithAllowList(l AllowList) Option {
	return func(c *config) error {
		a, err := l.compile()
		if err != nil {
			return fmt.Errorf("WithAllowList: %w", err)
		}
		c.allow, c.allowList = a, l.clone()
		return nil
	}
}

// SetAllowList replaces the allow-list (see AllowList) while the node runs:
// members of our view outside the new list are forgotten at once, without
// an event, and from then on nothing from or about them is taken in. An
// empty list turns the filter off; members it kept out come back as gossip
// brings them. It fails on an invalid entry (an empty name, an address
// without a port, an invalid network), changing nothing.
func (n *Node) SetAllowList(l AllowList) error {
	a, err := l.compile()
	if err != nil {
		return fmt.Errorf("membership: %w", err)
	}
	if !n.running() {
		return ErrShutdown
	}
	st := &allowState{list: l.clone(), allow: a}
	var removed int
	n.do(func() {
		n.allow.Store(st)
		removed = n.core.SetAllow(a)
	})
	n.log.Info("allow-list set", "names", len(l.Names), "addrs", len(l.Addrs), "cidrs", len(l.CIDRs), "forgotten", removed)
	return nil
}

// AllowList returns the allow-list in force (a copy); the zero AllowList
// when there is none.
func (n *Node) AllowList() AllowList {
	if st := n.allow.Load(); st != nil {
		return st.list.clone()
	}
	return AllowList{}
}

// initAllow installs the list given with WithAllowList; New calls it once
// the core exists.
func (n *Node) initAllow() {
	if n.cfg.allow == nil {
		return
	}
	n.allow.Store(&allowState{list: n.cfg.allowList, allow: n.cfg.allow})
	n.core.SetAllow(n.cfg.allow)
}

// errSourceNotAllowed is logged for a datagram dropped by source address;
// built once, so that a flood of them allocates nothing.
var errSourceNotAllowed = errors.New("source address outside the allow-list")

// admitDatagram reports whether a datagram from from may be opened, and
// counts and logs (rate-limited) one that may not. It runs on the loop
// goroutine, before any cryptography.
func (n *Node) admitDatagram(from netip.AddrPort) bool {
	st := n.allow.Load()
	if st == nil || st.allow.AllowsSource(from.Addr()) {
		return true
	}
	n.drop(metrics.DropNotAllowed, from, errSourceNotAllowed)
	return false
}

// admitStream reports whether an inbound stream may be served; one from a
// source address outside the list is closed before a byte is read, counted
// and logged at a limited rate.
func (n *Node) admitStream(c net.Conn) bool {
	st := n.allow.Load()
	if st == nil || st.allow.AllowsSource(remoteAddr(c)) {
		return true
	}
	c.Close()
	n.met.Drop(metrics.DropNotAllowed)
	if ok, suppressed := n.limiter.allow("stream-in:"+string(metrics.DropNotAllowed), time.Now()); ok {
		n.log.Warn("dropped stream", "reason", string(metrics.DropNotAllowed), "from", c.RemoteAddr(), "err", errSourceNotAllowed, "suppressed", suppressed)
	}
	return false
}

// allowsPeer reports an error when addr, where we are about to open a
// stream (Join, push-pull), is outside the list.
func (n *Node) allowsPeer(addr netip.AddrPort) error {
	if st := n.allow.Load(); st != nil && !st.allow.AllowsAddr(addr) {
		return fmt.Errorf("membership: %v: %w", addr, ErrNotAllowed)
	}
	return nil
}
