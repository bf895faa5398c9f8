package transport

import (
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// recvPacket waits for one packet on tr, with a deadline.
func recvPacket(t testing.TB, tr Transport, timeout time.Duration) Packet {
	t.Helper()
	select {
	case p, ok := <-tr.Packets():
		if !ok {
			t.Fatalf("packets channel closed")
		}
		return p
	case <-time.After(timeout):
		t.Fatalf("no packet within %v", timeout)
	}
	return Packet{}
}

// recvStream waits for one inbound stream on tr, with a deadline.
func recvStream(t testing.TB, tr Transport, timeout time.Duration) net.Conn {
	t.Helper()
	select {
	case c, ok := <-tr.Streams():
		if !ok {
			t.Fatalf("streams channel closed")
		}
		return c
	case <-time.After(timeout):
		t.Fatalf("no stream within %v", timeout)
	}
	return nil
}

// checkNoLeak fails if goroutines started since before stay alive.
func checkNoLeak(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			n := runtime.Stack(buf, true)
			t.Fatalf("goroutines leaked: %d > %d\n%s", runtime.NumGoroutine(), before, buf[:n])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// hasIPv6Loopback reports whether [::1] can be bound.
func hasIPv6Loopback() bool {
	c, err := net.ListenUDP("udp6", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("[::1]:0")))
	if err != nil {
		return false
	}
	c.Close()
	return true
}
