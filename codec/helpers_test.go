package codec

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/meshward/membership/swim"
)

// normalize returns m as it comes back from the wire: the fields its kind
// does not carry are zero, and an empty payload is nil.
func normalize(m swim.Message) swim.Message {
	sp := specOf(uint64(m.Kind))
	out := swim.Message{Kind: m.Kind}
	if sp == nil {
		return out
	}
	for _, f := range sp.fields {
		switch f {
		case fieldSeq:
			out.Seq = m.Seq
		case fieldFrom:
			out.From = m.From
		case fieldName, fieldKey:
			out.Name = m.Name
		case fieldAddr:
			out.Addr = m.Addr
		case fieldIncarnation, fieldEpoch:
			out.Incarnation = m.Incarnation
		case fieldPayload:
			if len(m.Payload) > 0 {
				out.Payload = m.Payload
			}
		case fieldDigest:
			out.Digest = m.Digest
		case fieldNack:
			out.Nack = m.Nack
		}
	}
	return out
}

// equalMessage compares two messages field by field.
func equalMessage(a, b swim.Message) bool {
	return a.Kind == b.Kind && a.Seq == b.Seq && a.From == b.From && a.Name == b.Name &&
		a.Addr == b.Addr && a.Incarnation == b.Incarnation && string(a.Payload) == string(b.Payload) &&
		(a.Payload == nil) == (b.Payload == nil) && a.Digest == b.Digest && a.Nack == b.Nack
}

func equalMember(a, b swim.MemberState) bool {
	return a.Name == b.Name && a.Addr == b.Addr && a.Incarnation == b.Incarnation &&
		a.State == b.State && string(a.Payload) == string(b.Payload)
}

// checkMessages fails t unless got equals the normalized want.
func checkMessages(t testing.TB, got, want []swim.Message) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("decoded %d messages, want %d", len(got), len(want))
	}
	for i := range want {
		if w := normalize(want[i]); !equalMessage(got[i], w) {
			t.Fatalf("message %d:\n got %+v\nwant %+v", i, got[i], w)
		}
	}
}

// wantFieldError fails t unless err is a *FieldError for field wrapping
// sentinel.
func wantFieldError(t testing.TB, err error, field string, sentinel error) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s on %q", sentinel, field)
	}
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v (%T) is not a *FieldError", err, err)
	}
	if fe.Field != field || !errors.Is(err, sentinel) {
		t.Fatalf("error %q: field %q, want %q wrapping %v", err, fe.Field, field, sentinel)
	}
}

var (
	addr4 = netip.MustParseAddrPort("10.1.2.3:7946")
	addr6 = netip.MustParseAddrPort("[2001:db8::1]:7946")
)

// randName returns a name of 1 to 255 bytes, mostly short.
func randName(rng *rand.Rand) string {
	n := 1 + rng.IntN(24)
	if rng.IntN(8) == 0 {
		n = 1 + rng.IntN(swim.MaxNameLen)
	}
	var b strings.Builder
	for range n {
		b.WriteByte(byte('a' + rng.IntN(26)))
	}
	return b.String()
}

func randAddr(rng *rand.Rand) netip.AddrPort {
	port := uint16(1 + rng.IntN(65535))
	if rng.IntN(2) == 0 {
		var b [4]byte
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return netip.AddrPortFrom(netip.AddrFrom4(b), port)
	}
	var b [16]byte
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return netip.AddrPortFrom(netip.AddrFrom16(b), port)
}

// randUint returns a number of a random msgpack width, sometimes extreme.
func randUint(rng *rand.Rand, max uint64) uint64 {
	switch rng.IntN(6) {
	case 0:
		return 0
	case 1:
		return max
	case 2:
		return rng.Uint64N(128)
	case 3:
		return rng.Uint64N(1 << 16)
	}
	return rng.Uint64N(max) + 1
}

func randPayload(rng *rand.Rand, max int) []byte {
	if rng.IntN(4) == 0 {
		return nil
	}
	n := rng.IntN(64)
	if rng.IntN(8) == 0 {
		n = rng.IntN(max + 1)
	}
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(rng.Uint32())
	}
	return p
}

// unknownKind is a message kind that no version defines yet.
const unknownKind = 0x7f

// messageKinds are the kinds this version encodes.
var messageKinds = []swim.Kind{
	swim.KindPing, swim.KindPingReq, swim.KindAck, swim.KindNack,
	swim.KindAlive, swim.KindSuspect, swim.KindDead, swim.KindLeft,
	swim.KindPad, swim.KindUser, swim.KindDirect,
}

// randMessage returns a valid message of a random kind, with every field
// filled (including those its kind does not carry, which the codec drops).
func randMessage(rng *rand.Rand, maxPayload int) swim.Message {
	m := swim.Message{
		Kind:        messageKinds[rng.IntN(len(messageKinds))],
		Seq:         uint32(randUint(rng, 1<<32-1)),
		From:        randName(rng),
		Name:        randName(rng),
		Addr:        randAddr(rng),
		Incarnation: randUint(rng, swim.MaxIncarnation),
		Payload:     randPayload(rng, maxPayload),
		Digest:      randUint(rng, ^uint64(0)),
		Nack:        rng.IntN(2) == 0,
	}
	if (m.Kind == swim.KindPing || m.Kind == swim.KindUser) && rng.IntN(4) == 0 {
		m.Name = "" // a probe of a bare address, a broadcast without a key
	}
	if m.Kind == swim.KindUser && rng.IntN(4) == 0 {
		m.Incarnation = ^uint64(0) - rng.Uint64N(2) // an epoch may be any value
	}
	return m
}

func randMember(rng *rand.Rand, maxPayload int) swim.MemberState {
	return swim.MemberState{
		Name:        randName(rng),
		Addr:        randAddr(rng),
		Incarnation: randUint(rng, swim.MaxIncarnation),
		State:       swim.State(rng.IntN(4)),
		Payload:     randPayload(rng, maxPayload),
	}
}

// memberName returns a realistic member name for benchmarks.
func memberName(i int) string {
	return fmt.Sprintf("node-%04d.eu-west-1.internal", i)
}
