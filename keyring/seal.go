package keyring

import (
	"crypto/rand"
	"fmt"
	"sync"
)

// The wire format of a sealed datagram (SECURITY.md, DESIGN.md §4):
//
//	0      1       2              6                 6+N
//	| ver  | suite | key fp (4)   | nonce (N)       | ciphertext ... | tag (16) |
//
// The associated data is bytes[0:6] || label: the header is authenticated,
// and the label is authenticated but never sent.

// aadPool holds buffers for header || label, so that building the associated
// data allocates nothing. (A stack array would escape through the
// cipher.AEAD interface call.)
var aadPool = sync.Pool{New: func() any { return new([headerLen + MaxLabelLen]byte) }}

// aadBuf is a pooled buffer for header || label.
type aadBuf = [headerLen + MaxLabelLen]byte

// buildAAD returns header || label. When label is empty that is header
// itself; otherwise it is built in a pooled buffer, returned so that the
// caller puts it back with releaseAAD.
func buildAAD(header, label []byte) ([]byte, *aadBuf) {
	if len(label) == 0 {
		return header, nil
	}
	buf := aadPool.Get().(*aadBuf)
	return append(append(buf[:0], header...), label...), buf
}

func releaseAAD(buf *aadBuf) {
	if buf != nil {
		aadPool.Put(buf)
	}
}

// Seal encrypts and authenticates plaintext with the primary key and appends
// the datagram to dst. label is the cluster label (at most MaxLabelLen
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

// Open authenticates and decrypts a datagram made by Seal under the same
// label and appends the plaintext to dst. It tries the installed key whose
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
// garbage collection. On success the OpenFailure is the zero value.
func (k *Keyring) OpenDetail(dst, datagram, label []byte) ([]byte, OpenFailure) {
	if len(label) > MaxLabelLen {
		return dst, OpenFailure{Reason: ReasonLabelTooLong, Len: len(label)}
	}
	if len(datagram) < headerLen {
		return dst, failure(ReasonTruncated, datagram)
	}
	if datagram[0] != Version {
		return dst, failure(ReasonUnknownVersion, datagram)
	}
	if Suite(datagram[1]) != k.suite {
		return dst, failure(ReasonUnknownSuite, datagram)
	}
	ns := k.suite.NonceSize()
	if len(datagram) < headerLen+ns+tagLen {
		return dst, failure(ReasonTruncated, datagram)
	}
	fp := [4]byte(datagram[2:headerLen])
	nonce := datagram[headerLen : headerLen+ns]
	sealed := datagram[headerLen+ns:]
	keys := k.snap.Load().keys
	aad, buf := buildAAD(datagram[:headerLen], label)
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

// failure describes why datagram was rejected, with whatever of the header
// it has.
func failure(reason OpenReason, datagram []byte) OpenFailure {
	f := OpenFailure{Reason: reason, Len: len(datagram)}
	if len(datagram) > 0 {
		f.Version = datagram[0]
	}
	if len(datagram) > 1 {
		f.Suite = datagram[1]
	}
	if len(datagram) >= headerLen && reason != ReasonUnknownVersion && reason != ReasonUnknownSuite {
		f.Fingerprint, f.HasFingerprint = [4]byte(datagram[2:headerLen]), true
	}
	return f
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
