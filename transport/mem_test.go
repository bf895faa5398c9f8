package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

func memPair(t *testing.T, seed int64) (*MemNetwork, *MemTransport, *MemTransport) {
	t.Helper()
	n := NewMemNetwork(seed)
	t.Cleanup(func() { n.Close() })
	return n, n.NewTransport(), n.NewTransport()
}

func TestMemBasics(t *testing.T) {
	_, a, b := memPair(t, 1)
	if a.LocalAddr() == b.LocalAddr() || !a.LocalAddr().Addr().IsLoopback() || a.LocalAddr().Port() != DefaultPort {
		t.Fatalf("addresses %s %s", a.LocalAddr(), b.LocalAddr())
	}
	buf := []byte("hello")
	if err := a.WriteTo(buf, b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	buf[0] = 'J' // WriteTo must have copied
	p := recvPacket(t, b, wait)
	if string(p.Data) != "hello" || p.From != a.LocalAddr() {
		t.Fatalf("got %q from %s", p.Data, p.From)
	}
	p.Release()

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, err := a.DialStream(ctx, b.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := recvStream(t, b, wait)
	defer s.Close()
	if s.RemoteAddr().String() != a.LocalAddr().String() || c.RemoteAddr().String() != b.LocalAddr().String() {
		t.Fatalf("stream addrs: server sees %s, client sees %s", s.RemoteAddr(), c.RemoteAddr())
	}
	go c.Write([]byte("state"))
	s.SetReadDeadline(time.Now().Add(wait))
	got := make([]byte, 5)
	if _, err := io.ReadFull(s, got); err != nil || string(got) != "state" {
		t.Fatalf("read %q %v", got, err)
	}
}

func TestMemListen(t *testing.T) {
	n := NewMemNetwork(1)
	defer n.Close()
	addr := netip.MustParseAddrPort("127.0.0.1:9000")
	a, err := n.Listen(MemConfig{Addr: addr})
	if err != nil || a.LocalAddr() != addr {
		t.Fatalf("listen: %v %v", a, err)
	}
	if _, err := n.Listen(MemConfig{Addr: addr}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second listen: %v", err)
	}
	a.Close()
	if _, err := n.Listen(MemConfig{Addr: addr}); err != nil {
		t.Fatalf("listen after close: %v", err)
	}
}

// lossRun sends count datagrams over a lossy, duplicating link and returns
// the sequence numbers received, in order.
func lossRun(t *testing.T, seed int64, count int) ([]byte, MemStats) {
	n, a, b := memPair(t, seed)
	n.SetDefaultLink(LinkConfig{Loss: 0.3, Duplicate: 0.1})
	for i := range count {
		if err := a.WriteTo([]byte{byte(i)}, b.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	st := n.Stats()
	var got []byte
	for len(b.Packets()) > 0 {
		p := <-b.Packets()
		got = append(got, p.Data[0])
		p.Release()
	}
	return got, st
}

func TestMemLossAndDuplicationDeterministic(t *testing.T) {
	const count = 200
	got1, st1 := lossRun(t, 42, count)
	got2, st2 := lossRun(t, 42, count)
	if string(got1) != string(got2) || st1 != st2 {
		t.Fatalf("same seed, different runs:\n%v %+v\n%v %+v", got1, st1, got2, st2)
	}
	if st1.Lost < count/10 || st1.Lost > count/2 {
		t.Fatalf("lost %d of %d at 30%% loss", st1.Lost, count)
	}
	if st1.Duplicated == 0 {
		t.Fatal("no duplicates at 10%")
	}
	if want := count - int(st1.Lost) + int(st1.Duplicated); len(got1) != want || int(st1.Delivered) != want {
		t.Fatalf("received %d, delivered %d, want %d (%+v)", len(got1), st1.Delivered, want, st1)
	}
	got3, _ := lossRun(t, 43, count)
	if string(got1) == string(got3) {
		t.Fatal("different seeds gave identical loss patterns")
	}
}

func TestMemDelayAndReorder(t *testing.T) {
	n, a, b := memPair(t, 1)
	const delay = 30 * time.Millisecond
	n.SetLink(a.LocalAddr(), b.LocalAddr(), LinkConfig{Delay: delay, Jitter: 5 * time.Millisecond})
	sent := time.Now()
	a.WriteTo([]byte("late"), b.LocalAddr())
	p := recvPacket(t, b, wait)
	if el := p.At.Sub(sent); el < delay {
		t.Fatalf("arrived after %v, before the link delay %v", el, delay)
	}
	p.Release()

	// The first datagram is held back, the second overtakes it.
	n.SetLink(a.LocalAddr(), b.LocalAddr(), LinkConfig{Reorder: 1, ReorderDelay: 50 * time.Millisecond})
	a.WriteTo([]byte("first"), b.LocalAddr())
	n.ClearLink(a.LocalAddr(), b.LocalAddr())
	a.WriteTo([]byte("second"), b.LocalAddr())
	var order []string
	for range 2 {
		p := recvPacket(t, b, wait)
		order = append(order, string(p.Data))
		p.Release()
	}
	if order[0] != "second" || order[1] != "first" || n.Stats().Reordered != 1 {
		t.Fatalf("order %v, stats %+v", order, n.Stats())
	}

	// The reverse link was never touched: immediate.
	b.WriteTo([]byte("back"), a.LocalAddr())
	if len(a.Packets()) != 1 {
		t.Fatal("reverse link delayed")
	}
}

func TestMemPartitionAndHeal(t *testing.T) {
	n := NewMemNetwork(1)
	defer n.Close()
	a, b, c := n.NewTransport(), n.NewTransport(), n.NewTransport()
	n.Partition([]netip.AddrPort{a.LocalAddr(), b.LocalAddr()}, []netip.AddrPort{c.LocalAddr()})
	a.WriteTo([]byte("ab"), b.LocalAddr())
	a.WriteTo([]byte("ac"), c.LocalAddr())
	c.WriteTo([]byte("ca"), a.LocalAddr())
	if len(b.Packets()) != 1 || len(c.Packets()) != 0 || len(a.Packets()) != 0 || n.Stats().Cut != 2 {
		t.Fatalf("partitioned: b=%d c=%d a=%d %+v", len(b.Packets()), len(c.Packets()), len(a.Packets()), n.Stats())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := a.DialStream(ctx, c.LocalAddr()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dial across partition: %v", err)
	}
	// Endpoints in no group form one more group together.
	d, e := n.NewTransport(), n.NewTransport()
	d.WriteTo([]byte("dc"), c.LocalAddr())
	d.WriteTo([]byte("da"), a.LocalAddr())
	d.WriteTo([]byte("de"), e.LocalAddr())
	if len(c.Packets()) != 0 || len(a.Packets()) != 0 || len(e.Packets()) != 1 {
		t.Fatalf("ungrouped endpoints: c=%d a=%d e=%d", len(c.Packets()), len(a.Packets()), len(e.Packets()))
	}

	n.Heal()
	a.WriteTo([]byte("ac2"), c.LocalAddr())
	if len(c.Packets()) != 1 {
		t.Fatal("not healed")
	}
}

func TestMemOneWayBlock(t *testing.T) {
	n, a, b := memPair(t, 1)
	n.Block(a.LocalAddr(), b.LocalAddr())
	a.WriteTo([]byte("x"), b.LocalAddr())
	b.WriteTo([]byte("y"), a.LocalAddr())
	if len(b.Packets()) != 0 || len(a.Packets()) != 1 {
		t.Fatalf("one-way: b got %d, a got %d", len(b.Packets()), len(a.Packets()))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := b.DialStream(ctx, a.LocalAddr()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("stream over a half-cut link: %v", err)
	}
	n.Unblock(a.LocalAddr(), b.LocalAddr())
	a.WriteTo([]byte("x"), b.LocalAddr())
	if len(b.Packets()) != 1 {
		t.Fatal("unblock did not restore the link")
	}
}

func TestMemDownEndpoint(t *testing.T) {
	n, a, b := memPair(t, 1)
	n.SetLink(a.LocalAddr(), b.LocalAddr(), LinkConfig{Delay: 20 * time.Millisecond})
	a.WriteTo([]byte("in flight"), b.LocalAddr())
	n.SetDown(b.LocalAddr(), true)
	// The datagram in flight is dropped when it reaches the down endpoint.
	waitFor(t, wait, "in-flight datagram cut", func() bool { return n.Stats().Cut == 1 })
	b.WriteTo([]byte("from down"), a.LocalAddr())
	if len(a.Packets()) != 0 || len(b.Packets()) != 0 || n.Stats().Cut != 2 {
		t.Fatalf("down endpoint still talks: %+v", n.Stats())
	}
	n.SetDown(b.LocalAddr(), false)
	b.WriteTo([]byte("up"), a.LocalAddr())
	if len(a.Packets()) != 1 {
		t.Fatal("endpoint not up again")
	}
}

func TestMemBoundedQueues(t *testing.T) {
	n := NewMemNetwork(1)
	defer n.Close()
	a := n.NewTransport()
	b, err := n.Listen(MemConfig{PacketQueue: 2, StreamQueue: 1, MaxPacketSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		a.WriteTo([]byte("x"), b.LocalAddr())
	}
	a.WriteTo(make([]byte, 11), b.LocalAddr())
	if s := b.Stats(); s.PacketsReceived != 2 || s.PacketsDropped != 8 || s.TooLarge != 1 {
		t.Fatalf("stats %+v", s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for range 2 {
		c, err := a.DialStream(ctx, b.LocalAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	if s := b.Stats(); s.StreamsAccepted != 1 || s.StreamsDropped != 1 {
		t.Fatalf("stream stats %+v", s)
	}
	// Bounded in flight: a network holding at most 3 delayed datagrams.
	n.mu.Lock()
	n.maxInFlight = 3
	n.mu.Unlock()
	n.SetLink(a.LocalAddr(), b.LocalAddr(), LinkConfig{Delay: time.Hour})
	for range 5 {
		a.WriteTo([]byte("x"), b.LocalAddr())
	}
	if s := n.Stats(); s.Overflow != 2 {
		t.Fatalf("overflow %+v", s)
	}
}

func TestMemDialRefused(t *testing.T) {
	_, a, _ := memPair(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_, err := a.DialStream(ctx, netip.MustParseAddrPort("127.0.99.99:1"))
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial to nobody: %v", err)
	}
	a.WriteTo([]byte("x"), netip.MustParseAddrPort("127.0.99.99:1")) // silently lost, like UDP
}

func TestMemCloseUnblocksAndLeaksNothing(t *testing.T) {
	before := runtime.NumGoroutine()
	n := NewMemNetwork(1)
	a, b, c := n.NewTransport(), n.NewTransport(), n.NewTransport()
	n.SetLink(a.LocalAddr(), b.LocalAddr(), LinkConfig{Delay: time.Hour})
	a.WriteTo([]byte("never"), b.LocalAddr())

	// A dial hanging on a cut link is released by closing the dialer.
	n.Block(a.LocalAddr(), c.LocalAddr())
	dialErr := make(chan error, 1)
	go func() {
		_, err := a.DialStream(context.Background(), c.LocalAddr())
		dialErr <- err
	}()
	done := make(chan struct{})
	go func() {
		for p := range b.Packets() {
			p.Release()
		}
		close(done)
	}()
	n.Close()
	for _, ch := range []<-chan struct{}{done} {
		select {
		case <-ch:
		case <-time.After(wait):
			t.Fatal("reader not unblocked by Close")
		}
	}
	select {
	case err := <-dialErr:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("hanging dial ended with %v", err)
		}
	case <-time.After(wait):
		t.Fatal("dial not released by Close")
	}
	if err := a.WriteTo([]byte("x"), b.LocalAddr()); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
	if _, err := n.Listen(MemConfig{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("listen after close: %v", err)
	}
	checkNoLeak(t, before)
}

func TestMemConcurrentUse(t *testing.T) {
	// Many writers and a reader per endpoint while links change and
	// endpoints close: the race detector and the absence of panics
	// (send on closed channel) are the assertions.
	n := NewMemNetwork(7)
	defer n.Close()
	const nodes = 6
	eps := make([]*MemTransport, nodes)
	for i := range eps {
		eps[i] = n.NewTransport()
	}
	n.SetDefaultLink(LinkConfig{Loss: 0.1, Duplicate: 0.1, Jitter: time.Millisecond})
	done := make(chan struct{})
	for _, e := range eps {
		go func() {
			for p := range e.Packets() {
				p.Release()
			}
			done <- struct{}{}
		}()
	}
	writers := make(chan struct{})
	for i, e := range eps {
		go func() {
			for j := range 200 {
				e.WriteTo([]byte(fmt.Sprint(j)), eps[(i+j)%nodes].LocalAddr())
			}
			writers <- struct{}{}
		}()
	}
	n.Partition(
		[]netip.AddrPort{eps[0].LocalAddr(), eps[1].LocalAddr()},
		[]netip.AddrPort{eps[2].LocalAddr()},
	)
	eps[5].Close()
	n.Heal()
	for range nodes {
		<-writers
	}
	n.Close()
	for range nodes {
		select {
		case <-done:
		case <-time.After(wait):
			t.Fatal("reader not released")
		}
	}
	if s := n.Stats(); s.Sent == 0 {
		t.Fatalf("nothing sent: %+v", s)
	}
}

func BenchmarkMemDatagram(b *testing.B) {
	n := NewMemNetwork(1)
	defer n.Close()
	a, r := n.NewTransport(), n.NewTransport()
	msg := make([]byte, 512)
	to := r.LocalAddr()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		a.WriteTo(msg, to)
		p := <-r.Packets()
		p.Release()
	}
}

var _ net.Conn = (*memConn)(nil)
