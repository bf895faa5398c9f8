package membership

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/meshward/membership/codec"
	"github.com/meshward/membership/internal/envelope"
	"github.com/meshward/membership/keyring"
	"github.com/meshward/membership/metrics"
	"github.com/meshward/membership/swim"
)

// Push-pull anti-entropy (memberlist's push-pull; SWIM leaves full-state
// exchange out): the initiator dials, both sides exchange hellos, the
// initiator sends its snapshot and the responder answers with its own, each
// as sealed records (internal/envelope) carrying codec snapshot frames and
// ending with an empty final record.

// Inbound streams pass three stages. Accepted: the connection is open and
// nothing has been read. Hello: the initiator's hello was read and answered;
// the first record is awaited. Authenticated: a record opened, so the peer
// holds a key. Anyone who can reach the port can hold the first two stages,
// so they are cheap and evictable: at most maxPending connections wait
// there, and when they are full, a newcomer evicts the oldest connection
// that has sent nothing, from the source address that holds the most
// (an attacker churning idle connections from one address evicts its own).
// A connection that has sent its hello is evicted only after evictAge. Only
// authenticated streams take one of the maxInbound slots, and they are
// never evicted.

// streamStage is how far an inbound stream got.
type streamStage int32

const (
	stageAccepted streamStage = iota // nothing read yet
	stageHello                       // hello read and answered
	stageAuthed                      // a record opened: the peer holds a key
)

// streamConn is an open stream, tracked so that Shutdown can close it and
// so that unauthenticated inbound streams can be evicted.
type streamConn struct {
	conn    net.Conn
	inbound bool
	src     netip.Addr
	opened  time.Time
	stage   streamStage // guarded by Node.streamMu
	evicted bool        // guarded by Node.streamMu
	ping    bool        // a stream ping (streamprobe.go), not a push-pull; set by its goroutine
}

// track registers an open stream; it refuses (and closes it) once the node
// is shutting down.
func (n *Node) track(c net.Conn) (*streamConn, bool) {
	n.streamMu.Lock()
	defer n.streamMu.Unlock()
	return n.trackLocked(c, false)
}

func (n *Node) trackLocked(c net.Conn, inbound bool) (*streamConn, bool) {
	select {
	case <-n.stop:
		c.Close()
		return nil, false
	default:
	}
	s := &streamConn{conn: c, inbound: inbound, opened: time.Now()}
	n.streams[s] = struct{}{}
	if inbound {
		s.src = remoteAddr(c)
		n.inPending++
		n.inBySource[s.src]++
	}
	n.bg.Add(1)
	return s, true
}

// remoteAddr is the address a connection comes from, or the zero address.
func remoteAddr(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// releaseLocked takes an inbound stream out of the counters it is in.
func (n *Node) releaseLocked(s *streamConn) {
	if !s.inbound || s.evicted {
		return
	}
	if s.stage == stageAuthed {
		n.inAuthed--
		if n.slotFree != nil {
			close(n.slotFree) // wake the streams waiting for a slot
			n.slotFree = nil
		}
		return
	}
	n.inPending--
	if n.inBySource[s.src]--; n.inBySource[s.src] <= 0 {
		delete(n.inBySource, s.src)
	}
}

func (n *Node) untrack(s *streamConn) {
	n.streamMu.Lock()
	delete(n.streams, s)
	n.releaseLocked(s)
	n.streamMu.Unlock()
	s.conn.Close()
	n.bg.Done()
}

// helloTimeout bounds how long an inbound stream may take to prove it holds
// the key (hello and first record) before it gets the full stream timeout.
const helloTimeout = 2 * time.Second

// acceptStreams hands the transport's inbound streams to acceptStream, on a
// goroutine of its own so that a flood of connections never waits behind
// the protocol loop (and the loop never waits behind it).
func (n *Node) acceptStreams() {
	defer n.bg.Done()
	for c := range n.tr.Streams() {
		n.acceptStream(countConn(c, n.met))
	}
}

// acceptStream starts serving an inbound stream, evicting an
// unauthenticated one if the waiting room is full, or refusing it with a
// word that says why (envelope.Refuse) when nothing can be evicted.
func (n *Node) acceptStream(c net.Conn) {
	if !n.admitStream(c) {
		return
	}
	n.streamMu.Lock()
	if n.inPending >= n.cfg.maxPending && !n.evictLocked() {
		n.streamMu.Unlock()
		n.met.Drop(metrics.DropStreamBusy)
		n.logRefusal(c, "too many unauthenticated inbound streams: refused one")
		select {
		case n.refusing <- struct{}{}:
			// Read the hello first: closing with unread data would
			// reset the connection, and the refusal with it.
			go func() {
				defer func() { <-n.refusing }()
				c.SetDeadline(time.Now().Add(20 * time.Millisecond))
				envelope.ReadHello(c)
				envelope.Refuse(c)
				c.Close()
			}()
		default:
			c.Close()
		}
		return
	}
	s, ok := n.trackLocked(c, true)
	n.streamMu.Unlock()
	if !ok {
		return
	}
	go func() {
		defer n.untrack(s)
		start := time.Now()
		err := n.serveStream(s)
		if errors.Is(err, errRefused) {
			return // counted and logged where it was refused
		}
		if !s.ping {
			n.met.PushPull(metrics.Inbound, time.Since(start), err)
		}
		if err != nil {
			n.streamDrop(s, err)
		}
	}()
}

// errRefused: an inbound stream was refused or evicted for load.
var errRefused = errors.New("stream refused for load")

// maxRefusing bounds the goroutines that tell refused initiators why.
const maxRefusing = 64

// refuse tells an initiator whose hello we read that we are refusing
// streams for load, counts it and logs it at a limited rate. The caller
// closes the connection.
func (n *Node) refuse(c net.Conn, msg string) {
	c.SetWriteDeadline(time.Now().Add(10 * time.Millisecond))
	envelope.Refuse(c)
	n.met.Drop(metrics.DropStreamBusy)
	n.logRefusal(c, msg)
}

func (n *Node) logRefusal(c net.Conn, msg string) {
	if ok, suppressed := n.limiter.allow(string(metrics.DropStreamBusy), time.Now()); ok {
		n.log.Warn(msg, "from", c.RemoteAddr(), "pending_limit", n.cfg.maxPending, "authenticated_limit", n.cfg.maxInbound, "suppressed", suppressed)
	}
}

// defaultEvictAge is how long an inbound stream that sent its hello may
// stay unauthenticated before a newcomer may evict it (config.evictAge). A
// member's first record follows its hello within a round trip, even in a
// join storm.
const defaultEvictAge = 250 * time.Millisecond

// evictLocked evicts one unauthenticated inbound stream, if one may be
// evicted, and reports whether it made room: the oldest that has sent
// nothing from the source holding the most waiting streams; else the oldest
// that has sent nothing; else the oldest that sent its hello more than
// evictAge ago. An evicted stream no longer counts: its connection is
// closed, so its goroutine returns at its next read or write.
func (n *Node) evictLocked() bool {
	var heavy netip.Addr
	most := 0
	for a, k := range n.inBySource {
		if k > most {
			heavy, most = a, k
		}
	}
	var fromHeavy, silent, stale *streamConn
	cutoff := time.Now().Add(-n.cfg.evictAge)
	older := func(a, b *streamConn) bool { return b == nil || a.opened.Before(b.opened) }
	for s := range n.streams {
		if !s.inbound || s.evicted {
			continue
		}
		switch {
		case s.stage == stageAccepted && s.src == heavy && older(s, fromHeavy):
			fromHeavy = s
		case s.stage == stageAccepted && older(s, silent):
			silent = s
		case s.stage == stageHello && s.opened.Before(cutoff) && older(s, stale):
			stale = s
		}
	}
	victim := fromHeavy
	if victim == nil {
		victim = silent
	}
	if victim == nil {
		victim = stale
	}
	if victim == nil {
		return false
	}
	n.releaseLocked(victim)
	victim.evicted = true
	// Wake its goroutine, which tells the peer why and closes the
	// connection; no write happens under the lock.
	victim.conn.SetReadDeadline(time.Now())
	n.met.Drop(metrics.DropStreamEvicted)
	return true
}

// evicted ends a stream that evictLocked chose: a peer still waiting for
// our hello is told that we are refusing streams for load.
func (n *Node) evicted(s *streamConn, stage streamStage) error {
	if stage == stageAccepted {
		s.conn.SetWriteDeadline(time.Now().Add(10 * time.Millisecond))
		envelope.Refuse(s.conn)
	}
	return errRefused // counted by evictLocked
}

// promote moves an inbound stream to stage, and reports false if it was
// evicted meanwhile. An authenticated stream waits for one of the
// maxInbound slots until deadline: the peer holds a key and is in the
// middle of sending, so it is made to wait rather than refused.
func (n *Node) promote(s *streamConn, stage streamStage, deadline time.Time) bool {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		n.streamMu.Lock()
		if s.evicted {
			n.streamMu.Unlock()
			return false
		}
		if stage != stageAuthed || n.inAuthed < n.cfg.maxInbound {
			if stage == stageAuthed {
				n.releaseLocked(s)
				n.inAuthed++
			}
			s.stage = stage
			n.streamMu.Unlock()
			return true
		}
		if n.slotFree == nil {
			n.slotFree = make(chan struct{})
		}
		free := n.slotFree
		n.streamMu.Unlock()
		if timer == nil {
			timer = time.NewTimer(time.Until(deadline))
		}
		select {
		case <-free:
		case <-timer.C:
			return false
		case <-n.stop:
			return false
		}
	}
}

// wasEvicted reports whether s was evicted.
func (n *Node) wasEvicted(s *streamConn) bool {
	n.streamMu.Lock()
	defer n.streamMu.Unlock()
	return s.evicted
}

// authedFull reports whether every authenticated slot is taken.
func (n *Node) authedFull() bool {
	n.streamMu.Lock()
	defer n.streamMu.Unlock()
	return n.inAuthed >= n.cfg.maxInbound
}

func (n *Node) serveStream(s *streamConn) error {
	c := s.conn
	if err := c.SetDeadline(s.opened.Add(min(helloTimeout, n.cfg.streamTimeout))); err != nil {
		return err
	}
	h, err := envelope.ReadHello(c)
	if err != nil {
		if n.wasEvicted(s) {
			return n.evicted(s, stageAccepted)
		}
		return err
	}
	if !n.promote(s, stageHello, time.Time{}) {
		return n.evicted(s, stageAccepted)
	}
	if n.authedFull() {
		n.refuse(c, "every inbound stream slot is taken by an authenticated peer: refused one")
		return errRefused
	}
	st, err := h.Accept(c, n.sealer, n.label, n.cfg.maxStream)
	if err != nil {
		return err
	}
	first, fin, err := st.ReadRecord()
	if err == nil {
		// The peer holds a key: give it a serving slot.
		if !n.promote(s, stageAuthed, s.opened.Add(n.cfg.streamTimeout)) {
			if n.wasEvicted(s) {
				err = errRefused
			} else {
				err = errAuthedFull
			}
		} else {
			err = c.SetDeadline(s.opened.Add(n.cfg.streamTimeout))
		}
	}
	if errors.Is(err, errAuthedFull) {
		n.met.Drop(metrics.DropStreamBusy)
		n.logRefusal(c, "an authenticated peer waited for a stream slot until its deadline")
		return errRefused
	}
	if err != nil {
		if n.wasEvicted(s) {
			return n.evicted(s, stageHello)
		}
		return err
	}
	if len(first) > 0 && first[0] == recordMessage {
		return n.serveMessage(st, first, fin)
	}
	if len(first) > 0 && first[0] == recordPing {
		s.ping = true
		return n.servePing(st, first, fin, s.opened.Add(n.cfg.streamTimeout)) // streamprobe.go
	}
	peer, remote, err := n.readExchange(st, first, fin)
	if err != nil {
		return err
	}
	var ours swim.Snapshot
	if held, taken := n.joinConflict(n.ctx, &peer); taken {
		// Refuse without merging, saying where the name is held
		// (conflict.go).
		return st.Refuse(refuseNameConflict + held.String())
	}
	var merr error
	n.do(func() {
		merr = n.core.Merge(time.Now(), &peer)
		ours = n.core.Snapshot()
	})
	if merr != nil {
		return merr
	}
	n.mergeState(remote, peer.Join)
	return n.writeExchange(st, &ours, n.localState(peer.Join))
}

// errAuthedFull: a stream authenticated while every slot was taken.
var errAuthedFull = errors.New("every authenticated stream slot is taken")

// startPushPull runs an exchange the core asked for, in the background,
// unless too many are in progress: then it is skipped, and the next periodic
// exchange or digest mismatch asks again.
func (n *Node) startPushPull(pp swim.PushPull) {
	if n.outbound >= n.cfg.maxOutbound {
		n.log.Debug("push-pull skipped: too many in progress", "peer", pp.Name, "addr", pp.To, "limit", n.cfg.maxOutbound)
		return
	}
	n.outbound++
	n.bg.Add(1)
	go func() {
		defer n.bg.Done()
		ctx, cancel := context.WithTimeout(n.ctx, n.cfg.streamTimeout)
		defer cancel()
		if err := n.pushPull(ctx, pp.To, pp.Join); err != nil {
			if ok, suppressed := n.limiter.allow("stream-out", time.Now()); ok {
				n.log.Warn("push-pull failed", "peer", pp.Name, "addr", pp.To, "err", err, "suppressed", suppressed)
			}
		}
		select {
		case n.cmds <- func() { n.outbound-- }:
		case <-n.loopDone:
		}
	}()
}

// openStream dials addr and shakes hands as the initiator, under a
// deadline of the stream timeout or ctx's, whichever comes first; ctx
// ending closes the connection. done releases the stream.
func (n *Node) openStream(ctx context.Context, addr netip.AddrPort) (st *envelope.Stream, done func(), err error) {
	c, err := n.tr.DialStream(ctx, addr)
	if err != nil {
		return nil, nil, err
	}
	c = countConn(c, n.met)
	s, ok := n.track(c)
	if !ok {
		return nil, nil, ErrShutdown
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	done = func() { stop(); n.untrack(s) }
	deadline := time.Now().Add(n.cfg.streamTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := c.SetDeadline(deadline); err != nil {
		done()
		return nil, nil, err
	}
	if st, err = envelope.Handshake(c, true, n.sealer, n.label, n.cfg.maxStream); err != nil {
		done()
		return nil, nil, n.ctxErr(ctx, err)
	}
	return st, done, nil
}

// pushPull exchanges state with the member at addr: ours first, then theirs,
// which is merged.
func (n *Node) pushPull(ctx context.Context, addr netip.AddrPort, join bool) (err error) {
	if err := n.allowsPeer(addr); err != nil {
		return err
	}
	start := time.Now()
	defer func() { n.met.PushPull(metrics.Outbound, time.Since(start), err) }()
	st, done, err := n.openStream(ctx, addr)
	if err != nil {
		return err
	}
	defer done()
	var ours swim.Snapshot
	n.do(func() { ours = n.core.Snapshot() })
	ours.Join = join
	if err := n.writeExchange(st, &ours, n.localState(join)); err != nil {
		return n.ctxErr(ctx, hintRefused(err))
	}
	first, fin, err := st.ReadRecord()
	var peer swim.Snapshot
	var remote []byte
	if err == nil {
		peer, remote, err = n.readExchange(st, first, fin)
	}
	if err != nil {
		if rerr := n.refusal(err); rerr != nil {
			return rerr
		}
		n.streamKeyMismatch(addr, true, err) // mismatch.go
		return n.ctxErr(ctx, hintRefused(err))
	}
	n.do(func() { err = n.core.Merge(time.Now(), &peer) })
	if err != nil {
		return err
	}
	n.mergeState(remote, join)
	return nil
}

// ctxErr prefers the context's error when the context ended: a closed
// connection is then the consequence, not the cause.
func (n *Node) ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}

// The first byte of a stream's records says what they carry. A snapshot's
// frames start with the codec's version byte (0x10 to 0x1f, codec.Version);
// the others are the runtime's own.
const (
	recordMessage    = 0x20 // a reliable application message (messages.go)
	recordState      = 0x21 // application state after a snapshot (WithState)
	recordMessageAck = 0x22 // the receiver's answer to a reliable message
	recordPing       = 0x23 // a stream ping of the fallback probe (streamprobe.go)
	recordPingAck    = 0x24 // its answer
)

// writeExchange writes our snapshot, then the application's state if it has
// any, then the final record.
func (n *Node) writeExchange(st *envelope.Stream, s *swim.Snapshot, state []byte) error {
	w, err := codec.NewSnapshotWriter(codec.FrameWriterFunc(func(f []byte) error {
		return st.WriteRecord(f, false)
	}), 0)
	if err != nil {
		return err
	}
	if err := w.WriteSnapshot(s); err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	if err := writeChunks(st, recordState, state); err != nil {
		return fmt.Errorf("write application state: %w", err)
	}
	return st.WriteRecord(nil, true)
}

// writeChunks writes data as records of at most envelope.MaxRecord bytes,
// each starting with the byte kind. Nothing is written for empty data.
func writeChunks(st *envelope.Stream, kind byte, data []byte) error {
	buf := make([]byte, 0, min(len(data), envelope.MaxRecord-1)+1)
	for len(data) > 0 {
		k := min(len(data), envelope.MaxRecord-1)
		buf = append(append(buf[:0], kind), data[:k]...)
		if err := st.WriteRecord(buf, false); err != nil {
			return err
		}
		data = data[k:]
	}
	return nil
}

// errTrailing: a snapshot stream went on after its last member with
// something other than application state.
var errTrailing = errors.New("snapshot stream has data after its last member")

// readExchange reads the peer's snapshot, whose first record is first
// (final if fin), then its application state, up to the final record.
func (n *Node) readExchange(st *envelope.Stream, first []byte, fin bool) (swim.Snapshot, []byte, error) {
	final := fin
	pending := first
	r, err := codec.NewSnapshotReader(codec.FrameReaderFunc(func() ([]byte, error) {
		if pending != nil {
			data := pending
			pending = nil
			if final && len(data) == 0 {
				return nil, io.EOF
			}
			return data, nil
		}
		if final {
			return nil, io.EOF
		}
		data, fin, err := st.ReadRecord()
		if err != nil {
			return nil, err
		}
		final = fin
		if fin && len(data) == 0 {
			return nil, io.EOF
		}
		return data, nil
	}), codec.Limits{MaxPayload: n.pcfg.MaxPayload, MaxMembers: n.pcfg.MaxMembers})
	if err != nil {
		return swim.Snapshot{}, nil, err
	}
	var s swim.Snapshot
	if err := r.ReadSnapshot(&s); err != nil {
		return swim.Snapshot{}, nil, fmt.Errorf("read snapshot: %w", err)
	}
	var state []byte
	for !final {
		data, fin, err := st.ReadRecord()
		if err != nil {
			return swim.Snapshot{}, nil, fmt.Errorf("read snapshot end: %w", err)
		}
		final = fin
		switch {
		case fin && len(data) == 0:
		case len(data) > 0 && data[0] == recordState:
			if len(state)+len(data)-1 > n.cfg.maxState {
				return swim.Snapshot{}, nil, fmt.Errorf("%w: application state above %d bytes", envelope.ErrStreamTooLarge, n.cfg.maxState)
			}
			state = append(state, data[1:]...)
		default:
			return swim.Snapshot{}, nil, errTrailing
		}
	}
	return s, state, nil
}

// streamDropReason classifies why a stream failed because of what the
// peer sent (or did not send), and reports false for failures of ours
// (shutdown, our context ending, a merge refused).
func streamDropReason(err error) (metrics.DropReason, bool) {
	var ne net.Error
	switch {
	case isOpenError(err):
		return dropReason(err), true
	case errors.Is(err, envelope.ErrBadHello):
		return metrics.DropStreamBadHello, true
	case errors.Is(err, envelope.ErrRecordTooLarge), errors.Is(err, envelope.ErrStreamTooLarge):
		return metrics.DropStreamTooLarge, true
	case errors.Is(err, envelope.ErrTruncated), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return metrics.DropStreamTruncated, true
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return metrics.DropStreamTimeout, true
	case errors.Is(err, envelope.ErrMalformed), errors.Is(err, errTrailing), isDecodeError(err):
		return metrics.DropDecode, true
	}
	return "", false
}

// streamDrop counts a failed inbound stream under its drop reason and logs
// it at a limited rate.
func (n *Node) streamDrop(s *streamConn, err error) {
	reason, ok := streamDropReason(err)
	n.streamKeyMismatch(addrPortOf(s.conn.RemoteAddr()), false, err) // mismatch.go
	if ok {
		n.met.Drop(reason)
	} else {
		reason = "stream"
	}
	if ok, suppressed := n.limiter.allow("stream-in:"+string(reason), time.Now()); ok {
		n.log.Warn("inbound push-pull failed", "from", s.conn.RemoteAddr(), "reason", string(reason), "err", err, "suppressed", suppressed)
	}
}

// isDecodeError reports whether err is a snapshot that opened but did not
// decode.
func isDecodeError(err error) bool {
	var fe *codec.FieldError
	return errors.As(err, &fe)
}

// isOpenError reports whether err is a record that failed to open.
func isOpenError(err error) bool {
	var oe *keyring.OpenError
	return errors.As(err, &oe) || errors.Is(err, envelope.ErrNotPlaintext)
}

// hintRefused explains the usual reason a peer hangs up on us mid-exchange:
// it could not open our records, and it cannot say so without telling an
// unauthenticated stranger.
func hintRefused(err error) error {
	if errors.Is(err, envelope.ErrBusy) {
		return err
	}
	if errors.Is(err, envelope.ErrTruncated) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return &hungUpError{err}
	}
	return err
}

// hungUpError: the peer answered our hello, then hung up on our records
// without a word. That is what a peer that cannot open them does (another
// key or label), so Join does not retry it.
type hungUpError struct{ err error }

func (e *hungUpError) Error() string {
	return e.err.Error() + " (the peer closed the stream before answering: does it have the same key and label?)"
}

func (e *hungUpError) Unwrap() error { return e.err }
