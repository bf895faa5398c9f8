package envelope

import (
	"sync/atomic"

	"github.com/meshward/membership/keyring"
)

// Mode says what a Modal sealer sends and what it accepts. The modes are
// the steps of a live move between plaintext and encryption: from Off to
// Required through AcceptSealed and SendSealed, one step at a time on every
// node, and back the same way.
type Mode uint32

// The modes, in the order of the move from encryption to plaintext.
const (
	// ModeRequired seals what it sends and accepts only sealed datagrams
	// and records: a keyring's behaviour on its own.
	ModeRequired Mode = iota
	// ModeSendSealed seals what it sends and accepts sealed and plaintext.
	ModeSendSealed
	// ModeAcceptSealed sends plaintext and accepts sealed and plaintext.
	ModeAcceptSealed
	// ModeOff sends plaintext and accepts only plaintext: Plaintext's
	// behaviour.
	ModeOff
)

// Valid reports whether m is one of the modes.
func (m Mode) Valid() bool { return m <= ModeOff }

// Seals reports whether a sealer in mode m seals what it sends.
func (m Mode) Seals() bool { return m == ModeRequired || m == ModeSendSealed }

// AcceptsPlaintext reports whether a sealer in mode m opens plaintext.
func (m Mode) AcceptsPlaintext() bool { return m != ModeRequired }

// AcceptsSealed reports whether a sealer in mode m opens sealed datagrams.
func (m Mode) AcceptsSealed() bool { return m != ModeOff }

// Modal is a Sealer that seals with a keyring or sends plaintext, and
// accepts sealed datagrams, plaintext ones or both, as its mode says; the
// mode can change at any time, from any goroutine. A datagram says which
// it is: plaintext carries suite 0 in its header, a sealed one the
// keyring's suite. A stream's records are datagrams too, so a stream
// through a Modal accepts what its mode accepts, record by record.
//
// While a Modal accepts plaintext, it authenticates nothing that arrives in
// plaintext: the transitional modes are no safer than plaintext, and are
// meant to last only while a cluster moves.
type Modal struct {
	ring   *keyring.Keyring
	mode   atomic.Uint32
	legacy atomic.Bool   // seal datagrams in the full layout even where the compact one exists
	opened atomic.Uint64 // plaintext datagrams and records opened
}

var _ Sealer = (*Modal)(nil)

// NewModal returns a Modal over ring in mode m (ModeRequired if m is not a
// mode).
func NewModal(ring *keyring.Keyring, m Mode) *Modal {
	s := &Modal{ring: ring}
	s.SetMode(m)
	return s
}

// SetMode changes the mode; datagrams and records sealed or opened from
// then on follow it. A mode that is not one is taken as ModeRequired.
func (s *Modal) SetMode(m Mode) {
	if !m.Valid() {
		m = ModeRequired
	}
	s.mode.Store(uint32(m))
}

// SetLegacy makes SealDatagram seal in the full layout (version 1, which
// every version opens) when legacy is true, and in the compact layout
// where the keyring's suite has one when it is false (the default). Only
// the layout of what is sent changes: both are always opened. Hold a
// cluster to the legacy wire while nodes older than the compact layout
// are in it.
func (s *Modal) SetLegacy(legacy bool) { s.legacy.Store(legacy) }

// Legacy reports whether SetLegacy(true) holds it to the full layout.
func (s *Modal) Legacy() bool { return s.legacy.Load() }

// stamps reports whether SealDatagram seals in the compact layout now.
func (s *Modal) stamps() bool {
	return !s.legacy.Load() && s.Mode().Seals() && s.ring.CompactOverhead() > 0
}

// Mode returns the current mode.
func (s *Modal) Mode() Mode { return Mode(s.mode.Load()) }

// Keyring returns the keyring it seals and opens with.
func (s *Modal) Keyring() *keyring.Keyring { return s.ring }

// PlaintextOpened returns how many plaintext datagrams and records it has
// opened: while it stays flat on every node of a cluster in ModeSendSealed,
// every node seals and ModeRequired is safe.
func (s *Modal) PlaintextOpened() uint64 { return s.opened.Load() }

// Seal seals with the keyring, or prepends the plaintext header in the
// modes that send plaintext.
func (s *Modal) Seal(dst, plaintext, label []byte) ([]byte, error) {
	if s.Mode().Seals() {
		return s.ring.Seal(dst, plaintext, label)
	}
	return Plaintext{}.Seal(dst, plaintext, label)
}

// Open is OpenDetail returning an error: what the keyring's Open returns,
// or for a sealed datagram in ModeOff an error wrapping ErrNotPlaintext.
func (s *Modal) Open(dst, datagram, label []byte) ([]byte, error) {
	out, f, plainOnly := s.open(dst, datagram, label)
	if f.Reason != keyring.ReasonNone {
		if plainOnly {
			return dst, notPlaintextError(f)
		}
		return dst, f.Err()
	}
	return out, nil
}

// OpenDetail opens a datagram as the mode allows: plaintext (suite 0) with
// Plaintext, anything else with the keyring. What the mode refuses is
// reported as the refusing side would: a plaintext datagram in
// ModeRequired as the keyring reports suite 0 (keyring.ReasonUnknownSuite,
// Suite 0), a sealed one in ModeOff as Plaintext does. It allocates nothing
// when dst has room for the plaintext.
func (s *Modal) OpenDetail(dst, datagram, label []byte) ([]byte, keyring.OpenFailure) {
	out, f, _ := s.open(dst, datagram, label)
	return out, f
}

// open is OpenDetail, also saying whether the mode accepted plaintext only,
// so that a refusal is classified the way a Plaintext sealer's is.
func (s *Modal) open(dst, datagram, label []byte) ([]byte, keyring.OpenFailure, bool) {
	m := s.Mode()
	plain := isPlaintext(datagram)
	switch {
	case !m.AcceptsSealed():
		out, f := Plaintext{}.OpenDetail(dst, datagram, label)
		return out, f, true
	case plain && m.AcceptsPlaintext():
		out, f := Plaintext{}.OpenDetail(dst, datagram, label)
		if f.Reason == keyring.ReasonNone {
			s.opened.Add(1)
		}
		return out, f, false
	}
	out, f := s.ring.OpenDetail(dst, datagram, label)
	return out, f, false
}

// Overhead is the keyring's, the larger of the two: room is always kept for
// sealing, so that the mode can change without resizing anything.
func (s *Modal) Overhead() int { return s.ring.Overhead() }

// NonceSize is the keyring's; Nonce finds none in a plaintext datagram.
func (s *Modal) NonceSize() int { return s.ring.NonceSize() }

// plaintextOnly reports whether ring accepts nothing but plaintext, so that
// its refusals are ReasonNotPlaintext.
func plaintextOnly(ring Sealer) bool {
	switch r := ring.(type) {
	case Plaintext:
		return true
	case *Modal:
		return !r.Mode().AcceptsSealed()
	}
	return false
}
