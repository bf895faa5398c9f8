package transport

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// LinkConfig describes the faults of a directed link in a MemNetwork. The
// zero value is a perfect link: no loss, no delay, delivered at once.
type LinkConfig struct {
	// Loss is the probability in [0,1] that a datagram is dropped.
	Loss float64
	// Duplicate is the probability in [0,1] that a datagram is delivered
	// twice (each copy with its own delay).
	Duplicate float64
	// Reorder is the probability in [0,1] that a datagram is held back by
	// ReorderDelay, so that datagrams sent after it overtake it.
	Reorder float64
	// ReorderDelay is the extra delay of a reordered datagram. Zero means
	// 5ms.
	ReorderDelay time.Duration
	// Delay is the one-way latency of every datagram, and of each
	// direction of a stream's dial.
	Delay time.Duration
	// Jitter adds a uniformly random extra delay in [0, Jitter] to each
	// datagram, which also reorders datagrams sent closer together than
	// the jitter.
	Jitter time.Duration
}

// MemConfig configures one endpoint of a MemNetwork.
type MemConfig struct {
	// Addr is the endpoint's address. The zero value assigns the next free
	// address of the form 127.0.10.x:7946 (addresses from the loopback
	// range, so one mistakenly used on a real socket stays on this host).
	Addr netip.AddrPort
	// MaxPacketSize, PacketQueue and StreamQueue bound the endpoint as
	// they bound a Net; zero means the same defaults.
	MaxPacketSize int
	PacketQueue   int
	StreamQueue   int
}

// MemStats counts what a MemNetwork did to the datagrams written to it.
type MemStats struct {
	Sent          uint64 // WriteTo calls that reached the network
	Delivered     uint64 // copies handed to an endpoint (its queue may still drop them)
	Lost          uint64 // dropped by LinkConfig.Loss
	Cut           uint64 // dropped by a partition, a one-way block or a down endpoint
	Undeliverable uint64 // no open endpoint at the destination address
	Duplicated    uint64 // extra copies made by LinkConfig.Duplicate
	Reordered     uint64 // datagrams held back by LinkConfig.Reorder
	Overflow      uint64 // dropped because too many datagrams were in flight
}

// DefaultMaxInFlight bounds the delayed datagrams a MemNetwork holds at once,
// so a long delay under heavy traffic cannot grow memory without bound.
const DefaultMaxInFlight = 16384

type link struct{ from, to netip.AddrPort }

// MemNetwork is an in-memory network of MemTransports with fault injection:
// per-link loss, delay with jitter, duplication and reordering, partitions
// into groups, one-way blocks and endpoints that are down. It runs in real
// time (delays are real timers); it is meant for tests of the runtime, not
// for the protocol simulator, which runs in virtual time.
//
// Random choices (loss, duplication, jitter, reordering) come from one
// generator seeded by NewMemNetwork, drawn in the order WriteTo calls reach
// the network: a single-goroutine test is reproducible from its seed;
// concurrent writers interleave as the scheduler decides.
//
// All methods are safe for concurrent use.
type MemNetwork struct {
	mu          sync.Mutex
	rng         *rand.Rand
	endpoints   map[netip.AddrPort]*MemTransport
	nextHost    uint32
	defaultLink LinkConfig
	links       map[link]LinkConfig
	blocked     map[link]bool
	groups      map[netip.AddrPort]int // partition group; absent = group 0
	partitioned bool
	down        map[netip.AddrPort]bool
	timers      map[*time.Timer]struct{}
	inFlight    int
	maxInFlight int
	stats       MemStats
	closed      bool
	stop        context.Context
	cancel      context.CancelFunc
}

// NewMemNetwork returns an empty network whose random faults derive from
// seed.
func NewMemNetwork(seed int64) *MemNetwork {
	n := &MemNetwork{
		rng:         rand.New(rand.NewPCG(uint64(seed), 0x6d656d6e6574)),
		endpoints:   map[netip.AddrPort]*MemTransport{},
		links:       map[link]LinkConfig{},
		blocked:     map[link]bool{},
		groups:      map[netip.AddrPort]int{},
		down:        map[netip.AddrPort]bool{},
		timers:      map[*time.Timer]struct{}{},
		maxInFlight: DefaultMaxInFlight,
	}
	n.stop, n.cancel = context.WithCancel(context.Background())
	return n
}

// memFirstHost is the host part (below 127/8) of the first automatically
// assigned address, 127.0.10.1.
const memFirstHost = 10<<8 | 1

// Listen opens an endpoint. It fails if the network is closed or the address
// is taken by an open endpoint.
func (n *MemNetwork) Listen(cfg MemConfig) (*MemTransport, error) {
	if cfg.MaxPacketSize <= 0 {
		cfg.MaxPacketSize = DefaultMaxPacketSize
	}
	if cfg.PacketQueue <= 0 {
		cfg.PacketQueue = DefaultPacketQueue
	}
	if cfg.StreamQueue <= 0 {
		cfg.StreamQueue = DefaultStreamQueue
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, ErrClosed
	}
	addr := cfg.Addr
	if !addr.IsValid() {
		for {
			// 127.0.10.1, 127.0.10.2, ... up to 127.255.255.254.
			n.nextHost++
			h := memFirstHost + n.nextHost - 1
			if h > 0xFFFFFE {
				return nil, errors.New("transport: mem network out of addresses")
			}
			a := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, byte(h >> 16), byte(h >> 8), byte(h)}), DefaultPort)
			if n.endpoints[a] == nil {
				addr = a
				break
			}
		}
	} else {
		addr = unmapPort(addr)
	}
	if n.endpoints[addr] != nil {
		return nil, fmt.Errorf("transport: mem listen %s: address already in use", addr)
	}
	t := &MemTransport{
		net:     n,
		addr:    addr,
		max:     cfg.MaxPacketSize,
		pool:    newBufferPool(cfg.MaxPacketSize, cfg.PacketQueue+16),
		packets: make(chan Packet, cfg.PacketQueue),
		streams: make(chan net.Conn, cfg.StreamQueue),
	}
	t.stop, t.cancel = context.WithCancel(n.stop)
	n.endpoints[addr] = t
	return t, nil
}

// NewTransport opens an endpoint at the next free address with default
// bounds. It panics if the network is closed (a test's programming error).
func (n *MemNetwork) NewTransport() *MemTransport {
	t, err := n.Listen(MemConfig{})
	if err != nil {
		panic(err)
	}
	return t
}

// SetDefaultLink sets the faults of every link without its own SetLink.
func (n *MemNetwork) SetDefaultLink(c LinkConfig) {
	n.mu.Lock()
	n.defaultLink = c
	n.mu.Unlock()
}

// SetLink sets the faults of the directed link from → to.
func (n *MemNetwork) SetLink(from, to netip.AddrPort, c LinkConfig) {
	n.mu.Lock()
	n.links[link{unmapPort(from), unmapPort(to)}] = c
	n.mu.Unlock()
}

// ClearLink makes the link from → to use the default link again.
func (n *MemNetwork) ClearLink(from, to netip.AddrPort) {
	n.mu.Lock()
	delete(n.links, link{unmapPort(from), unmapPort(to)})
	n.mu.Unlock()
}

// Block cuts the directed link from → to: datagrams from from to to are
// dropped while the reverse direction still works (a one-way link, as a
// misconfigured firewall makes). Streams need both directions, so dials
// either way fail.
func (n *MemNetwork) Block(from, to netip.AddrPort) {
	n.mu.Lock()
	n.blocked[link{unmapPort(from), unmapPort(to)}] = true
	n.mu.Unlock()
}

// Unblock restores the directed link from → to.
func (n *MemNetwork) Unblock(from, to netip.AddrPort) {
	n.mu.Lock()
	delete(n.blocked, link{unmapPort(from), unmapPort(to)})
	n.mu.Unlock()
}

// Partition splits the network: endpoints in different groups cannot reach
// each other. Endpoints named in no group form one more group together.
// A new Partition replaces the previous one.
func (n *MemNetwork) Partition(groups ...[]netip.AddrPort) {
	n.mu.Lock()
	defer n.mu.Unlock()
	clear(n.groups)
	for i, g := range groups {
		for _, a := range g {
			n.groups[unmapPort(a)] = i + 1
		}
	}
	n.partitioned = true
}

// Heal removes the partition and every one-way block.
func (n *MemNetwork) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	clear(n.groups)
	clear(n.blocked)
	n.partitioned = false
}

// SetDown marks an endpoint down (true) or up again (false). A down endpoint
// is a paused process: nothing it sends leaves, nothing sent to it (even
// already in flight) arrives, and dials to or from it hang until their
// context ends. Its channels stay open.
func (n *MemNetwork) SetDown(addr netip.AddrPort, down bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if down {
		n.down[unmapPort(addr)] = true
	} else {
		delete(n.down, unmapPort(addr))
	}
}

// Stats returns the network's counters so far.
func (n *MemNetwork) Stats() MemStats {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stats
}

// Close closes every endpoint and drops every datagram in flight.
func (n *MemNetwork) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	n.cancel()
	for tm := range n.timers {
		tm.Stop()
	}
	clear(n.timers)
	eps := make([]*MemTransport, 0, len(n.endpoints))
	for _, t := range n.endpoints {
		eps = append(eps, t)
	}
	n.mu.Unlock()
	for _, t := range eps {
		t.Close()
	}
	return nil
}

// cutLocked reports whether from → to is cut by a partition, a block or a
// down endpoint. n.mu must be held.
func (n *MemNetwork) cutLocked(from, to netip.AddrPort) bool {
	if n.down[from] || n.down[to] || n.blocked[link{from, to}] {
		return true
	}
	return n.partitioned && n.groups[from] != n.groups[to]
}

func (n *MemNetwork) linkLocked(from, to netip.AddrPort) LinkConfig {
	if c, ok := n.links[link{from, to}]; ok {
		return c
	}
	return n.defaultLink
}

// send routes one datagram. It is called by MemTransport.WriteTo.
func (n *MemNetwork) send(b []byte, from, to netip.AddrPort) {
	if to.Addr() == MemBroadcast {
		n.broadcast(b, from, to.Port())
		return
	}
	var delays [2]time.Duration
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	n.stats.Sent++
	dst := n.endpoints[to]
	switch {
	case n.cutLocked(from, to):
		n.stats.Cut++
		n.mu.Unlock()
		return
	case dst == nil:
		n.stats.Undeliverable++
		n.mu.Unlock()
		return
	}
	c := n.linkLocked(from, to)
	if c.Loss > 0 && n.rng.Float64() < c.Loss {
		n.stats.Lost++
		n.mu.Unlock()
		return
	}
	copies := 1
	if c.Duplicate > 0 && n.rng.Float64() < c.Duplicate {
		copies = 2
		n.stats.Duplicated++
	}
	for i := range copies {
		d := c.Delay
		if c.Jitter > 0 {
			d += time.Duration(n.rng.Int64N(int64(c.Jitter) + 1))
		}
		if c.Reorder > 0 && n.rng.Float64() < c.Reorder {
			rd := c.ReorderDelay
			if rd <= 0 {
				rd = 5 * time.Millisecond
			}
			d += rd
			n.stats.Reordered++
		}
		delays[i] = d
	}
	n.mu.Unlock()

	for i := range copies {
		if delays[i] <= 0 {
			n.deliver(dst, b, from)
			continue
		}
		n.deliverLater(dst, b, from, delays[i])
	}
}

// deliver hands b to dst now, unless dst is down.
func (n *MemNetwork) deliver(dst *MemTransport, b []byte, from netip.AddrPort) {
	n.mu.Lock()
	if n.down[dst.addr] {
		n.stats.Cut++
		n.mu.Unlock()
		return
	}
	n.stats.Delivered++
	n.mu.Unlock()
	dst.receive(b, from)
}

// deliverLater copies b into one of dst's buffers and delivers it after d.
func (n *MemNetwork) deliverLater(dst *MemTransport, b []byte, from netip.AddrPort, d time.Duration) {
	if len(b) > dst.max {
		dst.stats.tooLarge.Add(1)
		return
	}
	buf := dst.pool.get()
	copy(buf.b, b)
	size := len(b)
	n.mu.Lock()
	if n.closed || n.inFlight >= n.maxInFlight {
		if !n.closed {
			n.stats.Overflow++
		}
		n.mu.Unlock()
		dst.pool.put(buf)
		return
	}
	n.inFlight++
	var tm *time.Timer
	tm = time.AfterFunc(d, func() {
		n.mu.Lock()
		_, live := n.timers[tm]
		delete(n.timers, tm)
		n.inFlight--
		n.mu.Unlock()
		if live {
			n.deliver(dst, buf.b[:size], from)
		}
		dst.pool.put(buf)
	})
	n.timers[tm] = struct{}{}
	n.mu.Unlock()
}

// dial connects from → to as a stream.
func (n *MemNetwork) dial(ctx context.Context, from *MemTransport, to netip.AddrPort) (net.Conn, error) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, ErrClosed
	}
	cut := n.cutLocked(from.addr, to) || n.cutLocked(to, from.addr)
	dst := n.endpoints[to]
	rtt := n.linkLocked(from.addr, to).Delay + n.linkLocked(to, from.addr).Delay
	n.mu.Unlock()

	opErr := func(err error) error {
		return fmt.Errorf("transport: dial stream %s: %w", to, &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(to), Err: err})
	}
	if cut {
		// Nothing comes back over a cut link: the dial hangs as a
		// TCP SYN would, until the caller gives up.
		select {
		case <-ctx.Done():
			return nil, opErr(ctx.Err())
		case <-from.stop.Done():
			return nil, ErrClosed
		}
	}
	if dst == nil {
		return nil, opErr(syscall.ECONNREFUSED)
	}
	if rtt > 0 {
		tm := time.NewTimer(rtt)
		defer tm.Stop()
		select {
		case <-tm.C:
		case <-ctx.Done():
			return nil, opErr(ctx.Err())
		case <-from.stop.Done():
			return nil, ErrClosed
		}
	}
	c1, c2 := net.Pipe()
	client := &memConn{Conn: c1, local: from.addr, remote: to}
	server := &memConn{Conn: c2, local: to, remote: from.addr}
	if !dst.accept(server) {
		client.Close()
		return nil, opErr(syscall.ECONNREFUSED)
	}
	return client, nil
}

// MemTransport is one endpoint of a MemNetwork. It implements Transport.
type MemTransport struct {
	net  *MemNetwork
	addr netip.AddrPort
	max  int

	mu      sync.RWMutex // guards closed against sends on closed channels
	closed  bool
	pool    *bufferPool
	packets chan Packet
	streams chan net.Conn
	stats   stats
	stop    context.Context
	cancel  context.CancelFunc

	closing atomic.Bool
}

var _ Transport = (*MemTransport)(nil)

// LocalAddr returns the endpoint's address.
func (t *MemTransport) LocalAddr() netip.AddrPort { return t.addr }

// Packets returns the channel of received datagrams.
func (t *MemTransport) Packets() <-chan Packet { return t.packets }

// Streams returns the channel of inbound streams.
func (t *MemTransport) Streams() <-chan net.Conn { return t.streams }

// Stats returns the endpoint's counters so far.
func (t *MemTransport) Stats() Stats { return t.stats.snapshot() }

// WriteTo sends b through the network to the endpoint at to, subject to the
// link's faults. b is copied before WriteTo returns.
func (t *MemTransport) WriteTo(b []byte, to netip.AddrPort) error {
	if len(b) > MaxDatagram {
		return ErrTooLarge
	}
	if t.closing.Load() {
		return ErrClosed
	}
	t.stats.packetsSent.Add(1)
	t.net.send(b, t.addr, unmapPort(to))
	return nil
}

// DialStream connects to the endpoint at to over a net.Pipe. The returned
// connection's LocalAddr is this endpoint's address (there are no ephemeral
// ports here). A dial over a cut link hangs until ctx ends; a dial to an
// address with no endpoint is refused at once. A partition made after a
// stream is open does not affect that stream.
func (t *MemTransport) DialStream(ctx context.Context, to netip.AddrPort) (net.Conn, error) {
	if t.closing.Load() {
		return nil, ErrClosed
	}
	return t.net.dial(ctx, t, unmapPort(to))
}

// receive queues a copy of b, or drops and counts it.
func (t *MemTransport) receive(b []byte, from netip.AddrPort) {
	if len(b) > t.max {
		t.stats.tooLarge.Add(1)
		return
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closed {
		return
	}
	buf := t.pool.get()
	n := copy(buf.b, b)
	select {
	case t.packets <- buf.packet(n, from, time.Now()):
		t.stats.packetsReceived.Add(1)
	default:
		t.stats.packetsDropped.Add(1)
		t.pool.put(buf)
	}
}

// accept queues an inbound stream; false means refused (closed endpoint).
func (t *MemTransport) accept(c net.Conn) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closed {
		return false
	}
	select {
	case t.streams <- c:
		t.stats.streamsAccepted.Add(1)
	default:
		// As with TCP: the connection was made, then closed by a
		// peer too busy to take it.
		c.Close()
		t.stats.streamsDropped.Add(1)
	}
	return true
}

// Close removes the endpoint from the network, closes streams still queued
// and closes Packets and Streams. The address becomes free for Listen.
func (t *MemTransport) Close() error {
	if t.closing.Swap(true) {
		return nil
	}
	t.cancel()
	n := t.net
	n.mu.Lock()
	if n.endpoints[t.addr] == t {
		delete(n.endpoints, t.addr)
	}
	n.mu.Unlock()
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	closeQueued(t.streams)
	close(t.packets)
	close(t.streams)
	return nil
}

// memConn is one side of a MemNetwork stream, reporting the endpoints'
// addresses instead of net.Pipe's "pipe".
type memConn struct {
	net.Conn
	local, remote netip.AddrPort
}

func (c *memConn) LocalAddr() net.Addr  { return net.TCPAddrFromAddrPort(c.local) }
func (c *memConn) RemoteAddr() net.Addr { return net.TCPAddrFromAddrPort(c.remote) }
