package transport

import (
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"
)

func TestDiscoveryAddrs(t *testing.T) {
	pfx := netip.MustParsePrefix
	ifs := []ifaceAddrs{
		{name: "lo", flags: net.FlagUp | net.FlagLoopback | net.FlagMulticast, prefixes: []netip.Prefix{pfx("127.0.0.1/8"), pfx("::1/128")}},
		{name: "eth0", flags: net.FlagUp | net.FlagBroadcast | net.FlagMulticast, prefixes: []netip.Prefix{pfx("192.168.1.10/24"), pfx("10.1.2.3/31"), pfx("fe80::1/64")}},
		{name: "eth1", flags: net.FlagBroadcast | net.FlagMulticast, prefixes: []netip.Prefix{pfx("172.16.0.5/16")}}, // down
		{name: "tun0", flags: net.FlagUp | net.FlagPointToPoint, prefixes: []netip.Prefix{pfx("10.8.0.2/24")}},
		{name: "br0", flags: net.FlagUp | net.FlagBroadcast | net.FlagMulticast, prefixes: []netip.Prefix{pfx("10.77.0.1/20"), pfx("10.77.0.2/20")}},
	}
	all := discoveryAddrs(ifs, 7946, true, true)
	want := []netip.AddrPort{
		netip.MustParseAddrPort("192.168.1.255:7946"),
		netip.MustParseAddrPort("[ff02::1%eth0]:7946"),
		netip.MustParseAddrPort("10.77.15.255:7946"), // once for two addresses of one network
	}
	if !slices.Equal(all, want) {
		t.Fatalf("discoveryAddrs = %v, want %v", all, want)
	}
	if v4 := discoveryAddrs(ifs, 7946, true, false); len(v4) != 2 || v4[1].Addr().Is6() {
		t.Fatalf("IPv4 only: %v", v4)
	}
	if v6 := discoveryAddrs(ifs, 7946, false, true); len(v6) != 1 || v6[0].Addr().WithZone("") != AllNodes {
		t.Fatalf("IPv6 only: %v", v6)
	}
}

func TestBroadcastOf(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.7/8":     "10.255.255.255",
		"10.77.0.1/24":   "10.77.0.255",
		"192.168.1.9/30": "192.168.1.11",
		"172.16.5.4/12":  "172.31.255.255",
	} {
		if got := broadcastOf(netip.MustParsePrefix(in)); got.String() != want {
			t.Errorf("broadcastOf(%s) = %v, want %s", in, got, want)
		}
	}
}

func TestMemBroadcast(t *testing.T) {
	n := NewMemNetwork(1)
	defer n.Close()
	var eps []*MemTransport
	for _, a := range []string{"127.0.20.1:7946", "127.0.20.2:7946", "127.0.20.3:7946", "127.0.20.4:7000"} {
		tr, err := n.Listen(MemConfig{Addr: netip.MustParseAddrPort(a)})
		if err != nil {
			t.Fatal(err)
		}
		eps = append(eps, tr)
	}
	to, err := eps[0].DiscoveryAddrs(7946)
	if err != nil || len(to) != 1 {
		t.Fatalf("DiscoveryAddrs = %v, %v", to, err)
	}
	n.Partition([]netip.AddrPort{eps[2].LocalAddr()}) // cut off the third
	if err := eps[0].WriteTo([]byte("hello"), to[0]); err != nil {
		t.Fatal(err)
	}
	for _, tr := range eps[:2] { // the sender hears its own broadcast too
		p := recvPacket(t, tr, time.Second)
		if string(p.Data) != "hello" || p.From != eps[0].LocalAddr() {
			t.Fatalf("%v got %q from %v", tr.LocalAddr(), p.Data, p.From)
		}
		p.Release()
	}
	for _, tr := range eps[2:] { // cut off, and another port
		select {
		case p := <-tr.Packets():
			t.Fatalf("%v got %q", tr.LocalAddr(), p.Data)
		default:
		}
	}
	if st := n.Stats(); st.Sent != 3 || st.Cut != 1 || st.Delivered != 2 {
		t.Fatalf("stats %+v, want 3 sent, 1 cut, 2 delivered", st)
	}
}

// The interfaces of this host, read as Net.DiscoveryAddrs reads them: every
// IPv4 address keeps its prefix length, whatever form the standard library
// gives it in.
func TestSystemInterfaces(t *testing.T) {
	ifs, err := systemInterfaces()
	if err != nil {
		t.Fatal(err)
	}
	sys, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, ifi := range sys {
		addrs, _ := ifi.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
				want++
			}
		}
	}
	got := 0
	for _, ifi := range ifs {
		for _, p := range ifi.prefixes {
			if p.Addr().Is4() {
				got++
				if !p.IsValid() || p.Bits() < 0 || p.Bits() > 32 {
					t.Errorf("%s: prefix %v", ifi.name, p)
				}
			}
		}
	}
	if got != want || want == 0 {
		t.Fatalf("read %d IPv4 networks, the system lists %d", got, want)
	}
}
