package transport

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"time"
)

// Defaults used when a Config field is zero.
const (
	// DefaultPort is the port used when a bind or advertise address names
	// no port (the same port memberlist uses, so firewalls rules carry over).
	DefaultPort = 7946

	// DefaultMaxPacketSize is the largest datagram accepted. SWIM datagrams
	// are kept under the path MTU (about 1400 bytes) by the runtime; 8 KiB
	// leaves room for larger profiles without tying up 64 KiB per queued
	// datagram. Larger datagrams are dropped and counted (Stats.TooLarge).
	DefaultMaxPacketSize = 8 << 10

	// DefaultPacketQueue is how many received datagrams may wait for the
	// consumer. At DefaultMaxPacketSize that bounds queued memory to 4 MiB.
	// Beyond it datagrams are dropped and counted (Stats.PacketsDropped):
	// SWIM tolerates loss, unbounded memory it does not.
	DefaultPacketQueue = 512

	// DefaultStreamQueue is how many accepted streams may wait for the
	// consumer; beyond it new streams are closed at once and counted
	// (Stats.StreamsDropped). A join storm arrives as a burst of
	// connections that the accept loop takes from the kernel faster than a
	// busy consumer is scheduled: at 32, a storm of 63 joiners lost 5 to 30
	// of its streams here (and their joiners a retry each). 256 holds a
	// storm of that many joiners, and matches the node's waiting room for
	// unauthenticated streams (DefaultMaxPendingStreams). Each queued
	// stream costs one file descriptor.
	DefaultStreamQueue = 256

	// DefaultSocketBuffer is the requested SO_RCVBUF and SO_SNDBUF of the UDP
	// socket. A burst of gossip after a partition heals easily overflows the
	// kernel default (about 200 KiB on Linux); the kernel may cap the value
	// (net.core.rmem_max), which is not an error.
	DefaultSocketBuffer = 2 << 20

	// MaxDatagram is the largest UDP payload over IPv4 (65535 minus IP and
	// UDP headers). WriteTo refuses anything larger with ErrTooLarge.
	MaxDatagram = 65507
)

// Errors callers branch on.
var (
	// ErrClosed is returned by operations on a closed transport.
	ErrClosed = errors.New("transport: closed")

	// ErrTooLarge is returned by WriteTo for a datagram larger than
	// MaxDatagram.
	ErrTooLarge = errors.New("transport: datagram too large")

	// ErrNoAdvertiseAddr is wrapped by NewNet when the transport is bound to
	// a wildcard address and no address to advertise can be chosen.
	ErrNoAdvertiseAddr = errors.New("transport: no advertise address")
)

// Transport moves bytes between members: unreliable datagrams for the probe
// and gossip traffic (SWIM §4), and reliable streams for state exchange
// (join, anti-entropy push-pull), both on one advertised address.
//
// The runtime this is written for has one goroutine that owns the protocol
// state and selects over Packets(), Streams() and its timers. Every method is
// safe for concurrent use.
type Transport interface {
	// LocalAddr is the address other members reach this transport at: the
	// advertised address, with the real port even when bound to port 0.
	LocalAddr() netip.AddrPort

	// WriteTo sends one datagram. It does not retain b. It does not block
	// on the peer; an unreachable peer is not an error (datagrams are lost
	// silently, as UDP's are). It fails after Close with ErrClosed.
	WriteTo(b []byte, to netip.AddrPort) error

	// Packets delivers received datagrams in arrival order. The consumer
	// must call Release on each Packet once done with its Data. The
	// channel is bounded: when it is full, newly received datagrams are
	// dropped and counted in Stats.PacketsDropped. It is closed by Close.
	Packets() <-chan Packet

	// DialStream opens a reliable stream to a peer's advertised address.
	// The context bounds the dial only; set deadlines on the returned
	// connection for the exchange.
	DialStream(ctx context.Context, to netip.AddrPort) (net.Conn, error)

	// Streams delivers inbound streams. The channel is bounded: when full,
	// new streams are closed at once and counted in Stats.StreamsDropped.
	// It is closed by Close; streams still queued then are closed.
	Streams() <-chan net.Conn

	// Stats returns the transport's counters so far. A datagram or stream
	// is counted just after it is handed over, so the counters may trail
	// what a reader already received by a moment.
	Stats() Stats

	// Close stops the transport: it closes the sockets, unblocks readers,
	// waits for its goroutines to end and closes Packets and Streams.
	// Calling it more than once returns nil.
	Close() error
}

// Stats are cumulative counters of a transport. The runtime reports their
// increase as metrics (metrics.TransportDropped).
type Stats struct {
	PacketsReceived uint64 // datagrams handed to Packets
	PacketsDropped  uint64 // datagrams dropped because Packets was full
	TooLarge        uint64 // datagrams dropped for exceeding MaxPacketSize
	PacketsSent     uint64 // datagrams written
	SendErrors      uint64 // WriteTo calls that failed (other than ErrClosed)
	StreamsAccepted uint64 // inbound streams handed to Streams
	StreamsDropped  uint64 // inbound streams closed because Streams was full
}

// Sub returns the increase of each counter from prev to s, for reporting
// deltas as metrics: d := cur.Sub(last); m.TransportDrop(metrics.TransportQueueFull, d.PacketsDropped).
func (s Stats) Sub(prev Stats) Stats {
	return Stats{
		PacketsReceived: s.PacketsReceived - prev.PacketsReceived,
		PacketsDropped:  s.PacketsDropped - prev.PacketsDropped,
		TooLarge:        s.TooLarge - prev.TooLarge,
		PacketsSent:     s.PacketsSent - prev.PacketsSent,
		SendErrors:      s.SendErrors - prev.SendErrors,
		StreamsAccepted: s.StreamsAccepted - prev.StreamsAccepted,
		StreamsDropped:  s.StreamsDropped - prev.StreamsDropped,
	}
}

// stats holds the live counters behind Stats.
type stats struct {
	packetsReceived atomic.Uint64
	packetsDropped  atomic.Uint64
	tooLarge        atomic.Uint64
	packetsSent     atomic.Uint64
	sendErrors      atomic.Uint64
	streamsAccepted atomic.Uint64
	streamsDropped  atomic.Uint64
}

func (s *stats) snapshot() Stats {
	return Stats{
		PacketsReceived: s.packetsReceived.Load(),
		PacketsDropped:  s.packetsDropped.Load(),
		TooLarge:        s.tooLarge.Load(),
		PacketsSent:     s.packetsSent.Load(),
		SendErrors:      s.sendErrors.Load(),
		StreamsAccepted: s.streamsAccepted.Load(),
		StreamsDropped:  s.streamsDropped.Load(),
	}
}

// Packet is one received datagram. Data aliases a pooled buffer that is
// valid until Release; copy what must outlive it.
type Packet struct {
	// Data is the datagram's payload.
	Data []byte
	// From is the sender's address as seen by this host (IPv4 addresses
	// are unmapped, so they compare equal to advertised IPv4 addresses).
	From netip.AddrPort
	// At is when the datagram was read from the socket.
	At time.Time

	buf *buffer
	gen uint64
}

// Release returns the packet's buffer to its pool. Data must not be used
// afterwards. Releasing twice, or releasing a copy of an already released
// Packet, is harmless: each buffer hand-out carries a generation and only
// the first Release of it counts.
func (p *Packet) Release() {
	b := p.buf
	if b == nil {
		return
	}
	p.buf = nil
	p.Data = nil
	if b.gen.CompareAndSwap(p.gen, p.gen+1) {
		b.pool.put(b)
	}
}

// buffer is one pooled datagram buffer.
type buffer struct {
	b    []byte
	gen  atomic.Uint64
	pool *bufferPool
}

// bufferPool is a bounded free list of buffers of one size. Unlike a
// sync.Pool it survives garbage collection, so a steady stream of datagrams
// allocates nothing, and it never holds more than its capacity.
type bufferPool struct {
	size int
	free chan *buffer
}

func newBufferPool(size, capacity int) *bufferPool {
	return &bufferPool{size: size, free: make(chan *buffer, capacity)}
}

func (p *bufferPool) get() *buffer {
	select {
	case b := <-p.free:
		return b
	default:
		return &buffer{b: make([]byte, p.size), pool: p}
	}
}

func (p *bufferPool) put(b *buffer) {
	select {
	case p.free <- b:
	default: // pool full: let the garbage collector have it
	}
}

// packet wraps b's first n bytes as a Packet.
func (b *buffer) packet(n int, from netip.AddrPort, at time.Time) Packet {
	return Packet{Data: b.b[:n], From: from, At: at, buf: b, gen: b.gen.Load()}
}
