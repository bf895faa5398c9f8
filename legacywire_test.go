package membership

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/meshward/membership/keyring"
	"github.com/meshward/membership/transport"
)

// firstBytes is a transport that records the first byte of every datagram
// it sends: the keyring layout's version.
type firstBytes struct {
	transport.Transport
	mu   sync.Mutex
	seen map[byte]int
}

func (f *firstBytes) WriteTo(b []byte, to netip.AddrPort) error {
	f.mu.Lock()
	if len(b) > 0 {
		f.seen[b[0]]++
	}
	f.mu.Unlock()
	return f.Transport.WriteTo(b, to)
}

// count returns how many datagrams starting with v were sent, and resets
// the counts.
func (f *firstBytes) take() map[byte]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.seen
	f.seen = map[byte]int{}
	return out
}

// TestLegacyWireInterop: a node held to the legacy wire sends only the full
// layout, which every version opens, default nodes learn the compact one,
// and the two form one cluster; SetLegacyWire switches what a running node
// sends from the next datagram on.
func TestLegacyWireInterop(t *testing.T) {
	t.Parallel()
	c := newMemCluster(t, 0)
	rec := &firstBytes{Transport: c.net.NewTransport(), seen: map[byte]int{}}
	old := c.add("legacy", WithTransport(rec), WithLegacyWire(true))
	c.add("compact-1")
	c.add("compact-2")
	c.joinAll()
	c.everyoneSees(c.nodes, names(c.nodes), StateAlive, 10*time.Second)
	if !old.LegacyWire() || c.nodes[1].LegacyWire() {
		t.Fatalf("LegacyWire: %v and %v", old.LegacyWire(), c.nodes[1].LegacyWire())
	}
	compact := byte(keyring.CompactVersion<<4 | byte(keyring.XChaCha20Poly1305))
	waitFor(t, 10*time.Second, "the legacy node to send datagrams", func() bool {
		return rec.seen2(keyring.Version) >= 3
	})
	if got := rec.take(); got[keyring.Version] == 0 || got[compact] != 0 {
		t.Fatalf("a legacy node sent datagrams by first byte %v: want only %#x", got, keyring.Version)
	}
	old.SetLegacyWire(false)
	rec.take()
	waitFor(t, 10*time.Second, "the switched node to send compact datagrams", func() bool {
		return rec.seen2(compact) >= 3
	})
	// Datagrams sealed before the switch (a batch of them under load) may
	// still leave in the full layout; once compact ones flow, none may.
	rec.take()
	waitFor(t, 10*time.Second, "more compact datagrams from the switched node", func() bool {
		return rec.seen2(compact) >= 3
	})
	if got := rec.take(); got[keyring.Version] != 0 {
		t.Fatalf("after SetLegacyWire(false), once compact datagrams flowed: datagrams by first byte %v", got)
	}
	c.everyoneSees(c.nodes, names(c.nodes), StateAlive, 5*time.Second)
}

// seen2 is how many datagrams starting with v were sent since the last take.
func (f *firstBytes) seen2(v byte) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seen[v]
}
