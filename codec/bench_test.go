package codec

import (
	"net/netip"
	"testing"

	msgpack "github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/meshward/membership/swim"
)

func BenchmarkEncodePing10(b *testing.B) {
	msgs := pingWithUpdates(10)
	buf := make([]byte, 0, 1400)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = Append(buf[:0], msgs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(buf)), "bytes/datagram")
}

func BenchmarkFitPing10(b *testing.B) {
	msgs := pingWithUpdates(10)
	b.ReportAllocs()
	for b.Loop() {
		if Fit(1400, msgs) != len(msgs) {
			b.Fatal("does not fit")
		}
	}
}

// BenchmarkDecodePing10 decodes a datagram whose names the Decoder knows,
// as in a stable cluster.
func BenchmarkDecodePing10(b *testing.B) {
	data, _ := Append(nil, pingWithUpdates(10))
	var d Decoder
	dst := make([]swim.Message, 0, 16)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if dst, err = d.Decode(dst[:0], data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodePing10NewNames decodes a datagram whose names the Decoder
// has not seen: the worst case for allocations.
func BenchmarkDecodePing10NewNames(b *testing.B) {
	data, _ := Append(nil, pingWithUpdates(10))
	var d Decoder
	dst := make([]swim.Message, 0, 16)
	b.ReportAllocs()
	for b.Loop() {
		clear(d.intern)
		var err error
		if dst, err = d.Decode(dst[:0], data); err != nil {
			b.Fatal(err)
		}
	}
}

func snapshot10k() *swim.Snapshot {
	s := &swim.Snapshot{From: memberName(0), Members: make([]swim.MemberState, 10000)}
	for i := range s.Members {
		s.Members[i] = swim.MemberState{
			Name:        memberName(i),
			Addr:        netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 7946),
			Incarnation: uint64(i % 7),
			State:       swim.State(i % 4),
			Payload:     []byte(`{"role":"api"}`),
		}
	}
	return s
}

// countFrames is a FrameWriter that only counts.
type countFrames struct{ frames, bytes int }

func (c *countFrames) WriteFrame(p []byte) error {
	c.frames++
	c.bytes += len(p)
	return nil
}

func BenchmarkSnapshotWrite10k(b *testing.B) {
	s := snapshot10k()
	var c countFrames
	w, _ := NewSnapshotWriter(&c, 0)
	b.ReportAllocs()
	for b.Loop() {
		c = countFrames{}
		w.Reset(&c)
		if err := w.WriteSnapshot(s); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(c.bytes), "bytes/snapshot")
	b.ReportMetric(float64(c.frames), "frames/snapshot")
}

func BenchmarkSnapshotRead10k(b *testing.B) {
	var fs frames
	w, _ := NewSnapshotWriter(&fs, 0)
	if err := w.WriteSnapshot(snapshot10k()); err != nil {
		b.Fatal(err)
	}
	r, _ := NewSnapshotReader(&fs, Limits{})
	var s swim.Snapshot
	b.ReportAllocs()
	for b.Loop() {
		fs.next = 0
		r.Reset(&fs)
		if err := r.ReadSnapshot(&s); err != nil {
			b.Fatal(err)
		}
	}
	if len(s.Members) != 10000 {
		b.Fatalf("%d members", len(s.Members))
	}
}

// The go-msgpack benchmarks encode and decode the same datagram with the
// library's reflection-based encoder (structs as arrays, a reused Encoder
// and Decoder): the cost the hand-written primitives avoid.

func BenchmarkGoMsgpackEncodePing10(b *testing.B) {
	list := libMessages(pingWithUpdates(10))
	buf := make([]byte, 0, 1400)
	enc := msgpack.NewEncoderBytes(&buf, libStructHandle())
	b.ReportAllocs()
	for b.Loop() {
		buf = buf[:0]
		enc.ResetBytes(&buf)
		if err := enc.Encode(list); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(buf)), "bytes/datagram")
}

func BenchmarkGoMsgpackDecodePing10(b *testing.B) {
	var data []byte
	if err := msgpack.NewEncoderBytes(&data, libStructHandle()).Encode(libMessages(pingWithUpdates(10))); err != nil {
		b.Fatal(err)
	}
	dec := msgpack.NewDecoderBytes(data, libStructHandle())
	var v []any
	b.ReportAllocs()
	for b.Loop() {
		dec.ResetBytes(data)
		v = v[:0]
		if err := dec.Decode(&v); err != nil {
			b.Fatal(err)
		}
	}
}
