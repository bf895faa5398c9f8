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
// authenticates nothing. A node with a keyring never accepts it (the
// keyring rejects suite 0), and a plaintext node rejects sealed datagrams.
type Plaintext struct{}

// ErrNotPlaintext: a plaintext node received a datagram that is not plaintext
// (for example one sealed by a node with a keyring).
var ErrNotPlaintext = errors.New("envelope: not a plaintext datagram")

// Seal prepends the plaintext header.
func (Plaintext) Seal(dst, plaintext, _ []byte) ([]byte, error) {
	dst = append(dst, keyring.Version, 0, 0, 0, 0, 0)
	return append(dst, plaintext...), nil
}

// Open checks the plaintext header and appends the rest to dst.
func (Plaintext) Open(dst, datagram, _ []byte) ([]byte, error) {
	if len(datagram) < 6 || datagram[0] != keyring.Version || datagram[1] != 0 {
		n := min(len(datagram), 2)
		return dst, fmt.Errorf("%w: header %x", ErrNotPlaintext, datagram[:n])
	}
	return append(dst, datagram[6:]...), nil
}

// Overhead is the 6-byte header.
func (Plaintext) Overhead() int { return 6 }

// NonceSize is 0: plaintext datagrams carry no nonce.
func (Plaintext) NonceSize() int { return 0 }
