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

// sealIdle encodes and seals msgs as Node.sendDatagram does, under the
// legacy wire or not.
func sealIdle(t testing.TB, s envelope.Sealer, legacy bool, msgs []swim.Message) []byte {
	t.Helper()
	appendDatagram := codec.AppendCompact
	if legacy {
		appendDatagram = codec.Append
	}
	plain, err := appendDatagram(make([]byte, envelope.TimestampLen, 256), msgs)
	if err != nil {
		t.Fatal(err)
	}
	dg, err := envelope.SealDatagram(s, nil, nil, plain, time.Now())
	if legacy {
		dg, err = envelope.SealDatagramFull(s, nil, nil, plain, time.Now())
	}
	if err != nil {
		t.Fatal(err)
	}
	return dg
}

// TestIdleDatagramBytes pins the bytes of an idle ping and ack on the
// wire, as a node sends them by default and under the legacy wire: the
// figures docs/codec.md's overhead table quotes. (memberlist's, measured in
// the bench module with AES-GCM and the same names: 74.5 bytes a datagram
// on average.)
func TestIdleDatagramBytes(t *testing.T) {
	ring := newRing(t, testKey)
	aes, err := keyring.New(testKey, keyring.WithSuite(keyring.AESGCM))
	if err != nil {
		t.Fatal(err)
	}
	modal := func(r *keyring.Keyring, legacy bool) envelope.Sealer {
		m := envelope.NewModal(r, envelope.ModeRequired)
		m.SetLegacy(legacy)
		return m
	}
	for _, c := range []struct {
		name      string
		s         envelope.Sealer
		legacy    bool
		ping, ack int
	}{
		{"xchacha20-poly1305", modal(ring, false), false, 66, 58},
		{"xchacha20-poly1305, legacy wire", modal(ring, true), true, 90, 82},
		{"aes-gcm", modal(aes, false), false, 71, 63},
		{"aes-gcm, legacy wire", modal(aes, true), true, 78, 70},
		{"plaintext", envelope.Plaintext{}, false, 43, 35},
		// What a default node sends a peer it has not heard read the
		// compact forms: the legacy layout and the 1.x form, whose 1.3
		// version byte (AppendReadsCompact) is as long as 1.2 (the
		// sealer is not held to the legacy wire; legacywire.go).
		{"xchacha20-poly1305, not yet heard", modal(ring, false), true, 90, 82},
	} {
		for name, msgs := range idleDatagrams() {
			dg := sealIdle(t, c.s, c.legacy, msgs)
			t.Logf("%-32s %-4s %3d bytes (%2d of envelope)", c.name, name, len(dg), envelope.SentOverhead(c.s))
			want := c.ping
			if name == "ack" {
				want = c.ack
			}
			if len(dg) != want {
				t.Errorf("%s %s: %d bytes, want %d", c.name, name, len(dg), want)
			}
			_, body, _, err := envelope.OpenDatagram(c.s, nil, nil, dg)
			if err != nil {
				t.Fatalf("%s %s: %v", c.name, name, err)
			}
			var d codec.Decoder
			if got, err := d.Decode(nil, body); err != nil || len(got) != 1 || got[0].Kind != msgs[0].Kind {
				t.Fatalf("%s %s: decoded %v, %v", c.name, name, got, err)
			}
		}
	}
}
