package transport

import (
	"syscall"
	"testing"
)

// Discovery sends to broadcast addresses, which the kernel refuses with
// EACCES without SO_BROADCAST. The standard library sets it on every UDP
// socket it opens; this keeps that assumption checked.
func TestNetAllowsBroadcast(t *testing.T) {
	tr := newNet(t, Config{BindAddr: "127.0.0.1:0"})
	if v := sockBuf(t, tr, syscall.SO_BROADCAST); v != 1 {
		t.Fatalf("SO_BROADCAST = %d, want 1", v)
	}
}
