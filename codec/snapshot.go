package codec

import (
	"errors"
	"io"
	"strconv"
	"strings"

	"github.com/meshward/membership/swim"
)

// A push-pull snapshot (memberlist's push-pull; SWIM leaves full-state
// exchange out) travels as a stream of self-contained frames, so that the
// runtime can seal each one and no side ever holds the whole encoded
// snapshot:
//
//	header frame:  Version byte, then the msgpack array [from, join, members]
//	member frames: a msgpack array16 of members, each the array
//	               [name, addr, incarnation, state, payload]
//
// The header says how many members follow; the member frames hold them in
// order, at least one per frame, in frames of at most the writer's frame
// size. The stream ends after the last member.

// Frame sizes.
const (
	// MaxMemberSize is the largest encoded member: a name of
	// swim.MaxNameLen bytes, an IPv6 address, the largest incarnation and a
	// payload of MaxPayloadLimit bytes.
	MaxMemberSize = 1 + (2 + swim.MaxNameLen) + (2 + 16 + 2) + 9 + 1 + (3 + MaxPayloadLimit)
	// MinFrameSize is the smallest frame size a SnapshotWriter accepts: one
	// member of MaxMemberSize in its frame.
	MinFrameSize = 3 + MaxMemberSize
	// DefaultFrameSize is the frame size of a SnapshotWriter made with
	// frame size 0: as large as a TLS record.
	DefaultFrameSize = 16 << 10
	// MaxFrameSize is the largest frame a SnapshotWriter writes and a
	// SnapshotReader reads.
	MaxFrameSize = 64 << 10
)

// memberSize returns the exact encoded size of m.
func memberSize(m *swim.MemberState) int {
	return 1 + strSize(len(m.Name)) + addrSize(m.Addr) + uintSize(m.Incarnation) +
		uintSize(uint64(m.State)) + binSize(len(m.Payload))
}

// checkMember reports why m, the index-th member, cannot be sent, or nil.
func checkMember(m *swim.MemberState, index, maxPayload int) *FieldError {
	bad := func(field string, err error, detail string) *FieldError {
		return &FieldError{Field: field, Index: index, Member: true, Err: err, Detail: detail}
	}
	switch {
	case m.Name == "":
		return bad("name", ErrInvalid, "empty")
	case len(m.Name) > swim.MaxNameLen:
		return bad("name", ErrLimit, limitDetail(len(m.Name), swim.MaxNameLen))
	case !validAddr(m.Addr):
		return bad("addr", ErrInvalid, m.Addr.String())
	case m.Incarnation > swim.MaxIncarnation:
		return bad("incarnation", ErrInvalid, strconv.FormatUint(m.Incarnation, 10))
	case m.State > swim.StateLeft:
		return bad("state", ErrInvalid, m.State.String())
	case len(m.Payload) > maxPayload:
		return bad("payload", ErrLimit, limitDetail(len(m.Payload), maxPayload))
	}
	return nil
}

func appendMember(b []byte, m *swim.MemberState) []byte {
	b = append(b, mpFixArray|5)
	b = appendStr(b, m.Name)
	b = appendAddr(b, m.Addr)
	b = appendUint(b, m.Incarnation)
	b = appendUint(b, uint64(m.State))
	return appendBin(b, m.Payload)
}

// errSequence reports a SnapshotWriter or SnapshotReader used out of order:
// a programming error, not a wire error.
var errSequence = errors.New("codec: snapshot header and members out of order")

// SnapshotWriter encodes a snapshot as a stream of frames and hands each
// frame to a FrameWriter as soon as it is full, so that its memory is one
// frame whatever the size of the snapshot. Call WriteHeader, then
// WriteMember once per announced member, then Close; or WriteSnapshot. A
// SnapshotWriter is reusable after Reset and not safe for concurrent use.
type SnapshotWriter struct {
	w         FrameWriter
	frameSize int
	buf       []byte
	declared  int // members announced by the header
	written   int // members passed to WriteMember
	inFrame   int // members in buf
	header    bool
	err       error // sticky: a failed FrameWriter ends the stream
}

// NewSnapshotWriter returns a SnapshotWriter that writes frames of at most
// frameSize bytes to w; 0 means DefaultFrameSize. It fails if frameSize is
// outside [MinFrameSize, MaxFrameSize].
func NewSnapshotWriter(w FrameWriter, frameSize int) (*SnapshotWriter, error) {
	if frameSize == 0 {
		frameSize = DefaultFrameSize
	}
	if frameSize < MinFrameSize || frameSize > MaxFrameSize {
		return nil, fieldErr("frame", ErrInvalid, "size "+strconv.Itoa(frameSize)+" not in ["+
			strconv.Itoa(MinFrameSize)+", "+strconv.Itoa(MaxFrameSize)+"]")
	}
	return &SnapshotWriter{w: w, frameSize: frameSize, buf: make([]byte, 0, frameSize)}, nil
}

// Reset makes the writer write a new stream to w, keeping its buffer.
func (sw *SnapshotWriter) Reset(w FrameWriter) {
	*sw = SnapshotWriter{w: w, frameSize: sw.frameSize, buf: sw.buf[:0]}
}

// WriteHeader writes the header frame: the sender's name, the join flag and
// the number of members that will follow.
func (sw *SnapshotWriter) WriteHeader(from string, join bool, members int) error {
	if sw.err != nil {
		return sw.err
	}
	if sw.header {
		return errSequence
	}
	switch {
	case from == "":
		return fieldErr("from", ErrInvalid, "empty")
	case len(from) > swim.MaxNameLen:
		return fieldErr("from", ErrLimit, limitDetail(len(from), swim.MaxNameLen))
	case members < 0 || members > MaxMembersLimit:
		return fieldErr("members", ErrLimit, strconv.Itoa(members)+" not in [0, "+strconv.Itoa(MaxMembersLimit)+"]")
	}
	sw.header = true
	sw.declared = members
	b := append(sw.buf[:0], Version, mpFixArray|3)
	b = appendStr(b, from)
	b = appendBool(b, join)
	b = appendUint(b, uint64(members))
	sw.buf = b
	return sw.flush()
}

// WriteMember adds m to the stream, first sending the current frame if m
// does not fit in it. Payloads above MaxPayloadLimit are refused; the
// sender must bound them by its peers' Limits.MaxPayload.
func (sw *SnapshotWriter) WriteMember(m *swim.MemberState) error {
	if sw.err != nil {
		return sw.err
	}
	if !sw.header || sw.written == sw.declared {
		return errSequence
	}
	if err := checkMember(m, sw.written, MaxPayloadLimit); err != nil {
		return err
	}
	if sw.inFrame > 0 && len(sw.buf)+memberSize(m) > sw.frameSize {
		if err := sw.flushMembers(); err != nil {
			return err
		}
	}
	if sw.inFrame == 0 {
		sw.buf = append(sw.buf[:0], mpArray16, 0, 0)
	}
	sw.buf = appendMember(sw.buf, m)
	sw.inFrame++
	sw.written++
	return nil
}

// Close sends the last member frame. It fails if fewer members were
// written than the header announced.
func (sw *SnapshotWriter) Close() error {
	if sw.err != nil {
		return sw.err
	}
	if !sw.header || sw.written != sw.declared {
		return fieldErr("members", ErrInvalid, strconv.Itoa(sw.written)+" written, "+strconv.Itoa(sw.declared)+" announced")
	}
	if sw.inFrame > 0 {
		return sw.flushMembers()
	}
	return nil
}

// WriteSnapshot writes all of s: header, members, Close.
func (sw *SnapshotWriter) WriteSnapshot(s *swim.Snapshot) error {
	if err := sw.WriteHeader(s.From, s.Join, len(s.Members)); err != nil {
		return err
	}
	for i := range s.Members {
		if err := sw.WriteMember(&s.Members[i]); err != nil {
			return err
		}
	}
	return sw.Close()
}

// flushMembers patches the member count into the frame and sends it.
func (sw *SnapshotWriter) flushMembers() error {
	sw.buf[1], sw.buf[2] = byte(sw.inFrame>>8), byte(sw.inFrame)
	sw.inFrame = 0
	return sw.flush()
}

func (sw *SnapshotWriter) flush() error {
	if err := sw.w.WriteFrame(sw.buf); err != nil {
		sw.err = err
		return err
	}
	sw.buf = sw.buf[:0]
	return nil
}

// SnapshotHeader is the first frame of a snapshot stream.
type SnapshotHeader struct {
	// Version is the sender's protocol version byte.
	Version byte
	// From is the sender's name.
	From string
	// Join is set when the sender is joining and wants our view back.
	Join bool
	// Members is how many members follow.
	Members int
}

// SnapshotReader decodes a snapshot stream frame by frame: ReadHeader, then
// Next until io.EOF, or ReadSnapshot for both. Each frame is checked whole
// before any of it is returned, and every count is bounded by the Limits
// and by the bytes that carry it, so a hostile stream costs at most a frame
// of memory beyond the members it really delivers. A SnapshotReader is
// reusable after Reset and not safe for concurrent use.
type SnapshotReader struct {
	r       FrameReader
	limits  Limits
	header  bool
	left    int // members still to come
	index   int // members read so far
	pending []memberSpan
}

// memberSpan is a member's name and payload in the current frame, waiting
// to be copied out of it.
type memberSpan struct {
	index         int // into the output slice
	name, payload []byte
}

// NewSnapshotReader returns a SnapshotReader that reads frames from r and
// enforces l (MaxMembers and MaxPayload).
func NewSnapshotReader(r FrameReader, l Limits) (*SnapshotReader, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	return &SnapshotReader{r: r, limits: l}, nil
}

// Reset makes the reader read a new stream from r, keeping its limits and
// scratch space.
func (sr *SnapshotReader) Reset(r FrameReader) {
	*sr = SnapshotReader{r: r, limits: sr.limits, pending: sr.pending[:0]}
}

// readFrame reads one frame and bounds it.
func (sr *SnapshotReader) readFrame(what string) ([]byte, error) {
	f, err := sr.r.ReadFrame()
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fieldErr(what, ErrTruncated, "stream ended: "+err.Error())
		}
		return nil, err
	}
	if len(f) > MaxFrameSize {
		return nil, fieldErr("frame", ErrLimit, limitDetail(len(f), MaxFrameSize))
	}
	return f, nil
}

// ReadHeader reads the header frame. A header of another major version
// fails with ErrVersion; fields appended by a newer minor are skipped.
func (sr *SnapshotReader) ReadHeader() (SnapshotHeader, error) {
	if sr.header {
		return SnapshotHeader{}, errSequence
	}
	f, err := sr.readFrame("header")
	if err != nil {
		return SnapshotHeader{}, err
	}
	if len(f) == 0 {
		return SnapshotHeader{}, fieldErr("version", ErrTruncated, "empty frame")
	}
	if err := checkMajor1(f[0]); err != nil {
		return SnapshotHeader{}, err
	}
	h := SnapshotHeader{Version: f[0]}
	r := reader{b: f, off: 1}
	n, err := r.arrayLen()
	if err != nil {
		return h, fieldErr("header", err, "")
	}
	if n < 3 {
		return h, fieldErr("header", ErrInvalid, strconv.Itoa(n)+" fields, want 3")
	}
	from, fromLen, err := r.blob(swim.MaxNameLen)
	switch {
	case err == ErrLimit:
		return h, fieldErr("from", err, limitDetail(fromLen, swim.MaxNameLen))
	case err != nil:
		return h, fieldErr("from", err, "")
	case len(from) == 0:
		return h, fieldErr("from", ErrInvalid, "empty")
	}
	if h.Join, err = r.bool(); err != nil {
		return h, fieldErr("join", err, "")
	}
	members, err := r.uint()
	if err != nil {
		return h, fieldErr("members", err, "")
	}
	if max := sr.limits.maxMembers(); members > uint64(max) {
		return h, fieldErr("members", ErrLimit, limitDetail(int(min(members, MaxMembersLimit+1)), max))
	}
	for i := 3; i < n; i++ {
		if err := r.skip(2); err != nil {
			return h, skipError("header field "+strconv.Itoa(i), -1, false, 0, err)
		}
	}
	if r.remaining() != 0 {
		return h, fieldErr("header", ErrMalformed, strconv.Itoa(r.remaining())+" trailing bytes")
	}
	h.From = string(from)
	h.Members = int(members)
	sr.header = true
	sr.left = h.Members
	return h, nil
}

// Next reads one member frame and appends its members to dst (pass dst[:0]
// to reuse a slice). After the last member it returns dst and io.EOF
// without reading further. A stream that ends early fails with
// ErrTruncated.
//
// The names of one frame share one string allocation and its payloads one
// byte slice, so a frame costs two allocations whatever it holds; a
// retained name keeps its frame's names alive, which is at most MaxFrameSize
// bytes.
func (sr *SnapshotReader) Next(dst []swim.MemberState) ([]swim.MemberState, error) {
	if !sr.header {
		return dst, errSequence
	}
	if sr.left == 0 {
		return dst, io.EOF
	}
	f, err := sr.readFrame("members")
	if err != nil {
		return dst, err
	}
	base := len(dst)
	dst, err = sr.decodeFrame(dst, f)
	if err != nil {
		return dst[:base], err
	}
	return dst, nil
}

func (sr *SnapshotReader) decodeFrame(dst []swim.MemberState, f []byte) ([]swim.MemberState, error) {
	r := reader{b: f}
	n, err := r.arrayLen()
	if err != nil {
		return dst, fieldErr("frame", err, "")
	}
	if n == 0 || n > sr.left {
		return dst, fieldErr("members", ErrInvalid, "frame holds "+strconv.Itoa(n)+" members, "+strconv.Itoa(sr.left)+" to come")
	}
	sr.pending = sr.pending[:0]
	maxPayload := sr.limits.maxPayload()
	for i := 0; i < n; i++ {
		index := sr.index + i
		bad := func(field string, err error, detail string) *FieldError {
			return &FieldError{Field: field, Index: index, Member: true, Err: err, Detail: detail}
		}
		fields, err := r.arrayLen()
		if err != nil {
			return dst, bad("member", err, "")
		}
		if fields < 5 {
			return dst, bad("member", ErrInvalid, strconv.Itoa(fields)+" fields, want 5")
		}
		dst = append(dst, swim.MemberState{})
		m := &dst[len(dst)-1]
		name, nameLen, err := r.blob(swim.MaxNameLen)
		switch {
		case err == ErrLimit:
			return dst, bad("name", err, limitDetail(nameLen, swim.MaxNameLen))
		case err != nil:
			return dst, bad("name", err, "")
		case len(name) == 0:
			return dst, bad("name", ErrInvalid, "empty")
		}
		addr, _, err := r.blob(18)
		if err == ErrLimit {
			return dst, bad("addr", ErrInvalid, "longer than 18 bytes")
		}
		if err != nil {
			return dst, bad("addr", err, "")
		}
		var ok bool
		if m.Addr, ok = parseAddr(addr); !ok {
			return dst, bad("addr", ErrInvalid, "want 4- or 16-byte IP and a port")
		}
		if m.Incarnation, err = r.uint(); err != nil {
			return dst, bad("incarnation", err, "")
		}
		if m.Incarnation > swim.MaxIncarnation {
			return dst, bad("incarnation", ErrInvalid, strconv.FormatUint(m.Incarnation, 10))
		}
		state, err := r.uint()
		if err != nil {
			return dst, bad("state", err, "")
		}
		if state > uint64(swim.StateLeft) {
			return dst, bad("state", ErrInvalid, strconv.FormatUint(state, 10))
		}
		m.State = swim.State(state)
		payload, payloadLen, err := r.blob(maxPayload)
		if err == ErrLimit {
			return dst, bad("payload", err, limitDetail(payloadLen, maxPayload))
		}
		if err != nil {
			return dst, bad("payload", err, "")
		}
		for j := 5; j < fields; j++ {
			if err := r.skip(3); err != nil {
				return dst, skipError("field "+strconv.Itoa(j), index, true, 0, err)
			}
		}
		sr.pending = append(sr.pending, memberSpan{index: len(dst) - 1, name: name, payload: payload})
	}
	if r.remaining() != 0 {
		return dst, fieldErr("frame", ErrMalformed, strconv.Itoa(r.remaining())+" trailing bytes")
	}
	// Copy names and payloads out of the frame, which the next ReadFrame
	// may overwrite: one allocation for each.
	nameBytes, payloadBytes := 0, 0
	for _, p := range sr.pending {
		nameBytes += len(p.name)
		payloadBytes += len(p.payload)
	}
	var sb strings.Builder
	sb.Grow(nameBytes)
	for _, p := range sr.pending {
		sb.Write(p.name)
	}
	names := sb.String()
	var payloads []byte
	if payloadBytes > 0 {
		payloads = make([]byte, 0, payloadBytes)
	}
	off := 0
	for _, p := range sr.pending {
		m := &dst[p.index]
		m.Name = names[off : off+len(p.name)]
		off += len(p.name)
		if len(p.payload) > 0 {
			start := len(payloads)
			payloads = append(payloads, p.payload...)
			m.Payload = payloads[start:len(payloads):len(payloads)]
		}
	}
	sr.pending = sr.pending[:0]
	sr.left -= n
	sr.index += n
	return dst, nil
}

// ReadSnapshot reads a whole stream into s, reusing s.Members. It grows
// s.Members frame by frame as members arrive, never by the count that the
// header claims.
func (sr *SnapshotReader) ReadSnapshot(s *swim.Snapshot) error {
	h, err := sr.ReadHeader()
	if err != nil {
		return err
	}
	s.From, s.Join, s.Members = h.From, h.Join, s.Members[:0]
	for {
		s.Members, err = sr.Next(s.Members)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
