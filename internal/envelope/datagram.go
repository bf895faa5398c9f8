package envelope

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/meshward/membership/keyring"
)

// TimestampLen is the length of the sender's timestamp that starts every
// datagram's plaintext: unix milliseconds, big-endian.
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

// Overhead is how many bytes a datagram adds to the encoded messages: the
// timestamp plus the keyring's header, nonce and tag.
func Overhead(ring Sealer) int { return TimestampLen + ring.Overhead() }

// SealDatagram writes now as the sender's timestamp into the first
// TimestampLen bytes of plaintext, which the caller reserved (encode the
// messages after them), seals it and appends the datagram to dst.
func SealDatagram(ring Sealer, label, dst, plaintext []byte, now time.Time) ([]byte, error) {
	if len(plaintext) < TimestampLen {
		return dst, fmt.Errorf("envelope: plaintext of %d bytes has no room for the timestamp", len(plaintext))
	}
	binary.BigEndian.PutUint64(plaintext, uint64(now.UnixMilli()))
	return ring.Seal(dst, plaintext, label)
}

// OpenDatagram opens a datagram, appending its plaintext to dst, and returns
// the sender's timestamp and the body (a subslice of the returned plaintext).
// The caller checks the timestamp and the nonce with a ReplayGuard.
func OpenDatagram(ring Sealer, label, dst, datagram []byte) (sent time.Time, body, plaintext []byte, err error) {
	plaintext, err = ring.Open(dst, datagram, label)
	if err != nil {
		return time.Time{}, nil, dst, err
	}
	pt := plaintext[len(dst):]
	if len(pt) < TimestampLen {
		return time.Time{}, nil, dst, fmt.Errorf("%w: plaintext of %d bytes has no timestamp", ErrMalformed, len(pt))
	}
	ms := int64(binary.BigEndian.Uint64(pt))
	return time.UnixMilli(ms), pt[TimestampLen:], plaintext, nil
}

// ErrMalformed: an authenticated datagram or record does not have the shape
// this package writes. Only a key holder can produce one.
var ErrMalformed = errors.New("envelope: malformed plaintext")

// Nonce returns the nonce of a sealed datagram, which identifies it for the
// replay guard, or nil if the datagram is too short to have one.
func Nonce(ring Sealer, datagram []byte) []byte {
	const headerLen = 6
	n := ring.NonceSize()
	if n == 0 || len(datagram) < headerLen+n {
		return nil
	}
	return datagram[headerLen : headerLen+n]
}
