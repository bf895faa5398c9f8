package membership

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshward/membership/codec"
	"github.com/meshward/membership/internal/envelope"
	"github.com/meshward/membership/keyring"
	"github.com/meshward/membership/transport"
)

// oldReader makes the node it carries read as a node of the version
// before the compact forms did: it drops each datagram that version
// rejects (the compact layout, or a codec major other than 1: its decoder
// accepted every 1.x minor and nothing else), and fails each stream on the
// first record in the compact layout. It counts what it refused.
type oldReader struct {
	transport.Transport
	ring *keyring.Keyring

	once     sync.Once
	out      chan transport.Packet
	refused  atomic.Int64 // datagrams and stream records an old node rejects
	readable atomic.Int64 // datagrams it reads
}

func (o *oldReader) Packets() <-chan transport.Packet {
	o.once.Do(func() {
		o.out = make(chan transport.Packet, 256)
		go func() {
			defer close(o.out)
			for p := range o.Transport.Packets() {
				if !o.reads(p.Data) {
					o.refused.Add(1)
					p.Release()
					continue
				}
				o.readable.Add(1)
				o.out <- p
			}
		}()
	})
	return o.out
}

// reads reports whether the old version opens and decodes datagram.
func (o *oldReader) reads(datagram []byte) bool {
	if envelope.IsCompact(datagram) {
		return false
	}
	_, body, _, err := envelope.OpenDatagram(o.ring, nil, nil, datagram)
	return err == nil && len(body) > 0 && body[0]>>4 == codec.VersionMajor
}

func (o *oldReader) DialStream(ctx context.Context, to netip.AddrPort) (net.Conn, error) {
	c, err := o.Transport.DialStream(ctx, to)
	if err != nil {
		return nil, err
	}
	return o.wrap(c), nil
}

func (o *oldReader) Streams() <-chan net.Conn {
	in := o.Transport.Streams()
	out := make(chan net.Conn)
	go func() {
		defer close(out)
		for c := range in {
			out <- o.wrap(c)
		}
	}()
	return out
}

// oldStream fails on the first record in the compact layout it reads.
type oldStream struct {
	net.Conn
	o    *oldReader
	seen []byte // bytes read so far and not yet parsed
	skip int    // bytes still to skip: the hello, then each record's rest
	bad  bool
}

func (s *oldStream) Read(b []byte) (int, error) {
	if s.bad {
		return 0, errors.New("old reader: compact record")
	}
	n, err := s.Conn.Read(b)
	s.seen = append(s.seen, b[:n]...)
	for {
		if s.skip > 0 {
			k := min(s.skip, len(s.seen))
			s.seen, s.skip = s.seen[k:], s.skip-k
			if s.skip > 0 {
				break
			}
			continue
		}
		if len(s.seen) < 5 {
			break
		}
		if s.seen[4] != keyring.Version {
			s.bad = true
			s.o.refused.Add(1)
			return 0, errors.New("old reader: compact record")
		}
		s.skip = 4 + int(binary.BigEndian.Uint32(s.seen))
	}
	return n, err
}

// wrap skips the stream's first bytes, the hello, which is no record.
func (o *oldReader) wrap(c net.Conn) *oldStream { return &oldStream{Conn: c, o: o, skip: 17} }

// sentForms is a transport that counts the datagrams it sends to each
// address by form: compact (the compact layout or codec 2.x) or not.
type sentForms struct {
	transport.Transport
	ring *keyring.Keyring
	mu   sync.Mutex
	sent map[netip.AddrPort]*[2]int // [legacy, compact]
}

func (f *sentForms) WriteTo(b []byte, to netip.AddrPort) error {
	compact := envelope.IsCompact(b)
	if !compact {
		if _, body, _, err := envelope.OpenDatagram(f.ring, nil, nil, b); err == nil && len(body) > 0 {
			compact = body[0]>>4 == codec.CompactMajor
		}
	}
	f.mu.Lock()
	c := f.sent[to]
	if c == nil {
		c = new([2]int)
		f.sent[to] = c
	}
	if compact {
		c[1]++
	} else {
		c[0]++
	}
	f.mu.Unlock()
	return f.Transport.WriteTo(b, to)
}

// take returns the counts to addr since the last take, and resets them.
func (f *sentForms) take(to netip.AddrPort) (legacy, compact int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.sent[to]
	if c == nil {
		return 0, 0
	}
	legacy, compact = c[0], c[1]
	*c = [2]int{}
	return legacy, compact
}

func (f *sentForms) count(to netip.AddrPort) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.sent[to]; c != nil {
		return c[0] + c[1]
	}
	return 0
}

// TestPeerWireRollingUpgrade: a node that reads only the old forms (and,
// held to the legacy wire, sends codec 1.2) stays in one cluster with two
// default nodes, which never send it a datagram or record it would reject,
// while they reach the compact forms between themselves; a rollback
// (SetLegacyWire(true)) unmarks the node, and undoing it marks it again.
func TestPeerWireRollingUpgrade(t *testing.T) {
	t.Parallel()
	c := newMemCluster(t, 0)
	oldTr := &oldReader{Transport: c.net.NewTransport(), ring: newRing(t, testKey)}
	old := c.add("old", WithTransport(oldTr), WithLegacyWire(true)) // the seed: joins are streams to it
	f1 := &sentForms{Transport: c.net.NewTransport(), ring: newRing(t, testKey), sent: map[netip.AddrPort]*[2]int{}}
	f2 := &sentForms{Transport: c.net.NewTransport(), ring: newRing(t, testKey), sent: map[netip.AddrPort]*[2]int{}}
	n1 := c.add("new-1", WithTransport(f1))
	n2 := c.add("new-2", WithTransport(f2))
	c.joinAll()
	c.everyoneSees(c.nodes, names(c.nodes), StateAlive, 10*time.Second)
	a0, a1, a2 := old.Myself().Addr, n1.Myself().Addr, n2.Myself().Addr

	waitFor(t, 10*time.Second, "the new nodes to send each other the compact forms", func() bool {
		return n1.sendsCompact(a2) && n2.sendsCompact(a1)
	})
	if n1.sendsCompact(a0) || n2.sendsCompact(a0) || old.sendsCompact(a1) {
		t.Fatal("an address marked that never sent the compact forms, or a node held to the legacy wire sends them")
	}
	f1.take(a2)
	waitFor(t, 10*time.Second, "datagrams from new-1 to new-2", func() bool { return f1.count(a2) >= 5 })
	if legacy, compact := f1.take(a2); legacy > 1 || compact < 4 {
		// One datagram may have been encoded before the mark.
		t.Fatalf("new-1 to new-2 after the mark: %d legacy, %d compact datagrams", legacy, compact)
	}
	waitFor(t, 10*time.Second, "datagrams from the new nodes to the old one", func() bool {
		return f1.count(a0) >= 3 && f2.count(a0) >= 3
	})
	for i, f := range []*sentForms{f1, f2} {
		if legacy, compact := f.take(a0); compact != 0 || legacy == 0 {
			t.Errorf("new-%d to the old node: %d legacy, %d compact datagrams", i+1, legacy, compact)
		}
	}
	if oldTr.refused.Load() != 0 || oldTr.readable.Load() == 0 {
		t.Fatalf("the old node refused %d datagrams or records, read %d", oldTr.refused.Load(), oldTr.readable.Load())
	}
	c.everyoneSees(c.nodes, names(c.nodes), StateAlive, 5*time.Second)

	// Rollback: new-2 goes back to what the old version sends.
	n2.SetLegacyWire(true)
	waitFor(t, 10*time.Second, "new-1 to unmark new-2", func() bool { return !n1.sendsCompact(a2) })
	f1.take(a2)
	waitFor(t, 10*time.Second, "datagrams from new-1 to new-2", func() bool { return f1.count(a2) >= 3 })
	if legacy, compact := f1.take(a2); compact > 1 || legacy < 2 {
		t.Fatalf("new-1 to the rolled-back new-2: %d legacy, %d compact datagrams", legacy, compact)
	}
	n2.SetLegacyWire(false)
	waitFor(t, 10*time.Second, "new-1 to mark new-2 again", func() bool { return n1.sendsCompact(a2) })
	c.everyoneSees(c.nodes, names(c.nodes), StateAlive, 5*time.Second)
	if oldTr.refused.Load() != 0 {
		t.Fatalf("the old node refused %d datagrams or records", oldTr.refused.Load())
	}
}

// TestPeerWireLearnsOnlyFromAuthenticated: a compact datagram sealed under
// another key marks nothing; one under ours does.
func TestPeerWireLearnsOnlyFromAuthenticated(t *testing.T) {
	t.Parallel()
	c := newMemCluster(t, 1)
	n := c.nodes[0]
	forger, honest := c.net.NewTransport(), c.net.NewTransport()
	seal := func(ring *keyring.Keyring) []byte {
		plain, err := codec.AppendCompact(make([]byte, envelope.TimestampLen), idleDatagrams()["ack"])
		if err != nil {
			t.Fatal(err)
		}
		dg, err := envelope.SealDatagram(ring, nil, nil, plain, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return dg
	}
	other := newRing(t, bytes32(0x17))
	if err := forger.WriteTo(seal(other), n.Myself().Addr); err != nil {
		t.Fatal(err)
	}
	if err := honest.WriteTo(seal(newRing(t, testKey)), n.Myself().Addr); err != nil {
		t.Fatal(err)
	}
	// Datagrams reach the node in order: once the second marks its
	// sender, the first has been judged.
	waitFor(t, 5*time.Second, "the authenticated datagram to mark its sender", func() bool {
		return n.sendsCompact(honest.LocalAddr())
	})
	if n.sendsCompact(forger.LocalAddr()) {
		t.Fatal("a datagram under another key marked its sender")
	}
}

func bytes32(b byte) []byte {
	k := make([]byte, 32)
	for i := range k {
		k[i] = b
	}
	return k
}

// TestPeerWireBounded: the set of marked addresses never passes its bound;
// a mark beyond it clears the set, and unmarking works.
func TestPeerWireBounded(t *testing.T) {
	var w peerWire
	addr := func(i int) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), 7946)
	}
	for i := 0; i < 10; i++ {
		w.set(addr(i), true, 4)
		if w.len() > 4 {
			t.Fatalf("after %d marks: %d addresses, bound 4", i+1, w.len())
		}
	}
	if !w.reads(addr(9)) || w.cleared == 0 {
		t.Fatalf("the last mark is lost (%v) or the set was never cleared (%d)", w.reads(addr(9)), w.cleared)
	}
	w.set(addr(9), false, 4)
	if w.reads(addr(9)) {
		t.Fatal("unmark kept the address")
	}
	allocs := testing.AllocsPerRun(100, func() {
		w.set(addr(8), true, 4)
		_ = w.reads(addr(8))
	})
	if allocs != 0 {
		t.Fatalf("marking a marked address allocates %v times", allocs)
	}
}
