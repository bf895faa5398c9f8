package envelope

import (
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/meshward/membership/keyring"
)

var allModes = []Mode{ModeRequired, ModeSendSealed, ModeAcceptSealed, ModeOff}

func (m Mode) String() string {
	return [...]string{"required", "send-sealed", "accept-sealed", "off"}[m]
}

// TestModalDatagrams: in each mode a Modal seals or not as the mode says,
// opens what the mode accepts, and refuses the rest with the reason a
// plain keyring (for plaintext) or a Plaintext sealer (for sealed) gives.
func TestModalDatagrams(t *testing.T) {
	ring := testRing(t)
	now := time.UnixMilli(1_800_000_000_000)
	body := append(make([]byte, TimestampLen), "body"...)
	plain, err := SealDatagram(Plaintext{}, label, nil, body, now)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := SealDatagram(ring, label, nil, body, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range allModes {
		s := NewModal(ring, m)
		out, err := SealDatagram(s, label, nil, body, now)
		if err != nil {
			t.Fatal(err)
		}
		if got := !isPlaintext(out); got != m.Seals() {
			t.Errorf("%v: sealed = %v, want %v", m, got, m.Seals())
		}
		for _, in := range []struct {
			name string
			dg   []byte
			ok   bool
			fail Reason
		}{
			{"plaintext", plain, m.AcceptsPlaintext(), ReasonUnencrypted},
			{"sealed", sealed, m.AcceptsSealed(), ReasonNotPlaintext},
		} {
			before := s.PlaintextOpened()
			_, got, _, f := OpenDatagramDetail(s, label, nil, in.dg)
			switch {
			case in.ok && (f.Failed() || string(got) != "body"):
				t.Errorf("%v: %s datagram refused: %v", m, in.name, f.Err())
			case !in.ok && f.Reason() != in.fail:
				t.Errorf("%v: %s datagram: reason %v, want %v", m, in.name, f.Reason(), in.fail)
			}
			counted := s.PlaintextOpened() - before
			if want := in.ok && in.name == "plaintext" && m != ModeOff; (counted == 1) != want {
				t.Errorf("%v: %s datagram counted %d plaintext opens", m, in.name, counted)
			}
			if _, err := s.Open(nil, in.dg, label); (err == nil) != in.ok {
				t.Errorf("%v: Open(%s) = %v", m, in.name, err)
			}
		}
		if n := Nonce(s, plain); n != nil {
			t.Errorf("%v: a plaintext datagram has nonce %x", m, n)
		}
		if n := Nonce(s, sealed); len(n) != keyring.CompactNonceLen {
			t.Errorf("%v: a sealed datagram has nonce %x", m, n)
		}
		if s.Overhead() != ring.Overhead() {
			t.Errorf("%v: overhead %d, want the keyring's %d", m, s.Overhead(), ring.Overhead())
		}
	}
	// A sealed datagram refused in ModeOff still names its key.
	_, _, _, f := OpenDatagramDetail(NewModal(ring, ModeOff), label, nil, sealed)
	if d := f.Detail(); !d.HasFingerprint || d.Fingerprint != keyring.Fingerprint(ring.Primary()) {
		t.Errorf("refused sealed datagram: detail %+v, want the key's fingerprint", d)
	}
	if !errors.Is(f.Err(), ErrNotPlaintext) {
		t.Errorf("refused sealed datagram: %v, want ErrNotPlaintext", f.Err())
	}
}

// TestModalSetMode: a mode change takes effect on the next datagram, and a
// value that is no mode means ModeRequired.
func TestModalSetMode(t *testing.T) {
	s := NewModal(testRing(t), ModeOff)
	if s.Mode() != ModeOff {
		t.Fatalf("mode %v", s.Mode())
	}
	s.SetMode(ModeSendSealed)
	dg, _ := s.Seal(nil, []byte("x"), nil)
	if dg[1] == 0 {
		t.Fatal("still plaintext after SetMode(ModeSendSealed)")
	}
	s.SetMode(Mode(99))
	if s.Mode() != ModeRequired {
		t.Fatalf("SetMode(99): mode %v, want required", s.Mode())
	}
}

// TestModalStreams: a stream works between two Modals whose modes are
// neighbours on the path (each accepts what the other sends), and fails on
// its first record otherwise.
func TestModalStreams(t *testing.T) {
	ring := testRing(t)
	accepts := func(recv, send Mode) bool {
		if send.Seals() {
			return recv.AcceptsSealed()
		}
		return recv.AcceptsPlaintext()
	}
	for _, mi := range allModes {
		for _, mr := range allModes {
			ci, cr := net.Pipe()
			var (
				wg   sync.WaitGroup
				rerr error
				got  []string
			)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer cr.Close()
				st, err := Handshake(cr, false, NewModal(ring, mr), label, 0)
				if err != nil {
					rerr = err
					return
				}
				got, rerr = readAll(st)
				if rerr == nil {
					rerr = st.WriteRecord([]byte("pong"), true)
				}
			}()
			st, err := Handshake(ci, true, NewModal(ring, mi), label, 0)
			var reply []string
			if err == nil {
				err = st.WriteRecord([]byte("ping"), true)
			}
			if err == nil {
				reply, err = readAll(st)
			}
			ci.Close()
			wg.Wait()
			want := accepts(mr, mi) && accepts(mi, mr)
			ok := rerr == nil && err == nil && len(got) == 1 && got[0] == "ping" && len(reply) == 1 && reply[0] == "pong"
			if ok != want {
				t.Errorf("initiator %v, responder %v: worked = %v, want %v (responder: %v, initiator: %v)", mi, mr, ok, want, rerr, err)
			}
		}
	}
}

// TestModalRejectAllocatesNothing: the modes that accept plaintext add no
// allocation to rejecting a forged datagram or opening a plaintext one.
func TestModalRejectAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	ring := testRing(t)
	forged, _ := ring.Seal(nil, make([]byte, 40), label)
	forged[len(forged)-1] ^= 1
	plain, _ := Plaintext{}.Seal(nil, make([]byte, 40), label)
	dst := make([]byte, 0, 2048)
	for _, m := range allModes {
		s := NewModal(ring, m)
		for name, dg := range map[string][]byte{"forged": forged, "plaintext": plain} {
			if a := testing.AllocsPerRun(100, func() { OpenDatagramDetail(s, label, dst, dg) }); a != 0 {
				t.Errorf("%v, %s: %v allocations", m, name, a)
			}
		}
	}
}
