package envelope

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// A stream carries sealed records over a reliable byte stream (TCP), for
// push-pull state exchange. The initiator sends a hello (a version byte and
// a 16-byte random nonce); the responder reads it and answers with its own.
// Then each side sends records:
//
//	| length (4, big-endian) | sealed datagram (keyring wire format) |
//
// whose plaintext is a flags byte (bit 0: final record) followed by the data,
// and whose associated data, after the keyring header, is
//
//	0x00 | direction (1) | initiator nonce (16) | responder nonce (16) | record counter (8) | label
//
// The leading 0x00 separates records from datagrams, whose labels may not
// start with a control character (CheckLabel). Both nonces bind every record
// to this stream, so no record of another stream, and no replay of a whole
// recorded stream, is accepted; the direction stops reflection; the counter
// stops reordering, dropping and repeating records; and the final flag makes
// a truncated stream an error rather than a short one.

// StreamVersion is the version byte of a stream hello.
const StreamVersion = 1

// MaxRecord is the largest data a record carries. The reader never buffers
// more than one sealed record, so nothing unauthenticated beyond
// MaxRecord+overhead is ever held.
const MaxRecord = 64 << 10

const (
	streamNonceLen = 16
	helloLen       = 1 + streamNonceLen
	streamAADLen   = 1 + 1 + 2*streamNonceLen + 8
	flagFinal      = 1
	flagRefusal    = 2 // with flagFinal: the data says why the sender refuses the exchange
)

// Stream errors.
var (
	// ErrStreamTooLarge: the peer sent more than the stream's size limit.
	ErrStreamTooLarge = errors.New("envelope: stream exceeds its size limit")
	// ErrRecordTooLarge: a record's length prefix exceeds MaxRecord plus
	// the sealing overhead; nothing of it was read.
	ErrRecordTooLarge = errors.New("envelope: record too large")
	// ErrTruncated: the stream ended before its final record.
	ErrTruncated = errors.New("envelope: stream ended before its final record")
	// ErrBadHello: the peer's hello has an unknown version.
	ErrBadHello = errors.New("envelope: bad stream hello")
	// ErrClosed: a record was written or read after the final one.
	ErrClosed = errors.New("envelope: stream already finished")
	// ErrBusy: the responder refused the stream for load (Refuse) instead
	// of answering the hello.
	ErrBusy = errors.New("peer is refusing streams: too many connections")
	// ErrRefused is wrapped by the *RefusalError that ReadRecord returns
	// when the peer ended the stream with a refusal (Stream.Refuse).
	ErrRefused = errors.New("envelope: peer refused the exchange")
)

// MaxRefusal is the longest reason a refusal carries.
const MaxRefusal = 256

// RefusalError is a refusal record: the peer, which holds a key, ended the
// stream saying why.
type RefusalError struct {
	Reason string
}

// Error quotes the reason.
func (e *RefusalError) Error() string { return fmt.Sprintf("%v: %q", ErrRefused, e.Reason) }

// Unwrap returns ErrRefused.
func (e *RefusalError) Unwrap() error { return ErrRefused }

// Stream seals and opens the records of one stream. It is not safe for
// concurrent use by several writers or several readers, but one goroutine
// may write while another reads.
type Stream struct {
	rw    io.ReadWriter
	ring  Sealer
	limit int64

	// Layout of the records sent (SetFull): full forces the full layout.
	// A responder mirrors the initiator: each record it reads sets full
	// to whether that record was in the full layout.
	full      bool
	responder bool
	// peerCompact: the last record read was in the compact layout.
	peerCompact bool

	send, recv direction

	// Read side state, reused between records.
	lenBuf [4]byte
	sealed []byte
	plain  []byte
	read   int64
}

// direction is one half of the stream.
type direction struct {
	aad     []byte // 0x00, dir, nonces, counter, label; the counter is rewritten per record
	counter uint64
	done    bool
	sealBuf []byte
	plain   []byte
}

// Handshake exchanges hellos over rw and returns the stream. The initiator
// writes first and then reads; the responder reads first, so the exchange
// also works over synchronous pipes. limit bounds the total record data the
// peer may send in records, framing and sealing overhead included (0 means
// no limit beyond the caller's deadlines); it is enforced from each record's
// length prefix, before the record is read. Set a
// deadline on the connection before calling: Handshake reads.
//
// An initiator whose responder refused the stream (Refuse) gets an error
// wrapping ErrBusy. A responder that wants to decide between the hello and
// its answer uses ReadHello, then Hello.Accept or Refuse.
func Handshake(rw io.ReadWriter, initiator bool, ring Sealer, label []byte, limit int64) (*Stream, error) {
	if !initiator {
		h, err := ReadHello(rw)
		if err != nil {
			return nil, err
		}
		return h.Accept(rw, ring, label, limit)
	}
	if err := CheckLabel(label); err != nil {
		return nil, err
	}
	mine, err := newHello()
	if err != nil {
		return nil, err
	}
	if _, err := rw.Write(mine[:]); err != nil {
		return nil, fmt.Errorf("envelope: write hello: %w", err)
	}
	var theirs [helloLen]byte
	n, err := io.ReadFull(rw, theirs[:])
	if n > 0 && theirs[0] == refuseByte {
		return nil, ErrBusy
	}
	if err != nil {
		return nil, fmt.Errorf("envelope: read hello: %w", err)
	}
	if theirs[0] != StreamVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrBadHello, theirs[0], StreamVersion)
	}
	return newStream(rw, true, ring, label, limit, mine[1:], theirs[1:]), nil
}

// Hello is an initiator's hello, read by a responder that has not answered
// yet.
type Hello struct {
	nonce [streamNonceLen]byte
}

// ReadHello reads an initiator's hello. Only its version is checked: it
// carries nothing authenticated, and the first record proves (or not) that
// the initiator holds a key.
func ReadHello(r io.Reader) (Hello, error) {
	var b [helloLen]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return Hello{}, fmt.Errorf("envelope: read hello: %w", err)
	}
	if b[0] != StreamVersion {
		return Hello{}, fmt.Errorf("%w: version %d, want %d", ErrBadHello, b[0], StreamVersion)
	}
	var h Hello
	copy(h.nonce[:], b[1:])
	return h, nil
}

// Accept answers the initiator's hello with ours and returns the
// responder's side of the stream; limit is as for Handshake.
func (h Hello) Accept(rw io.ReadWriter, ring Sealer, label []byte, limit int64) (*Stream, error) {
	if err := CheckLabel(label); err != nil {
		return nil, err
	}
	mine, err := newHello()
	if err != nil {
		return nil, err
	}
	if _, err := rw.Write(mine[:]); err != nil {
		return nil, fmt.Errorf("envelope: write hello: %w", err)
	}
	return newStream(rw, false, ring, label, limit, h.nonce[:], mine[1:]), nil
}

// refuseByte, sent in place of the responder's hello, says that the
// responder is refusing streams for load. It is not authenticated: anyone
// on the path could send it, as anyone on the path could reset the
// connection; it only turns a reset into an error that says why.
const refuseByte = 0xFF

// Refuse tells an initiator, in place of a hello, that the responder is
// refusing streams for load; the initiator's Handshake then fails with
// ErrBusy. Close the connection afterwards.
func Refuse(w io.Writer) error {
	_, err := w.Write([]byte{refuseByte})
	return err
}

func newHello() ([helloLen]byte, error) {
	var h [helloLen]byte
	h[0] = StreamVersion
	if _, err := rand.Read(h[1:]); err != nil {
		return h, fmt.Errorf("envelope: stream nonce: %w", err)
	}
	return h, nil
}

// newStream builds a stream from both hellos' nonces.
func newStream(rw io.ReadWriter, initiator bool, ring Sealer, label []byte, limit int64, initNonce, respNonce []byte) *Stream {
	aad := func(dir byte) []byte {
		b := make([]byte, 0, streamAADLen+len(label))
		b = append(b, 0x00, dir)
		b = append(b, initNonce...)
		b = append(b, respNonce...)
		b = append(b, make([]byte, 8)...)
		return append(b, label...)
	}
	const toResponder, toInitiator = 'I', 'R'
	s := &Stream{rw: rw, ring: ring, limit: limit, responder: !initiator, full: !initiator}
	if initiator {
		s.send.aad, s.recv.aad = aad(toResponder), aad(toInitiator)
	} else {
		s.send.aad, s.recv.aad = aad(toInitiator), aad(toResponder)
	}
	return s
}

// setCounter writes c into the direction's associated data.
func (d *direction) setCounter(c uint64) {
	binary.BigEndian.PutUint64(d.aad[2+2*streamNonceLen:], c)
}

// WriteRecord seals data (at most MaxRecord bytes) as the next record and
// writes it. Mark the last record final; a reader treats a stream that ends
// without one as truncated.
func (s *Stream) WriteRecord(data []byte, final bool) error {
	d := &s.send
	if d.done {
		return ErrClosed
	}
	if len(data) > MaxRecord {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrRecordTooLarge, len(data), MaxRecord)
	}
	flags := byte(0)
	if final {
		flags = flagFinal
	}
	return s.writeRecord(data, flags)
}

func (s *Stream) writeRecord(data []byte, flags byte) error {
	d := &s.send
	if d.done {
		return ErrClosed
	}
	d.plain = append(append(d.plain[:0], flags), data...)
	d.setCounter(d.counter)
	out, err := sealRecord(s.ring, s.full, append(d.sealBuf[:0], 0, 0, 0, 0), d.plain, d.aad)
	if err != nil {
		return fmt.Errorf("envelope: seal record %d: %w", d.counter, err)
	}
	d.sealBuf = out
	binary.BigEndian.PutUint32(out, uint32(len(out)-4))
	if _, err := s.rw.Write(out); err != nil {
		return fmt.Errorf("envelope: write record %d: %w", d.counter, err)
	}
	d.counter++
	d.done = flags&flagFinal != 0
	return nil
}

// Refuse ends the stream with a sealed refusal record that says why (at
// most MaxRefusal bytes): the peer's ReadRecord returns a *RefusalError.
// Unlike the unauthenticated refusal of a hello (the package function
// Refuse), only a key holder can send it.
func (s *Stream) Refuse(reason string) error {
	if len(reason) > MaxRefusal {
		reason = reason[:MaxRefusal]
	}
	return s.writeRecord([]byte(reason), flagFinal|flagRefusal)
}

// ReadRecord reads and opens the next record. The data is valid until the
// next call. A record that fails to open is an error that wraps the
// keyring's reason; the stream is unusable after any error.
func (s *Stream) ReadRecord() (data []byte, final bool, err error) {
	d := &s.recv
	if d.done {
		return nil, false, ErrClosed
	}
	if n, err := io.ReadFull(s.rw, s.lenBuf[:]); err != nil {
		if n > 0 && s.lenBuf[0] == refuseByte {
			// No record is that long: the peer refused the stream
			// for load after all (Refuse).
			return nil, false, ErrBusy
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, false, fmt.Errorf("%w: after %d records", ErrTruncated, d.counter)
		}
		return nil, false, fmt.Errorf("envelope: read record %d: %w", d.counter, err)
	}
	// Compare as uint32 before converting: on 32-bit platforms a length
	// above 2^31 would turn negative as an int.
	n32, maxRec := binary.BigEndian.Uint32(s.lenBuf[:]), MaxRecord+1+s.ring.Overhead()
	if n32 > uint32(maxRec) {
		return nil, false, fmt.Errorf("%w: record %d claims %d bytes, at most %d", ErrRecordTooLarge, d.counter, n32, maxRec)
	}
	n := int(n32)
	if s.limit > 0 && s.read+int64(n)+4 > s.limit {
		return nil, false, fmt.Errorf("%w: more than %d bytes", ErrStreamTooLarge, s.limit)
	}
	if cap(s.sealed) < n {
		s.sealed = make([]byte, n)
	}
	sealed := s.sealed[:n]
	if _, err := io.ReadFull(s.rw, sealed); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, false, fmt.Errorf("%w: inside record %d", ErrTruncated, d.counter)
		}
		return nil, false, fmt.Errorf("envelope: read record %d: %w", d.counter, err)
	}
	s.read += int64(n) + 4
	d.setCounter(d.counter)
	plain, err := s.ring.Open(s.plain[:0], sealed, d.aad)
	if err != nil {
		return nil, false, fmt.Errorf("envelope: record %d: %w", d.counter, err)
	}
	s.plain = plain
	s.peerCompact = IsCompact(sealed)
	if s.responder {
		// Answer in the layout the initiator used: an initiator that
		// sends the full layout may be of a version that reads only it.
		s.full = !s.peerCompact
	}
	if len(plain) < 1 || plain[0]&^(flagFinal|flagRefusal) != 0 || plain[0] == flagRefusal {
		return nil, false, fmt.Errorf("%w: record %d flags", ErrMalformed, d.counter)
	}
	d.counter++
	final = plain[0]&flagFinal != 0
	d.done = final
	if plain[0]&flagRefusal != 0 {
		reason := plain[1:]
		if len(reason) > MaxRefusal {
			reason = reason[:MaxRefusal]
		}
		return nil, true, &RefusalError{Reason: string(reason)}
	}
	return plain[1:], final, nil
}

// SetFull makes the records this side sends from now on take the full
// layout (keyring version 1), which every version opens, when full is
// true; by default they take the layout SealDatagram would use. An
// initiator sets it before its first record, for a peer it has not heard
// read the compact layout. A responder need not: it answers each record in
// the layout of the last record it read (and before it has read one, in
// the full layout), so an initiator of any version reads the answer.
func (s *Stream) SetFull(full bool) { s.full = full }

// PeerCompact reports whether the last record read opened and was in the
// compact layout: the peer reads it (docs/runtime.md, the wire per peer).
func (s *Stream) PeerCompact() bool { return s.peerCompact }

// sealRecord seals a record in the layout SealDatagram would use: the
// compact one (9 bytes shorter; its timestamp means nothing to a stream,
// whose records the hellos' nonces and the counter bind) unless full is
// set or the ring is held to the full one. Readers open both.
func sealRecord(ring Sealer, full bool, dst, plain, aad []byte) ([]byte, error) {
	if !full && stamps(ring) {
		return ringOf(ring).SealStamped(dst, plain, aad, time.Now().UnixMilli())
	}
	return ring.Seal(dst, plain, aad)
}
