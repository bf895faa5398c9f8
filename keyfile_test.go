package membership

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshward/membership/keyring"
	"github.com/meshward/membership/metrics"
	"github.com/meshward/membership/transport"
)

var (
	testKey2 = bytes.Repeat([]byte{0x43}, 32)
	testKey3 = bytes.Repeat([]byte{0x44}, 32)
)

// loadKeys loads the key file at path and returns its keys, primary first.
func loadKeys(t testing.TB, path string) [][]byte {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Fatalf("key file mode %04o, want 0600", perm)
	}
	r, err := keyring.Load(path)
	if err != nil {
		t.Fatalf("key file does not load: %v", err)
	}
	return r.Keys()
}

// rotate installs, uses and removes on ring as a rotation from old to new
// does on one node.
func rotate(t testing.TB, ring *keyring.Keyring, old, new []byte) {
	t.Helper()
	if err := ring.Install(new); err != nil {
		t.Fatal(err)
	}
	if err := ring.Use(new); err != nil {
		t.Fatal(err)
	}
	if err := ring.Remove(old); err != nil {
		t.Fatal(err)
	}
}

// TestKeyringFileSurvivesRotation: a node with WithKeyringFile saves every
// rotation step, and restarted from the file alone it speaks the new key:
// it joins a member that holds nothing else.
func TestKeyringFileSurvivesRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	c := newMemCluster(t, 1)
	a := c.add("a", WithKeyringFile(path))
	if got := loadKeys(t, path); len(got) != 1 || !bytes.Equal(got[0], testKey) {
		t.Fatal("the key file was not created from WithKeyring's keyring")
	}
	c.joinAll()
	ring := a.Keyring()
	if err := ring.Install(testKey2); err != nil {
		t.Fatal(err)
	}
	if got := loadKeys(t, path); len(got) != 2 || !bytes.Equal(got[1], testKey2) {
		t.Fatal("Install was not saved before it returned")
	}
	if err := ring.Use(testKey2); err != nil {
		t.Fatal(err)
	}
	if got := loadKeys(t, path); !bytes.Equal(got[0], testKey2) {
		t.Fatal("Use was not saved before it returned")
	}
	if err := ring.Remove(testKey); err != nil {
		t.Fatal(err)
	}
	if got := loadKeys(t, path); len(got) != 1 || !bytes.Equal(got[0], testKey2) {
		t.Fatal("Remove was not saved before it returned")
	}
	rotate(t, c.nodes[0].Keyring(), testKey, testKey2)
	addr := a.Myself().Addr
	a.Shutdown()

	restarted := c.restart("a", addr, WithKeyringFile(path))
	if !bytes.Equal(restarted.Keyring().Primary(), testKey2) {
		t.Fatal("the restarted node did not load the new primary")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := restarted.Join(ctx, c.nodes[0].Myself().Addr.String()); err != nil {
		t.Fatalf("the restarted node cannot join a member that holds only the new key: %v", err)
	}
	c.everyoneSees([]*Node{c.nodes[0], restarted}, []string{"a", "node-0"}, StateAlive, 10*time.Second)
}

// restart starts a node named name at addr on the cluster's network, as a
// process restarted on its host would: with the options given only (no
// keyring unless they hold one).
func (c *testCluster) restart(name string, addr netip.AddrPort, opts ...Option) *Node {
	c.t.Helper()
	tr, err := c.net.Listen(transport.MemConfig{Addr: addr})
	if err != nil {
		c.t.Fatal(err)
	}
	base := []Option{WithName(name), WithTransport(tr), WithProfile(ProfileLocal), WithLogger(quietLogger())}
	nd, err := New(append(base, opts...)...)
	if err != nil {
		c.t.Fatalf("New(%s): %v", name, err)
	}
	c.nodes = append(c.nodes, nd)
	return nd
}

// TestKeyringFileRules: what New does with a key file that exists, one
// that does not, one that others may read, and a keyring given beside it.
func TestKeyringFileRules(t *testing.T) {
	c := newMemCluster(t, 0)
	dir := t.TempDir()
	newNode := func(name string, opts ...Option) (*Node, error) {
		base := []Option{WithName(name), WithTransport(c.net.NewTransport()), WithProfile(ProfileLocal), WithLogger(quietLogger())}
		nd, err := New(append(base, opts...)...)
		if err == nil {
			t.Cleanup(func() { nd.Shutdown() })
		}
		return nd, err
	}

	// No file and no keyring: nothing to start from.
	missing := filepath.Join(dir, "missing")
	if _, err := newNode("a", WithKeyringFile(missing)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file without keyring: %v, want fs.ErrNotExist", err)
	}
	if _, err := newNode("a", WithKeyringFile(missing), WithoutEncryption()); err == nil || !strings.Contains(err.Error(), "contradict") {
		t.Fatalf("WithKeyringFile and WithoutEncryption: %v", err)
	}

	// The file exists and differs from WithKeyring's keyring: the file
	// wins, inside the keyring object given.
	path := filepath.Join(dir, "keys")
	saved, err := keyring.New(testKey2, keyring.WithKeys(testKey3))
	if err != nil {
		t.Fatal(err)
	}
	if err := saved.Save(path); err != nil {
		t.Fatal(err)
	}
	given := newRing(t, testKey)
	nd, err := newNode("b", WithKeyring(given), WithKeyringFile(path))
	if err != nil {
		t.Fatal(err)
	}
	if nd.Keyring() != given {
		t.Fatal("Keyring() is not the keyring given")
	}
	keys := given.Keys()
	if len(keys) != 2 || !bytes.Equal(keys[0], testKey2) || !bytes.Equal(keys[1], testKey3) {
		t.Fatalf("the given keyring holds %d keys after New, not the file's", len(keys))
	}

	// A keyring of another suite than the file's is refused.
	aes, err := keyring.New(testKey, keyring.WithSuite(keyring.AESGCM))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newNode("c", WithKeyring(aes), WithKeyringFile(path)); err == nil || !strings.Contains(err.Error(), "suite") {
		t.Fatalf("suite mismatch: %v", err)
	}

	// A file others may read is refused, unless the caller opts out.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := newNode("d", WithKeyringFile(path)); !errors.Is(err, keyring.ErrInsecureKeyFile) {
		t.Fatalf("mode 0644: %v, want ErrInsecureKeyFile", err)
	}
	nd, err = newNode("e", WithKeyringFile(path, keyring.AllowInsecurePermissions()))
	if err != nil {
		t.Fatalf("mode 0644 with AllowInsecurePermissions: %v", err)
	}
	if !bytes.Equal(nd.Keyring().Primary(), testKey2) {
		t.Fatal("loaded the wrong primary")
	}

	// A truncated file is refused.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(dir, "cut")
	if err := os.WriteFile(cut, data[:bytes.LastIndex(data, []byte("end"))], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := newNode("f", WithKeyringFile(cut)); !errors.Is(err, keyring.ErrKeyFile) {
		t.Fatalf("truncated file: %v, want ErrKeyFile", err)
	}
}

// TestKeyringFileNeverTorn: while the keyring rotates as fast as it can,
// the key file always loads, always has mode 0600, and ends up holding
// the keyring's final keys.
func TestKeyringFileNeverTorn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	c := newMemCluster(t, 0)
	nd := c.add("a", WithKeyringFile(path))
	ring := nd.Keyring()
	var done atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	loads := 0
	reading := make(chan struct{})
	go func() {
		defer wg.Done()
		defer func() {
			if loads == 0 {
				close(reading)
			}
		}()
		for !done.Load() {
			fi, err := os.Stat(path)
			if err != nil {
				t.Errorf("stat: %v", err)
				return
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("mode %04o", fi.Mode().Perm())
				return
			}
			if _, err := keyring.Load(path); err != nil {
				t.Errorf("the key file did not load during rotation: %v", err)
				return
			}
			if loads++; loads == 1 {
				close(reading)
			}
		}
	}()
	<-reading // rotate while the file is being read
	keys := [][]byte{testKey, testKey2, testKey3}
	for i := range 60 {
		old, next := keys[i%3], keys[(i+1)%3]
		rotate(t, ring, old, next)
	}
	done.Store(true)
	wg.Wait()
	got := loadKeys(t, path)
	if len(got) != 1 || !bytes.Equal(got[0], ring.Primary()) {
		t.Fatal("the file does not hold the final keyring")
	}
}

// TestKeyringFileSaveFailure: a save that fails (the directory is gone) is
// logged, counted and reported by KeyringFileError, the keyring in memory
// changes all the same, and the save is retried until it succeeds.
func TestKeyringFileSaveFailure(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	dir := filepath.Join(base, "d")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "keys")
	sink := metrics.NewInmem()
	var logs syncBuffer
	c := newMemCluster(t, 0)
	nd := c.add("a", WithKeyringFile(path), WithMetrics(sink), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err := nd.KeyringFileError(); err != nil {
		t.Fatalf("KeyringFileError before any failure: %v", err)
	}
	// Take the directory away: as root, a read-only directory would not
	// stop the save, but a missing one does.
	if err := os.Rename(dir, dir+".away"); err != nil {
		t.Fatal(err)
	}
	if err := nd.Keyring().Install(testKey2); err != nil {
		t.Fatalf("Install failed because the save did: %v", err)
	}
	if err := nd.KeyringFileError(); !errors.Is(err, keyring.ErrKeyFile) {
		t.Fatalf("KeyringFileError = %v, want the failed save", err)
	}
	if !strings.Contains(logs.String(), "cannot save the keyring") {
		t.Fatalf("the failure was not logged:\n%s", logs.String())
	}
	errs := metrics.Label{Name: metrics.LabelResult, Value: metrics.ResultError}
	if n, _ := sink.Counter(metrics.KeyringSaves, errs); n < 1 {
		t.Fatalf("%v save errors counted, want at least 1", n)
	}
	if err := os.Rename(dir+".away", dir); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the retried save to succeed", func() bool { return nd.KeyringFileError() == nil })
	if got := loadKeys(t, path); len(got) != 2 || !bytes.Equal(got[1], testKey2) {
		t.Fatal("the retried save did not write the change")
	}
	if n, _ := sink.Counter(metrics.KeyringSaves, metrics.Label{Name: metrics.LabelResult, Value: metrics.ResultOK}); n < 1 {
		t.Fatal("the successful save was not counted")
	}
}

// TestKeyringFileNotSavedAfterShutdown: Shutdown stops saving, so a
// keyring shared with a new node is saved by that node only.
func TestKeyringFileNotSavedAfterShutdown(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	c := newMemCluster(t, 0)
	ring := newRing(t, testKey)
	nd := c.add("a", WithKeyring(ring), WithKeyringFile(path))
	nd.Shutdown()
	if err := ring.Install(testKey2); err != nil {
		t.Fatal(err)
	}
	if got := loadKeys(t, path); len(got) != 1 {
		t.Fatalf("a change after Shutdown was saved: %d keys in the file", len(got))
	}
}
