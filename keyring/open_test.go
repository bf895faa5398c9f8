package keyring

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

type forgedCase struct {
	name   string
	dg     []byte
	reason OpenReason
}

// forgedDatagrams returns a keyring of two keys of suite s and one datagram
// for each way OpenDetail rejects a datagram, each of about 1350 bytes so
// that the AEAD does real work.
func forgedDatagrams(tb testing.TB, s Suite) (*Keyring, []forgedCase) {
	tb.Helper()
	k := mustNew(tb, testKey(32, 1), WithSuite(s), WithKeys(testKey(32, 2)))
	unknown, err := mustNew(tb, testKey(32, 9), WithSuite(s)).Seal(nil, make([]byte, 1350), nil)
	if err != nil {
		tb.Fatal(err)
	}
	auth, err := k.Seal(nil, make([]byte, 1350), nil)
	if err != nil {
		tb.Fatal(err)
	}
	auth[len(auth)-1] ^= 1
	trunc := bytes.Clone(auth[:headerLen+s.NonceSize()+tagLen-1])
	ver := bytes.Clone(auth)
	ver[0] = Version + 1
	other := AESGCM
	if s == AESGCM {
		other = XChaCha20Poly1305
	}
	suite := bytes.Clone(auth)
	suite[1] = byte(other)
	cases := []forgedCase{
		{"unknown-key", unknown, ReasonUnknownKey},
		{"auth-failed", auth, ReasonAuthFailed},
		{"truncated", trunc, ReasonTruncated},
		{"unknown-version", ver, ReasonUnknownVersion},
		{"unknown-suite", suite, ReasonUnknownSuite},
	}
	// The compact layout (version 2): XChaCha20-Poly1305 only.
	x := mustNew(tb, testKey(32, 1))
	cauth, err := x.SealStamped(nil, make([]byte, 1350), nil, 1_800_000_000_000)
	if err != nil {
		tb.Fatal(err)
	}
	if s == AESGCM {
		// Another suite's compact datagram, and a compact AES-GCM one,
		// which no version defines.
		caes := bytes.Clone(cauth)
		caes[0] = CompactVersion<<4 | byte(AESGCM)
		return k, append(cases, forgedCase{"compact-unknown-suite", cauth, ReasonUnknownSuite},
			forgedCase{"compact-aes-gcm", caes, ReasonUnknownVersion})
	}
	cunknown, err := mustNew(tb, testKey(32, 9)).SealStamped(nil, make([]byte, 1350), nil, 1_800_000_000_000)
	if err != nil {
		tb.Fatal(err)
	}
	cauth[len(cauth)-1] ^= 1
	csuite := bytes.Clone(cauth)
	csuite[0] = CompactVersion<<4 | byte(AESGCM)
	return k, append(cases,
		forgedCase{"compact-unknown-key", cunknown, ReasonUnknownKey},
		forgedCase{"compact-auth-failed", cauth, ReasonAuthFailed},
		forgedCase{"compact-truncated", bytes.Clone(cauth[:compactHeaderLen+CompactNonceLen+tagLen-1]), ReasonTruncated},
		forgedCase{"compact-header-only", bytes.Clone(cauth[:compactHeaderLen-1]), ReasonTruncated},
		forgedCase{"compact-unknown-suite", csuite, ReasonUnknownSuite},
	)
}

// TestOpenDetailMatchesOpen checks that OpenDetail reports the reason Open's
// error wraps, and that its Err is exactly the error Open returns.
func TestOpenDetailMatchesOpen(t *testing.T) {
	for _, s := range []Suite{XChaCha20Poly1305, AESGCM} {
		k, cases := forgedDatagrams(t, s)
		cases = append(cases, forgedCase{"empty", nil, ReasonTruncated}, forgedCase{"header only", cases[1].dg[:headerLen], ReasonTruncated})
		for _, c := range cases {
			dst := []byte("dst")
			out, f := k.OpenDetail(dst, c.dg, []byte("label"))
			if f.Reason != c.reason {
				t.Errorf("%v/%s: reason %v, want %v", s, c.name, f.Reason, c.reason)
			}
			if !bytes.Equal(out, []byte("dst")) {
				t.Errorf("%v/%s: failed OpenDetail changed dst to %q", s, c.name, out)
			}
			_, err := k.Open(nil, c.dg, []byte("label"))
			if !reflect.DeepEqual(f.Err(), err) {
				t.Errorf("%v/%s: OpenDetail's Err() = %#v, Open's error = %#v", s, c.name, f.Err(), err)
			}
			if !errors.Is(err, c.reason.sentinel()) {
				t.Errorf("%v/%s: Open's error %v does not wrap %v", s, c.name, err, c.reason.sentinel())
			}
		}
		// The label is checked first and reported as the caller's mistake.
		_, f := k.OpenDetail(nil, cases[0].dg, make([]byte, MaxLabelLen+1))
		if f.Reason != ReasonLabelTooLong || !errors.Is(f.Err(), ErrLabelTooLong) {
			t.Errorf("%v: long label: %+v, %v", s, f, f.Err())
		}
		// Success is the zero OpenFailure, whose Err is nil.
		dg, _ := k.Seal(nil, []byte("hi"), nil)
		out, f := k.OpenDetail(nil, dg, nil)
		if f != (OpenFailure{}) || f.Err() != nil || string(out) != "hi" {
			t.Errorf("%v: a good datagram: %q, %+v", s, out, f)
		}
	}
}

// TestRejectAllocatesNothing is the regression test for a forged datagram
// costing an allocation: OpenDetail must reject every kind of forgery
// without allocating, so a flood leaves no garbage.
func TestRejectAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's sync.Pool drops items, so allocation counts are meaningless")
	}
	for _, s := range []Suite{XChaCha20Poly1305, AESGCM} {
		k, cases := forgedDatagrams(t, s)
		dst := make([]byte, 0, 2048)
		label := []byte("prod")
		for _, c := range cases {
			n := testing.AllocsPerRun(100, func() {
				if _, f := k.OpenDetail(dst[:0], c.dg, label); f.Reason != c.reason {
					t.Fatalf("reason %v, want %v", f.Reason, c.reason)
				}
			})
			if n != 0 {
				t.Errorf("%v/%s: OpenDetail allocates %v times per rejected datagram, want 0", s, c.name, n)
			}
		}
	}
}

func TestOpenReasonString(t *testing.T) {
	seen := map[string]bool{}
	for r := ReasonNone; r <= ReasonLabelTooLong; r++ {
		s := r.String()
		if seen[s] {
			t.Errorf("two reasons are called %q", s)
		}
		seen[s] = true
	}
	if got := OpenReason(200).String(); got != "reason(200)" {
		t.Errorf("OpenReason(200).String() = %q", got)
	}
}
