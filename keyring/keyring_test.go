package keyring

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// testKey returns a deterministic, non-zero key of n bytes.
func testKey(n int, seed byte) []byte {
	k := make([]byte, n)
	for i := range k {
		k[i] = seed + byte(i)*7 + 1
	}
	return k
}

func mustNew(t testing.TB, primary []byte, opts ...Option) *Keyring {
	t.Helper()
	k, err := New(primary, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return k
}

type suiteCase struct {
	suite  Suite
	keyLen int
}

var suiteCases = []suiteCase{
	{AESGCM, 16}, {AESGCM, 24}, {AESGCM, 32}, {XChaCha20Poly1305, 32},
}

func (c suiteCase) String() string { return fmt.Sprintf("%s-%d", c.suite, c.keyLen*8) }

func TestRoundTrip(t *testing.T) {
	for _, c := range suiteCases {
		t.Run(c.String(), func(t *testing.T) {
			k := mustNew(t, testKey(c.keyLen, 1), WithSuite(c.suite))
			for _, size := range []int{0, 1, 15, 16, 17, 1400, 65536} {
				for _, label := range [][]byte{nil, []byte("prod-eu"), bytes.Repeat([]byte{'x'}, MaxLabelLen)} {
					pt := bytes.Repeat([]byte{0xA5}, size)
					dg, err := k.Seal([]byte("prefix"), pt, label)
					if err != nil {
						t.Fatalf("Seal: %v", err)
					}
					if !bytes.HasPrefix(dg, []byte("prefix")) {
						t.Fatalf("Seal did not append to dst")
					}
					dg = dg[len("prefix"):]
					if got, want := len(dg), size+c.suite.Overhead(); got != want {
						t.Fatalf("len(datagram) = %d, want %d", got, want)
					}
					if dg[0] != Version || Suite(dg[1]) != c.suite || [4]byte(dg[2:6]) != Fingerprint(k.Primary()) {
						t.Fatalf("header = %x, want version %d suite %d fp %x", dg[:6], Version, c.suite, Fingerprint(k.Primary()))
					}
					got, err := k.Open([]byte("pre"), dg, label)
					if err != nil {
						t.Fatalf("Open(size %d, label %q): %v", size, label, err)
					}
					if !bytes.Equal(got, append([]byte("pre"), pt...)) {
						t.Fatalf("Open returned different plaintext for size %d", size)
					}
				}
			}
		})
	}
}

func TestNoncesDiffer(t *testing.T) {
	k := mustNew(t, testKey(32, 1))
	a, _ := k.Seal(nil, []byte("same"), nil)
	b, _ := k.Seal(nil, []byte("same"), nil)
	if bytes.Equal(a, b) {
		t.Fatal("two seals of one plaintext are identical: nonce not random")
	}
}

func TestTamperAnyByteFails(t *testing.T) {
	for _, c := range suiteCases {
		t.Run(c.String(), func(t *testing.T) {
			k := mustNew(t, testKey(c.keyLen, 3), WithSuite(c.suite))
			label := []byte("cluster")
			dg, err := k.Seal(nil, []byte("a membership update of some length"), label)
			if err != nil {
				t.Fatal(err)
			}
			for i := range dg {
				for _, flip := range []byte{0x01, 0x80, 0xFF} {
					bad := bytes.Clone(dg)
					bad[i] ^= flip
					out, err := k.Open(nil, bad, label)
					if err == nil {
						t.Fatalf("byte %d ^ %#x: Open succeeded", i, flip)
					}
					if out != nil {
						t.Fatalf("byte %d: Open returned output on failure", i)
					}
					var want error
					switch {
					case i == 0:
						want = ErrUnknownVersion
					case i == 1:
						want = ErrUnknownSuite
					case i < headerLen:
						// The fingerprint no longer names any key; every key
						// is tried and fails.
						want = ErrUnknownKey
					default:
						want = ErrAuthFailed
					}
					if !errors.Is(err, want) {
						t.Fatalf("byte %d ^ %#x: err = %v, want %v", i, flip, err, want)
					}
				}
			}
		})
	}
}

func TestWrongLabelFails(t *testing.T) {
	k := mustNew(t, testKey(32, 1))
	dg, _ := k.Seal(nil, []byte("hello"), []byte("prod-eu"))
	for _, label := range [][]byte{nil, []byte("prod-us"), []byte("prod-eu "), []byte("prod-e")} {
		if _, err := k.Open(nil, dg, label); !errors.Is(err, ErrAuthFailed) {
			t.Errorf("label %q: err = %v, want ErrAuthFailed", label, err)
		}
	}
	if _, err := k.Open(nil, dg, []byte("prod-eu")); err != nil {
		t.Fatalf("right label: %v", err)
	}
}

func TestLabelTooLong(t *testing.T) {
	k := mustNew(t, testKey(32, 1))
	long := make([]byte, MaxLabelLen+1)
	if _, err := k.Seal(nil, nil, long); !errors.Is(err, ErrLabelTooLong) {
		t.Fatalf("Seal: err = %v, want ErrLabelTooLong", err)
	}
	dg, _ := k.Seal(nil, nil, nil)
	if _, err := k.Open(nil, dg, long); !errors.Is(err, ErrLabelTooLong) {
		t.Fatalf("Open: err = %v, want ErrLabelTooLong", err)
	}
}

func TestRemovedKeyNamesFingerprint(t *testing.T) {
	oldKey, newKey := testKey(32, 1), testKey(32, 2)
	k := mustNew(t, oldKey)
	dg, _ := k.Seal(nil, []byte("sealed under the old key"), nil)
	mustDo(t, k.Install(newKey))
	mustDo(t, k.Use(newKey))
	mustDo(t, k.Remove(oldKey))

	_, err := k.Open(nil, dg, nil)
	if !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("err = %v, want ErrUnknownKey", err)
	}
	var oe *OpenError
	if !errors.As(err, &oe) {
		t.Fatalf("err is %T, want *OpenError", err)
	}
	fp := Fingerprint(oldKey)
	if !oe.HasFingerprint || oe.Fingerprint != fp {
		t.Fatalf("OpenError.Fingerprint = %x (has %v), want %x", oe.Fingerprint, oe.HasFingerprint, fp)
	}
	if !strings.Contains(err.Error(), hex.EncodeToString(fp[:])) {
		t.Fatalf("error %q does not name fingerprint %x", err, fp)
	}
}

func mustDo(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestRotation walks the operator's procedure across two nodes: install the
// new key everywhere, use it everywhere, remove the old one everywhere.
// Datagrams sealed under the old key open until it is removed.
func TestRotation(t *testing.T) {
	k1, k2 := testKey(32, 1), testKey(32, 2)
	a, b := mustNew(t, k1), mustNew(t, k1)
	open := func(r *Keyring, dg []byte) error { _, err := r.Open(nil, dg, nil); return err }

	old, _ := a.Seal(nil, []byte("old"), nil)

	// Step 1: install everywhere. Still sealing with k1.
	mustDo(t, a.Install(k2))
	mustDo(t, b.Install(k2))
	mustDo(t, a.Install(k2)) // idempotent
	if got := len(a.Keys()); got != 2 {
		t.Fatalf("after installing twice: %d keys, want 2", got)
	}
	// Step 2: use on a first; b, which only installed k2, already opens it.
	mustDo(t, a.Use(k2))
	if !bytes.Equal(a.Primary(), k2) {
		t.Fatal("Use did not make k2 primary")
	}
	fresh, _ := a.Seal(nil, []byte("new"), nil)
	if [4]byte(fresh[2:6]) != Fingerprint(k2) {
		t.Fatal("seal after Use does not carry k2's fingerprint")
	}
	mustDo(t, open(b, fresh))
	mustDo(t, open(a, old))
	mustDo(t, b.Use(k2))
	mustDo(t, open(b, old))
	// Step 3: remove everywhere. Old datagrams stop opening.
	mustDo(t, a.Remove(k1))
	mustDo(t, a.Remove(k1)) // idempotent
	if err := open(a, old); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("old datagram after removal: err = %v, want ErrUnknownKey", err)
	}
	mustDo(t, open(b, old)) // b has not removed it yet
	mustDo(t, open(a, fresh))
	if keys := a.Keys(); len(keys) != 1 || !bytes.Equal(keys[0], k2) {
		t.Fatalf("Keys after rotation = %d keys, want only k2", len(keys))
	}
}

func TestRemovePrimaryRefused(t *testing.T) {
	k1, k2 := testKey(32, 1), testKey(32, 2)
	k := mustNew(t, k1, WithKeys(k2))
	err := k.Remove(k1)
	if !errors.Is(err, ErrRemovePrimary) {
		t.Fatalf("err = %v, want ErrRemovePrimary", err)
	}
	if len(k.Keys()) != 2 {
		t.Fatal("refused Remove changed the keyring")
	}
}

func TestUseNotInstalled(t *testing.T) {
	k := mustNew(t, testKey(32, 1))
	if err := k.Use(testKey(32, 9)); !errors.Is(err, ErrKeyNotInstalled) {
		t.Fatalf("err = %v, want ErrKeyNotInstalled", err)
	}
	mustDo(t, k.Use(testKey(32, 1))) // current primary: no-op
}

func TestUseKeepsOrder(t *testing.T) {
	k1, k2, k3 := testKey(32, 1), testKey(32, 2), testKey(32, 3)
	k := mustNew(t, k1, WithKeys(k2, k3))
	mustDo(t, k.Use(k3))
	want := [][]byte{k3, k1, k2}
	got := k.Keys()
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("Keys()[%d] has fingerprint %x, want %x", i, Fingerprint(got[i]), Fingerprint(want[i]))
		}
	}
}

// TestOpenTriesEveryKey: a datagram whose fingerprint names no installed key
// still opens if some key authenticates it (the design's "then every other
// key, primary first").
func TestOpenTriesEveryKey(t *testing.T) {
	k1, k2 := testKey(32, 1), testKey(32, 2)
	sender := mustNew(t, k2)
	dg, _ := sender.Seal(nil, []byte("x"), nil)
	// Rewrite the fingerprint to garbage and recompute nothing: the header
	// is authenticated, so this cannot open...
	bad := bytes.Clone(dg)
	copy(bad[2:6], []byte{0, 0, 0, 0})
	r := mustNew(t, k1, WithKeys(k2))
	if _, err := r.Open(nil, bad, nil); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("forged fingerprint: err = %v, want ErrUnknownKey", err)
	}
	// ...while the genuine datagram opens with the secondary key.
	if _, err := r.Open(nil, dg, nil); err != nil {
		t.Fatalf("secondary key: %v", err)
	}
}

func TestMalformedInputs(t *testing.T) {
	for _, c := range suiteCases {
		k := mustNew(t, testKey(c.keyLen, 1), WithSuite(c.suite))
		dg, _ := k.Seal(nil, []byte("payload"), nil)
		// Every strict prefix fails with a typed error.
		for n := 0; n < len(dg); n++ {
			_, err := k.Open(nil, dg[:n], nil)
			if err == nil {
				t.Fatalf("%v: prefix of %d bytes opened", c, n)
			}
			var oe *OpenError
			if !errors.As(err, &oe) || oe.Len != n {
				t.Fatalf("%v: prefix %d: err = %#v, want *OpenError with Len %d", c, n, err, n)
			}
			if n < headerLen+c.suite.NonceSize()+tagLen && !errors.Is(err, ErrTruncated) {
				t.Fatalf("%v: prefix %d: err = %v, want ErrTruncated", c, n, err)
			}
		}
		if _, err := k.Open(nil, nil, nil); !errors.Is(err, ErrTruncated) {
			t.Fatalf("nil datagram: %v", err)
		}
		wrongVersion := bytes.Clone(dg)
		wrongVersion[0] = 2
		if _, err := k.Open(nil, wrongVersion, nil); !errors.Is(err, ErrUnknownVersion) || !strings.Contains(err.Error(), "version 2") {
			t.Fatalf("version 2: %v", err)
		}
		for _, s := range []byte{0, 3, 255} {
			bad := bytes.Clone(dg)
			bad[1] = s
			if _, err := k.Open(nil, bad, nil); !errors.Is(err, ErrUnknownSuite) {
				t.Fatalf("suite %d: %v", s, err)
			}
		}
	}
	// A datagram of the other suite is rejected by suite, not tried.
	x := mustNew(t, testKey(32, 1))
	a := mustNew(t, testKey(32, 1), WithSuite(AESGCM))
	dg, _ := x.Seal(nil, nil, nil)
	if _, err := a.Open(nil, dg, nil); !errors.Is(err, ErrUnknownSuite) {
		t.Fatalf("cross-suite: %v", err)
	}
}

func TestErrorsAreExclusive(t *testing.T) {
	reasons := []error{ErrTruncated, ErrUnknownVersion, ErrUnknownSuite, ErrUnknownKey, ErrAuthFailed}
	k := mustNew(t, testKey(32, 1))
	dg, _ := k.Seal(nil, []byte("p"), nil)
	other, _ := mustNew(t, testKey(32, 2)).Seal(nil, []byte("p"), nil)
	auth := bytes.Clone(dg)
	auth[len(auth)-1] ^= 1
	inputs := map[error][]byte{
		ErrTruncated:      dg[:3],
		ErrUnknownVersion: append([]byte{9}, dg[1:]...),
		ErrUnknownSuite:   append([]byte{1, 7}, dg[2:]...),
		ErrUnknownKey:     other,
		ErrAuthFailed:     auth,
	}
	for want, in := range inputs {
		_, err := k.Open(nil, in, nil)
		for _, r := range reasons {
			if errors.Is(err, r) != (r == want) {
				t.Errorf("input for %v: errors.Is(%v, %v) = %v", want, err, r, !(r == want))
			}
		}
	}
}

func TestKeyValidation(t *testing.T) {
	cases := []struct {
		name string
		key  []byte
		opts []Option
		want error
		msg  string
	}{
		{"xchacha short", testKey(16, 1), nil, ErrInvalidKey, "needs a 32-byte key, got 16 bytes"},
		{"xchacha long", testKey(33, 1), nil, ErrInvalidKey, "got 33 bytes"},
		{"aes 20", testKey(20, 1), []Option{WithSuite(AESGCM)}, ErrInvalidKey, "16-, 24- or 32-byte key, got 20"},
		{"empty", nil, nil, ErrInvalidKey, "got 0 bytes"},
		{"all zero", make([]byte, 32), nil, ErrInvalidKey, "all zero"},
		{"unknown suite", testKey(32, 1), []Option{WithSuite(9)}, ErrUnknownSuite, "suite(9)"},
		{"duplicate secondary", testKey(32, 1), []Option{WithKeys(testKey(32, 1))}, ErrDuplicateKey, "already"},
		{"duplicate secondaries", testKey(32, 1), []Option{WithKeys(testKey(32, 2), testKey(32, 2))}, ErrDuplicateKey, "key 1"},
		{"bad secondary", testKey(32, 1), []Option{WithKeys(testKey(31, 2))}, ErrInvalidKey, "got 31 bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.key, c.opts...)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("err %q does not say %q", err, c.msg)
			}
			assertNoKeyMaterial(t, err.Error(), c.key)
		})
	}
	k := mustNew(t, testKey(32, 1))
	if err := k.Install(testKey(8, 1)); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("Install short key: %v", err)
	}
	if err := k.Install(make([]byte, 32)); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("Install zero key: %v", err)
	}
}

// assertNoKeyMaterial fails if msg contains key in any common encoding.
func assertNoKeyMaterial(t *testing.T, msg string, key []byte) {
	t.Helper()
	if len(key) < 4 {
		return
	}
	for _, enc := range []string{hex.EncodeToString(key), base64.StdEncoding.EncodeToString(key), fmt.Sprint(key), string(key)} {
		if strings.Contains(msg, enc) {
			t.Fatalf("error message %q contains key material", msg)
		}
	}
}

func TestCopies(t *testing.T) {
	in := testKey(32, 1)
	k := mustNew(t, in)
	dg, _ := k.Seal(nil, []byte("x"), nil)
	in[0] ^= 0xFF // the caller's slice changes; the keyring must not
	if _, err := k.Open(nil, dg, nil); err != nil {
		t.Fatalf("keyring changed with the caller's slice: %v", err)
	}
	keys := k.Keys()
	keys[0][0] ^= 0xFF
	p := k.Primary()
	p[1] ^= 0xFF
	if _, err := k.Open(nil, dg, nil); err != nil {
		t.Fatalf("keyring changed with the returned slices: %v", err)
	}
}

func TestStats(t *testing.T) {
	k1, k2 := testKey(16, 1), testKey(16, 2)
	k := mustNew(t, k1, WithSuite(AESGCM), WithKeys(k2))
	for range 5 {
		if _, err := k.Seal(nil, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	mustDo(t, k.Use(k2))
	for range 2 {
		k.Seal(nil, nil, nil)
	}
	st := k.Stats()
	if len(st) != 2 {
		t.Fatalf("Stats: %d entries, want 2", len(st))
	}
	if st[0].Fingerprint != Fingerprint(k2) || !st[0].Primary || st[0].Seals != 2 || st[0].SealLimit != AESGCMSealLimit {
		t.Fatalf("Stats[0] = %+v, want k2 primary with 2 seals", st[0])
	}
	if st[1].Fingerprint != Fingerprint(k1) || st[1].Primary || st[1].Seals != 5 {
		t.Fatalf("Stats[1] = %+v, want k1 with 5 seals", st[1])
	}
	if x := mustNew(t, testKey(32, 1)).Stats()[0]; x.SealLimit != 0 {
		t.Fatalf("XChaCha SealLimit = %d, want 0", x.SealLimit)
	}
}

func TestFingerprint(t *testing.T) {
	key := testKey(32, 1)
	sum := sha256.Sum256(append([]byte("membership key fingerprint"), key...))
	if got := Fingerprint(key); got != [4]byte(sum[:4]) {
		t.Fatalf("Fingerprint = %x, want %x", got, sum[:4])
	}
	if Fingerprint(testKey(32, 2)) == Fingerprint(key) {
		t.Fatal("two test keys share a fingerprint")
	}
}

func TestGenerateAndParseKey(t *testing.T) {
	for _, s := range []Suite{AESGCM, XChaCha20Poly1305} {
		a, err := Generate(s)
		mustDo(t, err)
		b, err := Generate(s)
		mustDo(t, err)
		if bytes.Equal(a, b) {
			t.Fatal("Generate returned the same key twice")
		}
		if _, err := New(a, WithSuite(s)); err != nil {
			t.Fatalf("generated key rejected: %v", err)
		}
		parsed, err := ParseKey(" " + base64.StdEncoding.EncodeToString(a) + "\n")
		mustDo(t, err)
		if !bytes.Equal(parsed, a) {
			t.Fatal("ParseKey(base64(key)) != key")
		}
	}
	if _, err := Generate(0); !errors.Is(err, ErrUnknownSuite) {
		t.Fatalf("Generate(0): %v", err)
	}
	for _, bad := range []string{"", "not base64!", "AAAA=", base64.RawStdEncoding.EncodeToString(testKey(32, 1))} {
		if _, err := ParseKey(bad); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("ParseKey(%q): err = %v, want ErrInvalidKey", bad, err)
		}
	}
}

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys")
	k1, k2 := testKey(24, 1), testKey(24, 2)
	k := mustNew(t, k2, WithSuite(AESGCM), WithKeys(k1))
	mustDo(t, k.Save(path))
	fi, err := os.Stat(path)
	mustDo(t, err)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode = %v, want 0600", fi.Mode().Perm())
	}
	back, err := Load(path)
	mustDo(t, err)
	if back.Suite() != AESGCM {
		t.Fatalf("loaded suite %v", back.Suite())
	}
	got := back.Keys()
	if len(got) != 2 || !bytes.Equal(got[0], k2) || !bytes.Equal(got[1], k1) {
		t.Fatal("loaded keys differ from saved ones or lost their order")
	}
	// Overwrite: the rename replaces the file and leaves no temporary.
	mustDo(t, k.Remove(k1))
	mustDo(t, k.Save(path))
	back, err = Load(path)
	mustDo(t, err)
	if len(back.Keys()) != 1 {
		t.Fatalf("after overwrite: %d keys, want 1", len(back.Keys()))
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries after Save, want 1 (no temporaries)", len(entries))
	}
	if err := k.Save(filepath.Join(dir, "missing", "keys")); err == nil {
		t.Fatal("Save into a missing directory succeeded")
	}
}

func TestLoadErrors(t *testing.T) {
	good := base64.StdEncoding.EncodeToString(testKey(32, 1))
	short := base64.StdEncoding.EncodeToString(testKey(16, 1))
	cases := []struct{ name, body, msg string }{
		{"no suite", good + "\nend 1\n", "line 1: want \"suite NAME\""},
		{"bad suite", "suite rot13\n" + good + "\nend 1\n", "line 1: keyring: unknown or mismatched suite \"rot13\""},
		{"no keys", "# only a comment\nsuite xchacha20-poly1305\nend 0\n", "holds no key"},
		{"bad base64", "suite xchacha20-poly1305\n\n" + good + "\n%%%\nend 2\n", "line 4"},
		{"short key", "suite xchacha20-poly1305\n" + short + "\nend 1", "got 16 bytes"},
		{"duplicate", "suite xchacha20-poly1305\n" + good + "\n\n" + good + "\nend 2", "line 4 is also on line 2"},
		{"empty", "", "no \"suite NAME\" line"},
		{"no end", "suite xchacha20-poly1305\n" + good + "\n", "looks truncated"},
	}
	dir := t.TempDir()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-"))
			mustDo(t, os.WriteFile(path, []byte(c.body), 0o600))
			_, err := Load(path)
			if err == nil || !strings.Contains(err.Error(), c.msg) || !strings.Contains(err.Error(), path) {
				t.Fatalf("Load: err = %v, want it to name %s and say %q", err, path, c.msg)
			}
			if strings.Contains(err.Error(), good) || strings.Contains(err.Error(), short) {
				t.Fatalf("error %q contains a key", err)
			}
		})
	}
	if _, err := Load(filepath.Join(dir, "nope")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	big := filepath.Join(dir, "big")
	mustDo(t, os.WriteFile(big, bytes.Repeat([]byte("#"), maxKeyFile+2), 0o600))
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("huge file: %v", err)
	}
}

// TestConcurrentRotation rotates keys in a loop while other goroutines seal
// and open. Run it under -race: Seal and Open read the snapshot without
// locks, rotation publishes new snapshots, and every datagram sealed under a
// key that is still installed must open.
func TestConcurrentRotation(t *testing.T) {
	keys := make([][]byte, 8)
	for i := range keys {
		keys[i] = testKey(32, byte(i*31))
	}
	k := mustNew(t, keys[0])
	label := []byte("rotate")
	// keys[0] stays installed throughout (never removed), so datagrams
	// sealed while it is primary must always open.
	var (
		stop     atomic.Bool
		failures atomic.Int64
		opened   atomic.Int64
		wg       sync.WaitGroup
	)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 0, 256)
			out := make([]byte, 0, 256)
			for !stop.Load() {
				dg, err := k.Seal(buf[:0], []byte("concurrent datagram"), label)
				if err != nil {
					failures.Add(1)
					return
				}
				pt, err := k.Open(out[:0], dg, label)
				switch {
				case err == nil && string(pt) == "concurrent datagram":
					opened.Add(1)
				case errors.Is(err, ErrUnknownKey) && [4]byte(dg[2:6]) != Fingerprint(keys[0]):
					// Sealed under a rotating key that was removed between
					// Seal and Open: allowed.
				default:
					t.Errorf("Open: %v", err)
					failures.Add(1)
					return
				}
			}
		}()
	}
	// Rotate at least 300 times and until the workers have opened plenty of
	// datagrams concurrently with it (a condition, not a sleep).
	for round := 0; (round < 300 || opened.Load() < 2000) && round < 10_000_000 && failures.Load() == 0; round++ {
		next := keys[1+round%7]
		mustDo(t, k.Install(next))
		mustDo(t, k.Use(next))
		mustDo(t, k.Use(keys[0]))
		mustDo(t, k.Remove(next))
	}
	stop.Store(true)
	wg.Wait()
	if failures.Load() != 0 {
		t.Fatalf("%d failures", failures.Load())
	}
	if opened.Load() < 2000 {
		t.Fatalf("only %d datagrams opened while rotating", opened.Load())
	}
	if got := k.Keys(); len(got) != 1 || !bytes.Equal(got[0], keys[0]) {
		t.Fatalf("after rotation: %d keys", len(got))
	}
}

func TestZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's sync.Pool drops items, so allocation counts are meaningless")
	}
	for _, c := range suiteCases {
		k := mustNew(t, testKey(c.keyLen, 1), WithSuite(c.suite))
		label := []byte("prod")
		pt := make([]byte, 1200)
		dst := make([]byte, 0, 2048)
		out := make([]byte, 0, 2048)
		dg, _ := k.Seal(nil, pt, label)
		if n := testing.AllocsPerRun(100, func() { k.Seal(dst[:0], pt, label) }); n != 0 {
			t.Errorf("%v: Seal allocates %v times per call", c, n)
		}
		if n := testing.AllocsPerRun(100, func() { k.Open(out[:0], dg, label) }); n != 0 {
			t.Errorf("%v: Open allocates %v times per call", c, n)
		}
	}
}
