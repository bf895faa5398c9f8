package membership

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
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

// streamConn is an open stream, tracked so that Shutdown can close it and
// so that unauthenticated inbound streams can be evicted.
type streamConn struct {
	conn    net.Conn
	inbound bool
	opened  time.Time
	authed  atomic.Bool // the peer sealed a record we opened
	evicted bool        // guarded by Node.streamMu
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
		n.inboundOpen++
	}
	n.bg.Add(1)
	return s, true
}

func (n *Node) untrack(s *streamConn) {
	n.streamMu.Lock()
	delete(n.streams, s)
	if s.inbound && !s.evicted {
		n.inboundOpen--
	}
	n.streamMu.Unlock()
	s.conn.Close()
	n.bg.Done()
}

// helloTimeout bounds how long an inbound stream may take to prove it holds
// the key (hello and first record) before it gets the full stream timeout.
const helloTimeout = 2 * time.Second

// acceptStream starts serving an inbound stream. At most maxInbound are
// served at once, a cap enforced before a byte is read. When the cap is
// reached, the oldest stream that has not authenticated yet is closed to
// make room, so that idle connections from anyone who can reach the port
// cannot lock members out of joining; only when every slot holds an
// authenticated peer is the new stream refused.
func (n *Node) acceptStream(c net.Conn) {
	n.streamMu.Lock()
	if n.inboundOpen >= n.cfg.maxInbound && !n.evictLocked() {
		n.streamMu.Unlock()
		c.Close()
		n.met.TransportDrop(metrics.TransportStreamLimit, 1)
		if ok, suppressed := n.limiter.allow("stream-limit", time.Now()); ok {
			n.log.Warn("too many inbound streams: refused one", "from", c.RemoteAddr(), "limit", n.cfg.maxInbound, "suppressed", suppressed)
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
		n.met.PushPull(metrics.Inbound, time.Since(start), err)
		if err != nil && isOpenError(err) {
			n.met.Drop(dropReason(err))
		}
		if err != nil {
			if ok, suppressed := n.limiter.allow("stream-in", time.Now()); ok {
				n.log.Warn("inbound push-pull failed", "from", c.RemoteAddr(), "err", err, "suppressed", suppressed)
			}
		}
	}()
}

// evictAge is how long an inbound stream may stay unauthenticated before a
// newcomer may evict it. A member's hello and first record arrive within
// milliseconds, even in a join storm; an idle connection is older.
const evictAge = 250 * time.Millisecond

// evictLocked closes the oldest inbound stream that has not authenticated
// within evictAge, if there is one, and reports whether it made room. An
// evicted stream no longer counts against the cap: its connection is
// closed, so its goroutine returns at its next read or write.
func (n *Node) evictLocked() bool {
	var oldest *streamConn
	cutoff := time.Now().Add(-evictAge)
	for s := range n.streams {
		if s.inbound && !s.evicted && !s.authed.Load() && s.opened.Before(cutoff) && (oldest == nil || s.opened.Before(oldest.opened)) {
			oldest = s
		}
	}
	if oldest == nil {
		return false
	}
	oldest.evicted = true
	n.inboundOpen--
	oldest.conn.Close()
	return true
}

func (n *Node) serveStream(s *streamConn) error {
	c := s.conn
	if err := c.SetDeadline(s.opened.Add(min(helloTimeout, n.cfg.streamTimeout))); err != nil {
		return err
	}
	st, err := envelope.Handshake(c, false, n.sealer, n.label, n.cfg.maxStream)
	if err != nil {
		return err
	}
	peer, err := n.readSnapshot(st, func() {
		s.authed.Store(true)
		c.SetDeadline(s.opened.Add(n.cfg.streamTimeout))
	})
	if err != nil {
		return err
	}
	var ours swim.Snapshot
	var merr error
	n.do(func() {
		merr = n.core.Merge(time.Now(), &peer)
		ours = n.core.Snapshot()
	})
	if merr != nil {
		return merr
	}
	return n.writeSnapshot(st, &ours)
}

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

// pushPull exchanges state with the member at addr: ours first, then theirs,
// which is merged.
func (n *Node) pushPull(ctx context.Context, addr netip.AddrPort, join bool) (err error) {
	start := time.Now()
	defer func() { n.met.PushPull(metrics.Outbound, time.Since(start), err) }()
	c, err := n.tr.DialStream(ctx, addr)
	if err != nil {
		return err
	}
	s, ok := n.track(c)
	if !ok {
		return ErrShutdown
	}
	defer n.untrack(s)
	deadline := time.Now().Add(n.cfg.streamTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := c.SetDeadline(deadline); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	st, err := envelope.Handshake(c, true, n.sealer, n.label, n.cfg.maxStream)
	if err != nil {
		return n.ctxErr(ctx, err)
	}
	var ours swim.Snapshot
	n.do(func() { ours = n.core.Snapshot() })
	ours.Join = join
	if err := n.writeSnapshot(st, &ours); err != nil {
		return n.ctxErr(ctx, hintRefused(err))
	}
	peer, err := n.readSnapshot(st, nil)
	if err != nil {
		return n.ctxErr(ctx, hintRefused(err))
	}
	n.do(func() { err = n.core.Merge(time.Now(), &peer) })
	return err
}

// ctxErr prefers the context's error when the context ended: a closed
// connection is then the consequence, not the cause.
func (n *Node) ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}

func (n *Node) writeSnapshot(st *envelope.Stream, s *swim.Snapshot) error {
	w, err := codec.NewSnapshotWriter(codec.FrameWriterFunc(func(f []byte) error {
		return st.WriteRecord(f, false)
	}), 0)
	if err != nil {
		return err
	}
	if err := w.WriteSnapshot(s); err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	return st.WriteRecord(nil, true)
}

// errTrailing: a snapshot stream went on after its last member.
var errTrailing = errors.New("snapshot stream has data after its last member")

// readSnapshot reads the peer's snapshot; onAuth, if not nil, runs once
// the first record has opened.
func (n *Node) readSnapshot(st *envelope.Stream, onAuth func()) (swim.Snapshot, error) {
	final := false
	r, err := codec.NewSnapshotReader(codec.FrameReaderFunc(func() ([]byte, error) {
		if final {
			return nil, io.EOF
		}
		data, fin, err := st.ReadRecord()
		if err != nil {
			return nil, err
		}
		if onAuth != nil {
			onAuth()
			onAuth = nil
		}
		final = fin
		if fin && len(data) == 0 {
			return nil, io.EOF
		}
		return data, nil
	}), codec.Limits{MaxPayload: n.pcfg.MaxPayload, MaxMembers: n.pcfg.MaxMembers})
	if err != nil {
		return swim.Snapshot{}, err
	}
	var s swim.Snapshot
	if err := r.ReadSnapshot(&s); err != nil {
		return swim.Snapshot{}, fmt.Errorf("read snapshot: %w", err)
	}
	if !final {
		data, fin, err := st.ReadRecord()
		if err != nil {
			return swim.Snapshot{}, fmt.Errorf("read snapshot end: %w", err)
		}
		if !fin || len(data) != 0 {
			return swim.Snapshot{}, errTrailing
		}
	}
	return s, nil
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
	if errors.Is(err, envelope.ErrTruncated) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return fmt.Errorf("%w (the peer closed the stream before answering: does it have the same key and label?)", err)
	}
	return err
}
