package keyring

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Generate returns a new random key for suite s from crypto/rand: 32 bytes
// for both suites (AES-256-GCM for AESGCM).
func Generate(s Suite) ([]byte, error) {
	if !s.valid() {
		return nil, fmt.Errorf("%w: %s", ErrUnknownSuite, s)
	}
	key := make([]byte, 32)
	// Since Go 1.24 rand.Read never returns an error: it crashes the
	// program instead, so there is no error to handle here.
	rand.Read(key)
	return key, nil
}

// ParseKey decodes a key written in standard base64 with padding, as
// `consul keygen` and `serf keygen` print it. Surrounding white space is
// ignored. It checks the encoding only; New and Install check the length
// against the suite.
func ParseKey(s string) ([]byte, error) {
	key, err := base64.StdEncoding.Strict().DecodeString(strings.TrimSpace(s))
	if err != nil {
		// The base64 error names an offset, never the key.
		return nil, fmt.Errorf("%w: not standard base64: %v", ErrInvalidKey, err)
	}
	if len(key) == 0 {
		return nil, fmt.Errorf("%w: empty key", ErrInvalidKey)
	}
	return key, nil
}

// maxKeyFile bounds how much of a key file Load reads: far more than any
// sane keyring needs.
const maxKeyFile = 1 << 20

// LoadOption configures Load.
type LoadOption func(*loadOptions)

type loadOptions struct {
	allowInsecure bool
}

// AllowInsecurePermissions makes Load accept a key file that its group or
// other users may access. Prefer fixing the file's mode (chmod 600); use this
// only where the mode cannot be changed and access is controlled otherwise.
func AllowInsecurePermissions() LoadOption {
	return func(o *loadOptions) { o.allowInsecure = true }
}

// Load reads a key file written by Save:
//
//	# comment
//	suite xchacha20-poly1305
//	KEY
//	KEY
//	end 2
//
// The "suite NAME" line names the suite (aes-gcm or xchacha20-poly1305).
// Each KEY line is one standard-base64 key, primary first. The "end N"
// line closes the file and counts the keys above it, so that a file cut
// short at a line boundary is detected instead of silently losing keys: a
// file without the end line, with a count that disagrees, or with a key
// after it is refused with an error wrapping ErrKeyFile that says the file
// looks truncated and how to repair it. Blank lines and lines that start
// with '#' are ignored anywhere. Errors name the file and the line, never a
// key.
//
// On unix systems Load refuses, with ErrInsecureKeyFile, a file whose mode
// gives its group or other users any access (mode&0o077 != 0), unless opts
// include AllowInsecurePermissions. Elsewhere (Windows, for example) file
// modes do not express this and the check is skipped.
//
// An error opening or reading the file wraps both ErrKeyFile and the os
// error, so errors.Is(err, fs.ErrNotExist) reports a missing file.
func Load(path string, opts ...LoadOption) (*Keyring, error) {
	var o loadOptions
	for _, opt := range opts {
		opt(&o)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeyFile, err)
	}
	defer f.Close()
	if permissionsMatter && !o.allowInsecure {
		fi, err := f.Stat()
		if err != nil {
			return nil, fmt.Errorf("%w %s: %w", ErrKeyFile, path, err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			return nil, fmt.Errorf("%w: %s has mode %04o, which lets its group or other users access the keys: "+
				"run chmod 600 %s (or pass keyring.AllowInsecurePermissions() to Load to accept it)",
				ErrInsecureKeyFile, path, perm, path)
		}
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrKeyFile, path, err)
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("%w %s: larger than %d bytes", ErrKeyFile, path, maxKeyFile)
	}
	return parseFile(path, data)
}

// parseFile parses a key file's contents; path only names the file in
// errors. It checks the file's structure (suite line, end line, count)
// before it decodes any key, so that a file cut in the middle of a key
// reports the truncation rather than a bad key.
func parseFile(path string, data []byte) (*Keyring, error) {
	type keyLine struct {
		n    int
		text string
	}
	var (
		suite     Suite
		suiteLine int
		endLine   int
		count     int // what the end line says
		lines     []keyLine
	)
	bad := func(n int, format string, args ...any) error {
		return fmt.Errorf("%w %s: line %d: %s", ErrKeyFile, path, n, fmt.Sprintf(format, args...))
	}
	n := 0
	for raw := range strings.Lines(string(data)) {
		n++
		line := strings.TrimSpace(raw)
		// Keys are base64, which has no spaces, so a line that starts with
		// "suite" or "end" is never a key.
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
			continue
		case line == "suite" || strings.HasPrefix(line, "suite "):
			if suiteLine != 0 {
				return nil, bad(n, "a second \"suite NAME\" line (the first is line %d)", suiteLine)
			}
			s, err := ParseSuite(strings.TrimSpace(strings.TrimPrefix(line, "suite")))
			if err != nil {
				return nil, fmt.Errorf("keyring: key file %s: line %d: %w", path, n, err)
			}
			suite, suiteLine = s, n
		case line == "end" || strings.HasPrefix(line, "end "):
			if suiteLine == 0 {
				return nil, bad(n, "want \"suite NAME\" before \"end N\"")
			}
			if endLine != 0 {
				return nil, bad(n, "a second \"end N\" line (the first is line %d)", endLine)
			}
			num := strings.TrimSpace(strings.TrimPrefix(line, "end"))
			c, err := strconv.Atoi(num)
			if err != nil || c < 0 || strconv.Itoa(c) != num { // as Save writes it: no sign, no leading zero
				return nil, bad(n, "want \"end N\", N the number of keys in the file")
			}
			count, endLine = c, n
		case suiteLine == 0:
			return nil, bad(n, "want \"suite NAME\" before any key")
		case endLine != 0:
			return nil, bad(n, "a key after the \"end\" line (line %d): the end line must be the file's last; "+
				"write the file again with Keyring.Save, or move the line", endLine)
		default:
			lines = append(lines, keyLine{n, line})
		}
	}
	switch {
	case suiteLine == 0:
		return nil, fmt.Errorf("%w %s: no \"suite NAME\" line: the file is empty, truncated, or not a key file", ErrKeyFile, path)
	case endLine == 0 && len(lines) == 0:
		return nil, fmt.Errorf("%w %s: no key and no \"end N\" line after line %d: the file looks truncated. "+
			"Restore it from a copy or write it again with Keyring.Save", ErrKeyFile, path, suiteLine)
	case endLine == 0:
		return nil, fmt.Errorf("%w %s: no \"end N\" line after the keys: the file looks truncated, and keys may be missing. "+
			"Restore it from a copy or write it again with Keyring.Save; if you have checked that no key is missing "+
			"(files written before the end line existed lack it), add the line \"end %d\" at the end",
			ErrKeyFile, path, len(lines))
	case count != len(lines):
		return nil, bad(endLine, "\"end %d\" but the file holds %s: the file looks truncated or edited. "+
			"Restore it from a copy or write it again with Keyring.Save; if you have checked that no key is missing, "+
			"change the line to \"end %d\"",
			count, plural(len(lines), "key"), len(lines))
	case len(lines) == 0:
		return nil, fmt.Errorf("keyring: key file %s: %w: the file holds no key", path, ErrInvalidKey)
	}
	keys := make([][]byte, len(lines))
	for i, l := range lines {
		key, err := ParseKey(l.text)
		if err == nil {
			err = suite.checkKey(key)
		}
		if err == nil {
			for j := range i {
				if subtle.ConstantTimeCompare(keys[j], key) == 1 {
					err = fmt.Errorf("%w: the key on line %d is also on line %d", ErrDuplicateKey, l.n, lines[j].n)
					break
				}
			}
		}
		if err != nil {
			return nil, fmt.Errorf("keyring: key file %s: line %d: %w", path, l.n, err)
		}
		keys[i] = key
	}
	k, err := New(keys[0], WithSuite(suite), WithKeys(keys[1:]...))
	if err != nil {
		return nil, fmt.Errorf("keyring: key file %s: %w", path, err)
	}
	return k, nil
}

// Save writes the keyring to path in the format Load reads, primary key
// first and an "end N" line last. It writes a temporary file in the same
// directory with mode 0600, syncs it and renames it over path, so a crash
// leaves either the old file or the new one, never a torn one, and the keys
// are never readable by others. An error wraps ErrKeyFile and the os error.
func (k *Keyring) Save(path string) error {
	keys := k.Keys()
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# membership keyring: primary key first; \"end N\" counts the keys. Keep this file secret.\nsuite %s\n", k.suite)
	for _, key := range keys {
		buf.WriteString(base64.StdEncoding.EncodeToString(key))
		buf.WriteByte('\n')
	}
	fmt.Fprintf(&buf, "end %d\n", len(keys))
	if err := writeFileAtomic(path, buf.Bytes()); err != nil {
		return fmt.Errorf("%w %s: save: %w", ErrKeyFile, path, err)
	}
	return nil
}

// writeFileAtomic writes data to a temporary file with mode 0600 beside
// path, syncs it and renames it over path.
func writeFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// CreateTemp already uses 0600; Chmod makes it independent of that.
	if err = f.Chmod(0o600); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	// Make the rename durable; not every platform can sync a directory.
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// plural returns "1 key", "2 keys".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
