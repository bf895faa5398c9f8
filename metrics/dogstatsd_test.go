package metrics

import (
	"errors"
	"io"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gometrics "github.com/armon/go-metrics"
)

var _ gometrics.ShutdownSink = (*DogStatsd)(nil)

// udpServer is a statsd server for tests: a UDP socket on loopback that
// collects every datagram it receives.
type udpServer struct {
	conn *net.UDPConn
	mu   sync.Mutex
	got  [][]byte
	wake chan struct{}
}

func newUDPServer(t *testing.T) *udpServer {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	s := &udpServer{conn: conn, wake: make(chan struct{}, 1)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		for {
			n, _, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.got = append(s.got, slices.Clone(buf[:n]))
			s.mu.Unlock()
			select {
			case s.wake <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return s
}

func (s *udpServer) addr() string { return s.conn.LocalAddr().String() }

// datagrams returns a copy of what arrived so far.
func (s *udpServer) datagrams() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

// lines returns every line received so far, in order.
func (s *udpServer) lines() []string {
	var out []string
	for _, d := range s.datagrams() {
		for l := range strings.SplitSeq(string(d), "\n") {
			if l != "" {
				out = append(out, l)
			}
		}
	}
	return out
}

// waitLines waits until at least n lines arrived, or fails after 5 s.
func (s *udpServer) waitLines(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		if l := s.lines(); len(l) >= n {
			return l
		}
		select {
		case <-s.wake:
		case <-deadline:
			t.Fatalf("waited 5s for %d statsd lines, got %q", n, s.lines())
		}
	}
}

func TestDogStatsdFormat(t *testing.T) {
	srv := newUDPServer(t)
	sink, err := NewDogStatsd(srv.addr())
	if err != nil {
		t.Fatal(err)
	}
	m := New(sink, node)
	m.Probe(ProbeAck)
	m.MemberCounts(4, 1, 0, 0)
	m.RTT(PathDirect, 1500*time.Microsecond)
	m.MessageSent("ping-req", 64)
	m.MessageSent("ping-req", 36)
	m.Flush() // the summed counters, in the order first counted
	sink.IncrCounter([]string{"plain", "counter"}, 2.5)
	sink.SetGauge([]string{"neg"}, -3)
	sink.EmitKey([]string{"kv"}, 7)
	sink.AddSample([]string{"bare"}, 0.25)
	sink.IncrCounterWithLabels([]string{"odd name:x|y", "p#q,r"}, 1, []Label{
		{Name: "we|ird key", Value: "a|b,c#d\ne:f"},
		{Name: "empty", Value: ""},
		{Name: "utf8", Value: "nœud-\xff"},
	})
	want := []string{
		"membership.probes:1|c|#result:ack,node:node-a",
		"membership.members:4|g|#state:alive,node:node-a",
		"membership.members:1|g|#state:suspect,node:node-a",
		"membership.members:0|g|#state:dead,node:node-a",
		"membership.members:0|g|#state:left,node:node-a",
		"membership.probes.rtt:1.5|ms|#path:direct,node:node-a",
		"membership.messages.sent:2|c|#type:ping-req,node:node-a",
		"membership.bytes.sent:100|c|#type:ping-req,node:node-a",
		"plain.counter:2.5|c",
		"neg:0|g", // a reset first: statsd reads "-3|g" as a decrement
		"neg:-3|g",
		"kv:7|g",
		"bare:0.25|ms",
		"odd_name_x_y.p_q_r:1|c|#we_ird_key:a_b_c_d_e:f,utf8:nœud-_",
	}
	got := srv.waitLines(t, len(want))
	if !slices.Equal(got, want) {
		t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	sink.Shutdown()
	if d := sink.Dropped(); d != 0 {
		t.Errorf("%d lines dropped", d)
	}
}

// TestDogStatsdPacking sends more lines than fit one datagram: they arrive
// in order, every datagram within DogStatsdMaxPacket and made of whole
// lines.
func TestDogStatsdPacking(t *testing.T) {
	srv := newUDPServer(t)
	sink, err := NewDogStatsd(srv.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Shutdown()
	const n = 300 // about 40 bytes each: several datagrams, fewer than the queue holds
	for i := range n {
		sink.IncrCounterWithLabels([]string{"membership", "probes"}, float32(i), []Label{node})
	}
	got := srv.waitLines(t, n)
	for i, l := range got {
		if want := "membership.probes:" + strconv.Itoa(i) + "|c|#node:node-a"; l != want {
			t.Fatalf("line %d: %q, want %q", i, l, want)
		}
	}
	ds := srv.datagrams()
	if len(ds) < 2 {
		t.Errorf("%d lines in %d datagram(s): not packed into several", n, len(ds))
	}
	for _, d := range ds {
		if len(d) > DogStatsdMaxPacket {
			t.Errorf("datagram of %d bytes, above %d", len(d), DogStatsdMaxPacket)
		}
		if d[len(d)-1] != '\n' {
			t.Errorf("datagram does not end a line: %q", d[max(0, len(d)-20):])
		}
	}
	if d := sink.Dropped(); d != 0 {
		t.Errorf("%d lines dropped", d)
	}
}

// TestDogStatsdFlushesPartial: one line, far from a full datagram, arrives
// by the flush interval.
func TestDogStatsdFlushesPartial(t *testing.T) {
	srv := newUDPServer(t)
	sink, err := NewDogStatsd(srv.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Shutdown()
	New(sink, node).HealthScore(2)
	if got := srv.waitLines(t, 1); got[0] != "membership.health:2|g|#node:node-a" {
		t.Errorf("got %q", got)
	}
}

// TestDogStatsdShutdownFlushes: what was written just before Shutdown
// arrives; what is written after is dropped and counted, without a panic.
func TestDogStatsdShutdownFlushes(t *testing.T) {
	srv := newUDPServer(t)
	sink := newDogStatsd(srv.addr(), time.Hour, func() (io.Writer, error) { // no flush by timer
		return net.Dial("udp", srv.addr())
	})
	m := New(sink, node)
	m.Death()
	sink.Shutdown()
	if got := srv.waitLines(t, 1); got[0] != "membership.deaths:1|c|#node:node-a" {
		t.Errorf("got %q", got)
	}
	m.Death()
	sink.Shutdown() // twice is fine
	if d := sink.Dropped(); d != 1 {
		t.Errorf("dropped %d after Shutdown, want 1", d)
	}
}

// TestDogStatsdCountsSocketErrors: with no server listening, the kernel
// refuses the datagrams (ICMP port unreachable on loopback); the lines are
// dropped and counted, and the caller never waits.
func TestDogStatsdCountsSocketErrors(t *testing.T) {
	srv := newUDPServer(t)
	addr := srv.addr()
	srv.conn.Close() // nobody listens on addr any more
	sink, err := NewDogStatsd(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Shutdown()
	m := New(sink, node)
	deadline := time.Now().Add(5 * time.Second)
	for sink.Dropped() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no line counted as dropped after 5s of sending to a closed port")
		}
		m.Probe(ProbeAck)
		time.Sleep(10 * time.Millisecond) // pace the writes; the condition is what we wait for
	}
}

// blockingWriter stands for a socket that does not return: the sink's
// sending goroutine waits on it until release is closed.
type blockingWriter struct {
	release chan struct{}
	mu      sync.Mutex
	writes  int
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	<-w.release
	w.mu.Lock()
	w.writes++
	w.mu.Unlock()
	return len(p), nil
}

// TestDogStatsdBoundedNeverBlocks: with the sender stuck, writes return at
// once, the buffered datagrams stay within the queue, and the overflow is
// dropped and counted line by line.
func TestDogStatsdBoundedNeverBlocks(t *testing.T) {
	w := &blockingWriter{release: make(chan struct{})}
	sink := newDogStatsd("test", time.Hour, func() (io.Writer, error) { return w, nil })
	line := len(appendLine(nil, []string{"membership", "probes"}, 1, "c", []Label{node}))
	perPacket := DogStatsdMaxPacket / line
	// Every buffer there is (the sender holds one while stuck on it, the
	// queue and the current one), many times over.
	const writes = 20 * (DogStatsdQueue + 2) * 40
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range writes {
			sink.IncrCounterWithLabels([]string{"membership", "probes"}, 1, []Label{node})
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("writes blocked behind a stuck socket")
	}
	kept := uint64(writes) - sink.Dropped()
	if max := uint64((DogStatsdQueue + 1) * perPacket); kept > max || kept == 0 {
		t.Errorf("%d lines kept while the socket was stuck, want between 1 and %d", kept, max)
	}
	close(w.release)
	sink.Shutdown()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.writes == 0 || w.writes > DogStatsdQueue+1 {
		t.Errorf("%d datagrams written, want between 1 and %d", w.writes, DogStatsdQueue+1)
	}
}

// TestDogStatsdDialFailure: an address that does not resolve drops and
// counts, and the sink keeps working (and shuts down).
func TestDogStatsdDialFailure(t *testing.T) {
	sink := newDogStatsd("nowhere", 10*time.Millisecond, func() (io.Writer, error) { return nil, errors.New("no such host") })
	sink.IncrCounter([]string{"x"}, 1)
	deadline := time.Now().Add(5 * time.Second)
	for sink.Dropped() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("a line to an unresolvable address was not counted as dropped")
		}
		time.Sleep(10 * time.Millisecond)
	}
	sink.Shutdown()
}

func TestDogStatsdRejects(t *testing.T) {
	for _, bad := range []string{"", "localhost", "127.0.0.1", ":8125"} {
		if _, err := NewDogStatsd(bad); err == nil {
			t.Errorf("NewDogStatsd(%q) accepted", bad)
		}
	}
	sink := newDogStatsd("x", time.Hour, func() (io.Writer, error) { return io.Discard, nil })
	defer sink.Shutdown()
	sink.SetGauge([]string{"nan"}, float32(math.NaN()))
	sink.SetGauge([]string{"inf"}, float32(math.Inf(1)))
	sink.IncrCounterWithLabels([]string{"long"}, 1, []Label{{Name: "v", Value: strings.Repeat("x", DogStatsdMaxPacket)}})
	if d := sink.Dropped(); d != 3 {
		t.Errorf("dropped %d of NaN, Inf and an oversized line, want 3", d)
	}
}

// TestDogStatsdAllocatesNothing: once Metrics has seen a label set,
// counting a message, a metric written at once and a Flush of the summed
// counters cost no allocation.
func TestDogStatsdAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	sink := newDogStatsd("x", time.Millisecond, func() (io.Writer, error) { return io.Discard, nil })
	defer sink.Shutdown()
	m := New(sink, node)
	f := func() {
		m.MessageSent("ping", 64)
		m.Probe(ProbeAck)
		m.Flush()
	}
	f()
	if a := testing.AllocsPerRun(1000, f); a != 0 {
		t.Errorf("%v allocations per round", a)
	}
}

// BenchmarkDogStatsd: one metric formatted into the sink's datagram.
func BenchmarkDogStatsd(b *testing.B) {
	sink := newDogStatsd("x", time.Millisecond, func() (io.Writer, error) { return io.Discard, nil })
	defer sink.Shutdown()
	m := New(sink, node)
	b.ReportAllocs()
	for range b.N {
		m.Probe(ProbeAck)
	}
}
