package transport

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// sockBuf reads SO_RCVBUF or SO_SNDBUF of the transport's UDP socket.
func sockBuf(t *testing.T, tr *Net, opt int) int {
	t.Helper()
	rc, err := tr.udp.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		v, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, opt)
	}); err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}
	return v
}

func TestNetSocketBuffers(t *testing.T) {
	small := newNet(t, Config{BindAddr: "127.0.0.1:0", SocketBuffer: 64 << 10})
	big := newNet(t, Config{BindAddr: "127.0.0.1:0"})
	// Linux doubles the value set and caps it at net.core.rmem_max, so
	// compare relative to a transport that asked for little.
	for opt, sysctl := range map[int]string{syscall.SO_RCVBUF: "rmem_max", syscall.SO_SNDBUF: "wmem_max"} {
		s, b := sockBuf(t, small, opt), sockBuf(t, big, opt)
		t.Logf("opt %d: asked 64 KiB -> %d, asked %d -> %d", opt, s, DefaultSocketBuffer, b)
		if s != 2*(64<<10) {
			t.Errorf("opt %d: 64 KiB request gave %d, want the kernel's doubled %d", opt, s, 2*(64<<10))
		}
		raw, err := os.ReadFile("/proc/sys/net/core/" + sysctl)
		if err != nil {
			t.Skipf("cannot read %s: %v", sysctl, err)
		}
		limit, err := strconv.Atoi(strings.TrimSpace(string(raw)))
		if err != nil {
			t.Fatal(err)
		}
		if want := 2 * min(DefaultSocketBuffer, limit); b != want {
			t.Errorf("opt %d: default request gave %d, want %d (%s = %d)", opt, b, want, sysctl, limit)
		}
	}
}
