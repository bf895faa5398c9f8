package envelope

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/meshward/membership/keyring"
)

// TimestampLen is the length of the sender's timestamp that starts the
// plaintext of a datagram in the full layout: unix milliseconds,
// big-endian. A datagram in the compact layout (keyring.SealStamped)
// carries its timestamp in the nonce instead. The caller of SealDatagram
// reserves TimestampLen bytes at the start of the plaintext either way.
const TimestampLen = 8

// ErrLabel: a cluster label is not usable.
var ErrLabel = errors.New("envelope: invalid cluster label")

// MaxLabelLen is the longest cluster label: what the keyring allows minus
// what stream records add to the associated data.
const MaxLabelLen = keyring.MaxLabelLen - streamAADLen

// CheckLabel reports whether label can name a cluster: at most MaxLabelLen
// bytes, none of them a control character. The rule keeps datagram
// associated data (header || label) disjoint from stream records', which
// start with a 0x00 byte after the header.
func CheckLabel(label []byte) error {
	if len(label) > MaxLabelLen {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrLabel, len(label), MaxLabelLen)
	}
	for i, c := range label {
		if c < 0x20 || c == 0x7f {
			return fmt.Errorf("%w: control character %#02x at byte %d", ErrLabel, c, i)
		}
	}
	return nil
}

// Overhead is the most bytes a datagram adds to the encoded messages in
// any layout ring may send: the timestamp plus the keyring's header, nonce
// and tag of the full layout. A datagram in the compact layout adds
// fewer (CompactOverhead); budgets use Overhead, so that a Modal can
// switch layouts while it runs.
func Overhead(ring Sealer) int { return TimestampLen + ring.Overhead() }

// SentOverhead is how many bytes a datagram that ring seals now adds to
// the encoded messages: ring's compact overhead when it seals in the
// compact layout, else Overhead.
func SentOverhead(ring Sealer) int {
	if stamps(ring) {
		return ringOf(ring).CompactOverhead()
	}
	return Overhead(ring)
}

// stamps reports whether SealDatagram seals in the compact layout with
// ring: a keyring whose suite has it, or a Modal that seals with one and
// is not held to the legacy wire.
func stamps(ring Sealer) bool {
	switch r := ring.(type) {
	case *keyring.Keyring:
		return r.CompactOverhead() > 0
	case *Modal:
		return r.stamps()
	}
	return false
}

// ringOf is the keyring of a keyring or Modal, nil for another Sealer.
func ringOf(ring Sealer) *keyring.Keyring {
	switch r := ring.(type) {
	case *keyring.Keyring:
		return r
	case *Modal:
		return r.ring
	}
	return nil
}

// SealDatagram seals plaintext, whose first TimestampLen bytes the caller
// reserved (encode the messages after them), with now as the sender's
// timestamp, and appends the datagram to dst. In the compact layout
// (keyring.SealStamped: a keyring of the XChaCha20-Poly1305 suite, or a
// Modal that seals with one and is not held to the legacy wire) the
// timestamp travels in the nonce and the reserved bytes are not sent;
// otherwise they carry it.
func SealDatagram(ring Sealer, label, dst, plaintext []byte, now time.Time) ([]byte, error) {
	if len(plaintext) < TimestampLen {
		return dst, fmt.Errorf("envelope: plaintext of %d bytes has no room for the timestamp", len(plaintext))
	}
	if stamps(ring) {
		return ringOf(ring).SealStamped(dst, plaintext[TimestampLen:], label, now.UnixMilli())
	}
	return sealFull(ring, label, dst, plaintext, now)
}

// SealDatagramFull is SealDatagram in the full layout (keyring version 1,
// the timestamp in the plaintext), which every version opens, whatever
// ring's suite: what a node sends to a peer that it has not heard read the
// compact layout.
func SealDatagramFull(ring Sealer, label, dst, plaintext []byte, now time.Time) ([]byte, error) {
	if len(plaintext) < TimestampLen {
		return dst, fmt.Errorf("envelope: plaintext of %d bytes has no room for the timestamp", len(plaintext))
	}
	return sealFull(ring, label, dst, plaintext, now)
}

func sealFull(ring Sealer, label, dst, plaintext []byte, now time.Time) ([]byte, error) {
	binary.BigEndian.PutUint64(plaintext, uint64(now.UnixMilli()))
	return ring.Seal(dst, plaintext, label)
}

// IsCompact reports whether datagram (or a stream record) is in the
// keyring's compact layout. It says nothing about whether it opens.
func IsCompact(datagram []byte) bool {
	_, ok := keyring.Stamp(datagram)
	return ok
}

// OpenDatagram opens a datagram, appending its plaintext to dst, and returns
// the sender's timestamp and the body (a subslice of the returned plaintext).
// The caller checks the timestamp and the nonce with a ReplayGuard. On
// failure it returns dst and the error OpenDatagramDetail's Failure.Err
// gives; building that error allocates, which OpenDatagramDetail avoids.
func OpenDatagram(ring Sealer, label, dst, datagram []byte) (sent time.Time, body, plaintext []byte, err error) {
	sent, body, plaintext, f := OpenDatagramDetail(ring, label, dst, datagram)
	return sent, body, plaintext, f.Err()
}

// OpenDatagramDetail is OpenDatagram reporting failure as a plain value: on
// failure it returns dst and a Failure whose Reason says why, and it
// allocates nothing when dst has capacity for the plaintext, whether the
// datagram opens or not. A flood of forged datagrams therefore costs no
// garbage collection; call Failure.Err only when the error is needed (a
// rate-limited log line). On success the Failure is the zero value.
func OpenDatagramDetail(ring Sealer, label, dst, datagram []byte) (sent time.Time, body, plaintext []byte, f Failure) {
	plaintext, of := ring.OpenDetail(dst, datagram, label)
	if of.Reason != keyring.ReasonNone {
		return time.Time{}, nil, dst, Failure{reason: classify(of, plaintextOnly(ring)), open: of}
	}
	pt := plaintext[len(dst):]
	if ms, ok := keyring.Stamp(datagram); ok {
		// The compact layout, which only a keyring opens: the timestamp
		// is the nonce's, authenticated with it.
		return time.UnixMilli(ms), pt, plaintext, Failure{}
	}
	if len(pt) < TimestampLen {
		return time.Time{}, nil, dst, Failure{reason: ReasonMalformed, plaintextLen: len(pt)}
	}
	ms := int64(binary.BigEndian.Uint64(pt))
	return time.UnixMilli(ms), pt[TimestampLen:], plaintext, Failure{}
}

// Reason classifies why OpenDatagramDetail rejected a datagram.
type Reason uint8

// The reasons OpenDatagramDetail reports.
const (
	// ReasonNone: the datagram opened.
	ReasonNone Reason = iota
	// ReasonTruncated: too short for the header, nonce and tag
	// (keyring.ErrTruncated).
	ReasonTruncated
	// ReasonUnknownVersion: the version byte is not keyring.Version
	// (keyring.ErrUnknownVersion).
	ReasonUnknownVersion
	// ReasonUnknownSuite: sealed with another suite than the keyring's
	// (keyring.ErrUnknownSuite).
	ReasonUnknownSuite
	// ReasonUnencrypted: a plaintext datagram (suite 0) reached a node
	// with a keyring (keyring.ErrUnknownSuite).
	ReasonUnencrypted
	// ReasonUnknownKey: no installed key has the datagram's fingerprint,
	// and none opened it (keyring.ErrUnknownKey).
	ReasonUnknownKey
	// ReasonAuthFailed: a key with the datagram's fingerprint is installed
	// but authentication failed (keyring.ErrAuthFailed).
	ReasonAuthFailed
	// ReasonNotPlaintext: a node without encryption received a datagram
	// that is not plaintext (ErrNotPlaintext).
	ReasonNotPlaintext
	// ReasonMalformed: the datagram authenticated but its plaintext has no
	// room for the timestamp (ErrMalformed). Only a key holder can send
	// one.
	ReasonMalformed
	// ReasonLabel: the label is too long for the keyring
	// (keyring.ErrLabelTooLong), a mistake of the caller, not the sender.
	ReasonLabel
)

// String names the reason in a few words, for example "unknown key".
func (r Reason) String() string {
	switch r {
	case ReasonNone:
		return "none"
	case ReasonTruncated:
		return "truncated"
	case ReasonUnknownVersion:
		return "unknown version"
	case ReasonUnknownSuite:
		return "unknown suite"
	case ReasonUnencrypted:
		return "unencrypted"
	case ReasonUnknownKey:
		return "unknown key"
	case ReasonAuthFailed:
		return "authentication failed"
	case ReasonNotPlaintext:
		return "not plaintext"
	case ReasonMalformed:
		return "malformed"
	case ReasonLabel:
		return "label too long"
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// classify maps the sealer's verdict to a Reason. Every rejection by a
// Plaintext sealer is ReasonNotPlaintext.
func classify(f keyring.OpenFailure, plaintextSealer bool) Reason {
	if plaintextSealer {
		return ReasonNotPlaintext
	}
	switch f.Reason {
	case keyring.ReasonTruncated:
		return ReasonTruncated
	case keyring.ReasonUnknownVersion:
		return ReasonUnknownVersion
	case keyring.ReasonUnknownSuite:
		if f.Suite == 0 {
			return ReasonUnencrypted
		}
		return ReasonUnknownSuite
	case keyring.ReasonUnknownKey:
		return ReasonUnknownKey
	case keyring.ReasonAuthFailed:
		return ReasonAuthFailed
	case keyring.ReasonLabelTooLong:
		return ReasonLabel
	}
	// A reason the keyring does not define: the datagram is bad somehow.
	return ReasonMalformed
}

// Failure describes why OpenDatagramDetail rejected a datagram, as a small
// comparable value that costs no allocation. The zero value means the
// datagram opened.
type Failure struct {
	reason       Reason
	open         keyring.OpenFailure // the sealer's verdict, when it rejected the datagram
	plaintextLen int                 // for ReasonMalformed
}

// Reason says why the datagram was rejected; ReasonNone if it was not.
func (f Failure) Reason() Reason { return f.reason }

// Failed reports whether the datagram was rejected.
func (f Failure) Failed() bool { return f.reason != ReasonNone }

// Detail is the sealer's verdict: the header bytes the datagram had and
// the key fingerprint it carried, if any. It is the zero value when the
// sealer opened the datagram (ReasonNone, ReasonMalformed).
func (f Failure) Detail() keyring.OpenFailure { return f.open }

// Err returns the error OpenDatagram reports for the same datagram, nil for
// the zero Failure: a *keyring.OpenError (or an error wrapping
// keyring.ErrLabelTooLong) when the keyring rejected it, an error wrapping
// ErrNotPlaintext when a Plaintext sealer did, and one wrapping ErrMalformed
// for a plaintext without timestamp. It allocates, so call it only when the
// error is needed.
func (f Failure) Err() error {
	switch f.reason {
	case ReasonNone:
		return nil
	case ReasonNotPlaintext:
		return notPlaintextError(f.open)
	case ReasonMalformed:
		if f.open.Reason == keyring.ReasonNone {
			return fmt.Errorf("%w: plaintext of %d bytes has no timestamp", ErrMalformed, f.plaintextLen)
		}
	}
	return f.open.Err()
}

// ErrMalformed: an authenticated datagram or record does not have the shape
// this package writes. Only a key holder can produce one.
var ErrMalformed = errors.New("envelope: malformed plaintext")

// Nonce returns the nonce of a sealed datagram of either layout, which
// identifies it for the replay guard, or nil if the datagram is too short
// to have one or is plaintext (suite 0), which has none.
func Nonce(ring Sealer, datagram []byte) []byte {
	if ring.NonceSize() == 0 || isPlaintext(datagram) {
		return nil
	}
	return keyring.Nonce(datagram)
}

// isPlaintext reports whether datagram has the plaintext header: the full
// layout's version byte and suite 0.
func isPlaintext(datagram []byte) bool {
	return len(datagram) > 1 && datagram[0] == keyring.Version && datagram[1] == 0
}
