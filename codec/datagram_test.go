package codec

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/meshward/membership/swim"
)

// roundTrip encodes msgs, checks the size identity, decodes with limits and
// checks that the messages come back.
func roundTrip(t *testing.T, l Limits, msgs ...swim.Message) []byte {
	t.Helper()
	b, err := Append(nil, msgs)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	if len(b) != Size(msgs) {
		t.Fatalf("len(datagram) = %d, Size = %d", len(b), Size(msgs))
	}
	d, err := NewDecoder(l)
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.Decode(nil, b)
	if err != nil {
		t.Fatalf("Decode(%x): %v", b, err)
	}
	checkMessages(t, got, msgs)
	return b
}

func TestRoundTripEveryKind(t *testing.T) {
	long := strings.Repeat("n", swim.MaxNameLen)
	mapped := netip.MustParseAddrPort("[::ffff:10.1.2.3]:1")
	maxPort := netip.MustParseAddrPort("255.255.255.255:65535")
	full := bytes.Repeat([]byte{0xab}, DefaultMaxPayload)
	huge := bytes.Repeat([]byte{0xcd}, MaxPayloadLimit)
	tests := []struct {
		name   string
		limits Limits
		m      swim.Message
	}{
		{"ping", Limits{}, swim.Message{Kind: swim.KindPing, Seq: 7, From: "a", Name: "b", Digest: 9}},
		{"ping bare address", Limits{}, swim.Message{Kind: swim.KindPing, Seq: 0, From: "a"}},
		{"ping max", Limits{}, swim.Message{Kind: swim.KindPing, Seq: 1<<32 - 1, From: long, Name: long, Digest: ^uint64(0)}},
		{"ping-req ipv4", Limits{}, swim.Message{Kind: swim.KindPingReq, Seq: 1, From: "a", Name: "b", Addr: addr4}},
		{"ping-req ipv6 nack", Limits{}, swim.Message{Kind: swim.KindPingReq, Seq: 300, From: "a", Name: "b", Addr: addr6, Nack: true}},
		{"ping-req mapped", Limits{}, swim.Message{Kind: swim.KindPingReq, Seq: 70000, From: "a", Name: "b", Addr: mapped}},
		{"ack", Limits{}, swim.Message{Kind: swim.KindAck, Seq: 42, From: "b"}},
		{"ack digest", Limits{}, swim.Message{Kind: swim.KindAck, Seq: 42, From: long, Digest: 1 << 40}},
		{"nack", Limits{}, swim.Message{Kind: swim.KindNack, Seq: 1<<32 - 1, From: "c"}},
		{"alive empty payload", Limits{}, swim.Message{Kind: swim.KindAlive, Name: "a", Addr: addr4}},
		{"alive full payload", Limits{}, swim.Message{Kind: swim.KindAlive, Name: long, Addr: addr6, Incarnation: swim.MaxIncarnation, Payload: full}},
		{"alive max payload", Limits{MaxPayload: MaxPayloadLimit}, swim.Message{Kind: swim.KindAlive, Name: "a", Addr: maxPort, Incarnation: 1, Payload: huge}},
		{"suspect", Limits{}, swim.Message{Kind: swim.KindSuspect, From: "a", Name: "b", Incarnation: 3}},
		{"suspect max incarnation", Limits{}, swim.Message{Kind: swim.KindSuspect, From: long, Name: long, Incarnation: swim.MaxIncarnation}},
		{"dead", Limits{}, swim.Message{Kind: swim.KindDead, From: "a", Name: "b", Incarnation: 1 << 32}},
		{"left", Limits{}, swim.Message{Kind: swim.KindLeft, Name: "b", Addr: addr6, Incarnation: swim.MaxIncarnation, Payload: []byte("bye")}},
		{"left empty payload", Limits{}, swim.Message{Kind: swim.KindLeft, Name: "b", Addr: addr4, Payload: []byte{}}},
		{"user", Limits{}, swim.Message{Kind: swim.KindUser, From: "a", Incarnation: 3, Seq: 1, Name: "k", Payload: []byte("v")}},
		{"user widest", Limits{}, swim.Message{Kind: swim.KindUser, From: long, Incarnation: ^uint64(0), Seq: 1<<32 - 1, Name: long, Payload: full}},
		{"user no key no payload", Limits{}, swim.Message{Kind: swim.KindUser, From: "a"}},
		{"user max payload", Limits{MaxUserPayload: MaxUserPayloadLimit}, swim.Message{Kind: swim.KindUser, From: "a", Payload: make([]byte, MaxUserPayloadLimit)}},
		{"direct", Limits{}, swim.Message{Kind: swim.KindDirect, From: long, Payload: huge}},
		{"direct empty", Limits{}, swim.Message{Kind: swim.KindDirect, From: "a"}},
		// Fields the kind does not carry are dropped.
		{"ack drops name", Limits{}, swim.Message{Kind: swim.KindAck, Seq: 1, From: "a", Name: "x", Addr: addr4, Payload: []byte("x"), Nack: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			roundTrip(t, tt.limits, tt.m)
		})
	}
	t.Run("all in one datagram", func(t *testing.T) {
		var msgs []swim.Message
		for _, tt := range tests {
			if tt.limits == (Limits{}) {
				msgs = append(msgs, tt.m)
			}
		}
		roundTrip(t, Limits{}, msgs...)
	})
	t.Run("empty datagram", func(t *testing.T) {
		if b := roundTrip(t, Limits{}); len(b) != HeaderSize {
			t.Fatalf("empty datagram is %d bytes, want %d", len(b), HeaderSize)
		}
	})
}

func TestEncodeRejects(t *testing.T) {
	long := strings.Repeat("n", swim.MaxNameLen+1)
	tests := []struct {
		name     string
		m        swim.Message
		field    string
		sentinel error
	}{
		{"unknown kind", swim.Message{Kind: unknownKind, From: "a"}, "kind", ErrInvalid},
		{"zero kind", swim.Message{From: "a"}, "kind", ErrInvalid},
		{"long from", swim.Message{Kind: swim.KindPing, From: long}, "from", ErrLimit},
		{"long name", swim.Message{Kind: swim.KindSuspect, From: "a", Name: long}, "name", ErrLimit},
		{"empty from", swim.Message{Kind: swim.KindAck}, "from", ErrInvalid},
		{"empty name", swim.Message{Kind: swim.KindAlive, Addr: addr4}, "name", ErrInvalid},
		{"no addr", swim.Message{Kind: swim.KindAlive, Name: "a"}, "addr", ErrInvalid},
		{"port 0", swim.Message{Kind: swim.KindLeft, Name: "a", Addr: netip.MustParseAddrPort("10.0.0.1:0")}, "addr", ErrInvalid},
		{"zone", swim.Message{Kind: swim.KindPingReq, From: "a", Name: "b", Addr: netip.MustParseAddrPort("[fe80::1%eth0]:1")}, "addr", ErrInvalid},
		{"incarnation", swim.Message{Kind: swim.KindDead, From: "a", Name: "b", Incarnation: ^uint64(0)}, "incarnation", ErrInvalid},
		{"payload", swim.Message{Kind: swim.KindAlive, Name: "a", Addr: addr4, Payload: make([]byte, MaxPayloadLimit+1)}, "payload", ErrLimit},
		{"user without origin", swim.Message{Kind: swim.KindUser, Name: "k"}, "from", ErrInvalid},
		{"user long key", swim.Message{Kind: swim.KindUser, From: "a", Name: long}, "key", ErrLimit},
		{"user payload", swim.Message{Kind: swim.KindUser, From: "a", Payload: make([]byte, MaxUserPayloadLimit+1)}, "payload", ErrLimit},
		{"direct without sender", swim.Message{Kind: swim.KindDirect, Payload: []byte("x")}, "from", ErrInvalid},
		{"direct payload", swim.Message{Kind: swim.KindDirect, From: "a", Payload: make([]byte, MaxUserPayloadLimit+1)}, "payload", ErrLimit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok := swim.Message{Kind: swim.KindNack, From: "x"}
			dst := []byte("prefix")
			out, err := Append(dst, []swim.Message{ok, tt.m})
			wantFieldError(t, err, tt.field, tt.sentinel)
			var fe *FieldError
			if errors.As(err, &fe); fe.Index != 1 {
				t.Errorf("Index = %d, want 1", fe.Index)
			}
			if string(out) != "prefix" {
				t.Errorf("Append changed dst on error: %q", out)
			}
		})
	}
	t.Run("too many", func(t *testing.T) {
		_, err := Append(nil, make([]swim.Message, MaxMessagesLimit+1))
		wantFieldError(t, err, "messages", ErrLimit)
	})
	t.Run("short buffer", func(t *testing.T) {
		msgs := []swim.Message{{Kind: swim.KindNack, From: "x"}}
		buf := make([]byte, Size(msgs)-1)
		if _, err := Encode(buf, msgs); !errors.Is(err, io.ErrShortBuffer) {
			t.Fatalf("Encode into a short buffer: %v, want io.ErrShortBuffer", err)
		}
		buf = make([]byte, Size(msgs))
		n, err := Encode(buf, msgs)
		if err != nil || n != len(buf) {
			t.Fatalf("Encode = %d, %v; want %d, nil", n, err, len(buf))
		}
	})
}

// datagram builds a datagram from hex fragments; spaces are ignored.
func datagram(t *testing.T, parts ...string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(strings.Join(parts, ""), " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name     string
		hex      []string
		field    string
		sentinel error
	}{
		{"empty", nil, "version", ErrTruncated},
		{"major 0", []string{"00 dc0000"}, "version", ErrVersion},
		{"major 3", []string{"30 dc0000"}, "version", ErrVersion},
		{"compact with a count", []string{"20 dc0000"}, "kind", ErrMalformed},
		{"compact truncated", []string{"20 9304 00"}, "message", ErrTruncated},
		{"compact bad second message", []string{"20 9304 00 a178 91"}, "message", ErrTruncated},
		{"compact trailing junk", []string{"20 9304 00 a178 c1"}, "message", ErrMalformed},
		{"not an array", []string{"10 c0"}, "messages", ErrMalformed},
		{"count beyond input", []string{"10 dc0005 9204a178"}, "messages", ErrTruncated},
		{"count over limit", []string{"10 dd00000201", strings.Repeat("00", 513)}, "messages", ErrLimit},
		{"empty message", []string{"10 91 90"}, "kind", ErrMalformed},
		{"kind not a number", []string{"10 91 92a1 78 a178"}, "kind", ErrMalformed},
		{"negative kind", []string{"10 91 92ff a178"}, "kind", ErrMalformed},
		{"missing field", []string{"10 91 9204 00"}, "from", ErrInvalid},
		{"truncated name", []string{"10 91 9304 00 a378"}, "from", ErrTruncated},
		{"name too long", []string{"10 91 9304 00 da0100", strings.Repeat("78", 256)}, "from", ErrLimit},
		{"name too long truncated", []string{"10 91 9304 00 db00010000"}, "from", ErrLimit},
		{"empty from", []string{"10 91 9304 00 a0"}, "from", ErrInvalid},
		{"nil from", []string{"10 91 9304 00 c0"}, "from", ErrInvalid},
		{"seq over uint32", []string{"10 91 9304 cf0000000100000000 a178"}, "seq", ErrInvalid},
		{"seq negative", []string{"10 91 9304 d0ff a178"}, "seq", ErrMalformed},
		{"seq float", []string{"10 91 9304 ca00000000 a178"}, "seq", ErrMalformed},
		{"incarnation max+1", []string{"10 91 9406 a161 a162 cfffffffffffffffff"}, "incarnation", ErrInvalid},
		{"addr 5 bytes", []string{"10 91 9505 a161 c4050a0000011f 00 c0"}, "addr", ErrInvalid},
		{"addr 19 bytes", []string{"10 91 9505 a161 c413", strings.Repeat("00", 19), "00 c0"}, "addr", ErrInvalid},
		{"addr port 0", []string{"10 91 9505 a161 c4060a0000010000 00 c0"}, "addr", ErrInvalid},
		{"addr nil", []string{"10 91 9505 a161 c0 00 c0"}, "addr", ErrInvalid},
		{"payload over default", []string{"10 91 9505 a161 c4060a0000011f9a 00 c50201", strings.Repeat("00", 513)}, "payload", ErrLimit},
		{"payload not bytes", []string{"10 91 9505 a161 c4060a0000011f9a 00 90"}, "payload", ErrMalformed},
		{"nack not bool", []string{"10 91 9602 00 a161 a162 c4060a0000011f9a 00"}, "nack", ErrMalformed},
		{"trailing bytes", []string{"10 91 9304 00 a178 00"}, "datagram", ErrMalformed},
		{"reserved byte in unknown field", []string{"10 91 9404 00 a178 c1"}, "field 3", ErrMalformed},
		{"too deep", []string{"10 91 947f 00 a178", strings.Repeat("91", MaxDepth-1), "c0"}, "depth", ErrLimit},
		{"user missing payload", []string{"12 91 950a a161 01 02 a16b"}, "payload", ErrInvalid},
		{"user nil origin", []string{"12 91 960a c0 01 02 a16b c0"}, "from", ErrInvalid},
		{"user epoch negative", []string{"12 91 960a a161 ff 02 a0 c0"}, "epoch", ErrMalformed},
		{"user seq over uint32", []string{"12 91 960a a161 01 cf0000000100000000 a0 c0"}, "seq", ErrInvalid},
		{"user key too long", []string{"12 91 960a a161 01 02 da0100", strings.Repeat("6b", 256), "c0"}, "key", ErrLimit},
		{"user payload over default", []string{"12 91 960a a161 01 02 a0 c52001", strings.Repeat("00", 8193)}, "payload", ErrLimit},
		{"direct missing payload", []string{"12 91 920b a161"}, "payload", ErrInvalid},
		{"direct empty sender", []string{"12 91 930b a0 c0"}, "from", ErrInvalid},
		{"too deep in known kind", []string{"10 91 9504 00 a178", strings.Repeat("91", MaxDepth-1), "c0"}, "depth", ErrLimit},
		{"unknown kind truncated", []string{"10 91 937f 00 d9"}, "message of kind 127", ErrTruncated},
		{"ext truncated", []string{"10 91 937f 00 c7ff01"}, "message of kind 127", ErrTruncated},
		{"map truncated", []string{"10 91 927f df7fffffff"}, "message of kind 127", ErrTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Decoder
			dst := make([]swim.Message, 1, 4)
			dst[0].From = "keep"
			out, err := d.Decode(dst, datagram(t, tt.hex...))
			wantFieldError(t, err, tt.field, tt.sentinel)
			if len(out) != 1 || out[0].From != "keep" {
				t.Errorf("Decode changed dst on error: %+v", out)
			}
		})
	}
}

func TestDecodeDepthBound(t *testing.T) {
	// An unknown kind whose one field nests arrays down to level MaxDepth
	// is skipped; one level more is rejected.
	nest := func(levels int) []byte {
		b := []byte{Version, mpFixArray | 1, mpFixArray | 2, unknownKind}
		for range levels {
			b = append(b, mpFixArray|1)
		}
		return append(b, mpNil)
	}
	var d Decoder
	if _, err := d.Decode(nil, nest(MaxDepth-2)); err != nil {
		t.Fatalf("nesting to level %d: %v", MaxDepth, err)
	}
	if d.Skipped() != 1 {
		t.Fatalf("Skipped = %d, want 1", d.Skipped())
	}
	_, err := d.Decode(nil, nest(MaxDepth-1))
	wantFieldError(t, err, "depth", ErrLimit)
}

func TestPadding(t *testing.T) {
	// A pad message's filler is bounded by MaxPadding, not by
	// Limits.MaxPayload: a ping padded to a full datagram decodes with the
	// default limits, and its size is exact.
	msgs := []swim.Message{
		{Kind: swim.KindPing, Seq: 1, From: "a", Digest: 7},
		{Kind: swim.KindPad, Payload: make([]byte, 1300)},
	}
	b, err := Append(nil, msgs)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != Size(msgs) {
		t.Fatalf("len %d, Size %d", len(b), Size(msgs))
	}
	var d Decoder
	out, err := d.Decode(nil, b)
	if err != nil {
		t.Fatal(err)
	}
	checkMessages(t, out, msgs)
	if _, err := Append(nil, []swim.Message{{Kind: swim.KindPad, Payload: make([]byte, MaxPadding+1)}}); err == nil {
		t.Fatal("padding above MaxPadding encoded")
	} else {
		wantFieldError(t, err, "payload", ErrLimit)
	}
	// A decoder of version 1.0 did not know the kind and skipped it (the
	// compatibility rule): the same bytes with a kind that this version
	// does not know either decode to the ping alone.
	b[len(b)-MessageSize(&msgs[1])+1] = unknownKind
	out, err = d.Decode(nil, b)
	if err != nil || len(out) != 1 || d.Skipped() != 1 {
		t.Fatalf("unknown padding kind: %d messages, %d skipped, %v", len(out), d.Skipped(), err)
	}
}

func TestUserPayloadLimit(t *testing.T) {
	// Application payloads have their own bound, Limits.MaxUserPayload,
	// independent of the membership payload bound: a 600-byte broadcast
	// decodes with the default limits although MaxPayload is 512, and a
	// decoder set to the core's smaller bound refuses it, datagram and all.
	user := swim.Message{Kind: swim.KindUser, From: "a", Incarnation: 9, Seq: 2, Name: "k", Payload: make([]byte, 600)}
	direct := swim.Message{Kind: swim.KindDirect, From: "a", Payload: make([]byte, 600)}
	for _, m := range []swim.Message{user, direct} {
		roundTrip(t, Limits{}, m)
		b, err := Append(nil, []swim.Message{{Kind: swim.KindNack, From: "x"}, m})
		if err != nil {
			t.Fatal(err)
		}
		d, err := NewDecoder(Limits{MaxUserPayload: 599, MaxPayload: 1000})
		if err != nil {
			t.Fatal(err)
		}
		_, err = d.Decode(nil, b)
		wantFieldError(t, err, "payload", ErrLimit)
		roundTrip(t, Limits{MaxUserPayload: 600, MaxPayload: 100}, m)
	}
	// The membership bound does not stretch to application payloads'.
	alive := swim.Message{Kind: swim.KindAlive, Name: "a", Addr: addr4, Payload: make([]byte, 600)}
	b, _ := Append(nil, []swim.Message{alive})
	d, _ := NewDecoder(Limits{MaxUserPayload: 1000})
	_, err := d.Decode(nil, b)
	wantFieldError(t, err, "payload", ErrLimit)
	if _, err := NewDecoder(Limits{MaxUserPayload: MaxUserPayloadLimit + 1}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("MaxUserPayload above the limit: %v", err)
	}
}

func TestDecodeLimits(t *testing.T) {
	big := swim.Message{Kind: swim.KindAlive, Name: "a", Addr: addr4, Payload: make([]byte, 600)}
	b, err := Append(nil, []swim.Message{big})
	if err != nil {
		t.Fatal(err)
	}
	var d Decoder
	_, err = d.Decode(nil, b)
	wantFieldError(t, err, "payload", ErrLimit)
	d2, err := NewDecoder(Limits{MaxPayload: 600})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d2.Decode(nil, b); err != nil {
		t.Fatalf("MaxPayload 600: %v", err)
	}

	msgs := make([]swim.Message, 3)
	for i := range msgs {
		msgs[i] = swim.Message{Kind: swim.KindNack, From: "x"}
	}
	b, _ = Append(nil, msgs)
	d3, _ := NewDecoder(Limits{MaxMessages: 2})
	_, err = d3.Decode(nil, b)
	wantFieldError(t, err, "messages", ErrLimit)

	for _, l := range []Limits{{MaxMessages: -1}, {MaxMessages: MaxMessagesLimit + 1}, {MaxPayload: MaxPayloadLimit + 1}, {MaxMembers: MaxMembersLimit + 1}} {
		if _, err := NewDecoder(l); !errors.Is(err, ErrInvalid) {
			t.Errorf("NewDecoder(%+v) = %v, want ErrInvalid", l, err)
		}
	}
}

func TestDecodeSkipsWhatItDoesNotKnow(t *testing.T) {
	// A datagram of version 1.3: a ping with two extra trailing fields (an
	// array and a map), a message of unknown kind 42 with nested values,
	// and an alive.
	ping := swim.Message{Kind: swim.KindPing, Seq: 5, From: "a", Name: "b", Digest: 7}
	alive := swim.Message{Kind: swim.KindAlive, Name: "c", Addr: addr6, Incarnation: 2, Payload: []byte("p")}
	b := []byte{0x13, mpArray16, 0, 3}
	b = append(b, mpFixArray|7, byte(swim.KindPing)) // kind, 4 fields, 2 unknown
	b = appendUint(b, 5)
	b = appendStr(b, "a")
	b = appendStr(b, "b")
	b = appendUint(b, 7)
	b = append(b, mpFixArray|2, 1, 2, mpFixMap|1, 0xa1, 'k', mpTrue)
	b = append(b, mpFixArray|4, 42, mpFixMap|1, mpFixArray|1, mpNil, mpFixStr|1, 'v', mpExt8, 2, 5, 0, 0, mpFloat64, 0, 0, 0, 0, 0, 0, 0, 0)
	b = appendMessage(b, &alive, specOf(5))
	var d Decoder
	got, err := d.Decode(nil, b)
	if err != nil {
		t.Fatalf("Decode(%x): %v", b, err)
	}
	checkMessages(t, got, []swim.Message{ping, alive})
	if d.Skipped() != 1 {
		t.Fatalf("Skipped = %d, want 1", d.Skipped())
	}
}

func TestDecodeAcceptsOtherIntegerAndStringForms(t *testing.T) {
	// The same nack written by a less frugal msgpack writer: seq as uint64,
	// from as str16, kind as int8; and a nack with from as bin8.
	b := datagram(t, "10 dd00000002", "dc0003 d004 cf0000000000000007 da0001 78", "93 d004 d300000000000000ff c40179")
	var d Decoder
	got, err := d.Decode(nil, b)
	if err != nil {
		t.Fatal(err)
	}
	checkMessages(t, got, []swim.Message{
		{Kind: swim.KindNack, Seq: 7, From: "x"},
		{Kind: swim.KindNack, Seq: 255, From: "y"},
	})
}

func TestDecodeReusesDst(t *testing.T) {
	msgs := []swim.Message{{Kind: swim.KindNack, Seq: 1, From: "a"}, {Kind: swim.KindAck, Seq: 2, From: "b", Digest: 3}}
	b, _ := Append(nil, msgs)
	var d Decoder
	dst := make([]swim.Message, 0, 8)
	got, err := d.Decode(dst, b)
	if err != nil {
		t.Fatal(err)
	}
	if &got[0] != &dst[:1][0] {
		t.Fatal("Decode did not decode into dst's array")
	}
	// A stale value in the reused slot must not leak into the next decode.
	got[1].Payload = []byte("stale")
	got, err = d.Decode(got[:0], b)
	if err != nil {
		t.Fatal(err)
	}
	checkMessages(t, got, msgs)
}

func TestPropertyBudget(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var d Decoder
	buf := make([]byte, 0, 9000)
	var dst []swim.Message
	for iter := range 2000 {
		msgs := make([]swim.Message, 1+rng.IntN(40))
		for i := range msgs {
			msgs[i] = randMessage(rng, DefaultMaxPayload)
		}
		budget := []int{64, 512, 1400, 9000}[iter%4] - rng.IntN(32)
		n := Fit(budget, msgs)
		if n < len(msgs) && Size(msgs[:n+1]) <= budget {
			t.Fatalf("Fit(%d) = %d, but %d messages take %d bytes", budget, n, n+1, Size(msgs[:n+1]))
		}
		out, err := Append(buf[:0], msgs[:n])
		if err != nil {
			t.Fatal(err)
		}
		if len(out) > budget {
			t.Fatalf("%d messages: %d bytes > budget %d", n, len(out), budget)
		}
		if want := Size(msgs[:n]); len(out) != want {
			t.Fatalf("len = %d, HeaderSize + Σ MessageSize = %d", len(out), want)
		}
		dst, err = d.Decode(dst[:0], out)
		if err != nil {
			t.Fatalf("Decode: %v", err)
		}
		checkMessages(t, dst, msgs[:n])
	}
}

func TestAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	msgs := pingWithUpdates(10)
	buf := make([]byte, 0, 1400)
	if n := testing.AllocsPerRun(100, func() { _, _ = Append(buf[:0], msgs) }); n != 0 {
		t.Errorf("Append allocates %v times, want 0", n)
	}
	b, _ := Append(nil, msgs)
	var d Decoder
	dst := make([]swim.Message, 0, 16)
	if _, err := d.Decode(dst, b); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = d.Decode(dst[:0], b) }); n != 0 {
		t.Errorf("Decode of known names allocates %v times, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() {
		clear(d.intern)
		_, _ = d.Decode(dst[:0], b)
	}); n > 1 {
		t.Errorf("Decode of new names allocates %v times, want at most 1", n)
	}
}

// pingWithUpdates returns a ping followed by n alive and suspect updates
// with realistic names, addresses and payloads.
func pingWithUpdates(n int) []swim.Message {
	msgs := []swim.Message{{Kind: swim.KindPing, Seq: 0x5eed1234, From: memberName(1), Name: memberName(2), Digest: 0x0123456789abcdef}}
	for i := range n {
		if i%2 == 0 {
			msgs = append(msgs, swim.Message{
				Kind: swim.KindAlive, Name: memberName(100 + i), Incarnation: uint64(3 + i),
				Addr:    netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 7946),
				Payload: []byte(`{"role":"api"}`),
			})
		} else {
			msgs = append(msgs, swim.Message{Kind: swim.KindSuspect, From: memberName(3), Name: memberName(100 + i), Incarnation: uint64(3 + i)})
		}
	}
	return msgs
}

// TestCompactMessageLimit: without a count, the compact form's messages are
// still bounded by Limits.MaxMessages, counted as they are read.
func TestCompactMessageLimit(t *testing.T) {
	d, err := NewDecoder(Limits{MaxMessages: 2})
	if err != nil {
		t.Fatal(err)
	}
	nack := swim.Message{Kind: swim.KindNack, Seq: 1, From: "a"}
	two, _ := AppendCompact(nil, []swim.Message{nack, nack})
	if out, err := d.Decode(nil, two); err != nil || len(out) != 2 {
		t.Fatalf("two messages: %d, %v", len(out), err)
	}
	three, _ := AppendCompact(nil, []swim.Message{nack, nack, nack})
	out, err := d.Decode(make([]swim.Message, 0, 4), three)
	wantFieldError(t, err, "messages", ErrLimit)
	if len(out) != 0 {
		t.Fatalf("a rejected datagram left %d messages", len(out))
	}
}

// TestVersionReadsCompact: version 1.3 is the 1.2 form but for its version
// byte, which a decoder of major 1 (any minor) accepts, and which says that
// the sender reads the compact form; 1.0 to 1.2 do not say so.
func TestVersionReadsCompact(t *testing.T) {
	msgs := []swim.Message{{Kind: swim.KindPing, Seq: 7, From: "a", Name: "b", Digest: 0xfedcba9876543210}}
	v12, err := Append(nil, msgs)
	if err != nil {
		t.Fatal(err)
	}
	v13, err := AppendReadsCompact(nil, msgs)
	if err != nil {
		t.Fatal(err)
	}
	if v13[0] != 0x13 || !bytes.Equal(v12[1:], v13[1:]) {
		t.Fatalf("1.3 is not 1.2 with another version byte:\n%x\n%x", v12, v13)
	}
	if err := checkMajor1(v13[0]); err != nil {
		t.Fatalf("a major-1 decoder rejects 1.3: %v", err)
	}
	var d Decoder
	got, err := d.Decode(nil, v13)
	if err != nil || len(got) != 1 || got[0].Digest != msgs[0].Digest {
		t.Fatalf("Decode(1.3) = %v, %v", got, err)
	}
	for v, want := range map[byte]bool{0x10: false, 0x11: false, 0x12: false, 0x13: true, 0x14: true, 0x20: true, 0x21: true, 0x30: false} {
		if ReadsCompact(v) != want {
			t.Errorf("ReadsCompact(%#x) = %v, want %v", v, !want, want)
		}
	}
}
