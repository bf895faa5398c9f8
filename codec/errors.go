package codec

import (
	"errors"
	"strconv"
	"strings"

	"github.com/meshward/membership/swim"
)

// Sentinel errors. Every error the decoders return wraps exactly one of them
// (test with errors.Is) inside a *FieldError that names the field (get it
// with errors.As). The encoders use ErrInvalid and ErrLimit the same way.
var (
	// ErrVersion means the input carries a protocol version whose framing
	// this package does not know (another major version).
	ErrVersion = errors.New("codec: unsupported protocol version")
	// ErrTruncated means the input ended inside a value, or declared more
	// elements or bytes than it holds.
	ErrTruncated = errors.New("codec: truncated input")
	// ErrMalformed means the input is not the msgpack this package expects:
	// a value of the wrong type where a field is read, a reserved format
	// byte, or bytes left over after the last value.
	ErrMalformed = errors.New("codec: malformed input")
	// ErrLimit means a length, count or nesting depth exceeds its bound.
	ErrLimit = errors.New("codec: bound exceeded")
	// ErrInvalid means a well-formed value that the protocol forbids: an
	// incarnation above swim.MaxIncarnation, an address that is not an IPv4
	// or IPv6 address with a port, a missing required field, an unknown
	// member state.
	ErrInvalid = errors.New("codec: invalid value")
)

// FieldError reports which field of which message or member an error is
// about. Err is one of the package's sentinel errors.
type FieldError struct {
	// Field is the wire field, for example "payload", "name", "addr",
	// "incarnation", "messages" (the count of a datagram), "members" (the
	// count of a snapshot), "depth", "version", "frame".
	Field string
	// Index is the position of the message in its datagram or of the
	// member in its snapshot, or -1 when the error is not about one.
	Index int
	// Member reports that Index counts the members of a snapshot rather
	// than the messages of a datagram.
	Member bool
	// Kind is the kind of the message the field belongs to, or 0.
	Kind swim.Kind
	// Err is the sentinel: ErrVersion, ErrTruncated, ErrMalformed,
	// ErrLimit or ErrInvalid.
	Err error
	// Detail says more, for example "300 > 255"; it may be empty.
	Detail string
}

// Error formats the error as, for example,
// "codec: message 3 (alive): payload: bound exceeded (600 > 512)".
func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString("codec: ")
	if e.Index >= 0 {
		if e.Member {
			b.WriteString("member ")
		} else {
			b.WriteString("message ")
		}
		b.WriteString(strconv.Itoa(e.Index))
		if e.Kind != 0 {
			b.WriteString(" (")
			b.WriteString(e.Kind.String())
			b.WriteString(")")
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Field)
	b.WriteString(": ")
	if e.Err != nil {
		b.WriteString(strings.TrimPrefix(e.Err.Error(), "codec: "))
	}
	if e.Detail != "" {
		b.WriteString(" (")
		b.WriteString(e.Detail)
		b.WriteString(")")
	}
	return b.String()
}

// Unwrap returns the sentinel error.
func (e *FieldError) Unwrap() error { return e.Err }

// fieldErr builds a *FieldError that is not about one message.
func fieldErr(field string, err error, detail string) *FieldError {
	return &FieldError{Field: field, Index: -1, Err: err, Detail: detail}
}

// limitDetail formats "got > max".
func limitDetail(got, max int) string {
	return strconv.Itoa(got) + " > " + strconv.Itoa(max)
}
