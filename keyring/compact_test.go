package keyring

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
)

// The compact layout's known answer: a fixed key, timestamp, random bytes,
// label and plaintext give exactly these bytes.
const (
	katCompactKey    = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	katCompactMs     = 1_800_000_000_123 // 0x01a3185c507b
	katCompactRandom = "a0a1a2a3a4a5a6a7a8a9"
	katCompactWant   = "22e5a5a33401a3185c507ba0a1a2a3a4a5a6a7a8a9" +
		"50a68c25bfa812c5e3db5d1fcb1f734fa00a6b4f8930425105eca3a34ae4097fa20789cfdec413"
)

func TestKnownAnswerCompact(t *testing.T) {
	key, random := unhex(t, katCompactKey), unhex(t, katCompactRandom)
	k := mustNew(t, key)
	got := k.sealStamped(nil, []byte(katPlaintext), []byte(katLabel), katCompactMs, random)

	// The same bytes from the specification (SECURITY.md) on the standard
	// AEAD: header 0x22 || fingerprint, wire nonce ms(6) || random(10),
	// AEAD nonce wire nonce || 8 zero bytes, AAD header || label.
	sum := sha256.Sum256(append([]byte("membership key fingerprint"), key...))
	header := append([]byte{0x22}, sum[:4]...)
	wire := append(unhex(t, "01a3185c507b"), random...)
	aead, err := chacha20poly1305.NewX(key)
	mustDo(t, err)
	spec := append(append(bytes.Clone(header), wire...),
		aead.Seal(nil, append(bytes.Clone(wire), make([]byte, 8)...), []byte(katPlaintext), append(bytes.Clone(header), katLabel...))...)
	if !bytes.Equal(got, spec) {
		t.Fatalf("SealStamped differs from the specification:\n got %x\nspec %x", got, spec)
	}
	if hex.EncodeToString(got) != katCompactWant {
		t.Fatalf("wire format changed:\n got %x\nwant %s", got, katCompactWant)
	}
	pt, err := k.Open(nil, got, []byte(katLabel))
	if err != nil || string(pt) != katPlaintext {
		t.Fatalf("Open(known answer) = %q, %v", pt, err)
	}
	if ms, ok := Stamp(got); !ok || ms != katCompactMs {
		t.Fatalf("Stamp = %d, %v; want %d", ms, ok, int64(katCompactMs))
	}
	if n := Nonce(got); !bytes.Equal(n, wire) {
		t.Fatalf("Nonce = %x, want %x", n, wire)
	}
}

// TestSealStamped: the compact layout is 9 bytes shorter than the full
// one, opens with every key of the ring like the full one, carries its
// stamp (clamped to what 6 bytes hold), and every seal has its own nonce.
func TestSealStamped(t *testing.T) {
	k := mustNew(t, testKey(32, 1), WithKeys(testKey(32, 2)))
	if got := XChaCha20Poly1305.CompactOverhead(); got != 37 || k.CompactOverhead() != 37 {
		t.Fatalf("CompactOverhead = %d, want 37", got)
	}
	if got := AESGCM.CompactOverhead(); got != 0 {
		t.Fatalf("AES-GCM CompactOverhead = %d, want 0", got)
	}
	pt := []byte("ping")
	seen := map[string]bool{}
	for _, ms := range []int64{0, 1, 1_800_000_000_000, maxStamp, maxStamp + 1, -5} {
		dg, err := k.SealStamped(nil, pt, []byte("l"), ms)
		mustDo(t, err)
		if len(dg) != len(pt)+37 {
			t.Fatalf("len = %d, want %d", len(dg), len(pt)+37)
		}
		want := min(max(ms, 0), maxStamp)
		if got, ok := Stamp(dg); !ok || got != want {
			t.Errorf("Stamp(sealed at %d) = %d, %v; want %d", ms, got, ok, want)
		}
		if seen[string(Nonce(dg))] {
			t.Errorf("nonce %x repeated", Nonce(dg))
		}
		seen[string(Nonce(dg))] = true
		out, err := k.Open(nil, dg, []byte("l"))
		if err != nil || !bytes.Equal(out, pt) {
			t.Fatalf("Open = %q, %v", out, err)
		}
		// A secondary key's holder opens it too, as with the full layout.
		other := mustNew(t, testKey(32, 2), WithKeys(testKey(32, 1)))
		if _, err := other.Open(nil, dg, []byte("l")); err != nil {
			t.Fatalf("secondary key: %v", err)
		}
		// Every byte is authenticated: the stamp, the random bytes, the
		// header and the label.
		for i := range dg {
			bad := bytes.Clone(dg)
			bad[i] ^= 0x01
			if _, err := k.Open(nil, bad, []byte("l")); err == nil {
				t.Fatalf("a flipped bit in byte %d still opens", i)
			}
		}
		if _, err := k.Open(nil, dg, []byte("m")); !errors.Is(err, ErrAuthFailed) {
			t.Fatalf("another label: %v", err)
		}
	}
	if _, ok := Stamp(mustSeal(t, k, pt)); ok {
		t.Error("Stamp found a stamp in a full-layout datagram")
	}
	aes := mustNew(t, testKey(32, 1), WithSuite(AESGCM))
	if _, err := aes.SealStamped(nil, pt, nil, 1); !errors.Is(err, ErrUnknownSuite) {
		t.Errorf("AES-GCM SealStamped: %v, want ErrUnknownSuite", err)
	}
	if _, err := k.SealStamped(nil, pt, make([]byte, MaxLabelLen+1), 1); !errors.Is(err, ErrLabelTooLong) {
		t.Errorf("long label: %v", err)
	}
	// The failure of a compact datagram reports its version, suite and
	// fingerprint as the header holds them.
	dg, _ := mustNew(t, testKey(32, 9)).SealStamped(nil, pt, nil, 1)
	_, f := k.OpenDetail(nil, dg, nil)
	if f.Reason != ReasonUnknownKey || f.Version != CompactVersion || f.Suite != byte(XChaCha20Poly1305) ||
		!f.HasFingerprint || f.Fingerprint != [4]byte(dg[1:5]) {
		t.Errorf("failure = %+v", f)
	}
}

// TestSealStampedAllocatesNothing: sealing in the compact layout into a
// buffer with room allocates nothing, and neither does opening it.
func TestSealStampedAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's sync.Pool drops items, so allocation counts are meaningless")
	}
	k := mustNew(t, testKey(32, 1))
	pt := make([]byte, 100)
	buf := make([]byte, 0, 200)
	out := make([]byte, 0, 200)
	label := []byte("prod")
	n := testing.AllocsPerRun(100, func() {
		dg, err := k.SealStamped(buf[:0], pt, label, 1_800_000_000_000)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := k.Open(out[:0], dg, label); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Errorf("%v allocations per seal and open, want 0", n)
	}
}

func mustSeal(t *testing.T, k *Keyring, pt []byte) []byte {
	t.Helper()
	dg, err := k.Seal(nil, pt, nil)
	mustDo(t, err)
	return dg
}
