package membership

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshward/membership/metrics"
	"github.com/meshward/membership/swim"
	"github.com/meshward/membership/transport"
)

// udpCut drops the datagrams a node sends to the addresses cut says, as a
// firewall that drops UDP but lets TCP through would. Streams pass.
type udpCut struct {
	transport.Transport
	cut func(to netip.AddrPort) bool
}

func (u udpCut) WriteTo(b []byte, to netip.AddrPort) error {
	if u.cut(to) {
		return nil
	}
	return u.Transport.WriteTo(b, to)
}

// lockedBuffer is a log destination that tests may read while nodes write.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestStreamFallbackRealSockets: on real sockets, a member whose UDP is
// dropped both ways but whose TCP works stays alive in every view, is
// never suspected, and is reported (EventUDPBroken, a warning, metrics) by
// the members that probe it; when it really stops, it is still detected.
func TestStreamFallbackRealSockets(t *testing.T) {
	if testing.Short() {
		t.Skip("real sockets")
	}
	t.Parallel()
	var brokenAddr atomic.Value // netip.AddrPort
	brokenAddr.Store(netip.AddrPort{})
	newNode := func(name string, cut func(netip.AddrPort) bool, opts ...Option) *Node {
		tr, err := transport.NewNet(transport.Config{BindAddr: "127.0.0.1:0"})
		if err != nil {
			t.Fatal(err)
		}
		base := []Option{WithName(name), WithTransport(udpCut{tr, cut}), WithKeyring(newRing(t, testKey)),
			WithProfile(ProfileLocal), WithLogger(quietLogger()),
			// Longer periods than the Local profile's 200 ms leave a loaded
			// machine time for the stream: the member whose UDP is cut
			// cannot refute a suspicion, so one slow handshake would
			// make it die for real.
			WithProbeInterval(500 * time.Millisecond)}
		nd, err := New(append(base, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nd.Shutdown() })
		return nd
	}
	toBroken := func(to netip.AddrPort) bool { return to == brokenAddr.Load().(netip.AddrPort) }
	var logs lockedBuffer
	sink := metrics.NewInmem()
	seed := newNode("seed", toBroken, WithMetrics(sink), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	healthy := []*Node{seed, newNode("healthy-1", toBroken), newNode("healthy-2", toBroken)}
	broken := newNode("broken", func(netip.AddrPort) bool { return true })
	brokenAddr.Store(broken.Myself().Addr)

	var subs []*Subscription
	for _, nd := range healthy {
		subs = append(subs, nd.Subscribe(256, EventUDPBroken, EventSuspected, EventFailed))
	}
	for _, nd := range append(healthy[1:], broken) {
		// The broken member joins over TCP, which works.
		if _, err := nd.Join(context.Background(), seed.Myself().Addr.String()); err != nil {
			t.Fatalf("%s: Join: %v", nd.Myself().Name, err)
		}
	}

	// Every healthy member reports the broken one, and nobody suspects it.
	reported := map[string]bool{}
	deadline := time.After(30 * time.Second)
	for len(reported) < len(healthy) {
		for i, s := range subs {
			select {
			case ev := <-s.Events():
				if ev.Member.Name != "broken" {
					continue
				}
				switch ev.Kind {
				case EventUDPBroken:
					reported[healthy[i].Myself().Name] = true
				default:
					t.Fatalf("%s: %v although the member answers over TCP", healthy[i].Myself().Name, ev)
				}
			default:
			}
		}
		select {
		case <-deadline:
			t.Fatalf("after 30 s only %v reported the member whose UDP is dropped", reported)
		case <-time.After(10 * time.Millisecond):
		}
	}
	for _, nd := range healthy {
		if st := stateIn(nd, "broken"); st != "alive" {
			t.Fatalf("%s holds the UDP-broken member %s", nd.Myself().Name, st)
		}
	}
	ok, _ := sink.Counter(metrics.StreamProbes, metrics.Label{Name: metrics.LabelResult, Value: metrics.StreamProbeOK})
	saved, _ := sink.Counter(metrics.Probes, metrics.Label{Name: metrics.LabelResult, Value: string(metrics.ProbeStreamAck)})
	if ok < swim.StreamOnlyReport || saved < swim.StreamOnlyReport {
		t.Fatalf("seed metrics: %v stream pings ok, %v probes saved by the stream: want at least %d each", ok, saved, swim.StreamOnlyReport)
	}
	if !strings.Contains(logs.String(), "only over TCP") {
		t.Fatalf("no warning about the UDP-broken member in the seed's log:\n%s", logs.String())
	}
	if c := broken.Counts(); c.Alive != 4 {
		t.Fatalf("the UDP-broken member's own view: %+v, want 4 alive (its probes are saved by TCP too)", c)
	}

	// A crash fails the stream ping too: it is detected.
	broken.Shutdown()
	waitFor(t, 30*time.Second, "every healthy member to hold the stopped member failed", func() bool {
		for _, nd := range healthy {
			if stateIn(nd, "broken") != "dead" {
				return false
			}
		}
		return true
	})
}

// TestStreamPingMisdirected: a stream ping that names another member than
// the one at the address is not acked; one that names it is.
func TestStreamPingMisdirected(t *testing.T) {
	t.Parallel()
	c := newMemCluster(t, 2)
	a, b := c.nodes[0], c.nodes[1]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.streamPing(ctx, swim.StreamProbe{To: b.Myself().Addr, Name: "node-1", Seq: 7}); err != nil {
		t.Fatalf("stream ping of node-1 at its address: %v", err)
	}
	if err := a.streamPing(ctx, swim.StreamProbe{To: b.Myself().Addr, Name: "someone-else", Seq: 8}); err == nil {
		t.Fatal("a stream ping for another name was acked")
	}
	c.net.Block(a.Myself().Addr, b.Myself().Addr)
	short, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	if err := a.streamPing(short, swim.StreamProbe{To: b.Myself().Addr, Name: "node-1", Seq: 9}); err == nil {
		t.Fatal("a stream ping across a blocked link was acked")
	}
}

// FuzzStreamPing: the ping and ack records never panic their parsers, and
// what appendPing writes parses back.
func FuzzStreamPing(f *testing.F) {
	f.Add(appendPing(nil, 7, "node-1"), true)
	f.Add(appendPing(nil, 0xffffffff, strings.Repeat("n", swim.MaxNameLen)), true)
	f.Add([]byte{recordPing, 0, 0, 0, 1, 0}, true)
	f.Add([]byte{recordPingAck, 0, 0, 0, 7}, true)
	f.Add([]byte{recordPing, 0, 0, 0, 1, 200, 'a'}, false)
	f.Fuzz(func(t *testing.T, b []byte, fin bool) {
		if seq, name, ok := parsePing(b, fin); ok {
			if name == "" || len(name) > swim.MaxNameLen {
				t.Fatalf("parsed a name of %d bytes", len(name))
			}
			if got := appendPing(nil, seq, name); !bytes.Equal(got, b) {
				t.Fatalf("ping %x parsed as (%d, %q), which writes %x", b, seq, name, got)
			}
		}
		if seq, ok := parsePingAck(b, fin); ok && !bytes.Equal(binary.BigEndian.AppendUint32([]byte{recordPingAck}, seq), b) {
			t.Fatalf("ack %x parsed as %d", b, seq)
		}
	})
}
