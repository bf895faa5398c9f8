//go:build linux

package integration

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// wireEnv turns TestWireCapture on.
const wireEnv = "MEMBERSHIP_WIRE"

// TestWireCapture captures a real cluster's traffic on the loopback
// interface with a raw packet socket and checks what an eavesdropper sees.
// Encrypted, no member name, payload, label or address (as text, or in the
// codec's binary form) appears in any datagram or in any TCP stream's
// bytes. A plaintext control run of the same cluster must show the names,
// payloads and binary addresses, so the check can fail. The label is
// never sent, in either mode (it is only mixed into the authentication),
// so the control run checks that it is absent too.
//
// It needs root (a raw socket) and runs only with MEMBERSHIP_WIRE=1; CI
// sets it. Only packets to or from the agents' ports are kept.
func TestWireCapture(t *testing.T) {
	if os.Getenv(wireEnv) != "1" {
		t.Skipf("set %s=1 (as root) to capture a cluster's traffic on loopback and check it for cleartext", wireEnv)
	}
	if testing.Short() {
		t.Skip("multi-process test: skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for a raw packet socket")
	}
	bin := agentBin(t)
	keyfile := filepath.Join(t.TempDir(), "cluster.key")
	if out, err := exec.Command(bin, "-keygen", "-keyfile", keyfile).CombinedOutput(); err != nil {
		t.Fatalf("agent -keygen: %v\n%s", err, out)
	}

	encrypted := wireRun(t, bin, "-keyfile", keyfile)
	for _, s := range encrypted.secrets {
		if where := encrypted.find(s.value); where != "" {
			t.Errorf("encrypted run: %s %q in cleartext, in %s", s.kind, s.value, where)
		}
	}
	t.Logf("encrypted run: %s; none of %d secrets in cleartext", encrypted.summary(), len(encrypted.secrets))

	plain := wireRun(t, bin, "-plaintext")
	seen := map[string]bool{}
	for _, s := range plain.secrets {
		where := plain.find(s.value)
		if s.kind == "label" {
			if where != "" {
				t.Errorf("plaintext run: the label %q was sent, in %s; it must never be", s.value, where)
			}
			continue
		}
		seen[s.kind] = seen[s.kind] || where != ""
	}
	for _, kind := range []string{"name", "payload", "binary address"} {
		if !seen[kind] {
			t.Errorf("plaintext control run: no %s in cleartext: the capture cannot see what it checks for", kind)
		}
	}
	t.Logf("plaintext control run: %s; names, payloads and addresses seen in cleartext", plain.summary())
}

// secret is a string the wire must not show.
type secret struct {
	kind  string // name, payload, label, address, binary address
	value []byte
}

// wireResult is what one run captured.
type wireResult struct {
	secrets  []secret
	udp      [][]byte          // each datagram's payload
	tcp      map[string][]byte // each TCP flow's bytes, concatenated
	udpCount int
	tcpBytes int
}

func (r *wireResult) summary() string {
	return fmt.Sprintf("%d datagrams and %d TCP payload bytes in %d flows captured", r.udpCount, r.tcpBytes, len(r.tcp))
}

// find returns where b appears, or "".
func (r *wireResult) find(b []byte) string {
	for i, d := range r.udp {
		if bytes.Contains(d, b) {
			return fmt.Sprintf("datagram %d", i)
		}
	}
	for flow, s := range r.tcp {
		if bytes.Contains(s, b) {
			return "TCP flow " + flow
		}
	}
	return ""
}

// wireRun runs three agents with args on fixed loopback ports while
// capturing: they join, one changes its payload, one leaves.
func wireRun(t *testing.T, bin string, args ...string) *wireResult {
	t.Helper()
	tag := make([]byte, 4)
	rand.Read(tag)
	id := hex.EncodeToString(tag)
	label := "wirelabel-" + id
	const n = 3
	var ports []int
	for range n {
		ports = append(ports, freeUDPTCPPort(t))
	}
	res := &wireResult{secrets: []secret{{"label", []byte(label)}}}
	names := make([]string, n)
	for i := range n {
		names[i] = fmt.Sprintf("wirename-%s-%d", id, i)
		addr := fmt.Sprintf("127.0.0.1:%d", ports[i])
		encoded := []byte{0xc4, 6, 127, 0, 0, 1, byte(ports[i] >> 8), byte(ports[i])} // codec: bin8 of IP and port
		res.secrets = append(res.secrets,
			secret{"name", []byte(names[i])},
			secret{"payload", []byte(fmt.Sprintf("wirepayload-%s-%d", id, i))},
			secret{"address", []byte(addr)},
			secret{"binary address", encoded},
		)
	}
	updated := fmt.Sprintf("wirepayload-%s-again", id)
	res.secrets = append(res.secrets, secret{"payload", []byte(updated)})

	capt := startCapture(t, ports)
	h := newHub()
	var procs []*proc
	for i := range n {
		a := append([]string{"-label", label, "-payload", fmt.Sprintf("wirepayload-%s-%d", id, i)}, args...)
		if i > 0 {
			a = append(a, "-join", fmt.Sprintf("127.0.0.1:%d", ports[0]))
		}
		procs = append(procs, startIn(t, h, "", bin, names[i], fmt.Sprintf("127.0.0.1:%d", ports[i]), a...))
	}
	h.waitFor(t, startDeadline, "every agent to see every other joined", func() bool {
		for _, p := range procs {
			for _, q := range procs {
				if p != q && p.eventAbout("joined", q.name, time.Time{}) == nil {
					return false
				}
			}
		}
		return true
	})
	at := time.Now()
	procs[1].command("payload %s", updated)
	h.waitFor(t, startDeadline, "the new payload to reach the others", func() bool {
		for _, p := range []*proc{procs[0], procs[2]} {
			if r := p.eventAbout("updated", names[1], at); r == nil || r.Payload != updated {
				return false
			}
		}
		return true
	})
	at = procs[2].signal(syscall.SIGTERM)
	h.waitFor(t, detectDeadline, "the others to see the leaver left", func() bool {
		return everyone(procs[:2], "left", names[2], at)
	})
	for _, p := range procs[:2] {
		p.signal(syscall.SIGTERM)
	}
	h.waitFor(t, detectDeadline, "every agent to exit", func() bool {
		for _, p := range procs {
			if !p.exited {
				return false
			}
		}
		return true
	})

	packets, drops := capt.stop(t)
	if drops > 0 {
		t.Fatalf("the capture socket dropped %d packets: the check would be incomplete", drops)
	}
	res.tcp = map[string][]byte{}
	for _, p := range packets {
		switch p.proto {
		case syscall.IPPROTO_UDP:
			res.udp = append(res.udp, p.payload)
			res.udpCount++
		case syscall.IPPROTO_TCP:
			flow := fmt.Sprintf("%d->%d", p.src, p.dst)
			res.tcp[flow] = append(res.tcp[flow], p.payload...)
			res.tcpBytes += len(p.payload)
		}
	}
	// The run exchanged probes, gossip and push-pull streams: a capture
	// with little of either saw nothing worth checking.
	if res.udpCount < 10 || res.tcpBytes < 200 {
		t.Fatalf("captured only %s: the capture did not see the cluster", res.summary())
	}
	return res
}

// freeUDPTCPPort returns a loopback port that was free for both UDP and
// TCP a moment ago: the agent binds both on one port.
func freeUDPTCPPort(t *testing.T) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp4", "127.0.0.1:"+strconv.Itoa(port))
		l.Close()
		if err == nil {
			pc.Close()
			return port
		}
	}
	t.Fatal("no port free for both UDP and TCP")
	return 0
}

// capPacket is one captured IPv4 packet to or from a watched port.
type capPacket struct {
	proto    int
	src, dst int // ports
	payload  []byte
}

// capture reads every frame on the loopback interface from a raw
// AF_PACKET socket and keeps the UDP and TCP payloads of packets to or from
// the watched ports.
type capture struct {
	fd    int
	ports map[int]bool
	done  chan struct{}
	quit  chan struct{}

	mu      sync.Mutex
	packets []capPacket
	kept    int
	err     error
}

// maxCaptured bounds the payload bytes kept.
const maxCaptured = 64 << 20

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func startCapture(t *testing.T, ports []int) *capture {
	t.Helper()
	lo, err := loopback()
	if err != nil {
		t.Fatal(err)
	}
	fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW, int(htons(syscall.ETH_P_ALL)))
	if err != nil {
		t.Fatalf("raw packet socket: %v", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrLinklayer{Protocol: htons(syscall.ETH_P_ALL), Ifindex: lo.Index}); err != nil {
		syscall.Close(fd)
		t.Fatalf("bind the raw socket to %s: %v", lo.Name, err)
	}
	// Root may exceed net.core.rmem_max: room for bursts while the test
	// goroutines run.
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, 32<<20); err != nil {
		t.Logf("SO_RCVBUFFORCE: %v", err)
	}
	tv := syscall.NsecToTimeval(int64(50 * time.Millisecond))
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		syscall.Close(fd)
		t.Fatal(err)
	}
	c := &capture{fd: fd, ports: map[int]bool{}, done: make(chan struct{}), quit: make(chan struct{})}
	for _, p := range ports {
		c.ports[p] = true
	}
	packetDrops(fd) // reset the kernel's counters
	go c.run()
	t.Cleanup(func() { c.halt() })
	return c
}

// loopback returns the loopback interface.
func loopback() (*net.Interface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	for i := range ifs {
		if ifs[i].Flags&net.FlagLoopback != 0 {
			return &ifs[i], nil
		}
	}
	return nil, errors.New("no loopback interface")
}

func (c *capture) run() {
	defer close(c.done)
	buf := make([]byte, 1<<16)
	for {
		n, from, err := syscall.Recvfrom(c.fd, buf, 0)
		if err != nil {
			if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR) {
				// The receive timeout passed with the queue empty:
				// once asked to stop, everything sent before is in.
				select {
				case <-c.quit:
					return
				default:
				}
				continue
			}
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
			return
		}
		// On loopback every packet is seen leaving and arriving: keep
		// the arriving copy only.
		if ll, ok := from.(*syscall.SockaddrLinklayer); ok && ll.Pkttype == syscall.PACKET_OUTGOING {
			continue
		}
		if p, ok := c.parse(buf[:n]); ok {
			c.mu.Lock()
			if c.kept+len(p.payload) <= maxCaptured {
				c.packets = append(c.packets, p)
				c.kept += len(p.payload)
			} else if c.err == nil {
				c.err = fmt.Errorf("more than %d bytes captured", maxCaptured)
			}
			c.mu.Unlock()
		}
	}
}

// parse extracts the transport payload of an IPv4 UDP or TCP packet in an
// Ethernet frame (loopback frames have a zeroed Ethernet header), if one
// of its ports is watched.
func (c *capture) parse(frame []byte) (capPacket, bool) {
	const eth = 14
	if len(frame) < eth+20 || frame[12] != 0x08 || frame[13] != 0x00 {
		return capPacket{}, false
	}
	ip := frame[eth:]
	if ip[0]>>4 != 4 {
		return capPacket{}, false
	}
	ihl := int(ip[0]&0x0f) * 4
	total := int(ip[2])<<8 | int(ip[3])
	if ihl < 20 || total < ihl || total > len(ip) {
		return capPacket{}, false
	}
	proto := int(ip[9])
	l4 := ip[ihl:total]
	var hdr int
	switch proto {
	case syscall.IPPROTO_UDP:
		hdr = 8
	case syscall.IPPROTO_TCP:
		if len(l4) < 20 {
			return capPacket{}, false
		}
		hdr = int(l4[12]>>4) * 4
	default:
		return capPacket{}, false
	}
	if len(l4) < hdr || hdr < 8 {
		return capPacket{}, false
	}
	src, dst := int(l4[0])<<8|int(l4[1]), int(l4[2])<<8|int(l4[3])
	if !c.ports[src] && !c.ports[dst] {
		return capPacket{}, false
	}
	return capPacket{proto: proto, src: src, dst: dst, payload: bytes.Clone(l4[hdr:])}, true
}

// halt stops the reader and closes the socket; safe to call twice.
func (c *capture) halt() {
	select {
	case <-c.quit:
	default:
		close(c.quit)
	}
	<-c.done
	if c.fd >= 0 {
		syscall.Close(c.fd)
		c.fd = -1
	}
}

// stop ends the capture, once the socket's queue is empty, and returns
// the packets kept and how many the kernel dropped for want of buffer
// space.
func (c *capture) stop(t *testing.T) ([]capPacket, uint32) {
	t.Helper()
	select {
	case <-c.quit:
	default:
		close(c.quit)
	}
	<-c.done
	drops := packetDrops(c.fd)
	syscall.Close(c.fd)
	c.fd = -1
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		t.Fatalf("capture: %v", c.err)
	}
	return c.packets, drops
}

// packetDrops returns, and resets, the packets the kernel dropped on the
// socket since the last call (PACKET_STATISTICS).
func packetDrops(fd int) uint32 {
	const solPacket, packetStatistics = 263, 6
	var st struct{ packets, drops uint32 }
	size := uint32(unsafe.Sizeof(st))
	_, _, errno := syscall.Syscall6(syscall.SYS_GETSOCKOPT, uintptr(fd), solPacket, packetStatistics,
		uintptr(unsafe.Pointer(&st)), uintptr(unsafe.Pointer(&size)), 0)
	if errno != 0 {
		return 0
	}
	return st.drops
}
