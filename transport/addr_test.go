package transport

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestResolveAddr(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		err  string
	}{
		{in: "10.0.0.1:7946", want: "10.0.0.1:7946"},
		{in: "10.0.0.1", want: "10.0.0.1:7000"},
		{in: " 10.0.0.1 ", want: "10.0.0.1:7000"},
		{in: "[::1]:0", want: "[::1]:0"},
		{in: "[::1]", want: "[::1]:7000"},
		{in: "::1", want: "[::1]:7000"},
		{in: "[::ffff:10.0.0.1]:5", want: "10.0.0.1:5"},
		{in: "0.0.0.0:0", want: "0.0.0.0:0"},
		{in: `{{ "10.1.2.3" }}`, want: "10.1.2.3:7000"},
		{in: `{{ "10.1.2.3" }}:9`, want: "10.1.2.3:9"},
		{in: `{{ "fd00::5" }}:9`, want: "[fd00::5]:9"},
		{in: `{{ GetAllInterfaces | include "flags" "loopback" | include "type" "IPv4" | limit 1 | attr "address" }}:1`, want: "127.0.0.1:1"},
		{in: "", err: "empty"},
		{in: "host.example:80", err: "not an IP address"},
		{in: "10.0.0.1:x", err: "bad port"},
		{in: "10.0.0.1:70000", err: "bad port"},
		{in: "{{ Nope }}", err: "Nope"},
		{in: "{{ GetPrivateIP", err: "closing braces"},
		{in: `{{ "10.1.2.3" }}x`, err: "after template"},
		{in: `{{ "10.1.2.3 10.1.2.4" }}`, err: "2 addresses"},
		{in: `{{ "" }}`, err: "no address"},
		{in: `{{ "nonsense" }}`, err: "not an IP address"},
	} {
		got, err := ResolveAddr(tc.in, 7000)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ResolveAddr(%q) = %v, %v; want error containing %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ResolveAddr(%q): %v", tc.in, err)
			continue
		}
		if got.String() != tc.want {
			t.Errorf("ResolveAddr(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestChooseAdvertiseAddr(t *testing.T) {
	ia := func(name, addr string, running bool) InterfaceAddr {
		return InterfaceAddr{Interface: name, Addr: netip.MustParseAddr(addr), Up: true, Running: running}
	}
	lo := ia("lo", "127.0.0.1", true)
	lo6 := ia("lo", "::1", true)
	ll := ia("eth0", "fe80::1", true)
	pub4 := ia("eth0", "203.0.113.7", true)
	priv4 := ia("eth1", "10.0.0.5", true)
	cgn := ia("tailscale0", "100.100.1.2", true)
	ula := ia("eth0", "fd00::2", true)
	pub6 := ia("eth0", "2001:db8::2", true)
	docker := ia("docker0", "172.17.0.1", false)
	downIf := InterfaceAddr{Interface: "eth9", Addr: netip.MustParseAddr("10.9.9.9")}

	v4any := netip.IPv4Unspecified()
	v6any := netip.IPv6Unspecified()
	for _, tc := range []struct {
		name string
		bind netip.Addr
		ifs  []InterfaceAddr
		want string // "" means error
	}{
		{"specific bind is kept", netip.MustParseAddr("127.0.0.1"), nil, "127.0.0.1"},
		{"private before public", v4any, []InterfaceAddr{lo, pub4, priv4}, "10.0.0.5"},
		{"RFC 6598 counts as private", v4any, []InterfaceAddr{pub4, cgn}, "100.100.1.2"},
		{"public when no private", v4any, []InterfaceAddr{lo, ll, pub4}, "203.0.113.7"},
		{"not running skipped", v4any, []InterfaceAddr{docker, pub4}, "203.0.113.7"},
		{"down skipped", v4any, []InterfaceAddr{downIf, pub4}, "203.0.113.7"},
		{"IPv4 bind ignores IPv6", v4any, []InterfaceAddr{lo, ula, pub6}, ""},
		{"dual stack prefers IPv4", v6any, []InterfaceAddr{ula, pub4}, "203.0.113.7"},
		{"dual stack falls back to ULA", v6any, []InterfaceAddr{lo6, ll, pub6, ula}, "fd00::2"},
		{"dual stack public IPv6", v6any, []InterfaceAddr{lo6, pub6}, "2001:db8::2"},
		{"loopback only", v4any, []InterfaceAddr{lo, lo6}, ""},
		{"nothing at all", v4any, nil, ""},
		{"only not running", v4any, []InterfaceAddr{docker}, ""},
	} {
		got, err := ChooseAdvertiseAddr(tc.bind, tc.ifs)
		if tc.want == "" {
			if !errors.Is(err, ErrNoAdvertiseAddr) {
				t.Errorf("%s: got %v, %v; want ErrNoAdvertiseAddr", tc.name, got, err)
				continue
			}
			msg := err.Error()
			if !strings.Contains(msg, "WithAdvertiseAddr") || !strings.Contains(msg, tc.bind.String()) {
				t.Errorf("%s: error does not name the bind address and the fix: %v", tc.name, err)
			}
			for _, i := range tc.ifs {
				if !strings.Contains(msg, i.Interface+" "+i.Addr.String()+" (") {
					t.Errorf("%s: error does not list %s %s: %v", tc.name, i.Interface, i.Addr, err)
				}
			}
			continue
		}
		if err != nil || got.String() != tc.want {
			t.Errorf("%s: got %v, %v; want %s", tc.name, got, err, tc.want)
		}
	}
}

func TestSystemInterfaceAddrs(t *testing.T) {
	ifs, err := SystemInterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	sawLoopback := false
	for i, a := range ifs {
		if !a.Addr.IsValid() || a.Interface == "" {
			t.Errorf("bad entry %+v", a)
		}
		if a.Addr.IsLoopback() {
			sawLoopback = true
		}
		if i > 0 && a.Default && !ifs[i-1].Default {
			t.Errorf("default-route interface %s listed after a non-default one", a.Interface)
		}
	}
	if !sawLoopback {
		t.Errorf("no loopback address among %v", ifs)
	}
}
