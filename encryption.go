package membership

import (
	"errors"
	"fmt"

	"github.com/meshward/membership/internal/envelope"
	"github.com/meshward/membership/metrics"
)

// EncryptionMode says what a node with a keyring sends and what it accepts.
// Between EncryptionOff (plaintext) and EncryptionRequired (sealed only)
// lie two transitional modes, the steps of moving a running cluster from
// plaintext to encryption, or back, without downtime (docs/keys.md): every
// node takes a step before any node takes the next, and then no datagram
// and no stream is ever refused on the way.
//
//	mode             sends      accepts
//	Off              plaintext  plaintext
//	AcceptSealed     plaintext  plaintext and sealed
//	SendSealed       sealed     plaintext and sealed
//	Required         sealed     sealed
//
// While a node accepts plaintext, whatever reaches its port in plaintext is
// believed: the transitional modes are no safer than plaintext, and are
// meant to last only as long as the move.
type EncryptionMode uint8

// The modes, numbered from encryption to plaintext, as the
// membership.encryption.mode gauge reports them.
const (
	// EncryptionRequired seals everything sent and refuses plaintext. The
	// default with a keyring.
	EncryptionRequired EncryptionMode = iota
	// EncryptionSendSealed seals everything sent and accepts plaintext
	// too (memberlist's GossipVerifyOutgoing without
	// GossipVerifyIncoming).
	EncryptionSendSealed
	// EncryptionAcceptSealed sends plaintext and accepts sealed datagrams
	// and streams too.
	EncryptionAcceptSealed
	// EncryptionOff sends plaintext and refuses sealed datagrams, as
	// WithoutEncryption does. With a keyring, the node holds its keys
	// without using them, ready to move to encryption without a restart.
	EncryptionOff
)

// String returns "required", "send-sealed", "accept-sealed" or "off".
func (m EncryptionMode) String() string {
	switch m {
	case EncryptionRequired:
		return "required"
	case EncryptionSendSealed:
		return "send-sealed"
	case EncryptionAcceptSealed:
		return "accept-sealed"
	case EncryptionOff:
		return "off"
	}
	return fmt.Sprintf("encryption-mode(%d)", uint8(m))
}

func (m EncryptionMode) valid() bool { return m <= EncryptionOff }

// WithEncryptionMode starts the node in mode m. Every mode but
// EncryptionOff needs a keyring (WithKeyring or WithKeyringFile); with
// EncryptionOff and a keyring the node speaks plaintext and holds its keys
// unused, so that SetEncryptionMode can later move it to encryption while
// it runs. Default: EncryptionRequired with a keyring, EncryptionOff with
// WithoutEncryption.
func WithEncryptionMode(m EncryptionMode) Option {
	return func(c *config) error {
		if !m.valid() {
			return fmt.Errorf("WithEncryptionMode: unknown mode %d", uint8(m))
		}
		c.keys.mode, c.keys.modeSet = m, true
		return nil
	}
}

// SetEncryptionMode switches the node to mode m from the next datagram and
// the next stream record on (see EncryptionMode; docs/keys.md gives the
// order of the steps). A node without a keyring (WithoutEncryption) can
// only be EncryptionOff: for any other mode it returns an error wrapping
// ErrNoEncryption, and such a node must be restarted with a keyring
// (WithKeyring and WithEncryptionMode(EncryptionAcceptSealed), say) to take
// part in a move to encryption.
func (n *Node) SetEncryptionMode(m EncryptionMode) error {
	if !m.valid() {
		return fmt.Errorf("membership: SetEncryptionMode: unknown mode %d", uint8(m))
	}
	if n.keys.enc == nil {
		if m == EncryptionOff {
			return nil
		}
		return fmt.Errorf("membership: SetEncryptionMode(%v): %w", m, ErrNoEncryption)
	}
	old := EncryptionMode(n.keys.enc.Mode())
	n.keys.enc.SetMode(envelope.Mode(m))
	if old != m {
		n.log.Info("encryption mode changed", "from", old.String(), "to", m.String())
		if m == EncryptionOff {
			n.log.Warn("encryption is off: anyone who reaches the port can read and forge membership")
		}
	}
	return nil
}

// EncryptionMode returns the node's encryption mode: EncryptionOff for a
// node without a keyring.
func (n *Node) EncryptionMode() EncryptionMode {
	if n.keys.enc == nil {
		return EncryptionOff
	}
	return EncryptionMode(n.keys.enc.Mode())
}

// checkEncryption checks the encryption options against each other, once
// the key file (if any) has been read.
func (c *config) checkEncryption() error {
	if !c.keys.modeSet {
		return nil
	}
	if c.ring == nil && c.keys.mode != EncryptionOff {
		if c.plaintext {
			return fmt.Errorf("WithEncryptionMode(%v) needs a keyring, and WithoutEncryption has none", c.keys.mode)
		}
		return fmt.Errorf("WithEncryptionMode(%v): %w", c.keys.mode, ErrNoEncryption)
	}
	return nil
}

// newSealer returns what the node seals and opens with: a Modal over the
// keyring, so that the mode can change while it runs, or Plaintext.
func (n *Node) newSealer() envelope.Sealer {
	if n.ring == nil {
		n.log.Warn("encryption is off: anyone who reaches the port can read and forge membership")
		return envelope.Plaintext{}
	}
	mode := EncryptionRequired
	if n.cfg.keys.modeSet {
		mode = n.cfg.keys.mode
	}
	n.keys.enc = envelope.NewModal(n.ring, envelope.Mode(mode))
	n.keys.enc.SetLegacy(n.cfg.legacyWire) // legacywire.go
	switch mode {
	case EncryptionRequired:
	case EncryptionOff:
		n.log.Warn("encryption is off (the keyring is held unused): anyone who reaches the port can read and forge membership")
	default:
		n.log.Warn("encryption mode "+mode.String()+": plaintext is accepted, so anyone who reaches the port can forge membership; finish the move (docs/keys.md)", "mode", mode.String())
	}
	return n.keys.enc
}

// reportEncryption publishes the mode and the plaintext accepted since the
// last report.
func (n *Node) reportEncryption() {
	if n.met == nil || n.keys.enc == nil {
		return
	}
	n.met.SetGauge(metrics.EncryptionMode, float32(n.keys.enc.Mode()))
	if v := n.keys.enc.PlaintextOpened(); v > n.keys.plainSeen {
		n.met.IncrCounter(metrics.EncryptionPlaintext, float32(v-n.keys.plainSeen))
		n.keys.plainSeen = v
	}
}

// errNoKeyFile is wrapped when WithKeyringFile names a file that does not
// exist and no keyring was given to create it from.
var errNoKeyFile = errors.New("no such key file, and no WithKeyring to create it from")
