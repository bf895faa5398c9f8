package membership

import (
	"github.com/meshward/membership/codec"
	"github.com/meshward/membership/swim"
)

// The legacy wire: what a node sends while nodes of an older version, which
// do not read this version's shorter wire forms, are still in the cluster.
//
// This version sends each datagram in the keyring's compact layout
// (keyring.SealStamped: a one-byte version and suite, and a 16-byte nonce
// that carries the timestamp; 37 bytes of overhead instead of 54 with
// XChaCha20-Poly1305; SECURITY.md), and encodes its messages in the codec's
// compact form (version 2.0: no message count, 32-bit digests; 7 bytes
// less on a ping or ack; docs/codec.md). A node of an older version
// rejects such a datagram ("unknown version", or a decode error under
// AES-GCM or plaintext). Every node of this version reads both forms,
// whatever it sends.

// appendDatagram encodes msgs in the codec form the node sends: the compact
// form (version 2.0: no count, 32-bit digests), or the 1.x form under the
// legacy wire.
func (n *Node) appendDatagram(dst []byte, msgs []swim.Message) ([]byte, error) {
	if n.legacyWire.Load() {
		return codec.Append(dst, msgs)
	}
	return codec.AppendCompact(dst, msgs)
}

// WithLegacyWire makes the node send the full layout (keyring version 1,
// with the timestamp in the plaintext) and the codec's 1.x form, which
// every version reads, when on is true. Use it while upgrading a running cluster from a version older
// than the compact layout: start every upgraded node with
// WithLegacyWire(true), and once no older node is left, call
// SetLegacyWire(false) on each (or restart them without the option).
// Default: false, the compact layout. A node whose keyring uses AES-GCM, or
// that sends plaintext, always sends the full layout.
func WithLegacyWire(on bool) Option {
	return func(c *config) error {
		c.legacyWire = on
		return nil
	}
}

// SetLegacyWire switches what the node sends from the next datagram on:
// the full layout every version reads when on is true, the compact layout
// when it is false. It is safe at any time and from any goroutine: the
// datagram budget always leaves room for the full layout, and the node
// keeps opening both.
func (n *Node) SetLegacyWire(on bool) {
	n.legacyWire.Store(on)
	if n.keys.enc != nil {
		n.keys.enc.SetLegacy(on)
	}
}

// LegacyWire reports whether the node sends the legacy wire
// (WithLegacyWire, SetLegacyWire).
func (n *Node) LegacyWire() bool { return n.legacyWire.Load() }
