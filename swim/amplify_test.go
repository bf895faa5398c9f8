package swim_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/meshward/membership/codec"
	"github.com/meshward/membership/swim"
)

// These tests measure answers in encoded bytes, as the node runtime sends
// them (see wireConfig).

var wt0 = time.Unix(1_700_000_000, 0)

func wireAddr(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 7946)
}

func wireName(i int) string { return fmt.Sprintf("member-%03d.example.internal", i) }

func newWireCore(t *testing.T, i int, payload []byte) *swim.Core {
	t.Helper()
	c, err := swim.New(wireConfig(), swim.Member{Name: wireName(i), Addr: wireAddr(i), Payload: payload},
		rand.New(rand.NewPCG(uint64(i), 7)), wt0)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wireKnow makes c know members 1..n (but itself) alive at incarnation 1,
// without queueing news about them.
func wireKnow(t *testing.T, c *swim.Core, n int) {
	t.Helper()
	s := swim.Snapshot{From: "seed"}
	for i := 1; i <= n; i++ {
		s.Members = append(s.Members, swim.MemberState{Name: wireName(i), Addr: wireAddr(i), Incarnation: 1})
	}
	if err := c.Merge(wt0, &s); err != nil {
		t.Fatal(err)
	}
	c.Advance()
}

// deliver carries msgs to c as the runtime does, encoded and decoded, and
// returns the datagram's length.
func deliver(t *testing.T, c *swim.Core, now time.Time, from netip.AddrPort, msgs []swim.Message) int {
	t.Helper()
	b := encode(t, msgs)
	d, err := codec.NewDecoder(codec.Limits{MaxPayload: wireConfig().MaxPayload})
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.Decode(nil, b)
	if err != nil {
		t.Fatal(err)
	}
	c.Step(now, from, got)
	return len(b)
}

// busy returns member 0 with a 512-byte payload, a view of 40 members and a
// full dissemination queue: its answers would be full datagrams.
func busy(t *testing.T) *swim.Core {
	t.Helper()
	b := newWireCore(t, 0, make([]byte, 512))
	wireKnow(t, b, 40)
	for i := 100; i < 140; i++ {
		deliver(t, b, wt0, wireAddr(1), []swim.Message{{Kind: swim.KindAlive, Name: wireName(i), Addr: wireAddr(i), Incarnation: 1, Payload: make([]byte, 200)}})
	}
	if err := b.SetPayload(make([]byte, 512)); err != nil {
		t.Fatal(err)
	}
	b.Advance()
	if b.QueueLen() < 40 {
		t.Fatalf("queue of %d, want a full one", b.QueueLen())
	}
	return b
}

// answerTo returns the one datagram c sent to addr, encoded.
func answerTo(t *testing.T, c *swim.Core, addr netip.AddrPort) (swim.Datagram, []byte) {
	t.Helper()
	var out []swim.Datagram
	for _, d := range c.Ready().Datagrams {
		if d.To == addr {
			out = append(out, d)
		}
	}
	if len(out) != 1 {
		t.Fatalf("%d datagrams to %v, want 1", len(out), addr)
	}
	return out[0], encode(t, out[0].Msgs)
}

// TestAnswerToUnplacedSenderIsBounded checks that a ping whose sender is not
// a live member at the address it came from (a stranger, a member's name at
// another address, a captured datagram replayed with a forged source) is
// answered with no more bytes than it has, or the bare ack; a member at its
// address gets full piggybacking.
func TestAnswerToUnplacedSenderIsBounded(t *testing.T) {
	victim := wireAddr(999)
	ping := swim.Message{Kind: swim.KindPing, Seq: 4242, Name: wireName(0), Digest: 99}
	captured := func() []swim.Message {
		// What member 2 sent member 5: its ping to 5, with its own alive
		// message and some gossip piggybacked.
		p := ping
		p.From, p.Name = wireName(2), wireName(5)
		return []swim.Message{p,
			{Kind: swim.KindAlive, Name: wireName(2), Addr: wireAddr(2), Incarnation: 1},
			{Kind: swim.KindSuspect, From: wireName(2), Name: wireName(7), Incarnation: 1},
		}
	}
	for _, tc := range []struct {
		name string
		msgs []swim.Message
	}{
		{"unknown name", []swim.Message{{Kind: swim.KindPing, Seq: 4242, From: "stranger", Name: wireName(0), Digest: 99}}},
		{"by address from a stranger", []swim.Message{{Kind: swim.KindPing, Seq: 4242, From: "stranger", Digest: 99}}},
		{"known name at another address", []swim.Message{{Kind: swim.KindPing, Seq: 4242, From: wireName(1), Name: wireName(0), Digest: 99}}},
		{"replayed to another member", func() []swim.Message {
			m := captured()
			m[0].Name = "" // as if it were a ping by address: not misdirected
			return m
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := busy(t)
			n := deliver(t, b, wt0, victim, tc.msgs)
			d, wire := answerTo(t, b, victim)
			if a := d.Msgs[0]; a.Kind != swim.KindAck || a.Seq != 4242 {
				t.Fatalf("answer %+v, want the ack", a)
			}
			bare := len(encode(t, d.Msgs[:1]))
			if len(wire) > max(n, bare) {
				t.Fatalf("a %d-byte datagram answered with %d bytes (%d messages); the bound is max(%d, bare ack %d)",
					n, len(wire), len(d.Msgs), n, bare)
			}
		})
	}
	t.Run("member at its address", func(t *testing.T) {
		b := busy(t)
		p := ping
		p.From = wireName(1)
		n := deliver(t, b, wt0, wireAddr(1), []swim.Message{p})
		d, wire := answerTo(t, b, wireAddr(1))
		if len(d.Msgs) < 3 || len(wire) < 1000 {
			t.Fatalf("a member at its address got %d bytes (%d messages) for %d: want full piggybacking", len(wire), len(d.Msgs), n)
		}
	})
}

// TestRelayToUnplacedRequesterIsBounded checks the ping-req path: the
// helper's ping goes to the target at its known address, and the ack or nack
// it relays back to a requester it cannot place is bounded by the
// ping-req's size.
func TestRelayToUnplacedRequesterIsBounded(t *testing.T) {
	victim := wireAddr(999)
	req := swim.Message{Kind: swim.KindPingReq, Seq: 77, From: wireName(1), Name: wireName(3), Addr: wireAddr(3), Nack: true}
	t.Run("ack", func(t *testing.T) {
		b := busy(t)
		n := deliver(t, b, wt0, victim, []swim.Message{req})
		ping, _ := answerTo(t, b, wireAddr(3))
		seq := ping.Msgs[0].Seq
		b.Advance()
		deliver(t, b, wt0.Add(time.Millisecond), wireAddr(3), []swim.Message{{Kind: swim.KindAck, Seq: seq, From: wireName(3)}})
		d, wire := answerTo(t, b, victim)
		if d.Msgs[0].Kind != swim.KindAck || d.Msgs[0].Seq != 77 {
			t.Fatalf("relayed %+v, want the ack", d.Msgs[0])
		}
		if bare := len(encode(t, d.Msgs[:1])); len(wire) > max(n, bare) {
			t.Fatalf("a %d-byte ping-req got a %d-byte relayed ack", n, len(wire))
		}
	})
	t.Run("nack", func(t *testing.T) {
		b := busy(t)
		n := deliver(t, b, wt0, victim, []swim.Message{req})
		b.Advance()
		b.Tick(wt0.Add(time.Second))
		d, wire := answerTo(t, b, victim)
		if d.Msgs[0].Kind != swim.KindNack || d.Msgs[0].Seq != 77 {
			t.Fatalf("sent %+v, want the nack", d.Msgs[0])
		}
		if bare := len(encode(t, d.Msgs[:1])); len(wire) > max(n, bare) {
			t.Fatalf("a %d-byte ping-req got a %d-byte nack", n, len(wire))
		}
	})
	t.Run("member at its address", func(t *testing.T) {
		b := busy(t)
		deliver(t, b, wt0, wireAddr(1), []swim.Message{req})
		ping, _ := answerTo(t, b, wireAddr(3))
		seq := ping.Msgs[0].Seq
		b.Advance()
		deliver(t, b, wt0.Add(time.Millisecond), wireAddr(3), []swim.Message{{Kind: swim.KindAck, Seq: seq, From: wireName(3)}})
		if d, _ := answerTo(t, b, wireAddr(1)); len(d.Msgs) < 3 {
			t.Fatalf("the requester at its address got %d messages, want gossip piggybacked", len(d.Msgs))
		}
	})
}

// TestToldStaleIsBounded checks that telling a member our newer view of it
// (in answer to its stale news) sends no more bytes than the news had, or
// our bare view without its payload.
func TestToldStaleIsBounded(t *testing.T) {
	b := busy(t)
	deliver(t, b, wt0, wireAddr(1), []swim.Message{{Kind: swim.KindAlive, Name: wireName(3), Addr: wireAddr(3), Incarnation: 5, Payload: make([]byte, 512)}})
	b.Advance()
	n := deliver(t, b, wt0, wireAddr(3), []swim.Message{{Kind: swim.KindAlive, Name: wireName(3), Addr: wireAddr(3), Incarnation: 2}})
	d, wire := answerTo(t, b, wireAddr(3))
	if u := d.Msgs[0]; u.Kind != swim.KindAlive || u.Incarnation != 5 {
		t.Fatalf("told %+v, want our alive view at 5", u)
	}
	bare := d.Msgs[0]
	bare.Payload = nil
	if b := len(encode(t, []swim.Message{bare})); len(wire) > max(n, b) {
		t.Fatalf("a %d-byte datagram of stale news answered with %d bytes", n, len(wire))
	}
	if b.Count(swim.CountToldStale) != 1 {
		t.Fatalf("told_stale = %d, want 1", b.Count(swim.CountToldStale))
	}
}

// TestRepairOnlyAtTheSendersAddress checks that a digest mismatch asks for
// a state exchange only with a member at its own address: a forged source
// would aim our stream at a third party.
func TestRepairOnlyAtTheSendersAddress(t *testing.T) {
	b := newWireCore(t, 0, nil)
	wireKnow(t, b, 10)
	ping := swim.Message{Kind: swim.KindPing, Seq: 1, From: wireName(1), Name: wireName(0), Digest: 12345}
	deliver(t, b, wt0, wireAddr(999), []swim.Message{ping})
	if pp := b.Ready().PushPulls; len(pp) != 0 {
		t.Fatalf("state exchange with a forged source: %+v", pp)
	}
	b.Advance()
	deliver(t, b, wt0, wireAddr(1), []swim.Message{ping})
	if pp := b.Ready().PushPulls; len(pp) != 1 || pp[0].To != wireAddr(1) {
		t.Fatalf("push-pulls %+v, want one with member 1 at its address", pp)
	}
}

// TestProbeByAddressIsPaddedForTheIntroduction checks that Probe and
// AddMember still learn who answered from a busy member with a 512-byte
// payload: the ping is padded to a full datagram, so that the bounded
// answer has room for the answerer's alive message. Without the padding it
// would not.
func TestProbeByAddressIsPaddedForTheIntroduction(t *testing.T) {
	for _, tc := range []struct {
		name  string
		probe func(*swim.Core, netip.AddrPort) (uint64, error)
		strip bool
	}{
		{"AddMember", (*swim.Core).AddMember, false},
		{"Probe", (*swim.Core).Probe, false},
		{"AddMember without padding", (*swim.Core).AddMember, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := busy(t)
			a := newWireCore(t, 50, []byte("prober"))
			tok, err := tc.probe(a, wireAddr(0))
			if err != nil {
				t.Fatal(err)
			}
			ping, wire := answerTo(t, a, wireAddr(0))
			last := ping.Msgs[len(ping.Msgs)-1]
			if last.Kind != swim.KindPad || len(wire) > wireConfig().MaxDatagram || len(wire) < wireConfig().MaxDatagram-2 {
				t.Fatalf("ping of %d bytes ending with %v, want padded to %d", len(wire), last.Kind, wireConfig().MaxDatagram)
			}
			msgs := ping.Msgs
			if tc.strip {
				msgs = msgs[:len(msgs)-1]
			}
			n := deliver(t, b, wt0, wireAddr(50), msgs)
			a.Advance()
			ack, awire := answerTo(t, b, wireAddr(50))
			if len(awire) > n {
				t.Fatalf("a %d-byte ping answered with %d bytes", n, len(awire))
			}
			deliver(t, a, wt0.Add(time.Millisecond), wireAddr(0), ack.Msgs)
			res := a.Ready().ProbeResults
			if len(res) != 1 || !res[0].OK || res[0].Token != tok || res[0].Name != wireName(0) {
				t.Fatalf("probe results %+v, want OK for token %d from %s", res, tok, wireName(0))
			}
			m, ok := a.Member(wireName(0))
			if tc.strip {
				if ok {
					t.Fatal("an unpadded ping got the introduction: the answer is not bounded")
				}
				return
			}
			if !ok || m.State != swim.StateAlive || len(m.Payload) != 512 || m.Addr != wireAddr(0) {
				t.Fatalf("member %+v (%v), want the answerer alive with its 512-byte payload", m, ok)
			}
		})
	}
}
