package codec

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/meshward/membership/swim"
)

// These bytes are the wire format of version 1.1. If this test fails, the
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
			want := unhex(t, "11 dc0001 "+g.hex)
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
		want := fmt.Sprintf("11 dc%04x", len(goldenMessages))
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

func TestGoldenSnapshot(t *testing.T) {
	s := &swim.Snapshot{From: "a", Join: true, Members: []swim.MemberState{
		{Name: "m", Addr: netip.MustParseAddrPort("10.0.0.1:7946"), Incarnation: 7, State: swim.StateSuspect},
		{Name: "n", Addr: netip.MustParseAddrPort("[2001:db8::1]:7946"), State: swim.StateLeft, Payload: []byte("x")},
	}}
	want := []string{
		"11 93 a161 c3 02",
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
