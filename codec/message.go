package codec

import (
	"net/netip"
	"strconv"

	"github.com/meshward/membership/swim"
)

// A message travels as a msgpack array: its kind, then the fields its kind
// uses, in the order of kindSpecs. The fields are positional: no names, no
// map, so that the common gossip message costs a few bytes of framing.

// field identifies one field of swim.Message on the wire.
type field uint8

// The fields of swim.Message, in the order of the struct. A field that swim
// adds gets the next number here, a name in fieldNames, a case in fieldSize,
// appendField and (*Decoder).readField, and is appended to the field list
// of every kind that carries it (see docs/codec.md, "Adding a field").
const (
	fieldSeq field = iota + 1
	fieldFrom
	fieldName
	fieldAddr
	fieldIncarnation
	fieldPayload
	fieldDigest
	fieldNack
)

// fieldNames are the names FieldError uses for the fields.
var fieldNames = [...]string{
	fieldSeq:         "seq",
	fieldFrom:        "from",
	fieldName:        "name",
	fieldAddr:        "addr",
	fieldIncarnation: "incarnation",
	fieldPayload:     "payload",
	fieldDigest:      "digest",
	fieldNack:        "nack",
}

func (f field) String() string { return fieldNames[f] }

// fieldSet is a set of fields.
type fieldSet uint16

func setOf(fs ...field) fieldSet {
	var s fieldSet
	for _, f := range fs {
		s |= 1 << f
	}
	return s
}

func (s fieldSet) has(f field) bool { return s&(1<<f) != 0 }

// kindSpec is the wire form of one message kind.
type kindSpec struct {
	// fields are the fields the kind carries, in wire order. New fields
	// are only ever appended, never inserted or removed: the position of a
	// field is its identity on the wire.
	fields []field
	// min is how many of fields every message of this kind must carry: the
	// fields of protocol version 1.0. Fields appended by later minor
	// versions are optional, and read as their zero value when absent.
	min int
	// required are the fields that must not be empty: a name of at least
	// one byte, a valid address.
	required fieldSet
}

// kindSpecs is the table of swim.Message's doc comment, by kind.
var kindSpecs = [...]kindSpec{
	swim.KindPing: {
		fields:   []field{fieldSeq, fieldFrom, fieldName, fieldDigest},
		min:      4,
		required: setOf(fieldFrom), // Name may be empty: a probe of a bare address
	},
	swim.KindPingReq: {
		fields:   []field{fieldSeq, fieldFrom, fieldName, fieldAddr, fieldNack},
		min:      5,
		required: setOf(fieldFrom, fieldName, fieldAddr),
	},
	swim.KindAck: {
		fields:   []field{fieldSeq, fieldFrom, fieldDigest},
		min:      3,
		required: setOf(fieldFrom),
	},
	swim.KindNack: {
		fields:   []field{fieldSeq, fieldFrom},
		min:      2,
		required: setOf(fieldFrom),
	},
	swim.KindAlive: {
		fields:   []field{fieldName, fieldAddr, fieldIncarnation, fieldPayload},
		min:      4,
		required: setOf(fieldName, fieldAddr),
	},
	swim.KindSuspect: {
		fields:   []field{fieldFrom, fieldName, fieldIncarnation},
		min:      3,
		required: setOf(fieldFrom, fieldName),
	},
	swim.KindDead: {
		fields:   []field{fieldFrom, fieldName, fieldIncarnation},
		min:      3,
		required: setOf(fieldFrom, fieldName),
	},
	swim.KindLeft: {
		fields:   []field{fieldName, fieldAddr, fieldIncarnation, fieldPayload},
		min:      4,
		required: setOf(fieldName, fieldAddr),
	},
	// Version 1.1. Its payload is filler, bounded by MaxPadding rather
	// than by Limits.MaxPayload (see payloadLimit).
	swim.KindPad: {
		fields: []field{fieldPayload},
		min:    1,
	},
}

// payloadLimit is the bound on the payload of a message of kind k: the
// member payload bound, except for padding, which only the datagram bounds.
func payloadLimit(k swim.Kind, maxPayload int) int {
	if k == swim.KindPad {
		return MaxPadding
	}
	return maxPayload
}

// specOf returns the wire form of kind k, or nil for a kind this version
// does not know.
func specOf(k uint64) *kindSpec {
	if k >= uint64(len(kindSpecs)) || kindSpecs[k].fields == nil {
		return nil
	}
	return &kindSpecs[k]
}

// addrSize is the encoded size of an address: a bin8 of the IP (4 or 16
// bytes) followed by the port (2 bytes, big-endian).
func addrSize(a netip.AddrPort) int {
	if a.Addr().Is4() {
		return 2 + 4 + 2
	}
	return 2 + 16 + 2
}

func appendAddr(b []byte, a netip.AddrPort) []byte {
	ip := a.Addr()
	if ip.Is4() {
		v := ip.As4()
		b = append(b, mpBin8, 6)
		b = append(b, v[:]...)
	} else {
		v := ip.As16()
		b = append(b, mpBin8, 18)
		b = append(b, v[:]...)
	}
	return append(b, byte(a.Port()>>8), byte(a.Port()))
}

// validAddr reports whether a is an address the wire can carry and a member
// can be reached at: an IPv4 or IPv6 address without a zone, and a port.
func validAddr(a netip.AddrPort) bool {
	ip := a.Addr()
	return (ip.Is4() || ip.Is6()) && ip.Zone() == "" && a.Port() != 0
}

// parseAddr is the inverse of appendAddr's payload.
func parseAddr(p []byte) (netip.AddrPort, bool) {
	var ip netip.Addr
	switch len(p) {
	case 6:
		ip = netip.AddrFrom4([4]byte(p[:4]))
	case 18:
		ip = netip.AddrFrom16([16]byte(p[:16]))
	default:
		return netip.AddrPort{}, false
	}
	a := netip.AddrPortFrom(ip, uint16(p[len(p)-2])<<8|uint16(p[len(p)-1]))
	return a, a.Port() != 0
}

// MessageSize returns the exact number of bytes m takes in a datagram. For
// every list of messages that Append accepts,
//
//	len(datagram) == HeaderSize + Σ MessageSize(&msgs[i])
//
// which is what swim needs to pack updates into a byte budget (see Fit).
// For a message of a kind this package does not know, it returns 0; for
// another message that Append would reject, the result is not meaningful.
func MessageSize(m *swim.Message) int {
	sp := specOf(uint64(m.Kind))
	if sp == nil {
		return 0
	}
	n := arrayHeaderSize(1+len(sp.fields)) + uintSize(uint64(m.Kind))
	for _, f := range sp.fields {
		n += fieldSize(m, f)
	}
	return n
}

func fieldSize(m *swim.Message, f field) int {
	switch f {
	case fieldSeq:
		return uintSize(uint64(m.Seq))
	case fieldFrom:
		return strSize(len(m.From))
	case fieldName:
		return strSize(len(m.Name))
	case fieldAddr:
		return addrSize(m.Addr)
	case fieldIncarnation:
		return uintSize(m.Incarnation)
	case fieldPayload:
		return binSize(len(m.Payload))
	case fieldDigest:
		return uintSize(m.Digest)
	case fieldNack:
		return 1
	}
	return 0
}

// appendMessage appends a message that checkMessage accepted.
func appendMessage(b []byte, m *swim.Message, sp *kindSpec) []byte {
	b = appendArrayHeader(b, 1+len(sp.fields))
	b = appendUint(b, uint64(m.Kind))
	for _, f := range sp.fields {
		b = appendField(b, m, f)
	}
	return b
}

func appendField(b []byte, m *swim.Message, f field) []byte {
	switch f {
	case fieldSeq:
		return appendUint(b, uint64(m.Seq))
	case fieldFrom:
		return appendStr(b, m.From)
	case fieldName:
		return appendStr(b, m.Name)
	case fieldAddr:
		return appendAddr(b, m.Addr)
	case fieldIncarnation:
		return appendUint(b, m.Incarnation)
	case fieldPayload:
		return appendBin(b, m.Payload)
	case fieldDigest:
		return appendUint(b, m.Digest)
	case fieldNack:
		return appendBool(b, m.Nack)
	}
	return b
}

// checkMessage reports why m, the index-th message of a datagram, cannot be
// sent, or returns nil. It applies the same rules as the decoder, so that
// what Append writes the decoder reads back, and maxPayload bounds the
// payload.
func checkMessage(m *swim.Message, index, maxPayload int) *FieldError {
	sp := specOf(uint64(m.Kind))
	if sp == nil {
		return &FieldError{Field: "kind", Index: index, Err: ErrInvalid, Detail: m.Kind.String()}
	}
	bad := func(f field, err error, detail string) *FieldError {
		return &FieldError{Field: f.String(), Index: index, Kind: m.Kind, Err: err, Detail: detail}
	}
	for _, f := range sp.fields {
		switch f {
		case fieldFrom, fieldName:
			s := m.From
			if f == fieldName {
				s = m.Name
			}
			if len(s) > swim.MaxNameLen {
				return bad(f, ErrLimit, limitDetail(len(s), swim.MaxNameLen))
			}
			if s == "" && sp.required.has(f) {
				return bad(f, ErrInvalid, "empty")
			}
		case fieldAddr:
			if !validAddr(m.Addr) {
				return bad(f, ErrInvalid, m.Addr.String())
			}
		case fieldIncarnation:
			if m.Incarnation > swim.MaxIncarnation {
				return bad(f, ErrInvalid, strconv.FormatUint(m.Incarnation, 10))
			}
		case fieldPayload:
			if max := payloadLimit(m.Kind, maxPayload); len(m.Payload) > max {
				return bad(f, ErrLimit, limitDetail(len(m.Payload), max))
			}
		}
	}
	return nil
}

// pendingStr is a name read from a datagram or frame that becomes a string
// once the whole input has been checked, so that all of them share one
// allocation.
type pendingStr struct {
	index int   // into the output slice
	field field // fieldFrom or fieldName
	b     []byte
}

// decodeMessage reads the index-th message of a datagram and appends it to
// dst, unless its kind is unknown, in which case it skips it and reports
// skipped. Names that d has interned are set at once; the others are
// queued in d.pending.
func (d *Decoder) decodeMessage(r *reader, dst []swim.Message, index int) (_ []swim.Message, skipped bool, _ error) {
	n, err := r.arrayLen()
	if err != nil {
		return dst, false, &FieldError{Field: "message", Index: index, Err: err}
	}
	if n == 0 {
		return dst, false, &FieldError{Field: "kind", Index: index, Err: ErrMalformed, Detail: "empty message"}
	}
	k, err := r.uint()
	if err != nil {
		return dst, false, &FieldError{Field: "kind", Index: index, Err: err}
	}
	sp := specOf(k)
	if sp == nil {
		// A kind from a newer version (or noise that parses): skip it.
		if err := r.skipElems(uint64(n-1), 2); err != nil {
			return dst, false, skipError("message of kind "+strconv.FormatUint(k, 10), index, false, 0, err)
		}
		return dst, true, nil
	}
	kind := swim.Kind(k)
	if n-1 < sp.min {
		f := sp.fields[n-1]
		return dst, false, &FieldError{Field: f.String(), Index: index, Kind: kind, Err: ErrInvalid, Detail: "missing"}
	}
	dst = append(dst, swim.Message{Kind: kind})
	m := &dst[len(dst)-1]
	for i := 1; i < n; i++ {
		if i > len(sp.fields) {
			// A field from a newer minor version: skip it.
			if err := r.skip(3); err != nil {
				return dst, false, skipError("field "+strconv.Itoa(i), index, false, kind, err)
			}
			continue
		}
		f := sp.fields[i-1]
		if detail, err := d.readField(r, dst, m, f, sp); err != nil {
			return dst, false, &FieldError{Field: f.String(), Index: index, Kind: kind, Err: err, Detail: detail}
		}
	}
	return dst, false, nil
}

// readField reads field f of m, the last message of dst.
func (d *Decoder) readField(r *reader, dst []swim.Message, m *swim.Message, f field, sp *kindSpec) (detail string, err error) {
	switch f {
	case fieldSeq:
		v, err := r.uint()
		if err != nil {
			return "", err
		}
		if v > 1<<32-1 {
			return strconv.FormatUint(v, 10), ErrInvalid
		}
		m.Seq = uint32(v)
	case fieldFrom, fieldName:
		p, n, err := r.blob(swim.MaxNameLen)
		if err == ErrLimit {
			return limitDetail(n, swim.MaxNameLen), err
		}
		if err != nil {
			return "", err
		}
		if len(p) == 0 {
			if sp.required.has(f) {
				return "empty", ErrInvalid
			}
			return "", nil
		}
		if s, ok := d.intern[string(p)]; ok {
			if f == fieldFrom {
				m.From = s
			} else {
				m.Name = s
			}
			return "", nil
		}
		d.pending = append(d.pending, pendingStr{index: len(dst) - 1, field: f, b: p})
	case fieldAddr:
		p, _, err := r.blob(18)
		if err == ErrLimit {
			return "longer than 18 bytes", ErrInvalid
		}
		if err != nil {
			return "", err
		}
		if len(p) == 0 && !sp.required.has(f) {
			return "", nil
		}
		a, ok := parseAddr(p)
		if !ok {
			return "want 4- or 16-byte IP and a port", ErrInvalid
		}
		m.Addr = a
	case fieldIncarnation:
		v, err := r.uint()
		if err != nil {
			return "", err
		}
		if v > swim.MaxIncarnation {
			return strconv.FormatUint(v, 10), ErrInvalid
		}
		m.Incarnation = v
	case fieldPayload:
		max := payloadLimit(m.Kind, d.limits.maxPayload())
		p, n, err := r.blob(max)
		if err == ErrLimit {
			return limitDetail(n, max), err
		}
		if err != nil {
			return "", err
		}
		m.Payload = p
	case fieldDigest:
		v, err := r.uint()
		if err != nil {
			return "", err
		}
		m.Digest = v
	case fieldNack:
		v, err := r.bool()
		if err != nil {
			return "", err
		}
		m.Nack = v
	}
	return "", nil
}
