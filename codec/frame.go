package codec

import (
	"encoding/binary"
	"errors"
	"io"
)

// FrameWriter takes the frames of a snapshot stream one at a time. The
// runtime implements it to seal each frame (keyring) and write it to the
// TCP stream with a length prefix; StreamFrameWriter is the plain version.
type FrameWriter interface {
	// WriteFrame sends one frame. The slice is valid only during the call
	// and must not be changed.
	WriteFrame(frame []byte) error
}

// FrameReader yields the frames of a snapshot stream one at a time, the
// counterpart of FrameWriter: the runtime's implementation reads a sealed
// frame and opens it.
type FrameReader interface {
	// ReadFrame returns the next frame, valid until the next call. At the
	// clean end of the stream it returns io.EOF. An implementation must
	// bound the frames it reads (MaxFrameSize is enough for this package).
	ReadFrame() ([]byte, error)
}

// FrameWriterFunc adapts a function to FrameWriter.
type FrameWriterFunc func(frame []byte) error

// WriteFrame calls f(frame).
func (f FrameWriterFunc) WriteFrame(frame []byte) error { return f(frame) }

// FrameReaderFunc adapts a function to FrameReader.
type FrameReaderFunc func() ([]byte, error)

// ReadFrame calls f().
func (f FrameReaderFunc) ReadFrame() ([]byte, error) { return f() }

// frameLenSize is the length of StreamFrameWriter's length prefix.
const frameLenSize = 4

// StreamFrameWriter writes frames to an io.Writer, each preceded by its
// length as a 4-byte big-endian number. It is the unsealed framing, for
// tests and for clusters that opted out of encryption.
type StreamFrameWriter struct {
	w   io.Writer
	hdr [frameLenSize]byte
}

// NewStreamFrameWriter returns a StreamFrameWriter that writes to w.
func NewStreamFrameWriter(w io.Writer) *StreamFrameWriter {
	return &StreamFrameWriter{w: w}
}

// WriteFrame writes the length of frame and then frame. Frames longer than
// MaxFrameSize are refused, since no StreamFrameReader would read them.
func (s *StreamFrameWriter) WriteFrame(frame []byte) error {
	if len(frame) > MaxFrameSize {
		return fieldErr("frame", ErrLimit, limitDetail(len(frame), MaxFrameSize))
	}
	binary.BigEndian.PutUint32(s.hdr[:], uint32(len(frame)))
	if _, err := s.w.Write(s.hdr[:]); err != nil {
		return err
	}
	_, err := s.w.Write(frame)
	return err
}

// StreamFrameReader reads the frames that StreamFrameWriter writes. It
// reuses one buffer, which grows to the longest frame read and never beyond
// MaxFrameSize.
type StreamFrameReader struct {
	r   io.Reader
	hdr [frameLenSize]byte
	buf []byte
}

// NewStreamFrameReader returns a StreamFrameReader that reads from r.
func NewStreamFrameReader(r io.Reader) *StreamFrameReader {
	return &StreamFrameReader{r: r}
}

// ReadFrame reads the next frame. It returns io.EOF at a clean end between
// frames, io.ErrUnexpectedEOF inside one, and a *FieldError wrapping
// ErrLimit for a declared length above MaxFrameSize (before reading it).
func (s *StreamFrameReader) ReadFrame() ([]byte, error) {
	if _, err := io.ReadFull(s.r, s.hdr[:]); err != nil {
		return nil, err // io.EOF at a boundary, io.ErrUnexpectedEOF inside
	}
	n := binary.BigEndian.Uint32(s.hdr[:])
	if n > MaxFrameSize {
		return nil, fieldErr("frame", ErrLimit, limitDetail(int(n), MaxFrameSize))
	}
	if cap(s.buf) < int(n) {
		s.buf = make([]byte, n)
	}
	s.buf = s.buf[:n]
	if _, err := io.ReadFull(s.r, s.buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return s.buf, nil
}
