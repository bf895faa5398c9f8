package codec

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/meshward/membership/swim"
)

// frames is an in-memory FrameWriter and FrameReader that keeps a copy of
// every frame.
type frames struct {
	list [][]byte
	next int
}

func (f *frames) WriteFrame(p []byte) error {
	f.list = append(f.list, bytes.Clone(p))
	return nil
}

func (f *frames) ReadFrame() ([]byte, error) {
	if f.next == len(f.list) {
		return nil, io.EOF
	}
	f.next++
	return f.list[f.next-1], nil
}

func randSnapshot(rng *rand.Rand, n int) *swim.Snapshot {
	s := &swim.Snapshot{From: randName(rng), Join: rng.IntN(2) == 0, Members: make([]swim.MemberState, n)}
	for i := range s.Members {
		s.Members[i] = randMember(rng, DefaultMaxPayload)
	}
	return s
}

func checkSnapshot(t *testing.T, got, want *swim.Snapshot) {
	t.Helper()
	if got.From != want.From || got.Join != want.Join || len(got.Members) != len(want.Members) {
		t.Fatalf("got from %q join %v %d members, want %q %v %d", got.From, got.Join, len(got.Members), want.From, want.Join, len(want.Members))
	}
	for i := range want.Members {
		if !equalMember(got.Members[i], want.Members[i]) {
			t.Fatalf("member %d:\n got %+v\nwant %+v", i, got.Members[i], want.Members[i])
		}
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tt := range []struct {
		members, frameSize int
	}{{0, 0}, {1, 0}, {10, 0}, {3000, 0}, {3000, MinFrameSize}, {3000, MaxFrameSize}} {
		want := randSnapshot(rng, tt.members)
		var fs frames
		w, err := NewSnapshotWriter(&fs, tt.frameSize)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WriteSnapshot(want); err != nil {
			t.Fatal(err)
		}
		limit := tt.frameSize
		if limit == 0 {
			limit = DefaultFrameSize
		}
		total := 0
		for i, f := range fs.list {
			if len(f) > limit {
				t.Fatalf("frame %d is %d bytes > frame size %d", i, len(f), limit)
			}
			if i > 0 {
				total += len(f) - 3
			}
		}
		sum := 0
		for i := range want.Members {
			sum += memberSize(&want.Members[i])
		}
		if total != sum {
			t.Fatalf("member frames carry %d bytes of members, memberSize says %d", total, sum)
		}
		r, err := NewSnapshotReader(&fs, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		got := &swim.Snapshot{Members: make([]swim.MemberState, 5)}
		if err := r.ReadSnapshot(got); err != nil {
			t.Fatalf("%d members, frame size %d: %v", tt.members, tt.frameSize, err)
		}
		checkSnapshot(t, got, want)
		t.Logf("%d members, frame size %d: %d frames", tt.members, tt.frameSize, len(fs.list))
	}
}

func TestSnapshotEdgeValues(t *testing.T) {
	want := &swim.Snapshot{From: strings.Repeat("f", swim.MaxNameLen), Members: []swim.MemberState{
		{Name: strings.Repeat("n", swim.MaxNameLen), Addr: addr6, Incarnation: swim.MaxIncarnation, State: swim.StateLeft, Payload: bytes.Repeat([]byte{1}, MaxPayloadLimit)},
		{Name: "a", Addr: addr4, State: swim.StateAlive},
		{Name: "b", Addr: addr4, Incarnation: 1, State: swim.StateSuspect, Payload: []byte{}},
		{Name: "c", Addr: addr6, Incarnation: 2, State: swim.StateDead, Payload: []byte("x")},
	}}
	var buf bytes.Buffer
	w, _ := NewSnapshotWriter(NewStreamFrameWriter(&buf), MinFrameSize)
	if err := w.WriteSnapshot(want); err != nil {
		t.Fatal(err)
	}
	r, _ := NewSnapshotReader(NewStreamFrameReader(&buf), Limits{MaxPayload: MaxPayloadLimit})
	var got swim.Snapshot
	if err := r.ReadSnapshot(&got); err != nil {
		t.Fatal(err)
	}
	checkSnapshot(t, &got, want)
	if buf.Len() != 0 {
		t.Fatalf("%d bytes left unread", buf.Len())
	}
}

func TestSnapshotNextStreams(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	want := randSnapshot(rng, 2000)
	var fs frames
	w, _ := NewSnapshotWriter(&fs, 0)
	if err := w.WriteSnapshot(want); err != nil {
		t.Fatal(err)
	}
	r, _ := NewSnapshotReader(&fs, Limits{})
	h, err := r.ReadHeader()
	if err != nil {
		t.Fatal(err)
	}
	if h.Version != Version || h.From != want.From || h.Join != want.Join || h.Members != len(want.Members) {
		t.Fatalf("header %+v", h)
	}
	var chunk []swim.MemberState
	seen := 0
	for {
		chunk, err = r.Next(chunk[:0])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for i := range chunk {
			if !equalMember(chunk[i], want.Members[seen+i]) {
				t.Fatalf("member %d differs", seen+i)
			}
		}
		seen += len(chunk)
	}
	if seen != len(want.Members) || fs.next != len(fs.list) {
		t.Fatalf("read %d members from %d of %d frames", seen, fs.next, len(fs.list))
	}
	if _, err := r.Next(nil); err != io.EOF {
		t.Fatalf("Next after the end: %v, want io.EOF", err)
	}
}

func TestSnapshotPayloadsDoNotAliasFrames(t *testing.T) {
	want := &swim.Snapshot{From: "a", Members: []swim.MemberState{{Name: "m", Addr: addr4, Payload: []byte("payload")}}}
	var fs frames
	w, _ := NewSnapshotWriter(&fs, 0)
	if err := w.WriteSnapshot(want); err != nil {
		t.Fatal(err)
	}
	r, _ := NewSnapshotReader(&fs, Limits{})
	var got swim.Snapshot
	if err := r.ReadSnapshot(&got); err != nil {
		t.Fatal(err)
	}
	for _, f := range fs.list {
		clear(f)
	}
	checkSnapshot(t, &got, want)
}

func TestSnapshotWriterRejects(t *testing.T) {
	var fs frames
	if _, err := NewSnapshotWriter(&fs, MinFrameSize-1); !errors.Is(err, ErrInvalid) {
		t.Fatalf("frame size below minimum: %v", err)
	}
	if _, err := NewSnapshotWriter(&fs, MaxFrameSize+1); !errors.Is(err, ErrInvalid) {
		t.Fatalf("frame size above maximum: %v", err)
	}
	w, _ := NewSnapshotWriter(&fs, 0)
	if err := w.WriteMember(&swim.MemberState{Name: "a", Addr: addr4}); !errors.Is(err, errSequence) {
		t.Fatalf("member before header: %v", err)
	}
	wantFieldError(t, w.WriteHeader("", false, 1), "from", ErrInvalid)
	wantFieldError(t, w.WriteHeader("a", false, MaxMembersLimit+1), "members", ErrLimit)
	if err := w.WriteHeader("a", true, 2); err != nil {
		t.Fatal(err)
	}
	wantFieldError(t, w.WriteMember(&swim.MemberState{Name: "a", Addr: addr4, State: 4}), "state", ErrInvalid)
	wantFieldError(t, w.WriteMember(&swim.MemberState{Name: "a"}), "addr", ErrInvalid)
	wantFieldError(t, w.WriteMember(&swim.MemberState{Addr: addr4}), "name", ErrInvalid)
	wantFieldError(t, w.WriteMember(&swim.MemberState{Name: "a", Addr: addr4, Incarnation: ^uint64(0)}), "incarnation", ErrInvalid)
	wantFieldError(t, w.WriteMember(&swim.MemberState{Name: "a", Addr: addr4, Payload: make([]byte, MaxPayloadLimit+1)}), "payload", ErrLimit)
	if err := w.WriteMember(&swim.MemberState{Name: "a", Addr: addr4}); err != nil {
		t.Fatal(err)
	}
	wantFieldError(t, w.Close(), "members", ErrInvalid)
	if err := w.WriteMember(&swim.MemberState{Name: "b", Addr: addr4}); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteMember(&swim.MemberState{Name: "c", Addr: addr4}); !errors.Is(err, errSequence) {
		t.Fatalf("more members than announced: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	broken := errors.New("broken pipe")
	w.Reset(FrameWriterFunc(func([]byte) error { return broken }))
	if err := w.WriteHeader("a", false, 0); err != broken {
		t.Fatalf("WriteHeader on a failing FrameWriter: %v", err)
	}
	if err := w.Close(); err != broken {
		t.Fatalf("Close after a failed write: %v, want the sticky error", err)
	}
}

// stream encodes a snapshot and returns its frames.
func stream(t *testing.T, s *swim.Snapshot) [][]byte {
	t.Helper()
	var fs frames
	w, _ := NewSnapshotWriter(&fs, 0)
	if err := w.WriteSnapshot(s); err != nil {
		t.Fatal(err)
	}
	return fs.list
}

func TestSnapshotReaderRejects(t *testing.T) {
	two := &swim.Snapshot{From: "a", Members: []swim.MemberState{{Name: "m", Addr: addr4}, {Name: "n", Addr: addr6}}}
	good := stream(t, two)
	tests := []struct {
		name     string
		limits   Limits
		frames   [][]byte
		field    string
		sentinel error
	}{
		{"no frames", Limits{}, nil, "header", ErrTruncated},
		{"empty header", Limits{}, [][]byte{{}}, "version", ErrTruncated},
		{"major 2", Limits{}, [][]byte{{0x20, 0x93, 0xa1, 'a', 0xc2, 0}}, "version", ErrVersion},
		{"short header", Limits{}, [][]byte{{0x10, 0x92, 0xa1, 'a', 0xc2}}, "header", ErrInvalid},
		{"empty from", Limits{}, [][]byte{{0x10, 0x93, 0xa0, 0xc2, 0}}, "from", ErrInvalid},
		{"join not bool", Limits{}, [][]byte{{0x10, 0x93, 0xa1, 'a', 0x00, 0}}, "join", ErrMalformed},
		{"header trailing", Limits{}, [][]byte{{0x10, 0x93, 0xa1, 'a', 0xc2, 0, 0}}, "header", ErrMalformed},
		{"too many members", Limits{MaxMembers: 1}, good, "members", ErrLimit},
		{"huge member count", Limits{}, [][]byte{{0x10, 0x93, 0xa1, 'a', 0xc2, 0xcf, 0xff, 0, 0, 0, 0, 0, 0, 0}}, "members", ErrLimit},
		{"stream ends early", Limits{}, good[:1], "members", ErrTruncated},
		{"empty member frame", Limits{}, [][]byte{good[0], {0xdc, 0, 0}}, "members", ErrInvalid},
		{"frame holds more than announced", Limits{}, [][]byte{stream(t, &swim.Snapshot{From: "a", Members: two.Members[:1]})[0], good[1]}, "members", ErrInvalid},
		{"member not an array", Limits{}, [][]byte{good[0], {0x91, 0xc0}}, "member", ErrMalformed},
		{"member short", Limits{}, [][]byte{good[0], {0x91, 0x94, 0xa1, 'm', 0xc4, 6, 10, 0, 0, 1, 0, 1, 0, 0}}, "member", ErrInvalid},
		{"member bad state", Limits{}, [][]byte{good[0], {0x91, 0x95, 0xa1, 'm', 0xc4, 6, 10, 0, 0, 1, 0, 1, 0, 4, 0xc0}}, "state", ErrInvalid},
		{"member bad addr", Limits{}, [][]byte{good[0], {0x91, 0x95, 0xa1, 'm', 0xc4, 6, 10, 0, 0, 1, 0, 0, 0, 0, 0xc0}}, "addr", ErrInvalid},
		{"member payload over limit", Limits{MaxPayload: 1}, [][]byte{good[0], {0x91, 0x95, 0xa1, 'm', 0xc4, 6, 10, 0, 0, 1, 0, 1, 0, 0, 0xc4, 2, 1, 2}}, "payload", ErrLimit},
		{"member too deep", Limits{}, [][]byte{good[0], append([]byte{0x91, 0x96, 0xa1, 'm', 0xc4, 6, 10, 0, 0, 1, 0, 1, 0, 0, 0xc0}, append(bytes.Repeat([]byte{0x91}, MaxDepth-1), 0xc0)...)}, "depth", ErrLimit},
		{"header too deep", Limits{}, [][]byte{append([]byte{0x10, 0x94, 0xa1, 'a', 0xc2, 0}, append(bytes.Repeat([]byte{0x91}, MaxDepth), 0xc0)...)}, "depth", ErrLimit},
		{"frame trailing", Limits{}, [][]byte{good[0], append(bytes.Clone(good[1]), 0)}, "frame", ErrMalformed},
		{"frame too long", Limits{}, [][]byte{good[0], make([]byte, MaxFrameSize+1)}, "frame", ErrLimit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewSnapshotReader(&frames{list: tt.frames}, tt.limits)
			if err != nil {
				t.Fatal(err)
			}
			var s swim.Snapshot
			wantFieldError(t, r.ReadSnapshot(&s), tt.field, tt.sentinel)
		})
	}
}

func TestSnapshotSkipsUnknownFields(t *testing.T) {
	// Version 1.5: an extra header field and an extra member field.
	header := []byte{0x15, 0x94, 0xa1, 'a', 0xc3, 1, 0x91, 0xc0}
	members := []byte{0x91, 0x96, 0xa1, 'm', 0xc4, 6, 10, 0, 0, 1, 0, 1, 7, 1, 0xc0, 0x81, 0xa1, 'k', 0x92, 1, 2}
	r, _ := NewSnapshotReader(&frames{list: [][]byte{header, members}}, Limits{})
	var got swim.Snapshot
	if err := r.ReadSnapshot(&got); err != nil {
		t.Fatal(err)
	}
	want := &swim.Snapshot{From: "a", Join: true, Members: []swim.MemberState{
		{Name: "m", Addr: netip.MustParseAddrPort("10.0.0.1:1"), Incarnation: 7, State: swim.StateSuspect},
	}}
	checkSnapshot(t, &got, want)
}

func TestStreamFrames(t *testing.T) {
	var buf bytes.Buffer
	w := NewStreamFrameWriter(&buf)
	for _, f := range []string{"one", "", "three"} {
		if err := w.WriteFrame([]byte(f)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WriteFrame(make([]byte, MaxFrameSize+1)); !errors.Is(err, ErrLimit) {
		t.Fatalf("oversized frame: %v", err)
	}
	raw := bytes.Clone(buf.Bytes())
	r := NewStreamFrameReader(&buf)
	for _, want := range []string{"one", "", "three"} {
		f, err := r.ReadFrame()
		if err != nil || string(f) != want {
			t.Fatalf("ReadFrame = %q, %v; want %q", f, err, want)
		}
	}
	if _, err := r.ReadFrame(); err != io.EOF {
		t.Fatalf("at the end: %v, want io.EOF", err)
	}
	r = NewStreamFrameReader(bytes.NewReader(raw[:len(raw)-1]))
	var err error
	for err == nil {
		_, err = r.ReadFrame()
	}
	if err != io.ErrUnexpectedEOF {
		t.Fatalf("cut inside a frame: %v, want io.ErrUnexpectedEOF", err)
	}
	r = NewStreamFrameReader(bytes.NewReader([]byte{0xff, 0xff, 0xff, 0xff}))
	if _, err := r.ReadFrame(); !errors.Is(err, ErrLimit) {
		t.Fatalf("oversized length prefix: %v", err)
	}
}
