package codec

import (
	"encoding/binary"
	"errors"
	"math"
	"strconv"

	"github.com/meshward/membership/swim"
)

// This file holds the msgpack primitives the codec is built from: appenders
// that write the smallest msgpack form of a value, size functions that agree
// with them byte for byte, and a bounded reader that accepts every msgpack
// form of the types it reads (so that any msgpack writer can talk to us) and
// never reads past its input, allocates, or recurses without a bound.
//
// The formats are those of the msgpack specification
// (https://github.com/msgpack/msgpack/blob/master/spec.md).

// msgpack format bytes.
const (
	mpPosFixintMax = 0x7f
	mpFixMap       = 0x80
	mpFixArray     = 0x90
	mpFixStr       = 0xa0
	mpNil          = 0xc0
	mpNeverUsed    = 0xc1
	mpFalse        = 0xc2
	mpTrue         = 0xc3
	mpBin8         = 0xc4
	mpBin16        = 0xc5
	mpBin32        = 0xc6
	mpExt8         = 0xc7
	mpExt16        = 0xc8
	mpExt32        = 0xc9
	mpFloat32      = 0xca
	mpFloat64      = 0xcb
	mpUint8        = 0xcc
	mpUint16       = 0xcd
	mpUint32       = 0xce
	mpUint64       = 0xcf
	mpInt8         = 0xd0
	mpInt16        = 0xd1
	mpInt32        = 0xd2
	mpInt64        = 0xd3
	mpFixExt1      = 0xd4
	mpFixExt2      = 0xd5
	mpFixExt4      = 0xd6
	mpFixExt8      = 0xd7
	mpFixExt16     = 0xd8
	mpStr8         = 0xd9
	mpStr16        = 0xda
	mpStr32        = 0xdb
	mpArray16      = 0xdc
	mpArray32      = 0xdd
	mpMap16        = 0xde
	mpMap32        = 0xdf
	mpNegFixintMin = 0xe0
)

// uintSize is the length of appendUint's output for v.
func uintSize(v uint64) int {
	switch {
	case v <= mpPosFixintMax:
		return 1
	case v <= math.MaxUint8:
		return 2
	case v <= math.MaxUint16:
		return 3
	case v <= math.MaxUint32:
		return 5
	}
	return 9
}

// appendUint appends v in its shortest msgpack form.
func appendUint(b []byte, v uint64) []byte {
	switch {
	case v <= mpPosFixintMax:
		return append(b, byte(v))
	case v <= math.MaxUint8:
		return append(b, mpUint8, byte(v))
	case v <= math.MaxUint16:
		return append(b, mpUint16, byte(v>>8), byte(v))
	case v <= math.MaxUint32:
		return append(b, mpUint32, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	}
	return binary.BigEndian.AppendUint64(append(b, mpUint64), v)
}

// strSize is the length of appendStr's output for a string of n bytes.
func strSize(n int) int {
	switch {
	case n < 32:
		return 1 + n
	case n <= math.MaxUint8:
		return 2 + n
	case n <= math.MaxUint16:
		return 3 + n
	}
	return 5 + n
}

// appendStr appends s as a msgpack str.
func appendStr(b []byte, s string) []byte {
	n := len(s)
	switch {
	case n < 32:
		b = append(b, mpFixStr|byte(n))
	case n <= math.MaxUint8:
		b = append(b, mpStr8, byte(n))
	case n <= math.MaxUint16:
		b = append(b, mpStr16, byte(n>>8), byte(n))
	default:
		b = append(b, mpStr32, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, s...)
}

// binSize is the length of appendBin's output for n bytes.
func binSize(n int) int {
	switch {
	case n == 0:
		return 1
	case n <= math.MaxUint8:
		return 2 + n
	case n <= math.MaxUint16:
		return 3 + n
	}
	return 5 + n
}

// appendBin appends p as a msgpack bin, or as nil when p is empty: the
// decoder reads nil as an empty byte string, and it saves a byte.
func appendBin(b []byte, p []byte) []byte {
	n := len(p)
	switch {
	case n == 0:
		return append(b, mpNil)
	case n <= math.MaxUint8:
		b = append(b, mpBin8, byte(n))
	case n <= math.MaxUint16:
		b = append(b, mpBin16, byte(n>>8), byte(n))
	default:
		b = append(b, mpBin32, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, p...)
}

// appendBool appends v as a msgpack bool.
func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, mpTrue)
	}
	return append(b, mpFalse)
}

// arrayHeaderSize is the length of appendArrayHeader's output for n.
func arrayHeaderSize(n int) int {
	switch {
	case n < 16:
		return 1
	case n <= math.MaxUint16:
		return 3
	}
	return 5
}

// appendArrayHeader appends the header of an n-element msgpack array.
func appendArrayHeader(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, mpFixArray|byte(n))
	case n <= math.MaxUint16:
		return append(b, mpArray16, byte(n>>8), byte(n))
	}
	return append(b, mpArray32, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// reader reads msgpack values from a byte slice. Its methods return one of
// the package's sentinel errors (ErrTruncated, ErrMalformed, ErrLimit); the
// caller wraps it in a FieldError that names what was being read.
type reader struct {
	b   []byte
	off int
}

func (r *reader) remaining() int { return len(r.b) - r.off }

// peek returns the next format byte without consuming it.
func (r *reader) peek() (byte, error) {
	if r.off >= len(r.b) {
		return 0, ErrTruncated
	}
	return r.b[r.off], nil
}

// take consumes and returns the next n bytes.
func (r *reader) take(n int) ([]byte, error) {
	if n < 0 || n > r.remaining() {
		return nil, ErrTruncated
	}
	p := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return p, nil
}

// be reads an n-byte big-endian unsigned number (n is 1, 2, 4 or 8).
func (r *reader) be(n int) (uint64, error) {
	p, err := r.take(n)
	if err != nil {
		return 0, err
	}
	var v uint64
	for _, c := range p {
		v = v<<8 | uint64(c)
	}
	return v, nil
}

// uint reads a non-negative integer in any msgpack integer form.
func (r *reader) uint() (uint64, error) {
	c, err := r.peek()
	if err != nil {
		return 0, err
	}
	r.off++
	switch {
	case c <= mpPosFixintMax:
		return uint64(c), nil
	case c >= mpUint8 && c <= mpUint64:
		return r.be(1 << (c - mpUint8))
	case c >= mpInt8 && c <= mpInt64:
		n := 1 << (c - mpInt8)
		v, err := r.be(n)
		if err != nil {
			return 0, err
		}
		if v>>(8*n-1) != 0 { // negative
			return 0, ErrMalformed
		}
		return v, nil
	}
	r.off--
	return 0, ErrMalformed
}

// bool reads a msgpack bool.
func (r *reader) bool() (bool, error) {
	c, err := r.peek()
	if err != nil {
		return false, err
	}
	switch c {
	case mpFalse:
		r.off++
		return false, nil
	case mpTrue:
		r.off++
		return true, nil
	}
	return false, ErrMalformed
}

// blob reads a msgpack str, bin or nil (as an empty, nil slice) of at most
// max bytes. The result aliases the input. On ErrLimit, n is the length the
// input declared; the limit is checked before the length is compared with
// what remains, so an oversized value is reported as such even when it is
// also truncated.
func (r *reader) blob(max int) (p []byte, n int, err error) {
	c, err := r.peek()
	if err != nil {
		return nil, 0, err
	}
	r.off++
	var v uint64
	switch {
	case c == mpNil:
		return nil, 0, nil
	case c >= mpFixStr && c <= mpFixStr|0x1f:
		v = uint64(c & 0x1f)
	case c == mpStr8 || c == mpBin8:
		v, err = r.be(1)
	case c == mpStr16 || c == mpBin16:
		v, err = r.be(2)
	case c == mpStr32 || c == mpBin32:
		v, err = r.be(4)
	default:
		r.off--
		return nil, 0, ErrMalformed
	}
	if err != nil {
		return nil, 0, err
	}
	if v > uint64(max) {
		return nil, int(min(v, math.MaxInt32)), ErrLimit
	}
	n = int(v)
	p, err = r.take(n)
	if n == 0 {
		p = nil
	}
	return p, n, err
}

// arrayLen reads a msgpack array header. Every element takes at least one
// byte, so a length beyond what remains is reported as ErrTruncated at once,
// before anyone loops over it.
func (r *reader) arrayLen() (int, error) {
	c, err := r.peek()
	if err != nil {
		return 0, err
	}
	r.off++
	var n uint64
	switch {
	case c >= mpFixArray && c <= mpFixArray|0x0f:
		n = uint64(c & 0x0f)
	case c == mpArray16:
		n, err = r.be(2)
	case c == mpArray32:
		n, err = r.be(4)
	default:
		r.off--
		return 0, ErrMalformed
	}
	if err != nil {
		return 0, err
	}
	if n > uint64(r.remaining()) {
		return 0, ErrTruncated
	}
	return int(n), nil
}

// skip consumes one msgpack value of any type. depth is the nesting level of
// the value (see MaxDepth); containers deeper than MaxDepth are rejected with
// errDepth.
// The work done is linear in the bytes consumed: every element of a
// container consumes at least one byte, and container lengths are checked
// against the remaining input before the loop.
func (r *reader) skip(depth int) error {
	c, err := r.peek()
	if err != nil {
		return err
	}
	r.off++
	var n uint64 // bytes of data to skip, or elements for containers
	switch {
	case c <= mpPosFixintMax, c >= mpNegFixintMin,
		c == mpNil, c == mpFalse, c == mpTrue:
		return nil
	case c >= mpFixStr && c <= mpFixStr|0x1f:
		n = uint64(c & 0x1f)
	case c >= mpFixArray && c <= mpFixArray|0x0f:
		return r.skipElems(uint64(c&0x0f), depth)
	case c >= mpFixMap && c <= mpFixMap|0x0f:
		return r.skipElems(2*uint64(c&0x0f), depth)
	case c == mpUint8, c == mpInt8:
		n = 1
	case c == mpUint16, c == mpInt16:
		n = 2
	case c == mpUint32, c == mpInt32, c == mpFloat32:
		n = 4
	case c == mpUint64, c == mpInt64, c == mpFloat64:
		n = 8
	case c == mpFixExt1:
		n = 2
	case c == mpFixExt2:
		n = 3
	case c == mpFixExt4:
		n = 5
	case c == mpFixExt8:
		n = 9
	case c == mpFixExt16:
		n = 17
	case c == mpStr8, c == mpBin8:
		n, err = r.be(1)
	case c == mpStr16, c == mpBin16:
		n, err = r.be(2)
	case c == mpStr32, c == mpBin32:
		n, err = r.be(4)
	case c == mpExt8:
		n, err = r.be(1)
		n++ // the type byte
	case c == mpExt16:
		n, err = r.be(2)
		n++
	case c == mpExt32:
		n, err = r.be(4)
		n++
	case c == mpArray16:
		if n, err = r.be(2); err != nil {
			return err
		}
		return r.skipElems(n, depth)
	case c == mpArray32:
		if n, err = r.be(4); err != nil {
			return err
		}
		return r.skipElems(n, depth)
	case c == mpMap16:
		if n, err = r.be(2); err != nil {
			return err
		}
		return r.skipElems(2*n, depth)
	case c == mpMap32:
		if n, err = r.be(4); err != nil {
			return err
		}
		return r.skipElems(2*n, depth)
	default: // mpNeverUsed
		return ErrMalformed
	}
	if err != nil {
		return err
	}
	if n > uint64(r.remaining()) {
		return ErrTruncated
	}
	r.off += int(n)
	return nil
}

// errDepth is what skip returns for a container nested deeper than
// MaxDepth; skipError reports it as ErrLimit on the field "depth".
var errDepth = errors.New("codec: nested too deep")

// skipError turns an error of skip into a FieldError about field, or about
// "depth" when the nesting was too deep.
func skipError(field string, index int, member bool, kind swim.Kind, err error) *FieldError {
	fe := &FieldError{Field: field, Index: index, Member: member, Kind: kind, Err: err}
	if err == errDepth {
		fe.Field, fe.Err, fe.Detail = "depth", ErrLimit, "deeper than "+strconv.Itoa(MaxDepth)+" in "+field
	}
	return fe
}

// skipElems skips the n elements of a container at nesting level depth.
func (r *reader) skipElems(n uint64, depth int) error {
	if depth > MaxDepth {
		return errDepth
	}
	if n > uint64(r.remaining()) {
		return ErrTruncated
	}
	for i := uint64(0); i < n; i++ {
		if err := r.skip(depth + 1); err != nil {
			return err
		}
	}
	return nil
}
