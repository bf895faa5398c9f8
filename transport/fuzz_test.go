package transport

import (
	"strings"
	"testing"
)

// FuzzResolveAddr checks that the address parser never panics and that what
// it returns is a valid address whose port is the one written or the
// default. Templates are left out: they are operator configuration executed
// by go-sockaddr's text/template, not input from the network.
func FuzzResolveAddr(f *testing.F) {
	for _, s := range []string{"10.0.0.1:7946", "[::1]:0", "::1", "[fe80::1%eth0]:1", "1.2.3.4:", ":80", "[::ffff:1.2.3.4]:9", "host:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.Contains(s, "{{") {
			t.Skip()
		}
		ap, err := ResolveAddr(s, 7000)
		if err != nil {
			return
		}
		if !ap.IsValid() || ap.Addr().Is4In6() {
			t.Fatalf("ResolveAddr(%q) = %v: invalid or mapped", s, ap)
		}
		// Resolving the result again gives the same address.
		again, err := ResolveAddr(ap.String(), 1)
		if err != nil || again != ap {
			t.Fatalf("round trip of %q: %v -> %v, %v", s, ap, again, err)
		}
	})
}
