package keyring

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// FuzzOpen feeds arbitrary bytes to Open for both suites and both layouts. Open must never
// panic, must fail with exactly one typed reason and leave dst unchanged, and
// may succeed only on a datagram this key really sealed: re-sealing the
// plaintext with the datagram's own nonce must give the datagram back.
// OpenDetail must agree with Open: the same plaintext, and on failure the
// reason Open's error wraps and, from Err, the same error.
func FuzzOpen(f *testing.F) {
	label := []byte("fuzz")
	rings := []*Keyring{
		mustNew(f, testKey(32, 1)),
		mustNew(f, testKey(32, 1), WithSuite(AESGCM)),
	}
	for _, r := range rings {
		for _, pt := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte("gossip"), 50)} {
			dg, err := r.Seal(nil, pt, label)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(dg)
			f.Add(dg[:len(dg)-1])
			f.Add(dg[:headerLen])
		}
	}
	for _, pt := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte("gossip"), 50)} {
		dg, err := rings[0].SealStamped(nil, pt, label, 1_800_000_000_000)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(dg)
		f.Add(dg[:len(dg)-1])
		f.Add(dg[:compactHeaderLen])
	}
	f.Add([]byte{})
	f.Add([]byte{0x22})
	f.Add([]byte{0x21, 0, 0, 0, 0})
	f.Add([]byte{1})
	f.Add([]byte{1, 2, 0, 0, 0, 0})
	f.Add([]byte{2, 2, 0, 0, 0, 0})

	reasons := []error{ErrTruncated, ErrUnknownVersion, ErrUnknownSuite, ErrUnknownKey, ErrAuthFailed}
	f.Fuzz(func(t *testing.T, datagram []byte) {
		for _, r := range rings {
			dst := []byte("dst")
			out, err := r.Open(dst, datagram, label)
			dout, f := r.OpenDetail([]byte("dst"), datagram, label)
			if !bytes.Equal(out, dout) || !reflect.DeepEqual(err, f.Err()) {
				t.Fatalf("Open gives %x, %v; OpenDetail gives %x, %v", out, err, dout, f.Err())
			}
			if err != nil && !errors.Is(err, f.Reason.sentinel()) {
				t.Fatalf("OpenDetail's reason %v is not the one Open's error %v wraps", f.Reason, err)
			}
			if err != nil {
				if !bytes.Equal(out, []byte("dst")) {
					t.Fatalf("failed Open changed dst to %x", out)
				}
				n := 0
				for _, reason := range reasons {
					if errors.Is(err, reason) {
						n++
					}
				}
				if n != 1 {
					t.Fatalf("error %v matches %d reasons, want exactly 1", err, n)
				}
				continue
			}
			var again []byte
			if ms, ok := Stamp(datagram); ok {
				random := datagram[compactHeaderLen+StampLen : compactHeaderLen+CompactNonceLen]
				again = r.sealStamped(nil, out[len(dst):], label, ms, random)
			} else {
				ns := r.Suite().NonceSize()
				nonce := datagram[headerLen : headerLen+ns]
				again = r.sealWithNonce(nil, nonce, out[len(dst):], label)
			}
			if !bytes.Equal(again, datagram) {
				t.Fatalf("Open accepted a datagram this key did not seal: %x", datagram)
			}
		}
	})
}

// FuzzParseKeyFile feeds arbitrary text to the key file parser. It must
// never panic, every error must wrap exactly one sentinel, and a file it
// accepts must hold as many keys as its end line says.
func FuzzParseKeyFile(f *testing.F) {
	b64 := base64.StdEncoding.EncodeToString
	good := "# c\nsuite xchacha20-poly1305\n" + b64(testKey(32, 1)) + "\n" + b64(testKey(32, 2)) + "\nend 2\n"
	for _, seed := range []string{
		good, good[:len(good)-6], "", "suite aes-gcm\n" + b64(testKey(16, 1)) + "\nend 1",
		"suite aes-gcm\nend 0\n", "end 1\n", "suite\n", "suite aes-gcm\r\n" + b64(testKey(24, 3)) + "\r\nend 1\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := parseFile("fuzz", data)
		if err != nil {
			n := 0
			for _, s := range sentinels {
				if errors.Is(err, s) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("error %v matches %d sentinels, want exactly 1", err, n)
			}
			return
		}
		// The last line that is not blank or a comment must be the end
		// line, exactly as Save writes it.
		last := ""
		for line := range strings.Lines(string(data)) {
			if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
				last = l
			}
		}
		if want := fmt.Sprintf("end %d", len(k.Keys())); last != want {
			t.Fatalf("accepted a file with %d keys whose last line is %q, not %q: %q", len(k.Keys()), last, want, data)
		}
	})
}
