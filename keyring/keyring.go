package keyring

import (
	"bytes"
	"crypto/cipher"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"sync"
	"sync/atomic"
)

// Keyring holds one primary key, which seals, and any number of installed
// keys, which only open. Seal and Open are lock-free: they read an immutable
// snapshot of prepared AEADs through an atomic pointer, and Install, Use and
// Remove publish a new snapshot. All methods are safe for concurrent use.
//
// A Keyring never hands out its own key slices: Keys and Primary return
// copies, and New, Install, Use and Remove copy what they are given.
type Keyring struct {
	suite Suite
	mu    sync.Mutex // serializes writers; readers never take it
	snap  atomic.Pointer[snapshot]
	hooks atomic.Pointer[[]*hook] // OnChange functions; replaced under mu
}

// snapshot is an immutable view of the keys, primary first.
type snapshot struct {
	keys []*key
}

// key is one prepared key. It is shared by every snapshot that holds it, so
// its seal count survives rotation.
type key struct {
	raw   []byte
	fp    [4]byte
	aead  cipher.AEAD
	seals atomic.Uint64
}

// Option configures New.
type Option func(*options)

type options struct {
	suite     Suite
	secondary [][]byte
}

// WithSuite chooses the AEAD. The default is XChaCha20Poly1305.
func WithSuite(s Suite) Option { return func(o *options) { o.suite = s } }

// WithKeys installs decrypt-only keys beside the primary, as Install would.
func WithKeys(secondary ...[]byte) Option {
	return func(o *options) { o.secondary = append(o.secondary, secondary...) }
}

// New returns a keyring whose primary key is primary. It fails if a key does
// not fit the suite (wrong length, all zero) or is given twice.
func New(primary []byte, opts ...Option) (*Keyring, error) {
	o := options{suite: XChaCha20Poly1305}
	for _, opt := range opts {
		opt(&o)
	}
	if !o.suite.valid() {
		return nil, fmt.Errorf("%w: %s: want %s or %s", ErrUnknownSuite, o.suite, AESGCM, XChaCha20Poly1305)
	}
	k := &Keyring{suite: o.suite}
	p, err := k.prepare(primary)
	if err != nil {
		return nil, fmt.Errorf("keyring: primary key: %w", err)
	}
	s := &snapshot{keys: []*key{p}}
	for i, raw := range o.secondary {
		if s.find(raw) >= 0 {
			return nil, fmt.Errorf("%w: key %d of WithKeys (fingerprint %x) is already in the keyring", ErrDuplicateKey, i, Fingerprint(raw))
		}
		sk, err := k.prepare(raw)
		if err != nil {
			return nil, fmt.Errorf("keyring: key %d of WithKeys: %w", i, err)
		}
		s.keys = append(s.keys, sk)
	}
	k.snap.Store(s)
	return k, nil
}

// prepare validates raw for the keyring's suite and builds its AEAD from a
// private copy.
func (k *Keyring) prepare(raw []byte) (*key, error) {
	if err := k.suite.checkKey(raw); err != nil {
		return nil, err
	}
	c := bytes.Clone(raw)
	aead, err := k.suite.newAEAD(c)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	return &key{raw: c, fp: Fingerprint(c), aead: aead}, nil
}

// find returns the index of raw in s, or -1. It compares in constant time.
func (s *snapshot) find(raw []byte) int {
	for i, k := range s.keys {
		if subtle.ConstantTimeCompare(k.raw, raw) == 1 {
			return i
		}
	}
	return -1
}

// Install adds key as a decrypt-only key. Installing a key that is already
// in the keyring (primary or not) does nothing and returns nil, so every
// step of a rotation can be retried.
func (k *Keyring) Install(raw []byte) error {
	return k.change(func(cur *snapshot) (*snapshot, error) {
		if cur.find(raw) >= 0 {
			return nil, nil
		}
		nk, err := k.prepare(raw)
		if err != nil {
			return nil, fmt.Errorf("keyring: install: %w", err)
		}
		keys := make([]*key, 0, len(cur.keys)+1)
		keys = append(keys, cur.keys...)
		return &snapshot{keys: append(keys, nk)}, nil
	})
}

// Use makes an installed key the primary: from now on Seal uses it. The old
// primary stays installed, so datagrams sealed under it still open until it
// is removed. Using the current primary does nothing.
func (k *Keyring) Use(raw []byte) error {
	return k.change(func(cur *snapshot) (*snapshot, error) {
		i := cur.find(raw)
		if i < 0 {
			return nil, fmt.Errorf("%w: use %x: install it first", ErrKeyNotInstalled, Fingerprint(raw))
		}
		if i == 0 {
			return nil, nil
		}
		keys := make([]*key, 0, len(cur.keys))
		keys = append(keys, cur.keys[i])
		keys = append(keys, cur.keys[:i]...)
		keys = append(keys, cur.keys[i+1:]...)
		return &snapshot{keys: keys}, nil
	})
}

// Remove uninstalls a key: datagrams sealed under it no longer open. It
// refuses the primary key (ErrRemovePrimary). Removing a key that is not
// installed does nothing and returns nil, so the step can be retried.
func (k *Keyring) Remove(raw []byte) error {
	return k.change(func(cur *snapshot) (*snapshot, error) {
		i := cur.find(raw)
		switch {
		case i < 0:
			return nil, nil
		case i == 0:
			return nil, fmt.Errorf("%w (fingerprint %x): use another key first", ErrRemovePrimary, cur.keys[0].fp)
		}
		keys := make([]*key, 0, len(cur.keys)-1)
		keys = append(keys, cur.keys[:i]...)
		keys = append(keys, cur.keys[i+1:]...)
		return &snapshot{keys: keys}, nil
	})
}

// change runs edit on the current snapshot under the writers' mutex and
// publishes the snapshot it returns, if any. Then, with the mutex released,
// it calls the OnChange functions, so that they may call back into the
// keyring.
func (k *Keyring) change(edit func(cur *snapshot) (*snapshot, error)) error {
	k.mu.Lock()
	next, err := edit(k.snap.Load())
	if next != nil {
		k.snap.Store(next)
	}
	k.mu.Unlock()
	if next != nil {
		k.notify()
	}
	return err
}

// hook is one function registered with OnChange.
type hook struct {
	f       func()
	stopped atomic.Bool
}

// OnChange registers f to be called after every change of the keyring:
// each Install, Use or Remove that changed its keys or its primary (one
// that does nothing, such as installing an installed key, calls nothing).
// f runs on the goroutine that made the change, after the new keys are in
// effect and with no lock of the keyring held, before that Install, Use or
// Remove returns; so f may call any method of the keyring (Save, Keys), and
// when the change's caller gets control back, f has finished. Changes made
// on several goroutines at once may run f concurrently, and f may see a
// later state than the change that called it (the keyring is read, not
// handed to f): a function that saves the keyring should serialize its
// saves and write what the keyring holds when it runs, so that the last save
// holds the last change.
//
// The returned function unregisters f: changes made after it returns do
// not call f, though a call by a change that was already calling its
// functions may still be running or about to run.
func (k *Keyring) OnChange(f func()) (stop func()) {
	h := &hook{f: f}
	k.mu.Lock()
	defer k.mu.Unlock()
	var hooks []*hook
	if cur := k.hooks.Load(); cur != nil {
		hooks = append(hooks, *cur...)
	}
	hooks = append(hooks, h)
	k.hooks.Store(&hooks)
	return func() {
		h.stopped.Store(true)
		k.mu.Lock()
		defer k.mu.Unlock()
		cur := k.hooks.Load()
		if cur == nil {
			return
		}
		rest := make([]*hook, 0, len(*cur))
		for _, o := range *cur {
			if o != h {
				rest = append(rest, o)
			}
		}
		k.hooks.Store(&rest)
	}
}

// notify calls every registered OnChange function.
func (k *Keyring) notify() {
	hooks := k.hooks.Load()
	if hooks == nil {
		return
	}
	for _, h := range *hooks {
		if !h.stopped.Load() {
			h.f()
		}
	}
}

// Keys returns copies of every installed key, primary first.
func (k *Keyring) Keys() [][]byte {
	s := k.snap.Load()
	out := make([][]byte, len(s.keys))
	for i, key := range s.keys {
		out[i] = bytes.Clone(key.raw)
	}
	return out
}

// Primary returns a copy of the primary key.
func (k *Keyring) Primary() []byte { return bytes.Clone(k.snap.Load().keys[0].raw) }

// Suite returns the AEAD suite the keyring seals and opens with.
func (k *Keyring) Suite() Suite { return k.suite }

// Overhead is how many bytes Seal adds to a plaintext; see Suite.Overhead.
func (k *Keyring) Overhead() int { return k.suite.Overhead() }

// CompactOverhead is how many bytes SealStamped adds to a plaintext, 0 if
// the suite has no compact layout; see Suite.CompactOverhead.
func (k *Keyring) CompactOverhead() int { return k.suite.CompactOverhead() }

// NonceSize is the length of the nonce in every datagram; see
// Suite.NonceSize.
func (k *Keyring) NonceSize() int { return k.suite.NonceSize() }

// KeyStats describes one installed key without revealing it.
type KeyStats struct {
	// Fingerprint identifies the key; it is not secret.
	Fingerprint [4]byte
	// Primary is true for the key that seals.
	Primary bool
	// Seals counts the datagrams this process sealed with the key since the
	// key was installed here.
	Seals uint64
	// SealLimit is AESGCMSealLimit for AES-GCM keys and 0 (no practical
	// bound) for XChaCha20-Poly1305. The limit holds for the sum of Seals
	// over every node of the cluster.
	SealLimit uint64
}

// Stats returns one entry per installed key, primary first, so that the
// runtime can publish seal counts as metrics and warn before an AES-GCM key
// nears its nonce bound.
func (k *Keyring) Stats() []KeyStats {
	s := k.snap.Load()
	out := make([]KeyStats, len(s.keys))
	var limit uint64
	if k.suite == AESGCM {
		limit = AESGCMSealLimit
	}
	for i, key := range s.keys {
		out[i] = KeyStats{Fingerprint: key.fp, Primary: i == 0, Seals: key.seals.Load(), SealLimit: limit}
	}
	return out
}

// fingerprintDomain separates key fingerprints from any other use of SHA-256
// over key material.
const fingerprintDomain = "membership key fingerprint"

// Fingerprint identifies a key without revealing it: the first 4 bytes of
// SHA-256("membership key fingerprint" || key). Every datagram carries the
// fingerprint of the key that sealed it, and logs and errors name keys by it.
func Fingerprint(key []byte) [4]byte {
	h := sha256.New()
	h.Write([]byte(fingerprintDomain))
	h.Write(key)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return [4]byte(sum[:4])
}
