package membership

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshward/membership/metrics"
	"github.com/meshward/membership/transport"
)

// tallyTransport counts the bytes that cross a transport: datagrams
// written and received, and every stream's bytes both ways.
type tallyTransport struct {
	transport.Transport
	dgSent, dgRecv, stSent, stRecv atomic.Int64

	once     sync.Once
	packets  chan transport.Packet
	streams  chan net.Conn
	done     chan struct{}
	doneOnce sync.Once
}

func newTallyTransport(tr transport.Transport) *tallyTransport {
	return &tallyTransport{Transport: tr, done: make(chan struct{})}
}

// Close stops the forwarding goroutines and closes the transport.
func (t *tallyTransport) Close() error {
	t.doneOnce.Do(func() { close(t.done) })
	return t.Transport.Close()
}

func (t *tallyTransport) WriteTo(b []byte, to netip.AddrPort) error {
	err := t.Transport.WriteTo(b, to)
	if err == nil {
		t.dgSent.Add(int64(len(b)))
	}
	return err
}

// start forwards the inner channels through counting ones, once.
func (t *tallyTransport) start() {
	t.once.Do(func() {
		t.packets = make(chan transport.Packet)
		t.streams = make(chan net.Conn)
		go func() {
			defer close(t.packets)
			for p := range t.Transport.Packets() {
				t.dgRecv.Add(int64(len(p.Data)))
				select {
				case t.packets <- p:
				case <-t.done:
					return
				}
			}
		}()
		go func() {
			defer close(t.streams)
			for c := range t.Transport.Streams() {
				select {
				case t.streams <- &tallyConn{Conn: c, sent: &t.stSent, recv: &t.stRecv}:
				case <-t.done:
					c.Close()
					return
				}
			}
		}()
	})
}

func (t *tallyTransport) Packets() <-chan transport.Packet { t.start(); return t.packets }
func (t *tallyTransport) Streams() <-chan net.Conn         { t.start(); return t.streams }

func (t *tallyTransport) DialStream(ctx context.Context, to netip.AddrPort) (net.Conn, error) {
	c, err := t.Transport.DialStream(ctx, to)
	if err != nil {
		return nil, err
	}
	return &tallyConn{Conn: c, sent: &t.stSent, recv: &t.stRecv}, nil
}

type tallyConn struct {
	net.Conn
	sent, recv *atomic.Int64
}

func (c *tallyConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.recv.Add(int64(n))
	return n, err
}

func (c *tallyConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.sent.Add(int64(n))
	return n, err
}

// TestWireBytesCounted: the wire metrics count the sealed bytes that cross
// the transport (every datagram written, every stream byte both ways), and
// more than the plaintext message bytes.
func TestWireBytesCounted(t *testing.T) {
	sink := metrics.NewInmem()
	c := newMemCluster(t, 0)
	tr := newTallyTransport(c.net.NewTransport())
	t.Cleanup(func() { tr.Close() })
	nd, err := New(
		WithName("node-0"),
		WithTransport(tr),
		WithKeyring(newRing(t, testKey)),
		WithProfile(ProfileLocal),
		WithLogger(quietLogger()),
		WithMetrics(sink),
	)
	if err != nil {
		t.Fatal(err)
	}
	c.nodes = append(c.nodes, nd)
	c.add("node-1")
	c.add("node-2")
	c.joinAll() // node-0 answers two inbound push-pulls
	c.everyoneSees(c.nodes, names(c.nodes), StateAlive, 10*time.Second)
	via := func(ch metrics.Channel) metrics.Label {
		return metrics.Label{Name: metrics.LabelChannel, Value: string(ch)}
	}
	waitFor(t, 10*time.Second, "datagrams both ways", func() bool {
		in, _ := sink.Counter(metrics.WireBytesReceived, via(metrics.ChannelDatagram))
		out, _ := sink.Counter(metrics.WireBytesSent, via(metrics.ChannelDatagram))
		return in > 0 && out > 0
	})
	// Shutdown ends every stream and send: the counts are final.
	nd.Shutdown()

	counter := func(name string, ch metrics.Channel) int64 {
		v, _ := sink.Counter(name, via(ch))
		return int64(v)
	}
	if got, want := counter(metrics.WireBytesSent, metrics.ChannelDatagram), tr.dgSent.Load(); got != want {
		t.Errorf("datagram bytes sent: metric %d, transport %d", got, want)
	}
	if got, want := counter(metrics.WireBytesSent, metrics.ChannelStream), tr.stSent.Load(); got != want || got == 0 {
		t.Errorf("stream bytes sent: metric %d, transport %d", got, want)
	}
	if got, want := counter(metrics.WireBytesReceived, metrics.ChannelStream), tr.stRecv.Load(); got != want || got == 0 {
		t.Errorf("stream bytes received: metric %d, transport %d", got, want)
	}
	// Received datagrams count once opened and decoded: at most what
	// arrived (the last may have arrived during Shutdown).
	if got, arrived := counter(metrics.WireBytesReceived, metrics.ChannelDatagram), tr.dgRecv.Load(); got <= 0 || got > arrived {
		t.Errorf("datagram bytes received: metric %d, transport %d", got, arrived)
	}
	// Sealing adds a nonce, a tag and a timestamp to every datagram.
	plainSent, _ := sink.Counter(metrics.BytesSent)
	plainRecv, _ := sink.Counter(metrics.BytesReceived)
	if sent := counter(metrics.WireBytesSent, metrics.ChannelDatagram); float64(sent) <= plainSent {
		t.Errorf("sealed datagram bytes sent %d, not above the %v message bytes", sent, plainSent)
	}
	if recv := counter(metrics.WireBytesReceived, metrics.ChannelDatagram); float64(recv) <= plainRecv {
		t.Errorf("sealed datagram bytes received %d, not above the %v message bytes", recv, plainRecv)
	}
}
