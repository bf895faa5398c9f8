package envelope

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
	"time"
)

// FuzzStreamRead feeds arbitrary bytes to a responder as the initiator's
// side of a stream. Reading must never panic, never return data that was
// not sealed for this stream, and stop at the first error.
func FuzzStreamRead(f *testing.F) {
	_, raw, _ := recordedStream(f, "one", "two")
	hello := append([]byte{StreamVersion}, bytes.Repeat([]byte{9}, 16)...)
	f.Add(append(bytes.Clone(hello), bytes.Join(raw, nil)...))
	f.Add(append(bytes.Clone(hello), 0, 0, 0, 0))
	f.Add(append(bytes.Clone(hello), 0xff, 0xff, 0xff, 0xff))
	f.Add(hello[:5])
	f.Add([]byte{})
	r := testRing(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := Handshake(rw(bytes.NewReader(in), io.Discard), false, r, label, 1<<20)
		if err != nil {
			return
		}
		for i := 0; i < 100; i++ {
			_, final, err := s.ReadRecord()
			if err != nil || final {
				return
			}
		}
	})
}

// FuzzOpenDatagram checks that OpenDatagram, OpenDatagramDetail and the
// replay guard never panic on arbitrary input, for a keyring and for
// Plaintext, and that the zero-allocation path agrees with the sealer's
// Open: it rejects exactly what Open rejects, with the same error.
func FuzzOpenDatagram(f *testing.F) {
	r := testRing(f)
	dg, _ := SealDatagram(r, label, nil, make([]byte, TimestampLen+3), time.Unix(1_800_000_000, 0))
	f.Add(dg)
	f.Add(dg[:10])
	full, _ := SealDatagram(legacyModal(r), label, nil, make([]byte, TimestampLen+3), time.Unix(1_800_000_000, 0))
	f.Add(full)
	f.Add(full[:10])
	f.Add([]byte{})
	pdg, _ := SealDatagram(Plaintext{}, label, nil, make([]byte, TimestampLen+3), time.Unix(1_800_000_000, 0))
	f.Add(pdg)
	f.Add(pdg[:7])
	g := NewReplayGuard(time.Minute, 16)
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, ring := range []Sealer{r, Plaintext{}, NewModal(r, ModeSendSealed)} {
			sent, body, _, fail := OpenDatagramDetail(ring, label, nil, in)
			_, openErr := ring.Open(nil, in, label)
			if openErr != nil {
				if !fail.Failed() || !reflect.DeepEqual(fail.Err(), openErr) {
					t.Fatalf("%T: Open: %v; OpenDatagramDetail: %v, %v", ring, openErr, fail.Reason(), fail.Err())
				}
				continue
			}
			if fail.Failed() {
				if fail.Reason() != ReasonMalformed || !errors.Is(fail.Err(), ErrMalformed) {
					t.Fatalf("%T: Open accepted what OpenDatagramDetail rejects as %v: %v", ring, fail.Reason(), fail.Err())
				}
				continue
			}
			_, body2, _, err := OpenDatagram(ring, label, nil, in)
			if err != nil || !bytes.Equal(body, body2) {
				t.Fatalf("%T: OpenDatagram disagrees: %v", ring, err)
			}
			_ = g.Check(time.Unix(1_800_000_000, 0), sent, Nonce(ring, in))
		}
	})
}
