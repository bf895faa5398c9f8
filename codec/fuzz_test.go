package codec

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/meshward/membership/swim"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seed corpora in testdata/fuzz")

// decodeSeeds are datagrams for FuzzDecode: every golden message, a ping
// with gossip, random datagrams, and the shapes of the rejection tests.
func decodeSeeds() [][]byte {
	var seeds [][]byte
	add := func(msgs ...swim.Message) {
		b, err := Append(nil, msgs)
		if err != nil {
			panic(err)
		}
		seeds = append(seeds, b)
	}
	var all []swim.Message
	for _, g := range goldenMessages {
		add(g.m)
		all = append(all, g.m)
	}
	add(all...)
	add()
	add(pingWithUpdates(10)...)
	for _, msgs := range [][]swim.Message{all, nil, pingWithUpdates(10)} {
		b, err := AppendCompact(nil, msgs)
		if err != nil {
			panic(err)
		}
		seeds = append(seeds, b)
	}
	rng := rand.New(rand.NewPCG(13, 14))
	for range 8 {
		msgs := make([]swim.Message, 1+rng.IntN(8))
		for i := range msgs {
			msgs[i] = randMessage(rng, DefaultMaxPayload)
		}
		add(msgs...)
	}
	for _, h := range []string{
		"30dc0000",                              // another major version
		"20dc0000",                              // the compact form with a count
		"13dc0002 9601 00 a178 a0 00 c0 927fc0", // unknown trailing field, unknown kind
		"10dc0001 947f 00 a178 919191c0",        // nested unknown field
		"10dd00000001 dc0003 d004 cf0000000000000007 da000178", // wide forms
		"10dc0001 9406 a161 a162 cfffffffffffffffff",           // incarnation too high
		"10dc0001 9505 a161 c4060a0000010000 00 c0",            // port 0
		"10dc0005 9204", // truncated
		"12dc0001 960a a161 cfffffffffffffffff 00 a0 c0", // user: widest epoch, no key
		"12dc0001 970a a161 01 02 a16b c0 c3",            // user with a field of a later version
		"12dc0001 950a a161 01 02 a16b",                  // user without payload
		"12dc0001 960a a0 01 02 a16b c0",                 // user without origin
		"12dc0001 960a a161 01 cf0000000100000000 a0 c0", // user seq above 32 bits
		"12dc0001 960a a161 01 02 a0 c52001",             // user payload above the default bound, truncated
		"12dc0001 930b a162 c40178",                      // direct
		"12dc0001 930b c0 c0",                            // direct without sender
	} {
		b, err := hex.DecodeString(stripSpaces(h))
		if err != nil {
			panic(err)
		}
		seeds = append(seeds, b)
	}
	return seeds
}

func stripSpaces(s string) string {
	return string(bytes.ReplaceAll([]byte(s), []byte(" "), nil))
}

func FuzzDecode(f *testing.F) {
	for _, s := range decodeSeeds() {
		f.Add(s)
	}
	var d Decoder
	f.Fuzz(func(t *testing.T, data []byte) {
		msgs, err := d.Decode(nil, data)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v (%T) is not a *FieldError", err, err)
			}
			return
		}
		// What decodes is valid: it encodes again, with the exact size,
		// and decodes to the same messages.
		out, err := Append(nil, msgs)
		if err != nil {
			t.Fatalf("decoded messages do not encode: %v", err)
		}
		if len(out) != Size(msgs) {
			t.Fatalf("len %d != Size %d", len(out), Size(msgs))
		}
		again, err := d.Decode(nil, out)
		if err != nil {
			t.Fatalf("re-encoded datagram does not decode: %v", err)
		}
		checkMessages(t, again, msgs)
		// The encoding is canonical: encoding what decoded from our own
		// bytes gives the same bytes.
		if out2, _ := Append(nil, again); !bytes.Equal(out, out2) {
			t.Fatalf("re-encoding is not stable:\n%x\n%x", out, out2)
		}
		// The compact form too, with its exact size, never above Size.
		c, err := AppendCompact(nil, msgs)
		if err != nil || len(c) != CompactSize(msgs) || len(c) > len(out) {
			t.Fatalf("compact form: %d bytes (CompactSize %d, Size %d), %v", len(c), CompactSize(msgs), len(out), err)
		}
		cmsgs, err := d.Decode(nil, c)
		if err != nil || len(cmsgs) != len(msgs) {
			t.Fatalf("compact form does not decode: %d messages, %v", len(cmsgs), err)
		}
		if c2, _ := AppendCompact(nil, cmsgs); !bytes.Equal(c, c2) {
			t.Fatalf("compact re-encoding is not stable:\n%x\n%x", c, c2)
		}
	})
}

// snapshotSeeds are StreamFrameWriter streams for FuzzSnapshot.
func snapshotSeeds() [][]byte {
	var seeds [][]byte
	add := func(frameSize int, s *swim.Snapshot) {
		var buf bytes.Buffer
		w, err := NewSnapshotWriter(NewStreamFrameWriter(&buf), frameSize)
		if err != nil {
			panic(err)
		}
		if err := w.WriteSnapshot(s); err != nil {
			panic(err)
		}
		seeds = append(seeds, buf.Bytes())
	}
	add(0, &swim.Snapshot{From: "a"})
	add(0, &swim.Snapshot{From: "a", Join: true, Members: []swim.MemberState{
		{Name: "m", Addr: addr4, Incarnation: 7, State: swim.StateSuspect},
		{Name: "n", Addr: addr6, Incarnation: swim.MaxIncarnation, State: swim.StateLeft, Payload: []byte("x")},
	}})
	rng := rand.New(rand.NewPCG(15, 16))
	add(MinFrameSize, randSnapshot(rng, 200))
	add(0, randSnapshot(rng, 20))
	for _, h := range []string{
		"00000008 1594a161c30191c0 00000015 9196a16dc4060a000001000107" + "01c081a16b920102", // newer minor, extra fields
		"00000006 209301a161c200",             // another major
		"00000005 1093a161c2 00000003 dc0000", // header without count
		"00000006 1093a161c202 00000003 dc0000",
		"ffffffff",
	} {
		b, err := hex.DecodeString(stripSpaces(h))
		if err != nil {
			panic(err)
		}
		seeds = append(seeds, b)
	}
	return seeds
}

func FuzzSnapshot(f *testing.F) {
	for _, s := range snapshotSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewSnapshotReader(NewStreamFrameReader(bytes.NewReader(data)), Limits{MaxMembers: 5000, MaxPayload: MaxPayloadLimit})
		if err != nil {
			t.Fatal(err)
		}
		var s swim.Snapshot
		if err := r.ReadSnapshot(&s); err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v (%T) is not a *FieldError", err, err)
			}
			return
		}
		// What decodes is valid: it streams again and reads back the same.
		var buf bytes.Buffer
		w, _ := NewSnapshotWriter(NewStreamFrameWriter(&buf), 0)
		if err := w.WriteSnapshot(&s); err != nil {
			t.Fatalf("decoded snapshot does not encode: %v", err)
		}
		r2, _ := NewSnapshotReader(NewStreamFrameReader(&buf), Limits{MaxMembers: 5000, MaxPayload: MaxPayloadLimit})
		var again swim.Snapshot
		if err := r2.ReadSnapshot(&again); err != nil {
			t.Fatalf("re-encoded snapshot does not decode: %v", err)
		}
		checkSnapshot(t, &again, &s)
	})
}

// TestSeedCorpus checks that the seed corpora checked in under
// testdata/fuzz are current, and rewrites them with -update-corpus.
func TestSeedCorpus(t *testing.T) {
	for name, seeds := range map[string][][]byte{"FuzzDecode": decodeSeeds(), "FuzzSnapshot": snapshotSeeds()} {
		dir := filepath.Join("testdata", "fuzz", name)
		for _, s := range seeds {
			sum := sha256.Sum256(s)
			path := filepath.Join(dir, "seed-"+hex.EncodeToString(sum[:8]))
			want := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
			if *updateCorpus {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("seed corpus missing (run go test -run TestSeedCorpus -update-corpus): %v", err)
			}
			if string(got) != want {
				t.Fatalf("%s is stale (run go test -run TestSeedCorpus -update-corpus)", path)
			}
		}
	}
}
