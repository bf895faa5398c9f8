package membership

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/meshward/membership/internal/envelope"
	"github.com/meshward/membership/metrics"
	"github.com/meshward/membership/swim"
)

// The stream fallback probe (docs/probing.md; swim/streamprobe.go for the
// protocol side). When a periodic probe's direct ack is late, the core asks
// for a stream ping of the target (swim.Output.StreamProbes). We carry it
// out off the loop: dial, handshake as for any stream (the same sealed
// records, key and label, and on the responder the same admission, allow-
// list and slot rules), send one ping record, read one ack record, all by
// the end of the probe period, and hand the outcome back to the loop
// (swim.Core.StreamProbeResult).
//
// Records: the ping is [recordPing, seq (4 bytes, big-endian), len(name),
// name], final; name is the member the prober means to reach. The ack is
// [recordPingAck, seq (4 bytes)], final. The responder answers only when
// the name is its own, and only after a round trip through its protocol
// loop, so that a process whose loop is stuck (the slow member Lifeguard
// guards against) does not pass for alive on the strength of its accept
// goroutine.

// maxStreamProbes bounds the stream pings in flight. The core asks for at
// most one per probe period and each ends with its period, so more than
// two in flight means the loop fell behind: the extra ones are skipped
// (counted as skipped), and their probes end as they would without the
// fallback.
const maxStreamProbes = 2

// pingRecordLen is the length of a ping record naming a member of n bytes.
func pingRecordLen(n int) int { return 1 + 4 + 1 + n }

// startStreamProbe runs a stream ping the core asked for, in the
// background, unless maxStreamProbes are in flight.
func (n *Node) startStreamProbe(sp swim.StreamProbe) {
	if n.streamProbes >= maxStreamProbes {
		n.met.StreamProbe(metrics.StreamProbeSkipped)
		return
	}
	n.streamProbes++
	n.bg.Add(1)
	go func() {
		defer n.bg.Done()
		ctx, cancel := context.WithDeadline(n.ctx, sp.Deadline)
		err := n.streamPing(ctx, sp)
		cancel()
		ok := err == nil
		if ok {
			n.met.StreamProbe(metrics.StreamProbeOK)
		} else {
			n.met.StreamProbe(metrics.StreamProbeFailed)
			// A crashed member fails here as a matter of course.
			n.log.Debug("stream ping failed", "member", sp.Name, "addr", sp.To, "err", err)
		}
		select {
		case n.cmds <- func() {
			n.streamProbes--
			n.core.StreamProbeResult(time.Now(), sp.Name, sp.Seq, ok)
		}:
		case <-n.loopDone:
		}
	}()
}

// streamPing pings sp.Name at sp.To over a stream and waits for its ack.
func (n *Node) streamPing(ctx context.Context, sp swim.StreamProbe) error {
	if err := n.allowsPeer(sp.To); err != nil {
		return err
	}
	st, done, err := n.openStream(ctx, sp.To)
	if err != nil {
		return err
	}
	defer done()
	if err := st.WriteRecord(appendPing(make([]byte, 0, pingRecordLen(len(sp.Name))), sp.Seq, sp.Name), true); err != nil {
		return n.ctxErr(ctx, hintRefused(err))
	}
	ack, fin, err := st.ReadRecord()
	if err != nil {
		return n.ctxErr(ctx, hintRefused(err))
	}
	if seq, ok := parsePingAck(ack, fin); !ok || seq != sp.Seq {
		return fmt.Errorf("%w: unexpected answer to a stream ping", envelope.ErrMalformed)
	}
	return nil
}

// appendPing appends a ping record for seq naming name (at most
// swim.MaxNameLen bytes).
func appendPing(b []byte, seq uint32, name string) []byte {
	b = append(b, recordPing)
	b = binary.BigEndian.AppendUint32(b, seq)
	b = append(b, byte(len(name)))
	return append(b, name...)
}

// parsePing reads a ping record: it must be final and hold a name of 1 to
// swim.MaxNameLen bytes and nothing after it.
func parsePing(b []byte, fin bool) (seq uint32, name string, ok bool) {
	if !fin || len(b) < pingRecordLen(1) || b[0] != recordPing {
		return 0, "", false
	}
	k := int(b[5])
	if k == 0 || k > swim.MaxNameLen || len(b) != pingRecordLen(k) {
		return 0, "", false
	}
	return binary.BigEndian.Uint32(b[1:5]), string(b[6:]), true
}

// parsePingAck reads a ping's answer: final, exactly the kind and seq.
func parsePingAck(b []byte, fin bool) (seq uint32, ok bool) {
	if !fin || len(b) != 5 || b[0] != recordPingAck {
		return 0, false
	}
	return binary.BigEndian.Uint32(b[1:]), true
}

// errMisdirectedPing: a stream ping named another member than us (the
// prober holds another process at our address).
var errMisdirectedPing = errors.New("stream ping for another member")

// servePing answers a stream ping whose first record is first, after a
// round trip through the protocol loop, by deadline.
func (n *Node) servePing(st *envelope.Stream, first []byte, fin bool, deadline time.Time) error {
	seq, name, ok := parsePing(first, fin)
	if !ok {
		return fmt.Errorf("%w: stream ping record", envelope.ErrMalformed)
	}
	if name != n.cfg.name {
		return errMisdirectedPing
	}
	if !n.loopAlive(deadline) {
		return ErrShutdown
	}
	return st.WriteRecord(binary.BigEndian.AppendUint32([]byte{recordPingAck}, seq), true)
}

// loopAlive reports whether the protocol loop runs a command before
// deadline.
func (n *Node) loopAlive(deadline time.Time) bool {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	done := make(chan struct{})
	select {
	case n.cmds <- func() { close(done) }:
	case <-t.C:
		return false
	case <-n.stop:
		return false
	}
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	case <-n.stop:
		return false
	}
}

// logUDPBroken warns, at a limited rate, that a member answers our probes
// only over the stream (swim.EventStreamOnly, delivered as EventUDPBroken).
func (n *Node) logUDPBroken(e *swim.Event) {
	if ok, suppressed := n.limiter.allow("udp-broken", time.Now()); ok {
		n.log.Warn("member answers probes only over TCP: its UDP datagrams, or ours to it, are lost; check firewalls and routing",
			"member", e.Member.Name, "addr", e.Member.Addr, "probes_in_a_row", swim.StreamOnlyReport, "suppressed", suppressed)
	}
}
