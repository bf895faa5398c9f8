package transport

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
)

// Discoverer is implemented by transports that can reach every host of
// their local networks with one datagram, for LAN discovery: the runtime
// sends a discovery probe to each address DiscoveryAddrs returns, and the
// members that hear it answer from their own unicast addresses.
type Discoverer interface {
	// DiscoveryAddrs returns the addresses that reach every host on the
	// transport's local networks at port.
	DiscoveryAddrs(port uint16) ([]netip.AddrPort, error)
}

// AllNodes is the IPv6 link-local all-nodes multicast group (RFC 4291
// §2.7.1), which every IPv6 interface joins.
var AllNodes = netip.MustParseAddr("ff02::1")

// MemBroadcast is the address that reaches every endpoint of a MemNetwork
// at a port, as a LAN's broadcast address reaches every host on it.
var MemBroadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

var (
	_ Discoverer = (*Net)(nil)
	_ Discoverer = (*MemTransport)(nil)
)

// DiscoveryAddrs returns, at port, the broadcast address of every IPv4
// network on an interface that is up, broadcasts and is not a loopback,
// and the all-nodes group ff02::1 zoned to every such IPv6 interface that
// multicasts, for the address families the socket is bound to: IPv4 for an
// IPv4 bind address, IPv6 for a specific IPv6 one, both for "::". Only
// members bound to a wildcard address receive these datagrams (a socket
// bound to a unicast address does not). The UDP socket may send to them:
// the standard library sets SO_BROADCAST on every UDP socket.
func (t *Net) DiscoveryAddrs(port uint16) ([]netip.AddrPort, error) {
	ifs, err := systemInterfaces()
	if err != nil {
		return nil, err
	}
	b := t.bound.Addr()
	v4 := b.Is4() || b.Is4In6() || b.IsUnspecified()
	v6 := b.Is6() && !b.Is4In6()
	return discoveryAddrs(ifs, port, v4, v6), nil
}

// DiscoveryAddrs returns MemBroadcast at port.
func (t *MemTransport) DiscoveryAddrs(port uint16) ([]netip.AddrPort, error) {
	return []netip.AddrPort{netip.AddrPortFrom(MemBroadcast, port)}, nil
}

// ifaceAddrs is one interface as discoveryAddrs considers it.
type ifaceAddrs struct {
	name     string
	flags    net.Flags
	prefixes []netip.Prefix
}

// systemInterfaces lists this host's interfaces and their networks.
func systemInterfaces() ([]ifaceAddrs, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("transport: list network interfaces: %w", err)
	}
	out := make([]ifaceAddrs, 0, len(ifs))
	for _, ifi := range ifs {
		addrs, err := ifi.Addrs()
		if err != nil {
			continue
		}
		ia := ifaceAddrs{name: ifi.Name, flags: ifi.Flags}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(ipn.IP)
			if !ok {
				continue
			}
			ones, bits := ipn.Mask.Size()
			if ip.Is4In6() {
				ip = ip.Unmap()
				if bits == 128 {
					ones -= 96
				}
			}
			if p := netip.PrefixFrom(ip, ones); p.IsValid() {
				ia.prefixes = append(ia.prefixes, p)
			}
		}
		out = append(out, ia)
	}
	return out, nil
}

// discoveryAddrs computes the discovery addresses of ifs at port.
func discoveryAddrs(ifs []ifaceAddrs, port uint16, v4, v6 bool) []netip.AddrPort {
	var out []netip.AddrPort
	add := func(a netip.Addr) {
		ap := netip.AddrPortFrom(a, port)
		if !slices.Contains(out, ap) {
			out = append(out, ap)
		}
	}
	for _, ifi := range ifs {
		if ifi.flags&net.FlagUp == 0 || ifi.flags&net.FlagLoopback != 0 {
			continue
		}
		has6 := false
		for _, p := range ifi.prefixes {
			switch {
			case p.Addr().Is4():
				// A /31 or /32 has no broadcast address (RFC 3021).
				if v4 && ifi.flags&net.FlagBroadcast != 0 && p.Bits() < 31 {
					add(broadcastOf(p))
				}
			case p.Addr().Is6():
				has6 = true
			}
		}
		if v6 && has6 && ifi.flags&net.FlagMulticast != 0 {
			add(AllNodes.WithZone(ifi.name))
		}
	}
	return out
}

// broadcastOf returns the broadcast address of an IPv4 network: every host
// bit set.
func broadcastOf(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	for i := p.Bits(); i < 32; i++ {
		a[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom4(a)
}

// broadcast delivers b to every endpoint at port, the sender included (a
// host's broadcasts loop back to it too), each as a datagram of its own
// subject to its link's faults.
func (n *MemNetwork) broadcast(b []byte, from netip.AddrPort, port uint16) {
	n.mu.Lock()
	var to []netip.AddrPort
	for a := range n.endpoints {
		if a.Port() == port {
			to = append(to, a)
		}
	}
	n.mu.Unlock()
	slices.SortFunc(to, func(x, y netip.AddrPort) int { return x.Compare(y) }) // reproducible faults
	for _, a := range to {
		n.send(b, from, a)
	}
}
