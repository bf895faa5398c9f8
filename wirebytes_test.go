package membership

import (
	"testing"
	"time"

	"github.com/meshward/membership/codec"
	"github.com/meshward/membership/internal/envelope"
	"github.com/meshward/membership/keyring"
	"github.com/meshward/membership/swim"
)

// idleDatagrams are the datagrams of an idle cluster as the core builds
// them (swim/tick.go, swim/step.go): a ping and its ack, with no news to
// piggyback, between members named as the bench module names them
// ("node-07"), with a 32-bit sequence number and a 64-bit digest, the
// widest values they take.
func idleDatagrams() map[string][]swim.Message {
	const seq, digest = 0xdeadbeef, 0xfedcba9876543210
	return map[string][]swim.Message{
		"ping": {{Kind: swim.KindPing, Seq: seq, From: "node-01", Name: "node-07", Digest: digest}},
		"ack":  {{Kind: swim.KindAck, Seq: seq, From: "node-07", Digest: digest}},
	}
}

// sealIdle encodes and seals msgs as Node.sendDatagram does.
func sealIdle(t testing.TB, s envelope.Sealer, msgs []swim.Message) []byte {
	t.Helper()
	plain, err := codec.Append(make([]byte, envelope.TimestampLen, 256), msgs)
	if err != nil {
		t.Fatal(err)
	}
	dg, err := envelope.SealDatagram(s, nil, nil, plain, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return dg
}

// TestIdleDatagramBytes pins the bytes of an idle ping and ack on the
// wire, in each layout a node sends: the figures docs/codec.md's overhead
// table quotes. (memberlist's, measured in the bench module with AES-GCM:
// 74.5 bytes a datagram on average.)
func TestIdleDatagramBytes(t *testing.T) {
	ring := newRing(t, testKey)
	aes, err := keyring.New(testKey, keyring.WithSuite(keyring.AESGCM))
	if err != nil {
		t.Fatal(err)
	}
	legacy := envelope.NewModal(ring, envelope.ModeRequired)
	legacy.SetLegacy(true)
	want := map[string]map[string]int{
		// layout: datagram: bytes
		"xchacha compact": {"ping": 73, "ack": 65},
		"xchacha legacy":  {"ping": 90, "ack": 82},
		"aes-gcm (full)":  {"ping": 78, "ack": 70},
		"plaintext":       {"ping": 50, "ack": 42},
	}
	sealers := map[string]envelope.Sealer{
		"xchacha compact": envelope.NewModal(ring, envelope.ModeRequired),
		"xchacha legacy":  legacy,
		"aes-gcm (full)":  aes,
		"plaintext":       envelope.Plaintext{},
	}
	for layout, s := range sealers {
		for name, msgs := range idleDatagrams() {
			dg := sealIdle(t, s, msgs)
			t.Logf("%-16s %-4s %3d bytes (%d of messages and codec header, %d of envelope)",
				layout, name, len(dg), len(dg)-envelope.SentOverhead(s), envelope.SentOverhead(s))
			if len(dg) != want[layout][name] {
				t.Errorf("%s %s: %d bytes, want %d", layout, name, len(dg), want[layout][name])
			}
			if _, _, _, err := envelope.OpenDatagram(s, nil, nil, dg); err != nil {
				t.Errorf("%s %s: %v", layout, name, err)
			}
		}
	}
}
