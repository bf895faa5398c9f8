package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a Net transport. The zero value binds 0.0.0.0:7946 and
// chooses the advertise address from the host's interfaces.
type Config struct {
	// BindAddr is the local address to bind UDP and TCP to, resolved by
	// ResolveAddr: a literal ("0.0.0.0:7946", "[::1]:0") or a go-sockaddr
	// template ("{{ GetPrivateIP }}:7946"). Port 0 picks a free port that
	// both UDP and TCP get. An IPv4 address binds IPv4 only; "::" binds
	// both IPv4 and IPv6 where the host allows it. Default "0.0.0.0:7946".
	BindAddr string

	// AdvertiseAddr is the address other members reach this node at, in
	// the same syntax. Without a port, the bound port is used. Default:
	// the bind address if it is specific, otherwise the address that
	// ChooseAdvertiseAddr picks.
	AdvertiseAddr string

	// MaxPacketSize is the largest datagram received; larger ones are
	// dropped and counted. Default DefaultMaxPacketSize.
	MaxPacketSize int

	// PacketQueue bounds the received datagrams waiting for the consumer.
	// Default DefaultPacketQueue.
	PacketQueue int

	// StreamQueue bounds the accepted streams waiting for the consumer.
	// Default DefaultStreamQueue.
	StreamQueue int

	// SocketBuffer is the requested UDP receive and send buffer size in
	// bytes. Default DefaultSocketBuffer.
	SocketBuffer int

	// interfaces replaces SystemInterfaceAddrs in tests.
	interfaces func() ([]InterfaceAddr, error)
}

// listenUDP is net.ListenUDP; tests replace it to exercise the retry.
var listenUDP = net.ListenUDP

// bindAttempts bounds how often NewNet retries port 0 when the free TCP port
// it got is taken for UDP.
const bindAttempts = 10

// Net is the real Transport: UDP datagrams and TCP streams on one port.
type Net struct {
	udp       *net.UDPConn
	ln        *net.TCPListener
	bound     netip.AddrPort
	advertise netip.AddrPort
	max       int

	pool    *bufferPool
	packets chan Packet
	streams chan net.Conn
	stats   stats

	closed  atomic.Bool
	closeMu sync.Mutex
	stop    context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

var _ Transport = (*Net)(nil)

// NewNet binds UDP and TCP on cfg.BindAddr, resolves the advertise address
// and starts reading. Errors name what is wrong: an unresolvable template, a
// port in use, no address to advertise (wrapping ErrNoAdvertiseAddr).
func NewNet(cfg Config) (*Net, error) {
	if cfg.BindAddr == "" {
		cfg.BindAddr = "0.0.0.0"
	}
	if cfg.MaxPacketSize <= 0 {
		cfg.MaxPacketSize = DefaultMaxPacketSize
	}
	if cfg.MaxPacketSize > MaxDatagram {
		cfg.MaxPacketSize = MaxDatagram
	}
	if cfg.PacketQueue <= 0 {
		cfg.PacketQueue = DefaultPacketQueue
	}
	if cfg.StreamQueue <= 0 {
		cfg.StreamQueue = DefaultStreamQueue
	}
	if cfg.SocketBuffer <= 0 {
		cfg.SocketBuffer = DefaultSocketBuffer
	}
	if cfg.interfaces == nil {
		cfg.interfaces = SystemInterfaceAddrs
	}

	bind, err := ResolveAddr(cfg.BindAddr, DefaultPort)
	if err != nil {
		return nil, fmt.Errorf("transport: bind address: %w", err)
	}
	udp, ln, err := listen(bind)
	if err != nil {
		return nil, err
	}
	bound := netip.AddrPortFrom(bind.Addr(), uint16(ln.Addr().(*net.TCPAddr).Port))
	setSocketBuffers(udp, cfg.SocketBuffer)

	advertise, err := advertiseAddr(cfg, bound)
	if err != nil {
		udp.Close()
		ln.Close()
		return nil, err
	}

	t := &Net{
		udp:       udp,
		ln:        ln,
		bound:     bound,
		advertise: advertise,
		max:       cfg.MaxPacketSize,
		// +1 byte so a datagram that is too large shows as such
		// instead of being silently truncated.
		pool:    newBufferPool(cfg.MaxPacketSize+1, cfg.PacketQueue+16),
		packets: make(chan Packet, cfg.PacketQueue),
		streams: make(chan net.Conn, cfg.StreamQueue),
	}
	t.stop, t.cancel = context.WithCancel(context.Background())
	t.wg.Add(2)
	go t.readLoop()
	go t.acceptLoop()
	return t, nil
}

// listen binds TCP, then UDP on the same port. With port 0 it retries when
// the free TCP port it got is taken for UDP.
func listen(bind netip.AddrPort) (*net.UDPConn, *net.TCPListener, error) {
	tcpNet, udpNet := "tcp", "udp"
	if bind.Addr().Is4() {
		tcpNet, udpNet = "tcp4", "udp4"
	}
	for attempt := 1; ; attempt++ {
		ln, err := net.ListenTCP(tcpNet, net.TCPAddrFromAddrPort(bind))
		if err != nil {
			if errIsAddrInUse(err) {
				return nil, nil, fmt.Errorf("transport: bind TCP %s: port %d is already in use (choose another port, or 0 for any free port): %w", bind, bind.Port(), err)
			}
			return nil, nil, fmt.Errorf("transport: bind TCP %s: %w", bind, err)
		}
		port := uint16(ln.Addr().(*net.TCPAddr).Port)
		udp, err := listenUDP(udpNet, net.UDPAddrFromAddrPort(netip.AddrPortFrom(bind.Addr(), port)))
		if err == nil {
			return udp, ln, nil
		}
		ln.Close()
		if bind.Port() == 0 && errIsAddrInUse(err) && attempt < bindAttempts {
			continue
		}
		if errIsAddrInUse(err) {
			return nil, nil, fmt.Errorf("transport: bind UDP %s: port %d is already in use for UDP (TCP was free): %w", bind, port, err)
		}
		return nil, nil, fmt.Errorf("transport: bind UDP %s: %w", bind, err)
	}
}

// setSocketBuffers asks for size bytes of socket buffer, halving on refusal.
// The kernel may grant less; that is not an error.
func setSocketBuffers(c *net.UDPConn, size int) {
	for s := size; s >= 64<<10; s /= 2 {
		if c.SetReadBuffer(s) == nil {
			break
		}
	}
	for s := size; s >= 64<<10; s /= 2 {
		if c.SetWriteBuffer(s) == nil {
			break
		}
	}
}

func advertiseAddr(cfg Config, bound netip.AddrPort) (netip.AddrPort, error) {
	if cfg.AdvertiseAddr != "" {
		a, err := ResolveAddr(cfg.AdvertiseAddr, bound.Port())
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("transport: advertise address: %w", err)
		}
		if a.Addr().IsUnspecified() {
			return netip.AddrPort{}, fmt.Errorf("transport: advertise address %q is unspecified (%s); give an address other members can reach", cfg.AdvertiseAddr, a.Addr())
		}
		if a.Port() == 0 {
			a = netip.AddrPortFrom(a.Addr(), bound.Port())
		}
		return a, nil
	}
	var ifs []InterfaceAddr
	if bound.Addr().IsUnspecified() {
		var err error
		if ifs, err = cfg.interfaces(); err != nil {
			return netip.AddrPort{}, fmt.Errorf("transport: choose advertise address: %w", err)
		}
	}
	ip, err := ChooseAdvertiseAddr(bound.Addr(), ifs)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return netip.AddrPortFrom(ip, bound.Port()), nil
}

// LocalAddr returns the advertised address, with the real port.
func (t *Net) LocalAddr() netip.AddrPort { return t.advertise }

// BindAddr returns the address the sockets are bound to, with the real port.
func (t *Net) BindAddr() netip.AddrPort { return t.bound }

// Packets returns the channel of received datagrams.
func (t *Net) Packets() <-chan Packet { return t.packets }

// Streams returns the channel of accepted inbound TCP connections.
func (t *Net) Streams() <-chan net.Conn { return t.streams }

// Stats returns the counters so far.
func (t *Net) Stats() Stats { return t.stats.snapshot() }

// WriteTo sends b as one UDP datagram to to. It does not allocate on success.
func (t *Net) WriteTo(b []byte, to netip.AddrPort) error {
	if len(b) > MaxDatagram {
		return ErrTooLarge
	}
	if t.closed.Load() {
		return ErrClosed
	}
	if a := to.Addr(); a.Is4In6() {
		to = netip.AddrPortFrom(a.Unmap(), to.Port())
	}
	if _, err := t.udp.WriteToUDPAddrPort(b, to); err != nil {
		if t.closed.Load() || errors.Is(err, net.ErrClosed) {
			return ErrClosed
		}
		t.stats.sendErrors.Add(1)
		return fmt.Errorf("transport: write to %s: %w", to, err)
	}
	t.stats.packetsSent.Add(1)
	return nil
}

// DialStream opens a TCP connection to to. Close cancels a dial in progress.
func (t *Net) DialStream(ctx context.Context, to netip.AddrPort) (net.Conn, error) {
	if t.closed.Load() {
		return nil, ErrClosed
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(t.stop, cancel)
	defer stop()
	to = unmapPort(to)
	var d net.Dialer
	// Dial from the address we are bound to, when it is a specific one:
	// the peer, its allow-list and any firewall between us then see the
	// same source for our streams as for our datagrams. Left to the
	// kernel, a host with several addresses may pick another (on loopback,
	// a dial to 127.0.0.1 leaves from 127.0.0.1 whatever we bound).
	if ua, ok := t.udp.LocalAddr().(*net.UDPAddr); ok && !ua.IP.IsUnspecified() {
		if local, ok := netip.AddrFromSlice(ua.IP); ok && local.Unmap().Is4() == to.Addr().Is4() {
			d.LocalAddr = &net.TCPAddr{IP: ua.IP, Zone: ua.Zone}
		}
	}
	c, err := d.DialContext(ctx, "tcp", to.String())
	if err != nil {
		if t.closed.Load() {
			return nil, ErrClosed
		}
		return nil, fmt.Errorf("transport: dial stream %s: %w", to, err)
	}
	return c, nil
}

func (t *Net) readLoop() {
	defer t.wg.Done()
	buf := t.pool.get()
	for {
		n, from, err := t.udp.ReadFromUDPAddrPort(buf.b)
		if err != nil {
			if t.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Transient (an ICMP error reported on the socket, say).
			// Pause briefly so a persistent error cannot spin.
			time.Sleep(time.Millisecond)
			continue
		}
		if n > t.max {
			t.stats.tooLarge.Add(1)
			continue
		}
		select {
		case t.packets <- buf.packet(n, unmapPort(from), time.Now()):
			t.stats.packetsReceived.Add(1)
			buf = t.pool.get()
		default:
			// The consumer is behind: drop rather than grow (SWIM
			// tolerates loss; the sender will probe again).
			t.stats.packetsDropped.Add(1)
		}
	}
}

func (t *Net) acceptLoop() {
	defer t.wg.Done()
	var backoff time.Duration
	for {
		c, err := t.ln.Accept()
		if err != nil {
			if t.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off as
			// net/http does, up to a second.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			select {
			case <-time.After(backoff):
			case <-t.stop.Done():
				return
			}
			continue
		}
		backoff = 0
		select {
		case t.streams <- c:
			t.stats.streamsAccepted.Add(1)
		default:
			c.Close()
			t.stats.streamsDropped.Add(1)
		}
	}
}

// Close closes the sockets, waits for the reader and acceptor goroutines to
// end, closes streams still queued, and closes Packets and Streams.
func (t *Net) Close() error {
	t.closeMu.Lock()
	defer t.closeMu.Unlock()
	if t.closed.Swap(true) {
		return nil
	}
	t.cancel()
	err := errors.Join(t.udp.Close(), t.ln.Close())
	t.wg.Wait()
	closeQueued(t.streams)
	close(t.packets)
	close(t.streams)
	return err
}

// closeQueued closes the connections still waiting in ch.
func closeQueued(ch chan net.Conn) {
	for {
		select {
		case c := <-ch:
			c.Close()
		default:
			return
		}
	}
}
