package keyring

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzOpen feeds arbitrary bytes to Open for both suites. Open must never
// panic, must fail with exactly one typed reason and leave dst unchanged, and
// may succeed only on a datagram this key really sealed: re-sealing the
// plaintext with the datagram's own nonce must give the datagram back.
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
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add([]byte{1, 2, 0, 0, 0, 0})
	f.Add([]byte{2, 2, 0, 0, 0, 0})

	reasons := []error{ErrTruncated, ErrUnknownVersion, ErrUnknownSuite, ErrUnknownKey, ErrAuthFailed}
	f.Fuzz(func(t *testing.T, datagram []byte) {
		for _, r := range rings {
			dst := []byte("dst")
			out, err := r.Open(dst, datagram, label)
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
			ns := r.Suite().NonceSize()
			nonce := datagram[headerLen : headerLen+ns]
			again := r.sealWithNonce(nil, nonce, out[len(dst):], label)
			if !bytes.Equal(again, datagram) {
				t.Fatalf("Open accepted a datagram this key did not seal: %x", datagram)
			}
		}
	})
}
