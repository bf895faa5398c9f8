package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

const wait = 5 * time.Second

func newNet(t testing.TB, cfg Config) *Net {
	t.Helper()
	tr, err := NewNet(cfg)
	if err != nil {
		t.Fatalf("NewNet(%+v): %v", cfg, err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

func loopbacks(t *testing.T) []string {
	addrs := []string{"127.0.0.1:0"}
	if hasIPv6Loopback() {
		addrs = append(addrs, "[::1]:0")
	} else {
		t.Log("no IPv6 loopback on this host: IPv6 cases skipped")
	}
	return addrs
}

func TestNetDatagramsAndStreams(t *testing.T) {
	for _, bind := range loopbacks(t) {
		t.Run(bind, func(t *testing.T) {
			a := newNet(t, Config{BindAddr: bind})
			b := newNet(t, Config{BindAddr: bind})
			if a.LocalAddr().Port() == 0 || a.LocalAddr() == b.LocalAddr() {
				t.Fatalf("addresses: a=%s b=%s, want distinct real ports", a.LocalAddr(), b.LocalAddr())
			}
			if a.LocalAddr() != a.BindAddr() {
				t.Fatalf("advertise %s != bound %s for a specific bind address", a.LocalAddr(), a.BindAddr())
			}

			// Datagram a -> b, on the advertised port.
			msg := []byte("ping 1")
			if err := a.WriteTo(msg, b.LocalAddr()); err != nil {
				t.Fatal(err)
			}
			p := recvPacket(t, b, wait)
			if !bytes.Equal(p.Data, msg) || p.From != a.LocalAddr() || p.At.IsZero() {
				t.Fatalf("got %q from %s at %v, want %q from %s", p.Data, p.From, p.At, msg, a.LocalAddr())
			}
			p.Release()

			// Stream a -> b on the same port.
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			c, err := a.DialStream(ctx, b.LocalAddr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			s := recvStream(t, b, wait)
			defer s.Close()
			s.SetDeadline(time.Now().Add(wait))
			c.SetDeadline(time.Now().Add(wait))
			if _, err := c.Write([]byte("push-pull")); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, 9)
			if _, err := io.ReadFull(s, got); err != nil || string(got) != "push-pull" {
				t.Fatalf("stream read %q, %v", got, err)
			}
			// The reader counts a datagram or stream just after handing it
			// over, so the counters may trail what we received by a moment.
			waitFor(t, wait, "stats to count one datagram and one stream", func() bool {
				st := b.Stats()
				return st.PacketsReceived == 1 && st.StreamsAccepted == 1 && a.Stats().PacketsSent == 1
			})
		})
	}
}

func TestNetDualStackUnmapsIPv4(t *testing.T) {
	if !hasIPv6Loopback() {
		t.Skip("no IPv6 on this host")
	}
	ifs := func() ([]InterfaceAddr, error) {
		return []InterfaceAddr{{Interface: "eth0", Addr: netip.MustParseAddr("10.1.2.3"), Up: true, Running: true}}, nil
	}
	dual, err := NewNet(Config{BindAddr: "[::]:0", interfaces: ifs})
	if err != nil {
		t.Skipf("dual-stack bind not available: %v", err)
	}
	defer dual.Close()
	if want := netip.AddrPortFrom(netip.MustParseAddr("10.1.2.3"), dual.BindAddr().Port()); dual.LocalAddr() != want {
		t.Fatalf("advertise %s, want %s", dual.LocalAddr(), want)
	}
	v4 := newNet(t, Config{BindAddr: "127.0.0.1:0"})
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), dual.BindAddr().Port())
	if err := v4.WriteTo([]byte("x"), to); err != nil {
		t.Fatal(err)
	}
	p := recvPacket(t, dual, wait)
	defer p.Release()
	if p.From != v4.LocalAddr() || !p.From.Addr().Is4() {
		t.Fatalf("from %s, want unmapped %s", p.From, v4.LocalAddr())
	}
	// And back: the dual-stack socket writes to a plain IPv4 address.
	if err := dual.WriteTo([]byte("y"), p.From); err != nil {
		t.Fatal(err)
	}
	q := recvPacket(t, v4, wait)
	q.Release()
}

func TestNetPortInUse(t *testing.T) {
	// TCP port taken.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	_, err = NewNet(Config{BindAddr: fmt.Sprintf("127.0.0.1:%d", port)})
	if err == nil || !strings.Contains(err.Error(), "already in use") || !strings.Contains(err.Error(), "TCP") {
		t.Fatalf("TCP port in use: err = %v", err)
	}

	// UDP port taken, TCP free. Other tests' connections take ephemeral
	// TCP ports, so pick a UDP port whose TCP port is free too.
	var uc *net.UDPConn
	for range 20 {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		tl, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: c.LocalAddr().(*net.UDPAddr).Port})
		if err == nil {
			tl.Close()
			uc = c
			break
		}
		c.Close()
	}
	if uc == nil {
		t.Skip("no UDP port with its TCP port free in 20 tries")
	}
	defer uc.Close()
	uport := uc.LocalAddr().(*net.UDPAddr).Port
	_, err = NewNet(Config{BindAddr: fmt.Sprintf("127.0.0.1:%d", uport)})
	if err == nil || !strings.Contains(err.Error(), "UDP") || !strings.Contains(err.Error(), "already in use") {
		t.Fatalf("UDP port in use: err = %v", err)
	}
}

func TestNetBadAddresses(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{BindAddr: "{{ NoSuchFunc }}"}, "NoSuchFunc"},
		{Config{BindAddr: `{{ GetInterfaceIP "no-such-if0" }}:0`}, "resolved to no address"},
		{Config{BindAddr: "example.com:7946"}, "not an IP address"},
		{Config{BindAddr: "127.0.0.1:99999"}, "bad port"},
		{Config{BindAddr: "127.0.0.1:0", AdvertiseAddr: "{{ oops"}, "advertise address"},
		{Config{BindAddr: "127.0.0.1:0", AdvertiseAddr: "0.0.0.0"}, "unspecified"},
	} {
		tr, err := NewNet(tc.cfg)
		if err == nil {
			tr.Close()
			t.Errorf("NewNet(%+v) succeeded", tc.cfg)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewNet(%+v) = %v, want it to mention %q", tc.cfg, err, tc.want)
		}
	}
}

func TestNetAdvertise(t *testing.T) {
	priv := func() ([]InterfaceAddr, error) {
		return []InterfaceAddr{
			{Interface: "lo", Addr: netip.MustParseAddr("127.0.0.1"), Up: true, Running: true},
			{Interface: "eth0", Addr: netip.MustParseAddr("192.168.7.9"), Up: true, Running: true},
		}, nil
	}
	tr := newNet(t, Config{BindAddr: "0.0.0.0:0", interfaces: priv})
	if tr.LocalAddr().Addr() != netip.MustParseAddr("192.168.7.9") || tr.LocalAddr().Port() != tr.BindAddr().Port() {
		t.Fatalf("advertise %s (bound %s)", tr.LocalAddr(), tr.BindAddr())
	}

	// Explicit advertise address without port: the real bound port.
	tr2 := newNet(t, Config{BindAddr: "127.0.0.1:0", AdvertiseAddr: "192.0.2.10"})
	if want := netip.AddrPortFrom(netip.MustParseAddr("192.0.2.10"), tr2.BindAddr().Port()); tr2.LocalAddr() != want {
		t.Fatalf("advertise %s, want %s", tr2.LocalAddr(), want)
	}
	// With a port (a NAT mapping): kept.
	tr3 := newNet(t, Config{BindAddr: "127.0.0.1:0", AdvertiseAddr: "192.0.2.10:17946"})
	if tr3.LocalAddr() != netip.MustParseAddrPort("192.0.2.10:17946") {
		t.Fatalf("advertise %s", tr3.LocalAddr())
	}

	// Nothing usable: a clear error naming the option.
	none := func() ([]InterfaceAddr, error) {
		return []InterfaceAddr{{Interface: "lo", Addr: netip.MustParseAddr("127.0.0.1"), Up: true, Running: true}}, nil
	}
	_, err := NewNet(Config{BindAddr: "0.0.0.0:0", interfaces: none})
	if !errors.Is(err, ErrNoAdvertiseAddr) || !strings.Contains(err.Error(), "WithAdvertiseAddr") || !strings.Contains(err.Error(), "lo 127.0.0.1 (loopback)") {
		t.Fatalf("err = %v", err)
	}

	// The real host: either an address or the explanatory error.
	sys, err := NewNet(Config{BindAddr: "0.0.0.0:0"})
	if err != nil {
		if !errors.Is(err, ErrNoAdvertiseAddr) {
			t.Fatalf("wildcard bind on this host: %v", err)
		}
		t.Logf("this host has no advertisable address: %v", err)
	} else {
		a := sys.LocalAddr().Addr()
		if a.IsUnspecified() || a.IsLoopback() || !a.Is4() {
			t.Errorf("advertise %s for 0.0.0.0", a)
		}
		sys.Close()
	}
}

func TestNetBoundedQueueDropsAndCounts(t *testing.T) {
	const queue = 4
	a := newNet(t, Config{BindAddr: "127.0.0.1:0"})
	b := newNet(t, Config{BindAddr: "127.0.0.1:0", PacketQueue: queue})
	// Nobody reads b: the first `queue` datagrams wait, the rest are dropped.
	for i := range 50 {
		if err := a.WriteTo([]byte{byte(i)}, b.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	// All 50 are read from the socket (a loopback socket buffer of at
	// least 200 KiB loses none of 50 one-byte datagrams): 4 queued, the
	// rest dropped.
	waitFor(t, wait, "all datagrams read", func() bool {
		s := b.Stats()
		return s.PacketsReceived+s.PacketsDropped == 50
	})
	if s := b.Stats(); s.PacketsReceived != queue || s.PacketsDropped != 50-queue {
		t.Fatalf("stats %+v", s)
	}
	if got := len(b.Packets()); got != queue {
		t.Fatalf("queued %d, want %d", got, queue)
	}
	// Drain; the transport keeps working afterwards.
	for range queue {
		p := recvPacket(t, b, wait)
		p.Release()
	}
	if err := a.WriteTo([]byte("after"), b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	p := recvPacket(t, b, wait)
	if string(p.Data) != "after" {
		t.Fatalf("got %q", p.Data)
	}
	p.Release()
}

func TestNetTooLarge(t *testing.T) {
	a := newNet(t, Config{BindAddr: "127.0.0.1:0"})
	b := newNet(t, Config{BindAddr: "127.0.0.1:0", MaxPacketSize: 100})
	if err := a.WriteTo(make([]byte, 101), b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, wait, "too-large datagram counted", func() bool { return b.Stats().TooLarge == 1 })
	if err := a.WriteTo(make([]byte, 100), b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	p := recvPacket(t, b, wait)
	if len(p.Data) != 100 {
		t.Fatalf("len %d", len(p.Data))
	}
	p.Release()
	if err := a.WriteTo(make([]byte, MaxDatagram+1), b.LocalAddr()); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized write: %v", err)
	}
}

func TestNetStreamQueueBounded(t *testing.T) {
	a := newNet(t, Config{BindAddr: "127.0.0.1:0"})
	b := newNet(t, Config{BindAddr: "127.0.0.1:0", StreamQueue: 1})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for range 3 {
		c, err := a.DialStream(ctx, b.LocalAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	waitFor(t, wait, "stream drops", func() bool {
		s := b.Stats()
		return s.StreamsAccepted == 1 && s.StreamsDropped == 2
	})
}

func TestNetCloseUnblocksAndLeaksNothing(t *testing.T) {
	before := runtime.NumGoroutine()
	a, err := NewNet(Config{BindAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewNet(Config{BindAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	// A stream left queued must be closed by Close.
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, err := a.DialStream(ctx, b.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitFor(t, wait, "stream queued", func() bool { return b.Stats().StreamsAccepted == 1 })

	done := make(chan struct{})
	go func() { // a reader blocked on Packets, as the runtime's loop is
		for p := range b.Packets() {
			p.Release()
		}
		close(done)
	}()
	if err := b.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	select {
	case <-done:
	case <-time.After(wait):
		t.Fatal("reader not unblocked by Close")
	}
	if _, ok := <-b.Streams(); ok {
		t.Fatal("streams channel open after Close")
	}
	c.SetReadDeadline(time.Now().Add(wait))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("queued stream not closed by Close")
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if err := b.WriteTo([]byte("x"), a.LocalAddr()); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
	if _, err := b.DialStream(ctx, a.LocalAddr()); !errors.Is(err, ErrClosed) {
		t.Fatalf("dial after close: %v", err)
	}
	a.Close()
	c.Close()
	checkNoLeak(t, before)
}

func TestNetDialCancelledByClose(t *testing.T) {
	a := newNet(t, Config{BindAddr: "127.0.0.1:0"})
	// A dial to a port nobody listens on fails fast with a clear error.
	ln, _ := net.Listen("tcp4", "127.0.0.1:0")
	dead := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_, err := a.DialStream(ctx, dead)
	if err == nil || !strings.Contains(err.Error(), dead.String()) {
		t.Fatalf("dial to closed port: %v", err)
	}
}

func TestPacketReleaseIsIdempotent(t *testing.T) {
	pool := newBufferPool(16, 4)
	b := pool.get()
	p := b.packet(3, netip.AddrPort{}, time.Now())
	cp := p
	p.Release()
	p.Release()
	cp.Release() // stale copy: must not return the buffer a second time
	if n := len(pool.free); n != 1 {
		t.Fatalf("pool holds %d buffers, want 1", n)
	}
	// The buffer is handed out again; a stale Release must not free it.
	b2 := pool.get()
	p2 := b2.packet(1, netip.AddrPort{}, time.Now())
	cp.Release()
	if n := len(pool.free); n != 0 {
		t.Fatalf("stale release freed a live buffer (pool %d)", n)
	}
	p2.Release()
	if n := len(pool.free); n != 1 {
		t.Fatalf("pool holds %d, want 1", n)
	}
}

func BenchmarkNetDatagramRoundTrip(b *testing.B) {
	// One datagram written by a and read by b per iteration: the steady
	// state of the runtime's loop. Reports allocations for write + read.
	a := newNet(b, Config{BindAddr: "127.0.0.1:0"})
	r := newNet(b, Config{BindAddr: "127.0.0.1:0"})
	msg := make([]byte, 512)
	to := r.LocalAddr()
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	// Warm the pool so steady state is measured.
	for range 64 {
		if err := a.WriteTo(msg, to); err != nil {
			b.Fatal(err)
		}
		p := <-r.Packets()
		p.Release()
	}
	b.ResetTimer()
	for range b.N {
		if err := a.WriteTo(msg, to); err != nil {
			b.Fatal(err)
		}
		p := <-r.Packets()
		p.Release()
	}
}

func BenchmarkNetWriteTo(b *testing.B) {
	a := newNet(b, Config{BindAddr: "127.0.0.1:0"})
	r := newNet(b, Config{BindAddr: "127.0.0.1:0"})
	done := make(chan struct{})
	go func() { // drain
		for p := range r.Packets() {
			p.Release()
		}
		close(done)
	}()
	msg := make([]byte, 512)
	to := r.LocalAddr()
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	// Warm up: the writer outruns the reader, so the queue fills and the
	// pool grows to its bound once; steady state is measured after.
	for range 4 * DefaultPacketQueue {
		a.WriteTo(msg, to)
	}
	waitFor(b, wait, "warm-up read", func() bool {
		s := r.Stats()
		return s.PacketsReceived+s.PacketsDropped >= 2*DefaultPacketQueue
	})
	b.ResetTimer()
	for range b.N {
		if err := a.WriteTo(msg, to); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	r.Close()
	<-done
}

// TestSteadyStateDoesNotAllocate asserts what the benchmarks show: once the
// buffer pool is warm, writing, reading and releasing a datagram allocates
// nothing, on the real transport and on the in-memory one.
func TestSteadyStateDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own account")
	}
	n := NewMemNetwork(1)
	defer n.Close()
	ma, mb := n.NewTransport(), n.NewTransport()
	a := newNet(t, Config{BindAddr: "127.0.0.1:0"})
	b := newNet(t, Config{BindAddr: "127.0.0.1:0"})
	msg := make([]byte, 256)
	for _, tc := range []struct {
		name     string
		from, to Transport
	}{{"net", a, b}, {"mem", ma, mb}} {
		to := tc.to.LocalAddr()
		roundTrip := func() {
			if err := tc.from.WriteTo(msg, to); err != nil {
				t.Fatal(err)
			}
			p := <-tc.to.Packets()
			p.Release()
		}
		for range 100 {
			roundTrip()
		}
		if allocs := testing.AllocsPerRun(500, roundTrip); allocs != 0 {
			t.Errorf("%s: %.2f allocations per datagram", tc.name, allocs)
		}
	}
}

func TestNetPortZeroRetriesWhenUDPTaken(t *testing.T) {
	inUse := &net.OpError{Op: "listen", Net: "udp4", Err: os.NewSyscallError("bind", syscall.EADDRINUSE)}
	var tried []int
	failFirst := func(times int) func(string, *net.UDPAddr) (*net.UDPConn, error) {
		return func(network string, addr *net.UDPAddr) (*net.UDPConn, error) {
			tried = append(tried, addr.Port)
			if len(tried) <= times {
				return nil, inUse
			}
			return net.ListenUDP(network, addr)
		}
	}
	defer func() { listenUDP = net.ListenUDP }()

	// Port 0: the UDP twin of the first TCP ports is "taken"; NewNet
	// retries with fresh ports and both sockets end on the same one.
	listenUDP = failFirst(3)
	tr, err := NewNet(Config{BindAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatalf("NewNet with retries: %v", err)
	}
	defer tr.Close()
	if len(tried) != 4 || tried[3] != int(tr.BindAddr().Port()) {
		t.Fatalf("tried ports %v, bound %s", tried, tr.BindAddr())
	}
	if got := tr.udp.LocalAddr().(*net.UDPAddr).Port; got != int(tr.BindAddr().Port()) {
		t.Fatalf("UDP on %d, TCP on %d", got, tr.BindAddr().Port())
	}

	// Always taken: gives up after bindAttempts with a clear error.
	tried = nil
	listenUDP = failFirst(1 << 30)
	if _, err := NewNet(Config{BindAddr: "127.0.0.1:0"}); err == nil || !strings.Contains(err.Error(), "already in use for UDP") {
		t.Fatalf("err = %v", err)
	}
	if len(tried) != bindAttempts {
		t.Fatalf("%d attempts, want %d", len(tried), bindAttempts)
	}

	// A fixed port is not retried: the user asked for that port.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fixed := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	tried = nil
	listenUDP = failFirst(1)
	_, err = NewNet(Config{BindAddr: fmt.Sprintf("127.0.0.1:%d", fixed)})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprint(fixed)) || len(tried) != 1 {
		t.Fatalf("fixed port: %v after %d attempts", err, len(tried))
	}
}

func TestStatsSub(t *testing.T) {
	a := Stats{PacketsReceived: 10, PacketsDropped: 3, TooLarge: 1, PacketsSent: 7, SendErrors: 2, StreamsAccepted: 4, StreamsDropped: 1}
	b := Stats{PacketsReceived: 15, PacketsDropped: 9, TooLarge: 1, PacketsSent: 8, SendErrors: 2, StreamsAccepted: 6, StreamsDropped: 2}
	want := Stats{PacketsReceived: 5, PacketsDropped: 6, PacketsSent: 1, StreamsAccepted: 2, StreamsDropped: 1}
	if got := b.Sub(a); got != want {
		t.Fatalf("Sub = %+v, want %+v", got, want)
	}
}
