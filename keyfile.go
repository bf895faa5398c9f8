package membership

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"github.com/meshward/membership/internal/envelope"
	"github.com/meshward/membership/keyring"
	"github.com/meshward/membership/metrics"
)

// keysConfig holds the options of keyfile.go and encryption.go.
type keysConfig struct {
	file     string
	fileOpts []keyring.LoadOption
	mode     EncryptionMode
	modeSet  bool
	note     string // what opening the key file did, logged once the logger is ready
}

// nodeKeys is the node's state for key files, key mismatches and the
// encryption mode (keyfile.go, mismatch.go, encryption.go).
type nodeKeys struct {
	enc       *envelope.Modal // nil without a keyring
	plainSeen uint64          // enc.PlaintextOpened() at the last report
	file      *keyFile        // nil without WithKeyringFile
	mm        mismatchTable   // owned by the loop goroutine
}

// WithKeyringFile keeps the node's keyring in the key file at path, in the
// format of keyring.Load and Keyring.Save, so that a node restarted after a
// rotation speaks the keys it had. opts go to keyring.Load: pass
// keyring.AllowInsecurePermissions() to accept a file that its group or
// other users may read (Load refuses one otherwise).
//
// At New:
//   - the file exists: the node loads it, and New fails if it cannot (a
//     file others may read, a truncated one). With WithKeyring too, the file
//     wins: it records every rotation since, where the keyring given is
//     typically the first key from the configuration. Its keys are put into
//     the keyring given (installed, the file's primary used, the rest
//     removed), so that Keyring() is still the object the caller holds, and
//     a line is logged when that changed something. A keyring of another
//     suite than the file's is an error.
//   - the file does not exist: with WithKeyring, the node writes the keyring
//     there (mode 0600) and fails if it cannot; without it, New fails with
//     an error wrapping fs.ErrNotExist.
//
// While the node runs, every change of its keyring (Install, Use or Remove
// on Keyring(), by the application or by the node) is saved before the call
// returns: Save writes a temporary file with mode 0600 and renames it over
// the old one, so the file is never torn and always loadable. A save that
// fails is logged (at most once per 10 s), counted in
// membership.keyring.saves with result "error", and retried every second
// until it succeeds; the keyring in memory is unaffected. Changes after
// Shutdown are not saved.
//
// WithKeyringFile contradicts WithoutEncryption. Default: no file; the
// keyring lives in memory only.
func WithKeyringFile(path string, opts ...keyring.LoadOption) Option {
	return func(c *config) error {
		if path == "" {
			return errors.New("WithKeyringFile: empty path")
		}
		c.keys.file, c.keys.fileOpts = path, opts
		return nil
	}
}

// openKeyFile applies the key file rules of WithKeyringFile: load the file
// into c.ring, or create it from c.ring.
func (c *config) openKeyFile() error {
	path := c.keys.file
	if path == "" {
		return nil
	}
	if c.plaintext {
		return errors.New("WithKeyringFile and WithoutEncryption contradict each other")
	}
	loaded, err := keyring.Load(path, c.keys.fileOpts...)
	switch {
	case err == nil && c.ring == nil:
		c.ring = loaded
		return nil
	case err == nil:
		changed, err := adoptKeys(c.ring, loaded)
		if err != nil {
			return fmt.Errorf("WithKeyringFile %s: %w", path, err)
		}
		if changed {
			c.keys.note = "the key file differs from the keyring given with WithKeyring: using the file's keys, which record the rotations since"
		}
		return nil
	case errors.Is(err, fs.ErrNotExist) && c.ring != nil:
		if err := c.ring.Save(path); err != nil {
			return fmt.Errorf("WithKeyringFile: cannot create the key file: %w", err)
		}
		c.keys.note = "created the key file from the keyring given with WithKeyring"
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("WithKeyringFile %s: %w: %w", path, errNoKeyFile, err)
	}
	return fmt.Errorf("WithKeyringFile: %w", err)
}

// adoptKeys makes ring hold exactly the keys of file, with file's primary,
// and reports whether that changed anything.
func adoptKeys(ring, file *keyring.Keyring) (bool, error) {
	if ring.Suite() != file.Suite() {
		return false, fmt.Errorf("the file's keys are %v and the keyring given with WithKeyring is %v: give the same suite, or remove the file", file.Suite(), ring.Suite())
	}
	want := file.Keys()
	if sameKeys(ring.Keys(), want) {
		return false, nil
	}
	for _, k := range want {
		if err := ring.Install(k); err != nil {
			return false, err
		}
	}
	if err := ring.Use(want[0]); err != nil {
		return false, err
	}
	for _, k := range ring.Keys() {
		if !containsKey(want, k) {
			if err := ring.Remove(k); err != nil {
				return false, err
			}
		}
	}
	return true, nil
}

// sameKeys reports whether a and b hold the same keys with the same
// primary (the first), in constant time per comparison.
func sameKeys(a, b [][]byte) bool {
	if len(a) != len(b) || subtle.ConstantTimeCompare(a[0], b[0]) != 1 {
		return false
	}
	for _, k := range a {
		if !containsKey(b, k) {
			return false
		}
	}
	return true
}

func containsKey(keys [][]byte, k []byte) bool {
	for _, o := range keys {
		if subtle.ConstantTimeCompare(o, k) == 1 {
			return true
		}
	}
	return false
}

// keyFileRetry is how often a failed save of the key file is tried again.
const keyFileRetry = time.Second

// keyFile saves the node's keyring after every change.
type keyFile struct {
	n    *Node
	path string
	stop func() // unregisters the OnChange function

	mu      sync.Mutex // serializes saves
	dirty   bool       // the last save failed: the file lags the keyring
	lastErr error
}

// startKeyFile saves the keyring on every change from now on, and retries
// failed saves until Shutdown.
func (n *Node) startKeyFile() {
	if n.cfg.keys.note != "" {
		n.log.Info(n.cfg.keys.note, "file", n.cfg.keys.file)
	}
	if n.cfg.keys.file == "" || n.ring == nil {
		return
	}
	f := &keyFile{n: n, path: n.cfg.keys.file}
	n.keys.file = f
	f.stop = n.ring.OnChange(f.save)
	n.bg.Add(1)
	go f.retry()
}

// save writes what the keyring holds now. Saves are serialized, and each
// writes the keyring as it is when it runs, so the last one to finish holds
// the last change.
func (f *keyFile) save() {
	f.mu.Lock()
	defer f.mu.Unlock()
	err := f.n.ring.Save(f.path)
	if err != nil {
		f.dirty, f.lastErr = true, err
		f.n.met.IncrCounter(metrics.KeyringSaves, 1, metrics.Label{Name: metrics.LabelResult, Value: metrics.ResultError})
		if ok, suppressed := f.n.limiter.allow("keyring-save", time.Now()); ok {
			f.n.log.Error("cannot save the keyring to its file: a restart now would bring back older keys; retrying every second",
				"file", f.path, "err", err, "suppressed", suppressed)
		}
		return
	}
	if f.dirty {
		f.n.log.Info("keyring file saved after earlier failures", "file", f.path)
	}
	f.dirty, f.lastErr = false, nil
	f.n.met.IncrCounter(metrics.KeyringSaves, 1, metrics.Label{Name: metrics.LabelResult, Value: metrics.ResultOK})
}

// failing returns the error of the last save if it failed.
func (f *keyFile) failing() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastErr
}

// retry saves again every keyFileRetry while the last save failed, until
// Shutdown, which also stops saving changes.
func (f *keyFile) retry() {
	defer f.n.bg.Done()
	defer f.stop()
	t := time.NewTicker(keyFileRetry)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if f.failing() != nil {
				f.save()
			}
		case <-f.n.stop:
			return
		}
	}
}

// KeyringFileError returns the error of the last save of the key file
// (WithKeyringFile) if it failed and no save has succeeded since: the file
// then holds older keys than the node, and a restart would bring them back.
// It returns nil when the file is up to date or there is none.
func (n *Node) KeyringFileError() error {
	if n.keys.file == nil {
		return nil
	}
	return n.keys.file.failing()
}
