package keyring

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
)

// Known-answer tests pin the wire format: a fixed key, nonce, label and
// plaintext give exactly these bytes. If one of them changes, the wire format
// changed and every deployed node stops understanding the new ones.
var katCases = []struct {
	name  string
	suite Suite
	key   string // hex
	nonce string // hex
	want  string // hex datagram
}{
	{
		name:  "xchacha20-poly1305",
		suite: XChaCha20Poly1305,
		key:   "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
		nonce: "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7",
		want:  "0102e5a5a334a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b72889677fd22fd7c4081f0de21f5fd4ae1bcbf15fdd63b8aae82cfb41bbc224a95e4e977745f7ad",
	},
	{
		name:  "aes-256-gcm",
		suite: AESGCM,
		key:   "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
		nonce: "a0a1a2a3a4a5a6a7a8a9aaab",
		want:  "0101e5a5a334a0a1a2a3a4a5a6a7a8a9aaab8b7d114f20b971d70b15a7b86915b7b050cd3763e5d230a10a3bd4aea85f002781f5ddb5100d64",
	},
	{
		name:  "aes-128-gcm",
		suite: AESGCM,
		key:   "000102030405060708090a0b0c0d0e0f",
		nonce: "a0a1a2a3a4a5a6a7a8a9aaab",
		want:  "0101b356703aa0a1a2a3a4a5a6a7a8a9aaabc7e355d91bfb4062e308956b287dc70e738f4d7bf4724f7c2d72e7f104ffaa57cf332caaf3d142",
	},
}

const (
	katLabel     = "prod-eu"
	katPlaintext = "membership known answer"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestKnownAnswers(t *testing.T) {
	for _, c := range katCases {
		t.Run(c.name, func(t *testing.T) {
			key, nonce := unhex(t, c.key), unhex(t, c.nonce)
			k := mustNew(t, key, WithSuite(c.suite))
			got := k.sealWithNonce(nil, nonce, []byte(katPlaintext), []byte(katLabel))

			// The same bytes built from the specification (SECURITY.md)
			// straight on the standard AEADs, without this package.
			sum := sha256.Sum256(append([]byte("membership key fingerprint"), key...))
			header := append([]byte{1, byte(c.suite)}, sum[:4]...)
			var aead cipher.AEAD
			if c.suite == AESGCM {
				block, err := aes.NewCipher(key)
				mustDo(t, err)
				aead, err = cipher.NewGCM(block)
				mustDo(t, err)
			} else {
				var err error
				aead, err = chacha20poly1305.NewX(key)
				mustDo(t, err)
			}
			spec := append(append(bytes.Clone(header), nonce...),
				aead.Seal(nil, nonce, []byte(katPlaintext), append(bytes.Clone(header), katLabel...))...)
			if !bytes.Equal(got, spec) {
				t.Fatalf("Seal differs from the specification:\n got %x\nspec %x", got, spec)
			}
			if hex.EncodeToString(got) != c.want {
				t.Fatalf("wire format changed:\n got %x\nwant %s", got, c.want)
			}
			pt, err := k.Open(nil, got, []byte(katLabel))
			if err != nil || string(pt) != katPlaintext {
				t.Fatalf("Open(known answer) = %q, %v", pt, err)
			}
		})
	}
}
