package codec

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/meshward/membership/swim"
)

// These bytes are the wire format of version 1.2. If this test fails, the
// encoding changed: that breaks every deployed peer unless it follows the
// compatibility rule in docs/codec.md (and then the new bytes belong here,
// with a new minor version).
var goldenMessages = []struct {
	name string
	m    swim.Message
	hex  string // the message, without the datagram header
}{
	{"ping", swim.Message{Kind: swim.KindPing, Seq: 0x01020304, From: "a", Name: "b"},
		"95 01 ce01020304 a161 a162 00"},
	{"ping-req ipv6", swim.Message{Kind: swim.KindPingReq, Seq: 1, From: "a", Name: "b", Addr: netip.MustParseAddrPort("[2001:db8::1]:7946"), Nack: true},
		"96 02 01 a161 a162 c412 20010db8000000000000000000000001 1f0a c3"},
	{"ack", swim.Message{Kind: swim.KindAck, Seq: 1, From: "b", Digest: ^uint64(0)},
		"94 03 01 a162 cfffffffffffffffff"},
	{"nack", swim.Message{Kind: swim.KindNack, Seq: 200, From: "b"},
		"93 04 ccc8 a162"},
	{"alive", swim.Message{Kind: swim.KindAlive, Name: "n1", Addr: netip.MustParseAddrPort("10.0.0.1:7946"), Incarnation: 5, Payload: []byte("hi")},
		"95 05 a26e31 c4060a0000011f0a 05 c4026869"},
	{"suspect", swim.Message{Kind: swim.KindSuspect, From: "a", Name: "b", Incarnation: 300},
		"94 06 a161 a162 cd012c"},
	{"dead", swim.Message{Kind: swim.KindDead, From: "a", Name: "b", Incarnation: swim.MaxIncarnation},
		"94 07 a161 a162 cffffffffffffffffe"},
	{"left", swim.Message{Kind: swim.KindLeft, Name: "b", Addr: netip.MustParseAddrPort("10.0.0.1:7946")},
		"95 08 a162 c4060a0000011f0a 00 c0"},
	{"pad", swim.Message{Kind: swim.KindPad, Payload: make([]byte, 3)},
		"92 09 c403 000000"},
	{"user", swim.Message{Kind: swim.KindUser, From: "a", Incarnation: ^uint64(0), Seq: 7, Name: "k", Payload: []byte("hi")},
		"96 0a a161 cfffffffffffffffff 07 a16b c4026869"},
	{"user without key", swim.Message{Kind: swim.KindUser, From: "a", Incarnation: 5, Seq: 1},
		"96 0a a161 05 01 a0 c0"},
	{"direct", swim.Message{Kind: swim.KindDirect, From: "b", Payload: []byte("x")},
		"93 0b a162 c40178"},
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGoldenMessages(t *testing.T) {
	var d Decoder
	for _, g := range goldenMessages {
		t.Run(g.name, func(t *testing.T) {
			want := unhex(t, "12 dc0001 "+g.hex)
			got, err := Append(nil, []swim.Message{g.m})
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Fatalf("encoding changed:\n got %x\nwant %x", got, want)
			}
			msgs, err := d.Decode(nil, want)
			if err != nil {
				t.Fatal(err)
			}
			checkMessages(t, msgs, []swim.Message{g.m})
		})
	}
	t.Run("compound", func(t *testing.T) {
		var msgs []swim.Message
		want := fmt.Sprintf("12 dc%04x", len(goldenMessages))
		for _, g := range goldenMessages {
			msgs = append(msgs, g.m)
			want += g.hex
		}
		got, err := Append(nil, msgs)
		if err != nil {
			t.Fatal(err)
		}
		if w := unhex(t, want); string(got) != string(w) {
			t.Fatalf("encoding changed:\n got %x\nwant %x", got, w)
		}
	})
}

// TestGoldenCompact pins the compact form (2.0): the version byte 0x20,
// then the messages of 1.2 with no count, and a digest cut to 32 bits.
func TestGoldenCompact(t *testing.T) {
	var d Decoder
	for _, g := range goldenMessages {
		t.Run(g.name, func(t *testing.T) {
			hexMsg := g.hex
			want := g.m
			if g.name == "ack" {
				hexMsg = "94 03 01 a162 ceffffffff"
				want.Digest = 0xffffffff
			}
			wire := unhex(t, "20 "+hexMsg)
			got, err := AppendCompact(nil, []swim.Message{g.m})
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(wire) {
				t.Fatalf("encoding changed:\n got %x\nwant %x", got, wire)
			}
			if n := CompactSize([]swim.Message{g.m}); n != len(got) {
				t.Fatalf("CompactSize = %d, the datagram is %d bytes", n, len(got))
			}
			msgs, err := d.Decode(nil, wire)
			if err != nil {
				t.Fatal(err)
			}
			checkMessages(t, msgs, []swim.Message{want})
		})
	}
	t.Run("compound", func(t *testing.T) {
		var msgs []swim.Message
		want := "20"
		for _, g := range goldenMessages {
			msgs = append(msgs, g.m)
			want += g.hex
		}
		want = strings.Replace(want, "94 03 01 a162 cfffffffffffffffff", "94 03 01 a162 ceffffffff", 1)
		got, err := AppendCompact(nil, msgs)
		if err != nil {
			t.Fatal(err)
		}
		if w := unhex(t, want); string(got) != string(w) {
			t.Fatalf("encoding changed:\n got %x\nwant %x", got, w)
		}
		if CompactSize(msgs) != len(got) || len(got) != Size(msgs)-3-4 {
			t.Fatalf("CompactSize %d, Size %d, datagram %d bytes", CompactSize(msgs), Size(msgs), len(got))
		}
		out, err := d.Decode(nil, got)
		if err != nil || len(out) != len(msgs) {
			t.Fatalf("Decode: %d messages, %v", len(out), err)
		}
	})
	t.Run("empty", func(t *testing.T) {
		got, err := AppendCompact(nil, nil)
		if err != nil || string(got) != "\x20" {
			t.Fatalf("AppendCompact(nil) = %x, %v", got, err)
		}
		if out, err := d.Decode(nil, got); err != nil || len(out) != 0 {
			t.Fatalf("Decode(20) = %v, %v", out, err)
		}
	})
}

func TestGoldenSnapshot(t *testing.T) {
	s := &swim.Snapshot{From: "a", Join: true, Members: []swim.MemberState{
		{Name: "m", Addr: netip.MustParseAddrPort("10.0.0.1:7946"), Incarnation: 7, State: swim.StateSuspect},
		{Name: "n", Addr: netip.MustParseAddrPort("[2001:db8::1]:7946"), State: swim.StateLeft, Payload: []byte("x")},
	}}
	want := []string{
		"12 93 a161 c3 02",
		"dc0002 95 a16d c4060a0000011f0a 07 01 c0 95 a16e c412 20010db8000000000000000000000001 1f0a 00 03 c40178",
	}
	got := stream(t, s)
	if len(got) != len(want) {
		t.Fatalf("%d frames, want %d", len(got), len(want))
	}
	for i := range want {
		if w := unhex(t, want[i]); string(got[i]) != string(w) {
			t.Fatalf("frame %d changed:\n got %x\nwant %x", i, got[i], w)
		}
	}
}
