package membership

// The legacy wire: what a node sends while nodes of an older version, which
// do not read this version's shorter wire forms, are still in the cluster.
//
// This version sends each datagram in the keyring's compact layout
// (keyring.SealStamped: a one-byte version and suite, and a 16-byte nonce
// that carries the timestamp; 37 bytes of overhead instead of 54 with
// XChaCha20-Poly1305; SECURITY.md). A node of an older version rejects such
// a datagram ("unknown version"). Every node of this version opens both
// forms, whatever it sends.

// WithLegacyWire makes the node send the full layout (keyring version 1,
// with the timestamp in the plaintext), which every version reads, when on
// is true. Use it while upgrading a running cluster from a version older
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
