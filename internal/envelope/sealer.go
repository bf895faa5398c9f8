package envelope

import (
	"errors"
	"fmt"

	"github.com/meshward/membership/keyring"
)

// Sealer is what the envelope seals and opens with: a *keyring.Keyring, or
// Plaintext for a cluster that opted out of encryption.
type Sealer interface {
	Seal(dst, plaintext, label []byte) ([]byte, error)
	Open(dst, datagram, label []byte) ([]byte, error)
	// OpenDetail is Open reporting failure as a plain value, so that a
	// rejected datagram costs no allocation (keyring.Keyring.OpenDetail).
	// On failure it returns dst unchanged.
	OpenDetail(dst, datagram, label []byte) ([]byte, keyring.OpenFailure)
	// Overhead is how many bytes Seal adds.
	Overhead() int
	// NonceSize is the length of the nonce after the 6-byte header; 0
	// when there is none.
	NonceSize() int
}

var _ Sealer = (*keyring.Keyring)(nil)

// Plaintext is the Sealer of a cluster that explicitly opted out of
// encryption: the same 6-byte header as a sealed datagram with suite 0 and a
// zero fingerprint, then the plaintext, with no nonce and no tag. It
// authenticates nothing. A keyring never accepts it (it rejects suite 0),
// a Modal only in the modes that accept plaintext, and a plaintext node
// rejects sealed datagrams.
type Plaintext struct{}

// ErrNotPlaintext: a plaintext node received a datagram that is not plaintext
// (for example one sealed by a node with a keyring).
var ErrNotPlaintext = errors.New("envelope: not a plaintext datagram")

// Seal prepends the plaintext header.
func (Plaintext) Seal(dst, plaintext, _ []byte) ([]byte, error) {
	dst = append(dst, keyring.Version, 0, 0, 0, 0, 0)
	return append(dst, plaintext...), nil
}

// Open checks the plaintext header and appends the rest to dst. It rejects
// anything else with an error wrapping ErrNotPlaintext.
func (p Plaintext) Open(dst, datagram, label []byte) ([]byte, error) {
	out, f := p.OpenDetail(dst, datagram, label)
	if f.Reason != keyring.ReasonNone {
		return dst, notPlaintextError(f)
	}
	return out, nil
}

// OpenDetail is Open reporting failure as a value, in the keyring's terms
// (the plaintext header is a keyring header with suite 0): too short for the
// header is keyring.ReasonTruncated, another version
// keyring.ReasonUnknownVersion, and another suite (a sealed datagram)
// keyring.ReasonUnknownSuite, with the fingerprint the header carries (a
// sealed datagram in the compact layout too, with its version and suite
// as the keyring reads them). It allocates nothing when dst has capacity
// for the plaintext.
func (Plaintext) OpenDetail(dst, datagram, _ []byte) ([]byte, keyring.OpenFailure) {
	f := keyring.OpenFailure{Len: len(datagram)}
	if len(datagram) > 0 {
		f.Version = datagram[0]
	}
	if len(datagram) > 0 && datagram[0]>>4 == keyring.CompactVersion {
		// A sealed datagram in the compact layout: report its header as
		// the keyring reads it.
		f.Version, f.Suite = keyring.CompactVersion, datagram[0]&0x0f
		if len(datagram) >= 5 {
			f.Fingerprint, f.HasFingerprint = [4]byte(datagram[1:5]), true
		}
		f.Reason = keyring.ReasonUnknownSuite
		if len(datagram) < 5 {
			f.Reason = keyring.ReasonTruncated
		}
		return dst, f
	}
	if len(datagram) > 1 {
		f.Suite = datagram[1]
	}
	if len(datagram) >= 6 {
		f.Fingerprint, f.HasFingerprint = [4]byte(datagram[2:6]), f.Suite != 0
	}
	switch {
	case len(datagram) < 6:
		f.Reason = keyring.ReasonTruncated
	case f.Version != keyring.Version:
		f.Reason = keyring.ReasonUnknownVersion
	case f.Suite != 0:
		f.Reason = keyring.ReasonUnknownSuite
	default:
		return append(dst, datagram[6:]...), keyring.OpenFailure{}
	}
	return dst, f
}

// notPlaintextError is the error Plaintext.Open returns for a datagram
// OpenDetail rejected with f: it names the header bytes the datagram had.
func notPlaintextError(f keyring.OpenFailure) error {
	header := []byte{f.Version, f.Suite}[:min(f.Len, 2)]
	return fmt.Errorf("%w: header %x", ErrNotPlaintext, header)
}

// Overhead is the 6-byte header.
func (Plaintext) Overhead() int { return 6 }

// NonceSize is 0: plaintext datagrams carry no nonce.
func (Plaintext) NonceSize() int { return 0 }
