package keyring

import (
	"fmt"
	"testing"
)

// BenchmarkSeal and BenchmarkOpen measure one datagram of typical gossip
// size. With dst capacity they allocate nothing (see -benchmem).
func BenchmarkSeal(b *testing.B) {
	for _, c := range suiteCases {
		for _, size := range []int{64, 1350} {
			b.Run(fmt.Sprintf("%v/%dB", c, size), func(b *testing.B) {
				k := mustNew(b, testKey(c.keyLen, 1), WithSuite(c.suite))
				pt := make([]byte, size)
				dst := make([]byte, 0, size+64)
				label := []byte("prod-eu")
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := k.Seal(dst[:0], pt, label); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	for _, c := range suiteCases {
		for _, size := range []int{64, 1350} {
			b.Run(fmt.Sprintf("%v/%dB", c, size), func(b *testing.B) {
				k := mustNew(b, testKey(c.keyLen, 1), WithSuite(c.suite))
				label := []byte("prod-eu")
				dg, _ := k.Seal(nil, make([]byte, size), label)
				dst := make([]byte, 0, size+64)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := k.Open(dst[:0], dg, label); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkOpenSecondary opens a datagram sealed under the last of four
// installed keys: the fingerprint finds it without trial decryption.
func BenchmarkOpenSecondary(b *testing.B) {
	last := testKey(32, 4)
	k := mustNew(b, testKey(32, 1), WithKeys(testKey(32, 2), testKey(32, 3), last))
	sender := mustNew(b, last)
	dg, _ := sender.Seal(nil, make([]byte, 1350), nil)
	dst := make([]byte, 0, 1400)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Open(dst[:0], dg, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRejectForged is the cost of rejecting each kind of forged
// datagram through OpenDetail, the runtime's path: a fingerprint that names
// no key (every installed key is tried once), a matching fingerprint with a
// wrong tag (one key tried), and the header checks that need no
// cryptography. None of them allocates.
func BenchmarkRejectForged(b *testing.B) {
	k, cases := forgedDatagrams(b, XChaCha20Poly1305)
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			dst := make([]byte, 0, 1400)
			b.ReportAllocs()
			for b.Loop() {
				if _, f := k.OpenDetail(dst[:0], c.dg, nil); f.Reason != c.reason {
					b.Fatalf("reason %v, want %v", f.Reason, c.reason)
				}
			}
		})
	}
}
