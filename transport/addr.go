package transport

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"syscall"

	sockaddr "github.com/hashicorp/go-sockaddr"
	"github.com/hashicorp/go-sockaddr/template"
)

// ResolveAddr turns an address as a user writes it into an IP and port.
//
// s is a literal ("10.0.0.1:7946", "[::1]:0", "10.0.0.1", "::1") or a
// go-sockaddr template ("{{ GetPrivateIP }}", `{{ GetInterfaceIP "eth0" }}`),
// optionally followed by ":port" after the template's closing braces
// ("{{ GetPrivateIP }}:7946"). Without a port, defaultPort is used. The
// template must resolve to exactly one IP address; host names are not
// resolved (a membership address is an address, and DNS at bind time is a
// source of surprises).
func ResolveAddr(s string, defaultPort uint16) (netip.AddrPort, error) {
	in := strings.TrimSpace(s)
	if in == "" {
		return netip.AddrPort{}, fmt.Errorf("address %q: empty", s)
	}
	host, port := in, ""
	hasPort := false
	if strings.Contains(in, "{{") {
		// Split ":port" off after the template so an IPv6 result is
		// not confused with a port.
		end := strings.LastIndex(in, "}}")
		if end < 0 {
			return netip.AddrPort{}, fmt.Errorf("address template %q: missing closing braces", s)
		}
		rest := in[end+2:]
		if rest != "" {
			if !strings.HasPrefix(rest, ":") {
				return netip.AddrPort{}, fmt.Errorf("address template %q: unexpected %q after template (want \":port\")", s, rest)
			}
			port, hasPort = rest[1:], true
		}
		out, err := template.Parse(in[:end+2])
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("address template %q: %w", s, err)
		}
		out = strings.TrimSpace(out)
		if out == "" {
			return netip.AddrPort{}, fmt.Errorf("address template %q resolved to no address on this host", s)
		}
		if f := strings.Fields(out); len(f) > 1 {
			return netip.AddrPort{}, fmt.Errorf("address template %q resolved to %d addresses (%s); narrow it to one, e.g. with \"| limit 1\"", s, len(f), out)
		}
		host = strings.Trim(out, "[]")
	} else if ap, err := netip.ParseAddrPort(in); err == nil {
		return unmapPort(ap), nil
	} else if a, err := netip.ParseAddr(strings.Trim(in, "[]")); err == nil {
		return netip.AddrPortFrom(a.Unmap(), defaultPort), nil
	} else {
		h, p, err := net.SplitHostPort(in)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("address %q: not an IP address or IP:port", s)
		}
		host, port, hasPort = h, p, true
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("address %q: %q is not an IP address (host names are not resolved here)", s, host)
	}
	pn := defaultPort
	if hasPort {
		v, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("address %q: bad port %q", s, port)
		}
		pn = uint16(v)
	}
	return netip.AddrPortFrom(ip.Unmap(), pn), nil
}

func unmapPort(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// InterfaceAddr is one address of a network interface, as considered when
// choosing an advertise address.
type InterfaceAddr struct {
	Interface string     // interface name, e.g. "eth0"
	Addr      netip.Addr // the address
	Up        bool       // interface administratively up
	Running   bool       // interface has a carrier (false for an empty docker bridge)
	Default   bool       // interface carries the default route
}

// SystemInterfaceAddrs lists this host's interface addresses, default-route
// interface first, as ChooseAdvertiseAddr considers them.
func SystemInterfaceAddrs() ([]InterfaceAddr, error) {
	ifs, err := sockaddr.GetAllInterfaces()
	if err != nil {
		return nil, fmt.Errorf("list network interfaces: %w", err)
	}
	defaults := map[string]bool{}
	if d, err := sockaddr.GetDefaultInterfaces(); err == nil {
		for _, i := range d {
			defaults[i.Name] = true
		}
	}
	var out []InterfaceAddr
	for _, i := range ifs {
		ip := sockaddr.ToIPAddr(i.SockAddr)
		if ip == nil {
			continue
		}
		a, ok := netip.AddrFromSlice(*(*ip).NetIP())
		if !ok {
			continue
		}
		out = append(out, InterfaceAddr{
			Interface: i.Name,
			Addr:      a.Unmap(),
			Up:        i.Flags&net.FlagUp != 0,
			Running:   i.Flags&net.FlagRunning != 0,
			Default:   defaults[i.Name],
		})
	}
	slices.SortStableFunc(out, func(a, b InterfaceAddr) int {
		switch {
		case a.Default == b.Default:
			return 0
		case a.Default:
			return -1
		default:
			return 1
		}
	})
	return out, nil
}

// cgnat is RFC 6598 shared address space, private in practice (carrier NAT,
// overlay networks).
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

func isPrivate(a netip.Addr) bool { return a.IsPrivate() || cgnat.Contains(a) }

// ChooseAdvertiseAddr picks the address to advertise for a transport bound
// to bind, from the interface addresses ifs (in preference order, as
// SystemInterfaceAddrs returns them).
//
// A specific bind address is advertised as is. For a wildcard bind (0.0.0.0
// or ::) it picks the first private IPv4 address (RFC 1918, RFC 6598), else
// the first public IPv4 address; for :: (dual stack) it then falls back to
// the first private (ULA), then public IPv6 address. Only interfaces that are
// up and running count; loopback, link-local and multicast addresses never
// do, because other hosts cannot reach them. When nothing fits the error
// wraps ErrNoAdvertiseAddr, lists every address considered with the reason it
// was passed over, and names the option that fixes it.
func ChooseAdvertiseAddr(bind netip.Addr, ifs []InterfaceAddr) (netip.Addr, error) {
	if !bind.IsUnspecified() {
		return bind.Unmap(), nil
	}
	var privV4, pubV4, privV6, pubV6 []netip.Addr
	var report strings.Builder
	for _, ia := range ifs {
		a := ia.Addr
		reason := ""
		switch {
		case !ia.Up:
			reason = "interface down"
		case !ia.Running:
			reason = "interface not running"
		case a.IsLoopback():
			reason = "loopback"
		case a.IsLinkLocalUnicast():
			reason = "link-local"
		case a.IsMulticast() || a.IsUnspecified() || !a.IsGlobalUnicast():
			reason = "not unicast"
		case a.Is4() && isPrivate(a):
			privV4 = append(privV4, a)
			reason = "private IPv4"
		case a.Is4():
			pubV4 = append(pubV4, a)
			reason = "public IPv4"
		case isPrivate(a):
			privV6 = append(privV6, a)
			reason = "private IPv6"
		default:
			pubV6 = append(pubV6, a)
			reason = "public IPv6"
		}
		fmt.Fprintf(&report, "\n  %s %s (%s)", ia.Interface, a, reason)
	}
	order := [][]netip.Addr{privV4, pubV4}
	if bind.Is6() && !bind.Is4In6() {
		order = append(order, privV6, pubV6)
	}
	for _, c := range order {
		if len(c) > 0 {
			return c[0], nil
		}
	}
	want := "IPv4"
	if bind.Is6() {
		want = "IPv4 or IPv6"
	}
	considered := report.String()
	if considered == "" {
		considered = "\n  (no interface addresses)"
	}
	return netip.Addr{}, fmt.Errorf("%w: bound to %s and found no usable private or public %s address; considered:%s\nset the address others should reach this node at with WithAdvertiseAddr (transport Config.AdvertiseAddr), e.g. WithAdvertiseAddr(\"10.0.0.5\") or WithAdvertiseAddr(`{{ GetInterfaceIP \"eth0\" }}`)",
		ErrNoAdvertiseAddr, bind, want, considered)
}

// errIsAddrInUse reports whether err is "address already in use".
func errIsAddrInUse(err error) bool { return errors.Is(err, syscall.EADDRINUSE) }
