package codec

import (
	"io"
	"strconv"
	"strings"

	"github.com/meshward/membership/swim"
)

// Protocol version. It is the first byte of every datagram and of every
// snapshot stream: the major version in the high four bits, the minor in
// the low four (so version 1.0 is the byte 0x10, a msgpack positive fixint).
//
// The compatibility rule (docs/codec.md): versions of one major share the
// framing. A minor version may add message kinds and append fields to a
// kind, and nothing else; a decoder skips the kinds and the trailing fields
// it does not know. Any other change needs a new major version, and a
// decoder rejects a major it does not know with ErrVersion.
//
// Version 1.1 added the pad message (swim.KindPad), and 1.2 the
// application messages (swim.KindUser, swim.KindDirect).
const (
	VersionMajor = 1
	VersionMinor = 2
	Version      = VersionMajor<<4 | VersionMinor
)

// Version 1.3 is the 1.2 form byte for byte but for the version byte, and
// adds nothing: its minor says that the sender also reads the compact form
// (2.0), so a peer may send it that. A node sends it (AppendReadsCompact)
// to a peer it has not heard read the compact form; a decoder of any 1.x
// minor reads it, as it reads every minor of major 1 (docs/codec.md,
// "Decoding rules").
const (
	ReadsCompactMinor   = 3
	VersionReadsCompact = VersionMajor<<4 | ReadsCompactMinor
)

// ReadsCompact reports whether a datagram whose version byte is v comes
// from a sender that reads the compact form: one of major 2, or of major 1
// and minor 3 or above.
func ReadsCompact(v byte) bool {
	return v>>4 == CompactMajor || (v>>4 == VersionMajor && v&0x0f >= ReadsCompactMinor)
}

// HeaderSize is the length of a datagram's header in the 1.x form that
// Append writes: the version byte and a msgpack array16 header (0xdc and a
// 2-byte count) that holds the messages. The count always takes the
// fixed-width form so that the size of a datagram is HeaderSize plus the
// sizes of its messages. A datagram in the compact form (AppendCompact) is
// never longer than the 1.x form of the same messages, so HeaderSize,
// MessageSize, Size and Fit bound both forms.
const HeaderSize = 4

// The compact form, version 2.0 (docs/codec.md): the version byte 0x20,
// then the messages, one msgpack array each, up to the end of the
// datagram, with no count; and a digest (ping, ack) carries only its low
// 32 bits. Every kind and field of 1.2 keeps its meaning otherwise. A
// decoder of major 1 rejects it with ErrVersion, so a node sends it only
// once every node reads it (the runtime's WithLegacyWire); Decode reads
// both majors.
const (
	CompactMajor   = 2
	CompactVersion = CompactMajor << 4
	// CompactHeaderSize is the compact form's header: the version byte.
	CompactHeaderSize = 1
)

// Bounds on what the decoders accept. The defaults apply when a Limits field
// is zero; the Max...Limit constants are the highest values Limits may set
// and what the encoders enforce.
const (
	// DefaultMaxMessages is the default bound on messages per datagram. A
	// 1400-byte datagram holds fewer than 300 of the smallest messages.
	DefaultMaxMessages = 512
	// MaxMessagesLimit is what an array16 can count.
	MaxMessagesLimit = 1<<16 - 1
	// DefaultMaxPayload is the default bound on a member's payload, as in
	// the design (and memberlist's meta data).
	DefaultMaxPayload = 512
	// MaxPayloadLimit is the largest payload the codec carries at all: an
	// alive message with it still fits a 9000-byte jumbo datagram.
	MaxPayloadLimit = 8192
	// DefaultMaxUserPayload is the default bound on the payload of an
	// application broadcast or direct message (swim.KindUser,
	// swim.KindDirect): more than a datagram of the usual sizes holds.
	// The core checks its own bound (swim.Config.MaxUserPayload); a
	// runtime sets Limits.MaxUserPayload to it, so that the decoder
	// refuses what the core would.
	DefaultMaxUserPayload = 8192
	// MaxUserPayloadLimit is the highest bound on an application payload:
	// what one UDP datagram holds at most.
	MaxUserPayloadLimit = 1<<16 - 1
	// MaxPadding bounds the filler of a pad message (swim.KindPad), which
	// Limits.MaxPayload does not: it is more than a UDP datagram holds,
	// so the datagram alone bounds padding. swim never pads beyond it.
	MaxPadding = 1<<16 - 1
	// DefaultMaxMembers is the default bound on members in a push-pull
	// snapshot.
	DefaultMaxMembers = 1 << 16
	// MaxMembersLimit is the highest bound on members a snapshot may have.
	MaxMembersLimit = 1 << 20
	// MaxDepth bounds the nesting of msgpack containers. The array of a
	// datagram's (or a frame's) messages is level 1, each message level 2;
	// a container inside a field that this version does not know (and
	// skips) is level 3 and may hold containers down to level MaxDepth.
	MaxDepth = 8
)

// Limits bounds what a Decoder or SnapshotReader accepts. A zero field
// means its default; a field above its Max...Limit constant, or negative,
// is an error at construction.
type Limits struct {
	// MaxMessages bounds the messages in one datagram, counting the ones of
	// unknown kinds that are skipped (default DefaultMaxMessages).
	MaxMessages int
	// MaxPayload bounds the payload of one membership message or member,
	// in bytes (default DefaultMaxPayload).
	MaxPayload int
	// MaxUserPayload bounds the payload of one application broadcast or
	// direct message, in bytes (default DefaultMaxUserPayload). A
	// datagram that holds a longer one is rejected as a whole.
	MaxUserPayload int
	// MaxMembers bounds the members of one snapshot (default
	// DefaultMaxMembers).
	MaxMembers int
}

func (l *Limits) maxMessages() int { return orDefault(l.MaxMessages, DefaultMaxMessages) }
func (l *Limits) maxPayload() int  { return orDefault(l.MaxPayload, DefaultMaxPayload) }
func (l *Limits) maxUserPayload() int {
	return orDefault(l.MaxUserPayload, DefaultMaxUserPayload)
}
func (l *Limits) maxMembers() int { return orDefault(l.MaxMembers, DefaultMaxMembers) }

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// check reports a limit outside its range.
func (l Limits) check() error {
	for _, c := range []struct {
		name string
		v    int
		max  int
	}{
		{"MaxMessages", l.MaxMessages, MaxMessagesLimit},
		{"MaxPayload", l.MaxPayload, MaxPayloadLimit},
		{"MaxUserPayload", l.MaxUserPayload, MaxUserPayloadLimit},
		{"MaxMembers", l.MaxMembers, MaxMembersLimit},
	} {
		if c.v < 0 || c.v > c.max {
			return fieldErr("limits", ErrInvalid, c.name+" = "+strconv.Itoa(c.v)+" not in [0, "+strconv.Itoa(c.max)+"]")
		}
	}
	return nil
}

// Size returns the exact length of the datagram that Append writes for msgs:
// HeaderSize plus the MessageSize of each message.
func Size(msgs []swim.Message) int {
	n := HeaderSize
	for i := range msgs {
		n += MessageSize(&msgs[i])
	}
	return n
}

// Fit returns how many leading messages of msgs fit a datagram of at most
// budget bytes: the largest n with Size(msgs[:n]) <= budget. The caller puts
// the probe first and the updates to piggyback after it (SWIM §4.1); Fit
// stops at the first message that does not fit, so the order of msgs is the
// order of priority.
func Fit(budget int, msgs []swim.Message) int {
	size := HeaderSize
	for i := range msgs {
		size += MessageSize(&msgs[i])
		if size > budget || i == MaxMessagesLimit {
			return i
		}
	}
	return len(msgs)
}

// Append appends the datagram that carries msgs to dst and returns the
// extended slice. It allocates only when dst lacks the capacity (Size tells
// how much is needed). If a message cannot be sent (an unknown kind, a name
// longer than swim.MaxNameLen, a missing required field, an invalid address,
// an incarnation above swim.MaxIncarnation, a payload above
// MaxPayloadLimit, or MaxPadding for a pad message), it returns dst
// unchanged and a *FieldError.
//
// The encoder applies the hard limits only; the sender must bound payloads
// by the same Limits.MaxPayload its peers decode with (swim's payload cap).
func Append(dst []byte, msgs []swim.Message) ([]byte, error) {
	return appendV1(dst, msgs, Version)
}

// AppendReadsCompact is Append with the version byte 1.3
// (VersionReadsCompact) in place of 1.2: the same bytes otherwise, read by
// every decoder of major 1, and telling a decoder of this version that the
// sender reads the compact form too.
func AppendReadsCompact(dst []byte, msgs []swim.Message) ([]byte, error) {
	return appendV1(dst, msgs, VersionReadsCompact)
}

func appendV1(dst []byte, msgs []swim.Message, version byte) ([]byte, error) {
	if len(msgs) > MaxMessagesLimit {
		return dst, fieldErr("messages", ErrLimit, limitDetail(len(msgs), MaxMessagesLimit))
	}
	for i := range msgs {
		if err := checkMessage(&msgs[i], i, MaxPayloadLimit, MaxUserPayloadLimit); err != nil {
			return dst, err
		}
	}
	n := len(msgs)
	dst = append(dst, version, mpArray16, byte(n>>8), byte(n))
	for i := range msgs {
		dst = appendMessage(dst, &msgs[i], specOf(uint64(msgs[i].Kind)))
	}
	return dst, nil
}

// AppendCompact is Append in the compact form (version 2.0): the version
// byte, then the messages with no count, each digest cut to its low 32
// bits. It accepts and refuses exactly what Append does, and its output is
// CompactSize(msgs) bytes, never more than Size(msgs).
func AppendCompact(dst []byte, msgs []swim.Message) ([]byte, error) {
	if len(msgs) > MaxMessagesLimit {
		return dst, fieldErr("messages", ErrLimit, limitDetail(len(msgs), MaxMessagesLimit))
	}
	for i := range msgs {
		if err := checkMessage(&msgs[i], i, MaxPayloadLimit, MaxUserPayloadLimit); err != nil {
			return dst, err
		}
	}
	dst = append(dst, CompactVersion)
	for i := range msgs {
		m := compactDigest(&msgs[i])
		dst = appendMessage(dst, &m, specOf(uint64(m.Kind)))
	}
	return dst, nil
}

// CompactSize returns the exact length of the datagram that AppendCompact
// writes for msgs: CompactHeaderSize plus each message's size with its
// digest cut to 32 bits.
func CompactSize(msgs []swim.Message) int {
	n := CompactHeaderSize
	for i := range msgs {
		m := compactDigest(&msgs[i])
		n += MessageSize(&m)
	}
	return n
}

// compactDigest returns a copy of m whose digest is cut to its low 32 bits,
// as the compact form carries it. A digest only tells whether two views
// differ (swim's fast repair), and 32 bits tell two different views apart
// but for a chance of 2^-32 (docs/codec.md).
func compactDigest(m *swim.Message) swim.Message {
	c := *m
	c.Digest = uint64(uint32(c.Digest))
	return c
}

// Encode writes the datagram that carries msgs into buf and returns its
// length. It never allocates. If buf is shorter than Size(msgs) it returns
// io.ErrShortBuffer; otherwise it fails as Append does.
func Encode(buf []byte, msgs []swim.Message) (int, error) {
	if Size(msgs) > len(buf) {
		return 0, io.ErrShortBuffer
	}
	out, err := Append(buf[:0], msgs)
	return len(out), err
}

// internMax bounds the names a Decoder remembers.
const internMax = 1024

// Decoder decodes datagrams. It keeps scratch space and a bounded table of
// the names it has seen, so that decoding the gossip of a stable cluster
// allocates nothing. The zero Decoder uses the default Limits. A Decoder is
// not safe for concurrent use; the runtime's single receive loop owns one.
type Decoder struct {
	limits  Limits
	intern  map[string]string
	pending []pendingStr
	skipped int
}

// NewDecoder returns a Decoder that enforces l.
func NewDecoder(l Limits) (*Decoder, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	return &Decoder{limits: l}, nil
}

// Skipped returns how many messages of unknown kinds the last Decode call
// skipped (a newer peer's, see the compatibility rule on Version).
func (d *Decoder) Skipped() int { return d.skipped }

// Decode decodes the datagram data and appends its messages to dst
// (pass dst[:0] to reuse a slice), skipping messages of kinds it does not
// know and fields it does not know in the kinds it does.
//
// Payloads alias data: the caller must not change data while it uses them
// (swim copies the payloads it keeps). Names are strings: a name this
// Decoder has seen recently costs nothing, and all the others of one
// datagram share a single allocation. So once dst has the capacity, Decode
// allocates at most once per datagram, and not at all in a stable cluster.
//
// On error Decode returns dst with its original length and a *FieldError
// wrapping ErrVersion, ErrTruncated, ErrMalformed, ErrLimit or ErrInvalid.
// It never panics, and its work is linear in len(data).
func (d *Decoder) Decode(dst []swim.Message, data []byte) ([]swim.Message, error) {
	base := len(dst)
	d.skipped = 0
	d.pending = d.pending[:0]
	if len(data) == 0 {
		return dst, fieldErr("version", ErrTruncated, "empty datagram")
	}
	if err := checkVersion(data[0]); err != nil {
		return dst, err
	}
	r := reader{b: data, off: 1}
	max := d.limits.maxMessages()
	n := max + 1 // the compact form: messages up to the end, at most max of them
	if data[0]>>4 != CompactMajor {
		var err error
		if n, err = r.arrayLen(); err != nil {
			return dst, fieldErr("messages", err, "")
		}
		if n > max {
			return dst, fieldErr("messages", ErrLimit, limitDetail(n, max))
		}
	}
	for i := 0; i < n; i++ {
		if data[0]>>4 == CompactMajor && r.remaining() == 0 {
			break
		}
		if i == max {
			return dst[:base], fieldErr("messages", ErrLimit, "more than "+strconv.Itoa(max))
		}
		var err error
		var skipped bool
		dst, skipped, err = d.decodeMessage(&r, dst, i)
		if err != nil {
			return dst[:base], err
		}
		if skipped {
			d.skipped++
		}
	}
	if r.remaining() != 0 {
		return dst[:base], fieldErr("datagram", ErrMalformed, strconv.Itoa(r.remaining())+" trailing bytes")
	}
	d.resolve(dst)
	return dst, nil
}

// resolve turns the pending names into strings that share one allocation,
// and remembers them.
func (d *Decoder) resolve(dst []swim.Message) {
	if len(d.pending) == 0 {
		return
	}
	total := 0
	for _, p := range d.pending {
		total += len(p.b)
	}
	var sb strings.Builder
	sb.Grow(total)
	for _, p := range d.pending {
		sb.Write(p.b)
	}
	all := sb.String()
	if d.intern == nil {
		d.intern = make(map[string]string)
	}
	off := 0
	for _, p := range d.pending {
		s := all[off : off+len(p.b)]
		off += len(p.b)
		if p.field == fieldFrom {
			dst[p.index].From = s
		} else {
			dst[p.index].Name = s
		}
		if len(d.intern) >= internMax {
			clear(d.intern)
		}
		d.intern[s] = s
	}
	d.pending = d.pending[:0]
}

// checkVersion accepts the version byte of any minor of the majors it
// reads: 1 (Append) and 2 (AppendCompact).
func checkVersion(v byte) error {
	if v>>4 != VersionMajor && v>>4 != CompactMajor {
		return fieldErr("version", ErrVersion, "got "+strconv.Itoa(int(v>>4))+"."+strconv.Itoa(int(v&0xf))+", want "+strconv.Itoa(VersionMajor)+".x or "+strconv.Itoa(CompactMajor)+".x")
	}
	return nil
}

// checkMajor1 accepts the version byte of any minor of major 1: a
// snapshot stream has no other.
func checkMajor1(v byte) error {
	if v>>4 != VersionMajor {
		return fieldErr("version", ErrVersion, "got "+strconv.Itoa(int(v>>4))+"."+strconv.Itoa(int(v&0xf))+", want "+strconv.Itoa(VersionMajor)+".x")
	}
	return nil
}
