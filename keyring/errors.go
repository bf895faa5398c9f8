package keyring

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error this package returns wraps exactly one of
// them, so callers branch with errors.Is; errors about a particular datagram
// are *OpenError values that also carry what the header said. The one
// addition: an error of Load or Save caused by the operating system also
// wraps the os error, so errors.Is(err, fs.ErrNotExist) works beside
// errors.Is(err, ErrKeyFile).
var (
	// ErrInvalidKey: a key has the wrong length for the suite, is all zero,
	// or is not valid base64, or a key file holds no key.
	ErrInvalidKey = errors.New("keyring: invalid key")
	// ErrDuplicateKey: the same key was given twice.
	ErrDuplicateKey = errors.New("keyring: duplicate key")
	// ErrKeyNotInstalled: Use was asked for a key that is not installed.
	ErrKeyNotInstalled = errors.New("keyring: key not installed")
	// ErrRemovePrimary: Remove was asked to remove the primary key; Use
	// another key first.
	ErrRemovePrimary = errors.New("keyring: refusing to remove the primary key")
	// ErrLabelTooLong: a label is longer than MaxLabelLen bytes.
	ErrLabelTooLong = errors.New("keyring: label too long")

	// ErrKeyFile: Load could not read a key file or does not understand
	// it (too large, no "suite NAME" line, a line out of place, a missing
	// or wrong "end N" line, which is how a truncated file shows), or Save
	// could not write one. A bad key inside a well-formed file is
	// ErrInvalidKey or ErrDuplicateKey instead, and an unknown suite name
	// ErrUnknownSuite.
	ErrKeyFile = errors.New("keyring: key file")
	// ErrInsecureKeyFile: Load refused a key file that its owner's group
	// or other users may read or write. The error names the file, its mode
	// and the fix; see AllowInsecurePermissions.
	ErrInsecureKeyFile = errors.New("keyring: key file is accessible to other users")

	// ErrTruncated: a datagram is shorter than its header, nonce and tag.
	ErrTruncated = errors.New("keyring: datagram truncated")
	// ErrUnknownVersion: a datagram's version byte is not Version.
	ErrUnknownVersion = errors.New("keyring: unknown wire version")
	// ErrUnknownSuite: a datagram's suite byte is not this keyring's suite,
	// or a suite value or name is not one this package knows.
	ErrUnknownSuite = errors.New("keyring: unknown or mismatched suite")
	// ErrUnknownKey: no key in this keyring has the fingerprint the
	// datagram carries, and no key opened it. The *OpenError names the
	// fingerprint, which is how a rotation mistake is diagnosed.
	ErrUnknownKey = errors.New("keyring: no installed key has the datagram's fingerprint")
	// ErrAuthFailed: a key with the datagram's fingerprint is installed but
	// authentication failed: the datagram was forged, corrupted, or sealed
	// under another cluster label.
	ErrAuthFailed = errors.New("keyring: authentication failed")
)

// OpenError describes why Open rejected a datagram. It never holds key
// material; the fingerprint is not secret.
type OpenError struct {
	// Reason is one of ErrTruncated, ErrUnknownVersion, ErrUnknownSuite,
	// ErrUnknownKey or ErrAuthFailed.
	Reason error
	// Version and Suite are the header bytes, when the datagram had them.
	Version, Suite byte
	// Fingerprint is the key fingerprint the datagram carried, when it had
	// one (HasFingerprint).
	Fingerprint    [4]byte
	HasFingerprint bool
	// Len is the datagram's length in bytes.
	Len int
}

// Error describes the failure, naming the fingerprint when there is one.
func (e *OpenError) Error() string {
	switch {
	case errors.Is(e.Reason, ErrTruncated):
		return fmt.Sprintf("%v: %d bytes", e.Reason, e.Len)
	case errors.Is(e.Reason, ErrUnknownVersion):
		return fmt.Sprintf("%v: version %d, want %d", e.Reason, e.Version, Version)
	case errors.Is(e.Reason, ErrUnknownSuite):
		return fmt.Sprintf("%v: suite %d", e.Reason, e.Suite)
	case e.HasFingerprint:
		return fmt.Sprintf("%v: key fingerprint %x", e.Reason, e.Fingerprint)
	}
	return e.Reason.Error()
}

// Unwrap returns Reason, so errors.Is(err, ErrUnknownKey) works.
func (e *OpenError) Unwrap() error { return e.Reason }

