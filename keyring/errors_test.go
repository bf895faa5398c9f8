package keyring

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sentinels lists every sentinel error of the package.
var sentinels = []error{
	ErrInvalidKey, ErrDuplicateKey, ErrKeyNotInstalled, ErrRemovePrimary,
	ErrLabelTooLong, ErrTruncated, ErrUnknownVersion, ErrUnknownSuite,
	ErrUnknownKey, ErrAuthFailed, ErrKeyFile, ErrInsecureKeyFile,
}

// checkOneSentinel fails unless err wraps want and no other sentinel.
func checkOneSentinel(t *testing.T, err, want error) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want one wrapping %v", want)
	}
	var matched []error
	for _, s := range sentinels {
		if errors.Is(err, s) {
			matched = append(matched, s)
		}
	}
	if len(matched) != 1 || matched[0] != want {
		t.Fatalf("error %q wraps sentinels %v, want exactly [%v]", err, matched, want)
	}
}

// TestEveryErrorWrapsOneSentinel drives every error path of the exported
// API and checks the package's promise: each error wraps exactly one
// sentinel, the one a caller would branch on.
func TestEveryErrorWrapsOneSentinel(t *testing.T) {
	k32 := testKey(32, 1)
	k32b := testKey(32, 2)
	zero := make([]byte, 32)
	b64 := base64.StdEncoding.EncodeToString
	dir := t.TempDir()
	write := func(name, body string, perm os.FileMode) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), perm); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, perm); err != nil { // not subject to umask
			t.Fatal(err)
		}
		return path
	}
	keyFile := func(name, body string) string { return write(name, body, 0o600) }
	ring := func() *Keyring { return mustNew(t, k32, WithKeys(k32b)) }
	sealed, err := ring().Seal(nil, []byte("hello"), nil)
	mustDo(t, err)
	withByte := func(i int, b byte) []byte {
		d := bytes.Clone(sealed)
		d[i] = b
		return d
	}
	forged, err := mustNew(t, testKey(32, 9)).Seal(nil, []byte("hello"), nil)
	mustDo(t, err)
	longLabel := make([]byte, MaxLabelLen+1)
	good := "suite xchacha20-poly1305\n" + b64(k32) + "\n"

	cases := []struct {
		name string
		call func() error
		want error
		// alsoOS, when set, is an os error the error must also wrap.
		alsoOS error
	}{
		// New and its options.
		{"New/WithSuite(0)", func() error { _, err := New(k32, WithSuite(0)); return err }, ErrUnknownSuite, nil},
		{"New/WithSuite(3)", func() error { _, err := New(k32, WithSuite(3)); return err }, ErrUnknownSuite, nil},
		{"New/nil primary", func() error { _, err := New(nil); return err }, ErrInvalidKey, nil},
		{"New/short primary", func() error { _, err := New(k32[:31]); return err }, ErrInvalidKey, nil},
		{"New/aes-gcm 31 bytes", func() error { _, err := New(k32[:31], WithSuite(AESGCM)); return err }, ErrInvalidKey, nil},
		{"New/zero primary", func() error { _, err := New(zero); return err }, ErrInvalidKey, nil},
		{"New/WithKeys invalid", func() error { _, err := New(k32, WithKeys(zero)); return err }, ErrInvalidKey, nil},
		{"New/WithKeys primary again", func() error { _, err := New(k32, WithKeys(k32)); return err }, ErrDuplicateKey, nil},
		{"New/WithKeys twice", func() error { _, err := New(k32, WithKeys(k32b, k32b)); return err }, ErrDuplicateKey, nil},
		// Rotation.
		{"Install/short", func() error { return ring().Install(k32[:16]) }, ErrInvalidKey, nil},
		{"Install/zero", func() error { return ring().Install(zero) }, ErrInvalidKey, nil},
		{"Use/not installed", func() error { return ring().Use(testKey(32, 7)) }, ErrKeyNotInstalled, nil},
		{"Remove/primary", func() error { return ring().Remove(k32) }, ErrRemovePrimary, nil},
		// Parsing and generating.
		{"ParseKey/empty", func() error { _, err := ParseKey("  \n"); return err }, ErrInvalidKey, nil},
		{"ParseKey/not base64", func() error { _, err := ParseKey("not base64!"); return err }, ErrInvalidKey, nil},
		{"ParseKey/unpadded", func() error { _, err := ParseKey(base64.RawStdEncoding.EncodeToString(k32)); return err }, ErrInvalidKey, nil},
		{"ParseSuite/unknown", func() error { _, err := ParseSuite("rot13"); return err }, ErrUnknownSuite, nil},
		{"ParseSuite/empty", func() error { _, err := ParseSuite(""); return err }, ErrUnknownSuite, nil},
		{"Generate/suite 0", func() error { _, err := Generate(0); return err }, ErrUnknownSuite, nil},
		{"Generate/suite 3", func() error { _, err := Generate(3); return err }, ErrUnknownSuite, nil},
		// Seal and Open.
		{"Seal/label", func() error { _, err := ring().Seal(nil, nil, longLabel); return err }, ErrLabelTooLong, nil},
		{"Open/label", func() error { _, err := ring().Open(nil, sealed, longLabel); return err }, ErrLabelTooLong, nil},
		{"Open/empty", func() error { _, err := ring().Open(nil, nil, nil); return err }, ErrTruncated, nil},
		{"Open/short header", func() error { _, err := ring().Open(nil, sealed[:5], nil); return err }, ErrTruncated, nil},
		{"Open/no tag", func() error { _, err := ring().Open(nil, sealed[:headerLen+24+tagLen-1], nil); return err }, ErrTruncated, nil},
		{"Open/version", func() error { _, err := ring().Open(nil, withByte(0, 2), nil); return err }, ErrUnknownVersion, nil},
		{"Open/suite", func() error { _, err := ring().Open(nil, withByte(1, byte(AESGCM)), nil); return err }, ErrUnknownSuite, nil},
		{"Open/unknown key", func() error { _, err := ring().Open(nil, forged, nil); return err }, ErrUnknownKey, nil},
		{"Open/auth", func() error {
			_, err := ring().Open(nil, withByte(len(sealed)-1, sealed[len(sealed)-1]^1), nil)
			return err
		}, ErrAuthFailed, nil},
		{"OpenDetail/auth", func() error {
			_, f := ring().OpenDetail(nil, withByte(len(sealed)-1, sealed[len(sealed)-1]^1), nil)
			return f.Err()
		}, ErrAuthFailed, nil},
		{"OpenDetail/label", func() error { _, f := ring().OpenDetail(nil, sealed, longLabel); return f.Err() }, ErrLabelTooLong, nil},
		// Load: the file itself.
		{"Load/missing", func() error { _, err := Load(filepath.Join(dir, "missing")); return err }, ErrKeyFile, fs.ErrNotExist},
		{"Load/insecure", func() error { _, err := Load(write("insecure", good+"end 1\n", 0o644)); return err }, ErrInsecureKeyFile, nil},
		{"Load/directory", func() error {
			d := filepath.Join(dir, "a-directory")
			mustDo(t, os.Mkdir(d, 0o700))
			_, err := Load(d)
			return err
		}, ErrKeyFile, nil},
		{"Load/too large", func() error {
			_, err := Load(keyFile("big", good+"end 1\n"+strings.Repeat("#", maxKeyFile)))
			return err
		}, ErrKeyFile, nil},
		// Load: the file's structure.
		{"Load/empty", func() error { _, err := Load(keyFile("empty", "")); return err }, ErrKeyFile, nil},
		{"Load/key before suite", func() error { _, err := Load(keyFile("nosuite", b64(k32)+"\nend 1\n")); return err }, ErrKeyFile, nil},
		{"Load/second suite", func() error { _, err := Load(keyFile("suite2", good+"suite aes-gcm\nend 1\n")); return err }, ErrKeyFile, nil},
		{"Load/unknown suite", func() error { _, err := Load(keyFile("rot13", "suite rot13\n"+b64(k32)+"\nend 1\n")); return err }, ErrUnknownSuite, nil},
		{"Load/end before suite", func() error { _, err := Load(keyFile("endfirst", "end 0\n"+good)); return err }, ErrKeyFile, nil},
		{"Load/second end", func() error { _, err := Load(keyFile("end2", good+"end 1\nend 1\n")); return err }, ErrKeyFile, nil},
		{"Load/end without count", func() error { _, err := Load(keyFile("endbare", good+"end\n")); return err }, ErrKeyFile, nil},
		{"Load/end not a number", func() error { _, err := Load(keyFile("endx", good+"end one\n")); return err }, ErrKeyFile, nil},
		{"Load/end with leading zero", func() error { _, err := Load(keyFile("end01", good+"end 01\n")); return err }, ErrKeyFile, nil},
		{"Load/end with sign", func() error { _, err := Load(keyFile("endplus", good+"end +1\n")); return err }, ErrKeyFile, nil},
		{"Load/end negative", func() error { _, err := Load(keyFile("endneg", good+"end -1\n")); return err }, ErrKeyFile, nil},
		{"Load/key after end", func() error { _, err := Load(keyFile("after", good+"end 1\n"+b64(k32b)+"\n")); return err }, ErrKeyFile, nil},
		{"Load/no end", func() error { _, err := Load(keyFile("noend", good)); return err }, ErrKeyFile, nil},
		{"Load/no key, no end", func() error { _, err := Load(keyFile("bare", "suite aes-gcm\n")); return err }, ErrKeyFile, nil},
		{"Load/count too high", func() error { _, err := Load(keyFile("count", good+"end 2\n")); return err }, ErrKeyFile, nil},
		// Load: the keys in a well-formed file.
		{"Load/no key", func() error { _, err := Load(keyFile("nokey", "suite aes-gcm\nend 0\n")); return err }, ErrInvalidKey, nil},
		{"Load/bad base64", func() error { _, err := Load(keyFile("b64", good+"%%%%\nend 2\n")); return err }, ErrInvalidKey, nil},
		{"Load/short key", func() error {
			_, err := Load(keyFile("short", "suite xchacha20-poly1305\n"+b64(k32[:16])+"\nend 1\n"))
			return err
		}, ErrInvalidKey, nil},
		{"Load/zero key", func() error { _, err := Load(keyFile("zero", good+b64(zero)+"\nend 2\n")); return err }, ErrInvalidKey, nil},
		{"Load/duplicate", func() error {
			_, err := Load(keyFile("dup", good+b64(k32b)+"\n"+b64(k32)+"\nend 3\n"))
			return err
		}, ErrDuplicateKey, nil},
		// Save.
		{"Save/missing directory", func() error { return ring().Save(filepath.Join(dir, "nodir", "keys")) }, ErrKeyFile, fs.ErrNotExist},
		{"Save/over a directory", func() error {
			d := filepath.Join(dir, "dir-in-the-way")
			mustDo(t, os.MkdirAll(filepath.Join(d, "child"), 0o700))
			return ring().Save(d)
		}, ErrKeyFile, nil},
	}
	if os.Geteuid() != 0 {
		// Root may open any file, so this case only runs as another user.
		cases = append(cases, struct {
			name   string
			call   func() error
			want   error
			alsoOS error
		}{"Load/unreadable", func() error { _, err := Load(write("unreadable", good+"end 1\n", 0o000)); return err }, ErrKeyFile, fs.ErrPermission})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.want == ErrInsecureKeyFile && !permissionsMatter {
				t.Skip("Load checks permissions only on unix")
			}
			err := c.call()
			checkOneSentinel(t, err, c.want)
			if c.alsoOS != nil && !errors.Is(err, c.alsoOS) {
				t.Fatalf("error %q does not wrap %v", err, c.alsoOS)
			}
			for _, key := range [][]byte{k32, k32b} {
				if strings.Contains(err.Error(), b64(key)) {
					t.Fatalf("error %q contains a key", err)
				}
			}
		})
	}
}
