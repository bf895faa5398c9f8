package keyring

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Generate returns a new random key for suite s from crypto/rand: 32 bytes
// for both suites (AES-256-GCM for AESGCM).
func Generate(s Suite) ([]byte, error) {
	if !s.valid() {
		return nil, fmt.Errorf("%w: %s", ErrUnknownSuite, s)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("keyring: generate: %w", err)
	}
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

// Load reads a key file written by Save: a "suite NAME" line followed by one
// standard-base64 key per line, primary first. Blank lines and lines that
// start with '#' are ignored. Errors name the file and the line, never a key.
func Load(path string) (*Keyring, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("keyring: load: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("keyring: load %s: %w", path, err)
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("keyring: load %s: file larger than %d bytes", path, maxKeyFile)
	}
	k, err := parseFile(data)
	if err != nil {
		return nil, fmt.Errorf("keyring: load %s: %w", path, err)
	}
	return k, nil
}

func parseFile(data []byte) (*Keyring, error) {
	var (
		suite Suite
		keys  [][]byte
	)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxKeyFile)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
			continue
		case suite == 0:
			name, ok := strings.CutPrefix(line, "suite ")
			if !ok {
				return nil, fmt.Errorf("line %d: want \"suite NAME\" before any key", n)
			}
			s, err := ParseSuite(strings.TrimSpace(name))
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", n, err)
			}
			suite = s
		default:
			key, err := ParseKey(line)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", n, err)
			}
			keys = append(keys, key)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if suite == 0 {
		return nil, errors.New("no \"suite NAME\" line")
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: the file holds no key", ErrInvalidKey)
	}
	return New(keys[0], WithSuite(suite), WithKeys(keys[1:]...))
}

// Save writes the keyring to path in the format Load reads, primary key
// first. It writes a temporary file in the same directory with mode 0600,
// syncs it and renames it over path, so a crash leaves either the old file or
// the new one, never a torn one, and the keys are never readable by others.
func (k *Keyring) Save(path string) (err error) {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# membership keyring: primary key first. Keep this file secret.\nsuite %s\n", k.suite)
	for _, key := range k.Keys() {
		buf.WriteString(base64.StdEncoding.EncodeToString(key))
		buf.WriteByte('\n')
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("keyring: save: %w", err)
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
		return fmt.Errorf("keyring: save %s: %w", path, err)
	}
	if _, err = f.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("keyring: save %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("keyring: save %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("keyring: save %s: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("keyring: save %s: %w", path, err)
	}
	// Make the rename durable; not every platform can sync a directory.
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
