package codec

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"

	msgpack "github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/meshward/membership/swim"
)

// These tests check the codec against github.com/hashicorp/go-msgpack/v2, a
// general msgpack implementation: what we write, it reads, and what it
// writes for the same values, we read.

func libHandle() *msgpack.MsgpackHandle {
	// WriteExt selects the current msgpack spec: str and bin are
	// distinct, and str decodes as a Go string.
	return &msgpack.MsgpackHandle{WriteExt: true}
}

// generic turns a value decoded by go-msgpack into a canonical form:
// integers as uint64, containers recursively.
func generic(v any) any {
	switch x := v.(type) {
	case int64:
		return uint64(x)
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = generic(x[i])
		}
		return out
	}
	return v
}

// wireAddr is the wire form of an address: the IP and then the port.
func wireAddr(a netip.AddrPort) []byte {
	return appendAddr(nil, a)[2:]
}

// expectGeneric is the msgpack structure a message must have on the wire,
// built from the table in swim.Message's doc comment.
func expectGeneric(m *swim.Message) []any {
	v := []any{uint64(m.Kind)}
	for _, f := range kindSpecs[m.Kind].fields {
		switch f {
		case fieldSeq:
			v = append(v, uint64(m.Seq))
		case fieldFrom:
			v = append(v, m.From)
		case fieldName, fieldKey:
			v = append(v, m.Name)
		case fieldAddr:
			v = append(v, wireAddr(m.Addr))
		case fieldIncarnation, fieldEpoch:
			v = append(v, m.Incarnation)
		case fieldPayload:
			if len(m.Payload) == 0 {
				v = append(v, nil)
			} else {
				v = append(v, m.Payload)
			}
		case fieldDigest:
			v = append(v, m.Digest)
		case fieldNack:
			v = append(v, m.Nack)
		}
	}
	return v
}

func TestGoMsgpackReadsOurDatagrams(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for range 200 {
		msgs := make([]swim.Message, 1+rng.IntN(12))
		for i := range msgs {
			msgs[i] = randMessage(rng, DefaultMaxPayload)
		}
		b, err := Append(nil, msgs)
		if err != nil {
			t.Fatal(err)
		}
		dec := msgpack.NewDecoderBytes(b, libHandle())
		var version, list any
		if err := dec.Decode(&version); err != nil {
			t.Fatal(err)
		}
		if err := dec.Decode(&list); err != nil {
			t.Fatal(err)
		}
		if dec.NumBytesRead() != len(b) {
			t.Fatalf("go-msgpack read %d of %d bytes", dec.NumBytesRead(), len(b))
		}
		if generic(version) != uint64(Version) {
			t.Fatalf("version %v", version)
		}
		got := generic(list).([]any)
		for i := range msgs {
			if want := expectGeneric(&msgs[i]); !reflect.DeepEqual(got[i], any(want)) {
				t.Fatalf("message %d:\n go-msgpack read %#v\n want %#v", i, got[i], want)
			}
		}
	}
}

func TestWeReadGoMsgpackDatagrams(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	var d Decoder
	for range 200 {
		msgs := make([]swim.Message, 1+rng.IntN(12))
		list := make([]any, len(msgs))
		for i := range msgs {
			msgs[i] = randMessage(rng, DefaultMaxPayload)
			list[i] = expectGeneric(&msgs[i])
		}
		var b []byte
		enc := msgpack.NewEncoderBytes(&b, libHandle())
		if err := enc.Encode(uint8(Version)); err != nil {
			t.Fatal(err)
		}
		if err := enc.Encode(list); err != nil {
			t.Fatal(err)
		}
		got, err := d.Decode(nil, b)
		if err != nil {
			t.Fatalf("Decode(%x): %v", b, err)
		}
		checkMessages(t, got, msgs)
	}
}

func TestGoMsgpackReadsOurSnapshots(t *testing.T) {
	s := randSnapshot(rand.New(rand.NewPCG(11, 12)), 300)
	frames := stream(t, s)
	h := libHandle()
	var header []any
	dec := msgpack.NewDecoderBytes(frames[0][1:], h)
	if err := dec.Decode(&header); err != nil {
		t.Fatal(err)
	}
	if want := []any{s.From, s.Join, uint64(len(s.Members))}; !reflect.DeepEqual(generic(header), any(want)) {
		t.Fatalf("header %#v, want %#v", header, want)
	}
	n := 0
	for _, f := range frames[1:] {
		var members []any
		dec := msgpack.NewDecoderBytes(f, h)
		if err := dec.Decode(&members); err != nil {
			t.Fatal(err)
		}
		for _, m := range generic(members).([]any) {
			w := &s.Members[n]
			var payload any
			if len(w.Payload) > 0 {
				payload = w.Payload
			}
			want := []any{w.Name, wireAddr(w.Addr), w.Incarnation, uint64(w.State), payload}
			if !reflect.DeepEqual(m, any(want)) {
				t.Fatalf("member %d: %#v, want %#v", n, m, want)
			}
			n++
		}
	}
	if n != len(s.Members) {
		t.Fatalf("go-msgpack read %d members, want %d", n, len(s.Members))
	}
}

// libPing, libAlive and libSuspect are what a straightforward go-msgpack
// encoding of the same messages looks like: structs as positional arrays
// (libStructHandle).
type libPing struct {
	Kind   uint8
	Seq    uint32
	From   string
	Name   string
	Digest uint64
}

type libAlive struct {
	Kind        uint8
	Name        string
	Addr        []byte
	Incarnation uint64
	Payload     []byte
}

type libSuspect struct {
	Kind        uint8
	From        string
	Name        string
	Incarnation uint64
}

// libStructHandle encodes structs as positional arrays.
func libStructHandle() *msgpack.MsgpackHandle {
	h := libHandle()
	h.StructToArray = true
	return h
}

func libMessages(msgs []swim.Message) []any {
	out := make([]any, len(msgs))
	for i := range msgs {
		m := &msgs[i]
		switch m.Kind {
		case swim.KindPing:
			out[i] = &libPing{Kind: 1, Seq: m.Seq, From: m.From, Name: m.Name, Digest: m.Digest}
		case swim.KindAlive:
			out[i] = &libAlive{Kind: 5, Name: m.Name, Addr: wireAddr(m.Addr), Incarnation: m.Incarnation, Payload: m.Payload}
		case swim.KindSuspect:
			out[i] = &libSuspect{Kind: 6, From: m.From, Name: m.Name, Incarnation: m.Incarnation}
		default:
			panic(fmt.Sprintf("no lib type for %v", m.Kind))
		}
	}
	return out
}

func TestGoMsgpackStructEncodingMatches(t *testing.T) {
	// For these kinds, go-msgpack's reflection encoder writes the same
	// bytes as ours, except that it counts the list with a minimal header
	// and writes a nil payload as an empty bin.
	msgs := pingWithUpdates(10)
	for i := range msgs {
		if msgs[i].Kind == swim.KindAlive {
			msgs[i].Payload = nil
		}
	}
	ours, _ := Append(nil, msgs)
	var lib []byte
	enc := msgpack.NewEncoderBytes(&lib, libStructHandle())
	if err := enc.Encode(libMessages(msgs)); err != nil {
		t.Fatal(err)
	}
	ours = ours[HeaderSize:]
	lib = lib[1:] // fixarray header
	lib = bytes.ReplaceAll(lib, []byte{mpBin8, 0}, []byte{mpNil})
	if !bytes.Equal(ours, lib) {
		t.Fatalf("encodings differ:\n ours %x\n  lib %x", ours, lib)
	}
}
