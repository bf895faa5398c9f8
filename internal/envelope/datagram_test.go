package envelope

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/meshward/membership/keyring"
)

type rejectCase struct {
	name   string
	ring   Sealer
	label  []byte
	dg     []byte
	reason Reason
	want   error // the sentinel Err must wrap
}

// rejectCases returns one datagram for each reason OpenDatagramDetail
// reports, with the sealer that rejects it.
func rejectCases(tb testing.TB) []rejectCase {
	tb.Helper()
	r := testRing(tb)
	now := time.Unix(1_800_000_000, 0)
	seal := func(ring Sealer, n int) []byte {
		dg, err := SealDatagram(ring, label, nil, make([]byte, TimestampLen+n), now)
		if err != nil {
			tb.Fatal(err)
		}
		return dg
	}
	// The compact layout, which a keyring of this suite sends...
	compact := seal(r, 1300)
	ctampered := bytes.Clone(compact)
	ctampered[len(ctampered)-1] ^= 1
	// ...and the full one, which every version opens.
	good := seal(legacyModal(r), 1300)
	tampered := bytes.Clone(good)
	tampered[len(tampered)-1] ^= 1
	other, err := keyring.New(bytes.Repeat([]byte{8}, 32))
	if err != nil {
		tb.Fatal(err)
	}
	with := func(i int, b byte) []byte {
		d := bytes.Clone(good)
		d[i] = b
		return d
	}
	noTimestamp, err := r.Seal(nil, []byte{1, 2, 3}, label)
	if err != nil {
		tb.Fatal(err)
	}
	plain := seal(Plaintext{}, 100)
	return []rejectCase{
		{"unknown-key", r, label, seal(legacyModal(other), 1300), ReasonUnknownKey, keyring.ErrUnknownKey},
		{"compact-unknown-key", r, label, seal(other, 1300), ReasonUnknownKey, keyring.ErrUnknownKey},
		{"compact-auth-failed", r, label, ctampered, ReasonAuthFailed, keyring.ErrAuthFailed},
		{"compact-truncated", r, label, compact[:36], ReasonTruncated, keyring.ErrTruncated},
		{"compact-unknown-suite", r, label, append([]byte{0x21}, compact[1:]...), ReasonUnknownSuite, keyring.ErrUnknownSuite},
		{"compact-not-plaintext", Plaintext{}, label, compact, ReasonNotPlaintext, ErrNotPlaintext},
		{"auth-failed", r, label, tampered, ReasonAuthFailed, keyring.ErrAuthFailed},
		{"wrong-label", r, []byte("prod-us"), good, ReasonAuthFailed, keyring.ErrAuthFailed},
		{"truncated", r, label, good[:40], ReasonTruncated, keyring.ErrTruncated},
		{"empty", r, label, nil, ReasonTruncated, keyring.ErrTruncated},
		{"unknown-version", r, label, with(0, 9), ReasonUnknownVersion, keyring.ErrUnknownVersion},
		{"unknown-suite", r, label, with(1, byte(keyring.AESGCM)), ReasonUnknownSuite, keyring.ErrUnknownSuite},
		{"unencrypted", r, label, plain, ReasonUnencrypted, keyring.ErrUnknownSuite},
		{"label", r, bytes.Repeat([]byte("l"), keyring.MaxLabelLen+1), good, ReasonLabel, keyring.ErrLabelTooLong},
		{"no-timestamp", r, label, noTimestamp, ReasonMalformed, ErrMalformed},
		{"not-plaintext", Plaintext{}, label, good, ReasonNotPlaintext, ErrNotPlaintext},
		{"not-plaintext-short", Plaintext{}, label, plain[:3], ReasonNotPlaintext, ErrNotPlaintext},
		{"not-plaintext-version", Plaintext{}, label, append([]byte{2}, plain[1:]...), ReasonNotPlaintext, ErrNotPlaintext},
	}
}

// TestOpenDatagramDetail checks each reason, that a failure leaves dst
// alone, and that Failure.Err is the error OpenDatagram returned before the
// zero-allocation path existed: the sealer's own Open error for a rejected
// datagram.
func TestOpenDatagramDetail(t *testing.T) {
	for _, c := range rejectCases(t) {
		t.Run(c.name, func(t *testing.T) {
			dst := []byte("dst")
			sent, body, pt, f := OpenDatagramDetail(c.ring, c.label, dst, c.dg)
			if f.Reason() != c.reason || !f.Failed() {
				t.Fatalf("reason %v (failed %v), want %v", f.Reason(), f.Failed(), c.reason)
			}
			if !sent.IsZero() || body != nil || !bytes.Equal(pt, []byte("dst")) {
				t.Fatalf("a rejected datagram returned %v, %q, %q", sent, body, pt)
			}
			err := f.Err()
			if !errors.Is(err, c.want) {
				t.Fatalf("Err() = %v, want it to wrap %v", err, c.want)
			}
			if _, _, _, oerr := OpenDatagram(c.ring, c.label, nil, c.dg); !reflect.DeepEqual(oerr, err) {
				t.Fatalf("OpenDatagram's error %v differs from Err() %v", oerr, err)
			}
			if c.reason != ReasonMalformed {
				if _, oerr := c.ring.Open(nil, c.dg, c.label); !reflect.DeepEqual(oerr, err) {
					t.Fatalf("the sealer's Open error %#v differs from Err() %#v", oerr, err)
				}
			}
		})
	}
	// Success is the zero Failure.
	r := testRing(t)
	now := time.UnixMilli(1_800_000_000_123)
	for _, ring := range []Sealer{r, legacyModal(r), Plaintext{}} {
		dg, _ := SealDatagram(ring, label, nil, append(make([]byte, TimestampLen), "hi"...), now)
		sent, body, _, f := OpenDatagramDetail(ring, label, nil, dg)
		if f != (Failure{}) || f.Failed() || f.Err() != nil || !sent.Equal(now) || string(body) != "hi" {
			t.Fatalf("%T: a good datagram gave %v %q %+v", ring, sent, body, f)
		}
	}
}

// TestRejectDatagramAllocatesNothing is the regression test for a forged
// datagram costing an allocation on the runtime's receive path.
func TestRejectDatagramAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's sync.Pool drops items, so allocation counts are meaningless")
	}
	dst := make([]byte, 0, 2048)
	for _, c := range rejectCases(t) {
		if c.reason == ReasonMalformed {
			continue // authenticated: only a key holder sends it
		}
		n := testing.AllocsPerRun(100, func() {
			if _, _, _, f := OpenDatagramDetail(c.ring, c.label, dst[:0], c.dg); f.Reason() != c.reason {
				t.Fatalf("%s: reason %v", c.name, f.Reason())
			}
		})
		if n != 0 {
			t.Errorf("%s: OpenDatagramDetail allocates %v times per rejected datagram, want 0", c.name, n)
		}
	}
}

func TestReasonString(t *testing.T) {
	seen := map[string]bool{}
	for r := ReasonNone; r <= ReasonLabel; r++ {
		if seen[r.String()] {
			t.Errorf("two reasons are called %q", r.String())
		}
		seen[r.String()] = true
	}
	if got := Reason(99).String(); got != "reason(99)" {
		t.Errorf("Reason(99).String() = %q", got)
	}
}

// BenchmarkOpenDatagramForged is the receive path's cost for a forged
// datagram: no allocation for any reason (see -benchmem).
func BenchmarkOpenDatagramForged(b *testing.B) {
	dst := make([]byte, 0, 2048)
	for _, c := range rejectCases(b) {
		if c.reason == ReasonMalformed {
			continue
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, _, f := OpenDatagramDetail(c.ring, c.label, dst[:0], c.dg); f.Reason() != c.reason {
					b.Fatalf("reason %v", f.Reason())
				}
			}
		})
	}
}

// legacyModal is a Modal over r that seals in the full layout.
func legacyModal(r *keyring.Keyring) *Modal {
	m := NewModal(r, ModeRequired)
	m.SetLegacy(true)
	return m
}
