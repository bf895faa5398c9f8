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

// OpenReason says why OpenDetail rejected a datagram. Each reason but
// ReasonNone stands for one sentinel error.
type OpenReason uint8

// The reasons OpenDetail reports.
const (
	// ReasonNone: the datagram opened.
	ReasonNone OpenReason = iota
	// ReasonTruncated stands for ErrTruncated.
	ReasonTruncated
	// ReasonUnknownVersion stands for ErrUnknownVersion.
	ReasonUnknownVersion
	// ReasonUnknownSuite stands for ErrUnknownSuite.
	ReasonUnknownSuite
	// ReasonUnknownKey stands for ErrUnknownKey.
	ReasonUnknownKey
	// ReasonAuthFailed stands for ErrAuthFailed.
	ReasonAuthFailed
	// ReasonLabelTooLong stands for ErrLabelTooLong: the caller's label,
	// not the datagram, is at fault.
	ReasonLabelTooLong
)

// sentinel returns the sentinel error r stands for, nil for ReasonNone.
func (r OpenReason) sentinel() error {
	switch r {
	case ReasonNone:
		return nil
	case ReasonTruncated:
		return ErrTruncated
	case ReasonUnknownVersion:
		return ErrUnknownVersion
	case ReasonUnknownSuite:
		return ErrUnknownSuite
	case ReasonUnknownKey:
		return ErrUnknownKey
	case ReasonAuthFailed:
		return ErrAuthFailed
	case ReasonLabelTooLong:
		return ErrLabelTooLong
	}
	return nil
}

// String names the reason in a few words, for example "unknown key".
func (r OpenReason) String() string {
	switch r {
	case ReasonNone:
		return "none"
	case ReasonTruncated:
		return "truncated"
	case ReasonUnknownVersion:
		return "unknown version"
	case ReasonUnknownSuite:
		return "unknown suite"
	case ReasonUnknownKey:
		return "unknown key"
	case ReasonAuthFailed:
		return "authentication failed"
	case ReasonLabelTooLong:
		return "label too long"
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// OpenFailure describes why OpenDetail rejected a datagram, as a small
// comparable value: reporting it allocates nothing, so a flood of forged
// datagrams leaves no garbage behind. Err turns it into the error Open would
// have returned, for the rare moment (a rate-limited log line) when one is
// needed. The zero value (Reason ReasonNone) means the datagram opened. Like
// OpenError it never holds key material.
type OpenFailure struct {
	// Reason is why the datagram was rejected.
	Reason OpenReason
	// Version and Suite are the header bytes, when the datagram had them.
	Version, Suite byte
	// Fingerprint is the key fingerprint the datagram carried, when it had
	// one (HasFingerprint).
	Fingerprint    [4]byte
	HasFingerprint bool
	// Len is the datagram's length in bytes, or for ReasonLabelTooLong the
	// label's.
	Len int
}

// Err returns the error Open reports for the same datagram: nil for
// ReasonNone, an error wrapping ErrLabelTooLong for ReasonLabelTooLong, and
// otherwise an *OpenError. It allocates, so call it only when the error is
// needed.
func (f OpenFailure) Err() error {
	switch f.Reason {
	case ReasonNone:
		return nil
	case ReasonLabelTooLong:
		return fmt.Errorf("%w: %d bytes, at most %d", ErrLabelTooLong, f.Len, MaxLabelLen)
	}
	reason := f.Reason.sentinel()
	if reason == nil {
		// Not a reason this package reports; keep it visible.
		return fmt.Errorf("keyring: open failed for an unknown reason (%d)", uint8(f.Reason))
	}
	return &OpenError{
		Reason:         reason,
		Version:        f.Version,
		Suite:          f.Suite,
		Fingerprint:    f.Fingerprint,
		HasFingerprint: f.HasFingerprint,
		Len:            f.Len,
	}
}
