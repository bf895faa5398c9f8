package keyring

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sync"

	"golang.org/x/crypto/chacha20poly1305"
)

// The wire formats of a sealed datagram (SECURITY.md, DESIGN.md §4). The
// full layout, version 1, for both suites:
//
//	0      1       2              6                 6+N
//	| ver  | suite | key fp (4)   | nonce (N)       | ciphertext ... | tag (16) |
//
// The associated data is bytes[0:6] || label: the header is authenticated,
// and the label is authenticated but never sent.
//
// The compact layout, version 2, for XChaCha20-Poly1305 only:
//
//	0            1              5                    21
//	| 2<<4|suite | key fp (4)   | ms (6) | rand (10) | ciphertext ... | tag (16) |
//
// One byte holds the version (high nibble) and the suite (low nibble). The
// 16-byte wire nonce is the sealer's clock in unix milliseconds (6 bytes,
// big-endian) and 10 random bytes; the AEAD's 24-byte nonce is the wire
// nonce followed by 8 zero bytes, so the wire nonce is exactly the input of
// XChaCha20's HChaCha20 subkey derivation. The associated data is
// bytes[0:5] || label. SECURITY.md argues that the nonces do not repeat.

// aadPool holds buffers for header || label and for an expanded nonce, so
// that building them allocates nothing. (A stack array would escape
// through the cipher.AEAD interface call.)
var aadPool = sync.Pool{New: func() any { return new(aadBuf) }}

// aadBuf is a pooled buffer for header || label, and for the AEAD nonce
// of the compact layout.
type aadBuf struct {
	aad   [headerLen + MaxLabelLen]byte
	nonce [chacha20poly1305.NonceSizeX]byte
}

// buildAAD returns header || label. When label is empty that is header
// itself; otherwise it is built in a pooled buffer, returned so that the
// caller puts it back with releaseAAD.
func buildAAD(header, label []byte) ([]byte, *aadBuf) {
	if len(label) == 0 {
		return header, nil
	}
	buf := aadPool.Get().(*aadBuf)
	return append(append(buf.aad[:0], header...), label...), buf
}

func releaseAAD(buf *aadBuf) {
	if buf != nil {
		aadPool.Put(buf)
	}
}

// Seal encrypts and authenticates plaintext with the primary key and appends
// the datagram, in the full layout (version 1, which every version opens),
// to dst. label is the cluster label (at most MaxLabelLen
// bytes): it is authenticated but not sent, so only a keyring given the same
// label opens the datagram. Seal allocates nothing when dst has capacity for
// len(plaintext)+Overhead() more bytes. plaintext and dst must not overlap.
func (k *Keyring) Seal(dst, plaintext, label []byte) ([]byte, error) {
	if len(label) > MaxLabelLen {
		return dst, fmt.Errorf("%w: %d bytes, at most %d", ErrLabelTooLong, len(label), MaxLabelLen)
	}
	p := k.snap.Load().keys[0]
	ns := k.suite.NonceSize()
	ret, out := grow(dst, headerLen+ns+len(plaintext)+tagLen)
	out[0] = Version
	out[1] = byte(k.suite)
	copy(out[2:headerLen], p.fp[:])
	nonce := out[headerLen : headerLen+ns]
	// Since Go 1.24 rand.Read never returns an error: it crashes the
	// program instead, so there is no error to handle here.
	rand.Read(nonce)
	aad, buf := buildAAD(out[:headerLen], label)
	p.aead.Seal(out[headerLen+ns:headerLen+ns], nonce, plaintext, aad)
	releaseAAD(buf)
	p.seals.Add(1)
	return ret, nil
}

// SealStamped is Seal in the compact layout (version 2): a one-byte
// version and suite, the key fingerprint, and a 16-byte nonce made of ms,
// the sender's clock in unix milliseconds (6 bytes, big-endian; clamped to
// 0..2^48-1), and 10 random bytes, then the ciphertext and the tag: 37
// bytes of overhead instead of Seal's 46. The receiver reads ms back with
// Stamp, so the plaintext need not carry a timestamp for the replay guard.
// Only XChaCha20-Poly1305 has the layout (Suite.CompactOverhead is 0 for
// AES-GCM, whose 96-bit random nonce has no bits to spare); for another
// suite SealStamped returns an error wrapping ErrUnknownSuite. SECURITY.md
// argues why the nonces do not repeat. It allocates nothing when dst has
// capacity for len(plaintext)+CompactOverhead() more bytes. plaintext and
// dst must not overlap.
func (k *Keyring) SealStamped(dst, plaintext, label []byte, ms int64) ([]byte, error) {
	if len(label) > MaxLabelLen {
		return dst, fmt.Errorf("%w: %d bytes, at most %d", ErrLabelTooLong, len(label), MaxLabelLen)
	}
	if !k.suite.compact() {
		return dst, fmt.Errorf("%w: %s has no compact layout", ErrUnknownSuite, k.suite)
	}
	var random [CompactNonceLen - StampLen]byte
	// Since Go 1.24 rand.Read never returns an error: it crashes the
	// program instead, so there is no error to handle here.
	rand.Read(random[:])
	return k.sealStamped(dst, plaintext, label, ms, random[:]), nil
}

// sealStamped is SealStamped with the nonce's random bytes given: for
// SealStamped and the known-answer tests.
func (k *Keyring) sealStamped(dst, plaintext, label []byte, ms int64, random []byte) []byte {
	p := k.snap.Load().keys[0]
	ret, out := grow(dst, compactHeaderLen+CompactNonceLen+len(plaintext)+tagLen)
	out[0] = CompactVersion<<4 | byte(k.suite)
	copy(out[1:compactHeaderLen], p.fp[:])
	nonce := out[compactHeaderLen : compactHeaderLen+CompactNonceLen]
	var stamp [8]byte
	binary.BigEndian.PutUint64(stamp[:], uint64(min(max(ms, 0), maxStamp)))
	copy(nonce, stamp[8-StampLen:])
	copy(nonce[StampLen:], random)
	buf := aadPool.Get().(*aadBuf)
	aad := append(append(buf.aad[:0], out[:compactHeaderLen]...), label...)
	p.aead.Seal(out[compactHeaderLen+CompactNonceLen:compactHeaderLen+CompactNonceLen], expandNonce(&buf.nonce, nonce), plaintext, aad)
	aadPool.Put(buf)
	p.seals.Add(1)
	return ret
}

// sealWithNonce is Seal with a given nonce, for known-answer tests only.
func (k *Keyring) sealWithNonce(dst, nonce, plaintext, label []byte) []byte {
	p := k.snap.Load().keys[0]
	ret, out := grow(dst, headerLen+len(nonce)+len(plaintext)+tagLen)
	out[0] = Version
	out[1] = byte(k.suite)
	copy(out[2:headerLen], p.fp[:])
	copy(out[headerLen:], nonce)
	aad := append(append([]byte{}, out[:headerLen]...), label...)
	p.aead.Seal(out[headerLen+len(nonce):headerLen+len(nonce)], nonce, plaintext, aad)
	return ret
}

// Open authenticates and decrypts a datagram made by Seal or SealStamped
// under the same label and appends the plaintext to dst. It tries the installed key whose
// fingerprint the datagram carries first, then every other key, primary
// first. On failure it returns dst unchanged and an *OpenError that wraps
// ErrTruncated, ErrUnknownVersion, ErrUnknownSuite, ErrUnknownKey or
// ErrAuthFailed (or ErrLabelTooLong for a bad label). Open allocates nothing
// on success when dst has capacity for the plaintext; building the error
// costs one allocation, which OpenDetail avoids. dst and datagram must not
// overlap.
func (k *Keyring) Open(dst, datagram, label []byte) ([]byte, error) {
	out, f := k.OpenDetail(dst, datagram, label)
	return out, f.Err()
}

// OpenDetail is Open reporting failure as a plain value instead of an error:
// it returns dst unchanged and an OpenFailure whose Reason says why, and
// f.Err() is the error Open returns for the same datagram. When dst has
// capacity for the plaintext, OpenDetail allocates nothing, whether the
// datagram opens or not, so rejecting a flood of forged datagrams costs no
// garbage collection. On success the OpenFailure is the zero value. It
// opens both layouts, the full one (version 1) and the compact one
// (version 2, SealStamped).
func (k *Keyring) OpenDetail(dst, datagram, label []byte) ([]byte, OpenFailure) {
	if len(label) > MaxLabelLen {
		return dst, OpenFailure{Reason: ReasonLabelTooLong, Len: len(label)}
	}
	l, reason := parseHeader(datagram)
	switch {
	case reason != ReasonNone:
		return dst, failure(reason, datagram)
	case Suite(l.suite) != k.suite:
		return dst, failure(ReasonUnknownSuite, datagram)
	case l.compact && !k.suite.compact():
		return dst, failure(ReasonUnknownVersion, datagram)
	}
	ns := k.suite.NonceSize()
	if l.compact {
		ns = CompactNonceLen
	}
	if len(datagram) < l.header+ns+tagLen {
		return dst, failure(ReasonTruncated, datagram)
	}
	fp := [4]byte(datagram[l.header-4 : l.header])
	nonce := datagram[l.header : l.header+ns]
	sealed := datagram[l.header+ns:]
	keys := k.snap.Load().keys
	aad, buf := buildAAD(datagram[:l.header], label)
	if l.compact {
		if buf == nil {
			buf = aadPool.Get().(*aadBuf)
		}
		nonce = expandNonce(&buf.nonce, nonce)
	}
	defer releaseAAD(buf)
	// Keys whose fingerprint matches first (a 4-byte fingerprint can
	// collide, so there may be more than one), then the rest, primary first.
	matched := false
	for pass := 0; pass < 2; pass++ {
		for _, key := range keys {
			if (key.fp == fp) != (pass == 0) {
				continue
			}
			matched = matched || pass == 0
			if out, err := key.aead.Open(dst, nonce, sealed, aad); err == nil {
				return out, OpenFailure{}
			}
		}
	}
	if matched {
		return dst, failure(ReasonAuthFailed, datagram)
	}
	return dst, failure(ReasonUnknownKey, datagram)
}

// layout is what a datagram's first byte says about it.
type layout struct {
	version, suite byte
	compact        bool
	header         int // bytes before the nonce: 6 or 5
}

// parseHeader reads the version and suite of a datagram of either layout,
// or says why it cannot: too short for the header, or an unknown version.
func parseHeader(datagram []byte) (layout, OpenReason) {
	if len(datagram) == 0 {
		return layout{}, ReasonTruncated
	}
	switch v := datagram[0]; {
	case v == Version:
		if len(datagram) < headerLen {
			return layout{}, ReasonTruncated
		}
		return layout{version: v, suite: datagram[1], header: headerLen}, ReasonNone
	case v>>4 == CompactVersion:
		if len(datagram) < compactHeaderLen {
			return layout{}, ReasonTruncated
		}
		return layout{version: CompactVersion, suite: v & 0x0f, compact: true, header: compactHeaderLen}, ReasonNone
	}
	return layout{}, ReasonUnknownVersion
}

// expandNonce writes the AEAD nonce of the compact layout into buf: the
// 16-byte wire nonce, then zeros.
func expandNonce(buf *[chacha20poly1305.NonceSizeX]byte, wire []byte) []byte {
	*buf = [chacha20poly1305.NonceSizeX]byte{}
	copy(buf[:], wire)
	return buf[:]
}

// failure describes why datagram was rejected, with whatever of the header
// it has.
func failure(reason OpenReason, datagram []byte) OpenFailure {
	f := OpenFailure{Reason: reason, Len: len(datagram)}
	if len(datagram) > 0 {
		f.Version = datagram[0]
	}
	fpAt := 2
	if len(datagram) > 0 && datagram[0]>>4 == CompactVersion {
		f.Version, f.Suite, fpAt = CompactVersion, datagram[0]&0x0f, 1
	} else if len(datagram) > 1 {
		f.Suite = datagram[1]
	}
	if len(datagram) >= fpAt+4 && reason != ReasonUnknownVersion && reason != ReasonUnknownSuite {
		f.Fingerprint, f.HasFingerprint = [4]byte(datagram[fpAt:fpAt+4]), true
	}
	return f
}

// Nonce returns the wire nonce of a datagram of either layout that opened,
// which tells it apart from every other datagram sealed under its key: the
// replay guard remembers it. It returns nil for a datagram too short to
// have one, or of an unknown version or suite.
func Nonce(datagram []byte) []byte {
	l, reason := parseHeader(datagram)
	if reason != ReasonNone {
		return nil
	}
	s := Suite(l.suite)
	n := s.NonceSize()
	if l.compact {
		if !s.compact() {
			return nil
		}
		n = CompactNonceLen
	}
	if n == 0 || len(datagram) < l.header+n {
		return nil
	}
	return datagram[l.header : l.header+n]
}

// Stamp returns the timestamp, in unix milliseconds, that the nonce of a
// compact datagram (SealStamped) carries. ok is false for a datagram of the
// full layout, or one too short to hold the stamp. Like everything in a
// datagram, the stamp is authenticated only once the datagram has opened:
// the AEAD nonce includes it, so a changed stamp fails authentication.
func Stamp(datagram []byte) (ms int64, ok bool) {
	if len(datagram) < compactHeaderLen+StampLen || datagram[0]>>4 != CompactVersion {
		return 0, false
	}
	var b [8]byte
	copy(b[2:], datagram[compactHeaderLen:compactHeaderLen+StampLen])
	return int64(binary.BigEndian.Uint64(b[:])), true
}

// grow extends b by n bytes, reusing its capacity when it can. It returns
// the whole slice and the n new bytes.
func grow(b []byte, n int) (whole, tail []byte) {
	total := len(b) + n
	if cap(b) >= total {
		whole = b[:total]
	} else {
		whole = make([]byte, total)
		copy(whole, b)
	}
	return whole, whole[len(b):]
}
