package membership

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
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

// streamConn is an open stream, tracked so that Shutdown can close it.
type streamConn struct{ conn net.Conn }

// track registers an open stream; it refuses (and closes it) once the node
// is shutting down.
func (n *Node) track(c net.Conn) (*streamConn, bool) {
	n.streamMu.Lock()
	defer n.streamMu.Unlock()
	select {
	case <-n.stop:
		c.Close()
		return nil, false
	default:
	}
	s := &streamConn{conn: c}
	n.streams[s] = struct{}{}
	n.bg.Add(1)
	return s, true
}

func (n *Node) untrack(s *streamConn) {
	n.streamMu.Lock()
	delete(n.streams, s)
	n.streamMu.Unlock()
	s.conn.Close()
	n.bg.Done()
}

// acceptStream starts serving an inbound stream, unless too many are in
// progress: the cap is enforced before a byte is read.
func (n *Node) acceptStream(c net.Conn) {
	if int(n.inbound.Load()) >= n.cfg.maxInbound {
		c.Close()
		n.met.TransportDrop(metrics.TransportStreamLimit, 1)
		if ok, suppressed := n.limiter.allow("stream-limit", time.Now()); ok {
			n.log.Warn("too many inbound streams: refused one", "from", c.RemoteAddr(), "limit", n.cfg.maxInbound, "suppressed", suppressed)
		}
		return
	}
	s, ok := n.track(c)
	if !ok {
		return
	}
	n.inbound.Add(1)
	go func() {
		defer n.inbound.Add(-1)
		defer n.untrack(s)
		start := time.Now()
		err := n.serveStream(c)
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

func (n *Node) serveStream(c net.Conn) error {
	if err := c.SetDeadline(time.Now().Add(n.cfg.streamTimeout)); err != nil {
		return err
	}
	st, err := envelope.Handshake(c, false, n.sealer, n.label, n.cfg.maxStream)
	if err != nil {
		return err
	}
	peer, err := n.readSnapshot(st)
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
// unless too many are in progress (the core asks again later).
func (n *Node) startPushPull(pp swim.PushPull) {
	if n.outbound >= n.cfg.maxOutbound {
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
		return n.ctxErr(ctx, err)
	}
	peer, err := n.readSnapshot(st)
	if err != nil {
		return n.ctxErr(ctx, err)
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

func (n *Node) readSnapshot(st *envelope.Stream) (swim.Snapshot, error) {
	final := false
	r, err := codec.NewSnapshotReader(codec.FrameReaderFunc(func() ([]byte, error) {
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
