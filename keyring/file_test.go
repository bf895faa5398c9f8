package keyring

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// savedFile saves a keyring of three keys and returns the file's path and
// its contents.
func savedFile(t *testing.T) (*Keyring, string, []byte) {
	t.Helper()
	k := mustNew(t, testKey(32, 1), WithKeys(testKey(32, 2), testKey(32, 3)))
	path := filepath.Join(t.TempDir(), "keys")
	mustDo(t, k.Save(path))
	data, err := os.ReadFile(path)
	mustDo(t, err)
	return k, path, data
}

func TestSaveWritesEndLine(t *testing.T) {
	_, _, data := savedFile(t)
	if !bytes.HasSuffix(data, []byte("\nend 3\n")) {
		t.Fatalf("saved file does not end with \"end 3\":\n%s", data)
	}
}

func TestLoadRefusesInsecurePermissions(t *testing.T) {
	if !permissionsMatter {
		t.Skip("Load checks permissions only on unix")
	}
	k, path, _ := savedFile(t)
	for _, perm := range []os.FileMode{0o644, 0o640, 0o604, 0o660, 0o620, 0o602, 0o601, 0o610, 0o777} {
		t.Run(fmt.Sprintf("%04o", perm), func(t *testing.T) {
			mustDo(t, os.Chmod(path, perm))
			_, err := Load(path)
			if !errors.Is(err, ErrInsecureKeyFile) {
				t.Fatalf("Load of a %04o file: err = %v, want ErrInsecureKeyFile", perm, err)
			}
			for _, want := range []string{path, fmt.Sprintf("%04o", perm), "chmod 600 " + path, "AllowInsecurePermissions"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			back, err := Load(path, AllowInsecurePermissions())
			if err != nil {
				t.Fatalf("Load with AllowInsecurePermissions: %v", err)
			}
			if len(back.Keys()) != len(k.Keys()) {
				t.Fatalf("loaded %d keys, want %d", len(back.Keys()), len(k.Keys()))
			}
		})
	}
	for _, perm := range []os.FileMode{0o600, 0o400, 0o700} {
		mustDo(t, os.Chmod(path, perm))
		if _, err := Load(path); err != nil {
			t.Errorf("Load of a %04o file: %v", perm, err)
		}
	}
}

// TestLoadDetectsTruncation cuts a saved file after every byte. Every cut
// but the one that only loses the final newline must be refused; cuts at a
// line boundary, which would otherwise drop whole keys silently, must say
// that the file looks truncated.
func TestLoadDetectsTruncation(t *testing.T) {
	k, path, data := savedFile(t)
	if _, err := Load(path); err != nil {
		t.Fatalf("the intact file: %v", err)
	}
	cut := filepath.Join(filepath.Dir(path), "cut")
	for n := 0; n < len(data)-1; n++ {
		mustDo(t, os.WriteFile(cut, data[:n], 0o600))
		back, err := Load(cut)
		if err == nil {
			t.Fatalf("file cut to %d of %d bytes loaded with %d of %d keys", n, len(data), len(back.Keys()), len(k.Keys()))
		}
		if n == 0 || data[n-1] == '\n' {
			if !errors.Is(err, ErrKeyFile) || !strings.Contains(err.Error(), "truncated") {
				t.Fatalf("file cut after line %d: err = %v, want ErrKeyFile saying it looks truncated", bytes.Count(data[:n], []byte("\n")), err)
			}
		}
	}
	mustDo(t, os.WriteFile(cut, data[:len(data)-1], 0o600))
	if _, err := Load(cut); err != nil {
		t.Fatalf("the file without its final newline: %v", err)
	}
}

func TestLoadChecksEndLine(t *testing.T) {
	_, path, data := savedFile(t)
	body := strings.TrimSuffix(string(data), "end 3\n")
	key := strings.Split(body, "\n")[2] // the primary key's line
	cases := []struct{ name, body, msg string }{
		{"count too low", body + "end 2\n", `"end 2" but the file holds 3 keys: the file looks truncated or edited`},
		{"count too high", body + "end 4\n", `change the line to "end 3"`},
		{"no end line", body, `add the line "end 3"`},
		{"key after end", body + "end 3\n" + key + "\n", "a key after the \"end\" line"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mustDo(t, os.WriteFile(path, []byte(c.body), 0o600))
			_, err := Load(path)
			if !errors.Is(err, ErrKeyFile) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("err = %v, want ErrKeyFile saying %q", err, c.msg)
			}
			if strings.Contains(err.Error(), key) {
				t.Fatalf("error %q contains a key", err)
			}
		})
	}
	// Comments and blank lines around the end line are fine.
	mustDo(t, os.WriteFile(path, []byte(body+"\n# trailer\nend 3\n\n# done\n"), 0o600))
	if _, err := Load(path); err != nil {
		t.Fatalf("comments after the end line: %v", err)
	}
}
