package bench

import (
	"context"
	"io"
	"log"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/meshward/membership"
	"github.com/meshward/membership/keyring"
	"github.com/meshward/membership/transport"
)

// impl starts nodes of one library in one configuration.
type impl interface {
	start(name string, c *counters) (node, error)
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
}

var key32 = []byte("0123456789abcdef0123456789abcdef")

// --- memberlist ---

type mlImpl struct{ encrypt bool }

type mlNode struct {
	m *memberlist.Memberlist
	a string
}

func (i mlImpl) start(name string, c *counters) (node, error) {
	logger := log.New(io.Discard, "", 0)
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
	if i.encrypt {
		cfg.SecretKey = key32 // AES-256-GCM
	}
	m, err := memberlist.Create(cfg)
	if err != nil {
		nt.Shutdown()
		return nil, err
	}
	return &mlNode{m: m, a: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}, nil
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

type oursImpl struct{ encrypt bool }

type oursNode struct {
	n *membership.Node
}

func (i oursImpl) start(name string, c *counters) (node, error) {
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
	n, err := membership.New(opts...)
	if err != nil {
		return nil, err
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
