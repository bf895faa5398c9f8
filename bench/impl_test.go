package bench

import (
	"context"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/meshward/membership"
	"github.com/meshward/membership/keyring"
	"github.com/meshward/membership/transport"
)

// impl starts nodes of one library in one configuration. With a recorder,
// the node also takes part in application broadcasts: it reports every
// broadcast it receives to rec.
type impl interface {
	start(name string, c *counters, rec *recorder) (node, error)
}

// node is what the comparison needs of a running member.
type node interface {
	addr() string
	join(seed string) error
	// alive reports how many members, ourselves included, we hold alive
	// (memberlist counts suspects as alive; so do we here, for parity).
	alive() int
	// gone reports whether we hold name dead (or no longer list it).
	gone(name string) bool
	// crash stops the node without leaving.
	crash()
	// broadcast sends an application broadcast to every member (only for
	// a node started with a recorder).
	broadcast(payload []byte) error
}

var key32 = []byte("0123456789abcdef0123456789abcdef")

// --- memberlist ---

// mlImpl starts memberlist nodes. With noTCPPings it sets
// DisableTcpPings, turning off the TCP ping memberlist sends alongside the
// indirect probes after a failed UDP probe. With obs, obs reads every
// node's log and membership events (the loss scenario, loss_test.go).
type mlImpl struct {
	encrypt    bool
	noTCPPings bool
	obs        *mlObserver
}

type mlNode struct {
	m *memberlist.Memberlist
	a string
	d *mlDelegate // nil without a recorder
}

func (i mlImpl) start(name string, c *counters, rec *recorder) (node, error) {
	// MEMBERSHIP_BENCH_ML_SPREAD (a duration, off by default) sleeps that
	// long before each memberlist node is created. memberlist's tickers
	// keep the phase of their creation (state.go:137–171), so nodes
	// created at once probe in lockstep, which separate hosts would not;
	// a sleep of the probe interval ÷ N spreads their phases over the
	// period, as ours are (docs/performance.md, threats to validity).
	if d, err := time.ParseDuration(os.Getenv("MEMBERSHIP_BENCH_ML_SPREAD")); err == nil && d > 0 {
		time.Sleep(d)
	}
	logger := log.New(io.Discard, "", 0)
	if i.obs != nil {
		logger = log.New(i.obs, "", 0)
	}
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{"127.0.0.1"},
		BindPort:  0,
		Logger:    logger,
	})
	if err != nil {
		return nil, err
	}
	port := nt.GetAutoBindPort()
	cfg := memberlist.DefaultLANConfig()
	cfg.Name = name
	cfg.BindAddr = "127.0.0.1"
	cfg.BindPort = port
	cfg.AdvertiseAddr = "127.0.0.1"
	cfg.AdvertisePort = port
	cfg.Logger = logger
	cfg.Transport = newMLCounting(nt, c)
	cfg.DisableTcpPings = i.noTCPPings
	if i.obs != nil {
		cfg.Events = i.obs
	}
	if i.encrypt {
		cfg.SecretKey = key32 // AES-256-GCM
	}
	var d *mlDelegate
	if rec != nil {
		d = newMLDelegate(name, rec, cfg.RetransmitMult)
		cfg.Delegate = d
	}
	m, err := memberlist.Create(cfg)
	if err != nil {
		nt.Shutdown()
		return nil, err
	}
	if d != nil {
		d.m.Store(m)
	}
	return &mlNode{m: m, a: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), d: d}, nil
}

func (n *mlNode) addr() string { return n.a }

func (n *mlNode) join(seed string) error {
	_, err := n.m.Join([]string{seed})
	return err
}

func (n *mlNode) alive() int { return n.m.NumMembers() }

func (n *mlNode) gone(name string) bool {
	// Members lists every member that is neither dead nor left.
	for _, m := range n.m.Members() {
		if m.Name == name {
			return false
		}
	}
	return true
}

func (n *mlNode) crash() { n.m.Shutdown() }

func (n *mlNode) broadcast(payload []byte) error {
	if n.d == nil {
		return errors.New("memberlist node started without a delegate")
	}
	n.d.q.QueueBroadcast(mlBroadcast(payload))
	return nil
}

// mlDelegate gossips application broadcasts through memberlist's
// delegate, the way its users do (Serf's user events, Consul's events): a
// TransmitLimitedQueue at memberlist's own RetransmitMult feeds
// GetBroadcasts, and NotifyMsg queues what it receives for the first time
// for retransmission. Without that relay only the origin would send, and
// its 4·⌈log10(n+1)⌉ transmissions could not reach every member.
type mlDelegate struct {
	name string
	rec  *recorder
	q    *memberlist.TransmitLimitedQueue
	m    atomic.Pointer[memberlist.Memberlist]
}

func newMLDelegate(name string, rec *recorder, retransmitMult int) *mlDelegate {
	d := &mlDelegate{name: name, rec: rec}
	d.q = &memberlist.TransmitLimitedQueue{
		NumNodes: func() int {
			if m := d.m.Load(); m != nil {
				return m.NumMembers()
			}
			return 1
		},
		RetransmitMult: retransmitMult,
	}
	return d
}

// NodeMeta is part of memberlist.Delegate; there is no metadata.
func (d *mlDelegate) NodeMeta(limit int) []byte { return nil }

// NotifyMsg records a broadcast and relays it if it is new to this node.
func (d *mlDelegate) NotifyMsg(b []byte) {
	at := time.Now()
	id, ok := payloadID(b)
	if !ok {
		return
	}
	if d.rec.arrived(id, d.name, at) {
		d.q.QueueBroadcast(mlBroadcast(slices.Clone(b)))
	}
}

// GetBroadcasts hands memberlist what the queue holds for this datagram.
func (d *mlDelegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.q.GetBroadcasts(overhead, limit)
}

// LocalState is part of memberlist.Delegate; there is no state to push.
func (d *mlDelegate) LocalState(join bool) []byte { return nil }

// MergeRemoteState is part of memberlist.Delegate; there is no state.
func (d *mlDelegate) MergeRemoteState(buf []byte, join bool) {}

// mlBroadcast is one application broadcast in a TransmitLimitedQueue. It
// invalidates nothing: every broadcast of the comparison is distinct, as
// ours are sent without a key.
type mlBroadcast []byte

func (b mlBroadcast) Invalidates(memberlist.Broadcast) bool { return false }
func (b mlBroadcast) Message() []byte                       { return b }
func (b mlBroadcast) Finished()                             {}

// mlCounting wraps memberlist's NetTransport, counting what it sends.
type mlCounting struct {
	*memberlist.NetTransport
	c       *counters
	streams <-chan net.Conn
	done    chan struct{}
	once    sync.Once
}

var _ memberlist.NodeAwareTransport = (*mlCounting)(nil)

func newMLCounting(nt *memberlist.NetTransport, c *counters) *mlCounting {
	t := &mlCounting{NetTransport: nt, c: c, done: make(chan struct{})}
	t.streams = forwardStreams(nt.StreamCh(), c, t.done)
	return t
}

func (t *mlCounting) WriteTo(b []byte, addr string) (time.Time, error) {
	t.c.datagram(len(b))
	return t.NetTransport.WriteTo(b, addr)
}

func (t *mlCounting) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	t.c.datagram(len(b))
	return t.NetTransport.WriteToAddress(b, a)
}

func (t *mlCounting) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	conn, err := t.NetTransport.DialTimeout(addr, timeout)
	if err != nil {
		return nil, err
	}
	return countingConn{conn, t.c}, nil
}

func (t *mlCounting) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	conn, err := t.NetTransport.DialAddressTimeout(a, timeout)
	if err != nil {
		return nil, err
	}
	return countingConn{conn, t.c}, nil
}

func (t *mlCounting) StreamCh() <-chan net.Conn { return t.streams }

// Shutdown shuts the NetTransport down and only then stops the relay:
// NetTransport.Shutdown waits for its accept loop, which may be blocked
// handing a stream to the relay, and memberlist keeps reading StreamCh
// until the transport's Shutdown has returned.
func (t *mlCounting) Shutdown() error {
	err := t.NetTransport.Shutdown()
	t.once.Do(func() { close(t.done) })
	return err
}

// --- membership (ours) ---

// oursImpl starts membership nodes. With obs, every node sends its
// metrics to obs's in-memory sink and obs counts its membership events
// (the loss scenario, loss_test.go).
type oursImpl struct {
	encrypt bool
	obs     *oursObserver
}

type oursNode struct {
	n *membership.Node
}

func (i oursImpl) start(name string, c *counters, rec *recorder) (node, error) {
	nt, err := transport.NewNet(transport.Config{BindAddr: "127.0.0.1:0"})
	if err != nil {
		return nil, err
	}
	opts := []membership.Option{
		membership.WithName(name),
		membership.WithTransport(&oursCounting{Transport: nt, c: c, streams: forwardStreams(nt.Streams(), c, nil)}),
		membership.WithProfile(membership.ProfileLAN),
		membership.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
	}
	if i.encrypt {
		ring, err := keyring.New(key32) // XChaCha20-Poly1305, the default suite
		if err != nil {
			nt.Close()
			return nil, err
		}
		opts = append(opts, membership.WithKeyring(ring))
	} else {
		opts = append(opts, membership.WithoutEncryption())
	}
	if i.obs != nil {
		opts = append(opts, membership.WithMetrics(i.obs.sink))
	}
	n, err := membership.New(opts...)
	if err != nil {
		return nil, err
	}
	if i.obs != nil {
		i.obs.watch(n)
	}
	if rec != nil {
		// Drain Messages, as an application must; it is closed by
		// Shutdown.
		go func() {
			for m := range n.Messages() {
				at := time.Now()
				if m.Kind != membership.MessageBroadcast {
					continue
				}
				if id, ok := payloadID(m.Payload); ok {
					rec.arrived(id, name, at)
				}
			}
		}()
	}
	return &oursNode{n: n}, nil
}

func (n *oursNode) addr() string { return n.n.Myself().Addr.String() }

func (n *oursNode) join(seed string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := n.n.Join(ctx, seed)
	return err
}

func (n *oursNode) alive() int {
	k := 0
	for _, m := range n.n.Members() {
		if m.State == membership.StateAlive || m.State == membership.StateSuspect {
			k++
		}
	}
	return k
}

func (n *oursNode) gone(name string) bool {
	m, ok := n.n.Member(name)
	return ok && m.State == membership.StateDead
}

func (n *oursNode) crash() { n.n.Shutdown() }

func (n *oursNode) broadcast(payload []byte) error { return n.n.Broadcast("", payload) }

// oursCounting wraps transport.Net, counting what it sends.
type oursCounting struct {
	transport.Transport
	c       *counters
	streams <-chan net.Conn
}

func (t *oursCounting) WriteTo(b []byte, to netip.AddrPort) error {
	t.c.datagram(len(b))
	return t.Transport.WriteTo(b, to)
}

func (t *oursCounting) DialStream(ctx context.Context, to netip.AddrPort) (net.Conn, error) {
	conn, err := t.Transport.DialStream(ctx, to)
	if err != nil {
		return nil, err
	}
	return countingConn{conn, t.c}, nil
}

func (t *oursCounting) Streams() <-chan net.Conn { return t.streams }
