package membership

import (
	"net/netip"
	"sync"
	"time"

	"github.com/meshward/membership/codec"
	"github.com/meshward/membership/internal/envelope"
	"github.com/meshward/membership/swim"
)

// The wire per peer: what a node sends to each peer, so that a rolling
// upgrade from a version older than the compact forms is safe by default.
//
// This version has shorter wire forms than the versions before it: the
// keyring's compact layout (keyring.SealStamped: a one-byte version and
// suite, and a 16-byte nonce that carries the timestamp; 37 bytes of
// overhead instead of 54 with XChaCha20-Poly1305; SECURITY.md), and the
// codec's compact form (version 2.0: no message count, 32-bit digests; 7
// bytes less on a ping or ack; docs/codec.md). A node of an older version
// rejects both ("unknown version", or a decode error under AES-GCM or
// plaintext). Every node of this version reads both forms, whatever it
// sends.
//
// So a node sends the compact forms only to an address it has heard read
// them, and to any other the legacy forms (keyring version 1, codec 1.x)
// with the codec version 1.3: 1.2 byte for byte but for the minor, which
// every older decoder accepts and which tells a node of this version that
// we read the compact forms (codec.VersionReadsCompact). What it hears is
// learnt only from datagrams that opened under our keys and label and
// passed the replay guard: one in the compact layout, or of codec version
// 1.3 or 2.x, marks its source address; one in the legacy layout of codec
// 1.0 to 1.2 (an older node, or one held to the legacy wire, say after a
// rollback) unmarks it. A stream initiator seals its records in the
// compact layout to a marked address, and a responder answers in the
// layout the initiator used (envelope.Stream.SetFull). Two nodes of this
// version therefore reach the compact forms after one datagram each way.
//
// WithLegacyWire(true) overrides it: the node sends codec 1.2 and the full
// layout to everyone, advertising nothing.

// maxPeerWire bounds the addresses the node remembers as reading the
// compact forms, whatever swim.Config.MaxMembers says.
const maxPeerWire = 1 << 16

// peerWire is the set of addresses heard reading the compact forms. It is
// bounded (the member cap, at most maxPeerWire): a mark that would pass
// the bound clears the set first, which is safe, since the legacy forms
// reach every version, and the addresses still in the cluster mark
// themselves again with their next datagram.
type peerWire struct {
	mu      sync.Mutex
	compact map[netip.AddrPort]struct{}
	cleared uint64 // times the set was full and cleared
}

// reads reports whether addr was heard reading the compact forms.
func (w *peerWire) reads(addr netip.AddrPort) bool {
	w.mu.Lock()
	_, ok := w.compact[addr]
	w.mu.Unlock()
	return ok
}

// set marks (compact) or unmarks addr. It allocates only when it adds an
// address the set does not hold.
func (w *peerWire) set(addr netip.AddrPort, compact bool, limit int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.compact[addr]
	switch {
	case ok == compact:
	case !compact:
		delete(w.compact, addr)
	default:
		if w.compact == nil || len(w.compact) >= limit {
			if w.compact != nil {
				w.cleared++
			}
			w.compact = make(map[netip.AddrPort]struct{})
		}
		w.compact[addr] = struct{}{}
	}
}

// len is how many addresses are marked.
func (w *peerWire) len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.compact)
}

// wireLimit is the bound on peerWire.
func (n *Node) wireLimit() int { return max(1, min(n.pcfg.MaxMembers, maxPeerWire)) }

// sendsCompact reports whether the node sends the compact forms to addr:
// not under the legacy wire, and only to an address heard reading them.
func (n *Node) sendsCompact(addr netip.AddrPort) bool {
	return !n.legacyWire.Load() && n.wire.reads(addr)
}

// learnWire records what an authenticated datagram from addr says about
// the forms its sender reads: sealed is the datagram as received, body its
// opened codec bytes.
func (n *Node) learnWire(addr netip.AddrPort, sealed, body []byte) {
	if len(body) == 0 {
		return
	}
	n.wire.set(addr, envelope.IsCompact(sealed) || codec.ReadsCompact(body[0]), n.wireLimit())
}

// learnStream marks addr, the address a stream of ours was dialed to, when
// its answer came in the compact layout. An answer in the full layout
// unmarks nothing: a responder of this version mirrors our layout.
func (n *Node) learnStream(addr netip.AddrPort, st *envelope.Stream) {
	if st.PeerCompact() {
		n.wire.set(addr, true, n.wireLimit())
	}
}

// appendDatagram encodes msgs in the codec form the node sends: the compact
// form (version 2.0: no count, 32-bit digests) when compact, else the 1.x
// form, of version 1.2 under the legacy wire and 1.3 otherwise.
func (n *Node) appendDatagram(dst []byte, msgs []swim.Message, compact bool) ([]byte, error) {
	switch {
	case compact:
		return codec.AppendCompact(dst, msgs)
	case n.legacyWire.Load():
		return codec.Append(dst, msgs)
	}
	return codec.AppendReadsCompact(dst, msgs)
}

// sealDatagram seals plain (its first envelope.TimestampLen bytes
// reserved) in the compact layout, where the sealer has one, when compact,
// else in the full layout.
func (n *Node) sealDatagram(compact bool, dst, plain []byte, now time.Time) ([]byte, error) {
	if compact {
		return envelope.SealDatagram(n.sealer, n.label, dst, plain, now)
	}
	return envelope.SealDatagramFull(n.sealer, n.label, dst, plain, now)
}

// WithLegacyWire, when on is true, makes the node send the forms every
// version reads to every peer: the full layout (keyring version 1, with
// the timestamp in the plaintext) and the codec's 1.2 form, which does not
// advertise that the node reads the compact forms. Default: false, the
// wire per peer: the compact forms to every address heard reading them,
// the full layout and codec 1.3 to any other, which is safe during a
// rolling upgrade from an older version without this option. Use it to
// hold a node to what an older version sends, for example while rolling
// back. A node whose keyring uses AES-GCM, or that sends plaintext, always
// sends the full layout; only its codec form is per peer.
func WithLegacyWire(on bool) Option {
	return func(c *config) error {
		c.legacyWire = on
		return nil
	}
}

// SetLegacyWire switches what the node sends from the next datagram on:
// the legacy forms to every peer when on is true, the wire per peer when
// it is false (WithLegacyWire). It is safe at any time and from any
// goroutine: the datagram budget always leaves room for the full layout,
// and the node keeps opening both.
func (n *Node) SetLegacyWire(on bool) {
	n.legacyWire.Store(on)
	if n.keys.enc != nil {
		n.keys.enc.SetLegacy(on)
	}
}

// LegacyWire reports whether the node is held to the legacy wire
// (WithLegacyWire, SetLegacyWire).
func (n *Node) LegacyWire() bool { return n.legacyWire.Load() }
