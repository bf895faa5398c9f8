package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// Suite names the AEAD a keyring seals with. Its numeric value is the suite
// byte of the wire format (SECURITY.md) and never changes.
type Suite uint8

const (
	// AESGCM is AES in Galois/Counter Mode with 16-, 24- or 32-byte keys and
	// a 12-byte random nonce. Random 96-bit nonces bound how many datagrams
	// one key may seal (NIST SP 800-38D §8.3: 2^32 invocations per key), so
	// keyrings of this suite count their seals; see Stats.
	AESGCM Suite = 1
	// XChaCha20Poly1305 is XChaCha20-Poly1305 with a 32-byte key and a
	// 24-byte random nonce: random nonces are safe at any volume, so it is
	// the default.
	XChaCha20Poly1305 Suite = 2
)

// AESGCMSealLimit is the number of seals per AES-GCM key after which random
// 96-bit nonces exceed the collision bound of NIST SP 800-38D §8.3. The bound
// is per key across the whole cluster: every node that seals with the key
// spends from it, so rotate well before the cluster-wide sum of the seal
// counts reaches it.
const AESGCMSealLimit = 1 << 32

// Version is the version byte of the full layout that Seal writes, which
// both suites have: version, suite and fingerprint in 6 bytes, and the
// suite's whole nonce.
const Version = 1

// CompactVersion is the version of the compact layout that SealStamped
// writes, in the high nibble of the first byte (the suite is in the low
// nibble): 0x22 for XChaCha20-Poly1305. Open reads both layouts.
const CompactVersion = 2

const (
	// CompactNonceLen is the length of the compact layout's wire nonce:
	// StampLen bytes of timestamp and 10 random bytes.
	CompactNonceLen = 16
	// StampLen is the length of the timestamp at the start of the compact
	// layout's nonce: unix milliseconds, big-endian.
	StampLen = 6
	maxStamp = 1<<(8*StampLen) - 1 // the year 10889

	headerLen        = 6  // version, suite, 4-byte key fingerprint
	compactHeaderLen = 5  // version and suite in one byte, 4-byte key fingerprint
	tagLen           = 16 // both suites use a 16-byte tag
	// MaxLabelLen is the longest cluster label, in bytes, that Seal and
	// Open accept.
	MaxLabelLen = 255
)

// String returns the suite's name as a key file writes it:
// "aes-gcm" or "xchacha20-poly1305".
func (s Suite) String() string {
	switch s {
	case AESGCM:
		return "aes-gcm"
	case XChaCha20Poly1305:
		return "xchacha20-poly1305"
	}
	return fmt.Sprintf("suite(%d)", uint8(s))
}

// ParseSuite is the inverse of Suite.String. An unknown name is an error
// wrapping ErrUnknownSuite.
func ParseSuite(name string) (Suite, error) {
	switch name {
	case "aes-gcm":
		return AESGCM, nil
	case "xchacha20-poly1305":
		return XChaCha20Poly1305, nil
	}
	return 0, fmt.Errorf("%w %q: want %q or %q", ErrUnknownSuite, name, AESGCM.String(), XChaCha20Poly1305.String())
}

func (s Suite) valid() bool { return s == AESGCM || s == XChaCha20Poly1305 }

// NonceSize is the length of the random nonce the suite puts in every
// datagram of the full layout (Seal): 12 for AES-GCM, 24 for
// XChaCha20-Poly1305, 0 for an unknown suite. The compact layout's nonce
// (SealStamped) is CompactNonceLen bytes.
func (s Suite) NonceSize() int {
	switch s {
	case AESGCM:
		return 12
	case XChaCha20Poly1305:
		return chacha20poly1305.NonceSizeX
	}
	return 0
}

// Overhead is how many bytes Seal adds to a plaintext in the full layout:
// the 6-byte header, the nonce and the 16-byte tag (34 for AES-GCM, 46 for
// XChaCha20-Poly1305). See CompactOverhead for SealStamped's.
func (s Suite) Overhead() int { return headerLen + s.NonceSize() + tagLen }

// compact reports whether the suite has the compact layout (SealStamped).
func (s Suite) compact() bool { return s == XChaCha20Poly1305 }

// CompactOverhead is how many bytes SealStamped adds to a plaintext: the
// 5-byte header, the 16-byte nonce and the 16-byte tag, 37 for
// XChaCha20-Poly1305; 0 for a suite without the compact layout.
func (s Suite) CompactOverhead() int {
	if !s.compact() {
		return 0
	}
	return compactHeaderLen + CompactNonceLen + tagLen
}

// checkKey reports whether key suits s, with an error that says what was
// expected. It never puts key material into the error.
func (s Suite) checkKey(key []byte) error {
	switch s {
	case AESGCM:
		switch len(key) {
		case 16, 24, 32:
		default:
			return fmt.Errorf("%w: %s needs a 16-, 24- or 32-byte key, got %d bytes", ErrInvalidKey, s, len(key))
		}
	case XChaCha20Poly1305:
		if len(key) != chacha20poly1305.KeySize {
			return fmt.Errorf("%w: %s needs a %d-byte key, got %d bytes", ErrInvalidKey, s, chacha20poly1305.KeySize, len(key))
		}
	default:
		return fmt.Errorf("%w: %s", ErrUnknownSuite, s)
	}
	zero := byte(0)
	for _, b := range key {
		zero |= b
	}
	if zero == 0 {
		return fmt.Errorf("%w: the key is all zero bytes", ErrInvalidKey)
	}
	return nil
}

// newAEAD prepares the AEAD for a key already checked by checkKey.
func (s Suite) newAEAD(key []byte) (cipher.AEAD, error) {
	switch s {
	case AESGCM:
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		return cipher.NewGCM(block)
	case XChaCha20Poly1305:
		return chacha20poly1305.NewX(key)
	}
	return nil, fmt.Errorf("%w: %s", ErrUnknownSuite, s)
}
