package codec_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"

	"github.com/meshward/membership/codec"
	"github.com/meshward/membership/swim"
)

// A probe with as much gossip piggybacked as fits the datagram budget, and
// its decoding on the other side.
func Example() {
	msgs := []swim.Message{
		{Kind: swim.KindPing, Seq: 42, From: "api-7", Name: "db-1"},
		{Kind: swim.KindAlive, Name: "api-8", Addr: netip.MustParseAddrPort("10.0.0.8:7946"), Incarnation: 3, Payload: []byte(`{"role":"api"}`)},
		{Kind: swim.KindSuspect, From: "api-7", Name: "cache-2", Incarnation: 9},
	}
	const budget = 64 // bytes left for the codec in this (tiny) datagram
	n := codec.Fit(budget, msgs)
	buf := make([]byte, 0, budget)
	buf, err := codec.Append(buf, msgs[:n])
	if err != nil {
		panic(err)
	}
	fmt.Printf("%d of %d messages in %d bytes\n", n, len(msgs), len(buf))

	var dec codec.Decoder
	got, err := dec.Decode(nil, buf)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%v from %q about %q\n", got[0].Kind, got[0].From, got[0].Name)
	fmt.Printf("%v %q at %v, incarnation %d, payload %s\n", got[1].Kind, got[1].Name, got[1].Addr, got[1].Incarnation, got[1].Payload)

	// Hostile input is a typed error that names the field: here a nack
	// whose sender name claims 300 bytes.
	hostile := []byte{codec.Version, 0xdc, 0, 1, 0x93, byte(swim.KindNack), 0, 0xda, 0x01, 0x2c}
	_, err = dec.Decode(nil, hostile)
	var fe *codec.FieldError
	fmt.Println(errors.Is(err, codec.ErrLimit), errors.As(err, &fe) && fe.Field == "from")
	fmt.Println(err)
	// Output:
	// 2 of 3 messages in 52 bytes
	// ping from "api-7" about "db-1"
	// alive "api-8" at 10.0.0.8:7946, incarnation 3, payload {"role":"api"}
	// true true
	// codec: message 0 (nack): from: bound exceeded (300 > 255)
}

// A push-pull snapshot streamed frame by frame; a runtime would seal each
// frame in its FrameWriter and open it in its FrameReader.
func ExampleSnapshotWriter() {
	snap := &swim.Snapshot{From: "api-7", Join: true}
	for i := range 1000 {
		snap.Members = append(snap.Members, swim.MemberState{
			Name: fmt.Sprintf("node-%d", i),
			Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 7946),
		})
	}
	var stream bytes.Buffer
	plain := codec.NewStreamFrameWriter(&stream)
	frames := 0
	w, err := codec.NewSnapshotWriter(codec.FrameWriterFunc(func(frame []byte) error {
		frames++ // a runtime would seal the frame here
		return plain.WriteFrame(frame)
	}), codec.MinFrameSize)
	if err != nil {
		panic(err)
	}
	if err := w.WriteSnapshot(snap); err != nil {
		panic(err)
	}

	r, err := codec.NewSnapshotReader(codec.NewStreamFrameReader(&stream), codec.Limits{MaxMembers: 5000})
	if err != nil {
		panic(err)
	}
	var got swim.Snapshot
	if err := r.ReadSnapshot(&got); err != nil {
		panic(err)
	}
	fmt.Println(frames, "frames;", got.From, got.Join, len(got.Members), got.Members[999].Name)
	// Output: 4 frames; api-7 true 1000 node-999
}
