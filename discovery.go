package membership

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/meshward/membership/swim"
	"github.com/meshward/membership/transport"
)

// LAN discovery: a node that knows nobody finds the members on its local
// networks with one datagram per network. See docs/operator.md.

// ErrNoDiscovery: the transport cannot reach a whole local network with
// one datagram (a custom transport that is not a transport.Discoverer), or
// the host has no interface to discover on.
var ErrNoDiscovery = errors.New("membership: no local network to discover members on")

// discovery is one Discover call in flight; owned by the loop goroutine.
type discovery struct {
	pending int                 // discovery pings not ended yet
	names   map[string]struct{} // members that answered
	done    chan struct{}       // closed when every ping has ended
}

// Discover finds the members on this host's local networks: it sends a
// discovery probe to the broadcast address of every IPv4 network on an
// interface that is up, and to the all-nodes group ff02::1 on every IPv6
// one (for the address families the node is bound to), at each of ports,
// or at our own port when none is given. The probe is an ordinary ping by
// address, sealed and authenticated like every datagram and carrying our
// alive message: every member that receives it and holds the key and label
// learns of us and answers, and its answer adds it to our view as
// AddMember would. Anything else is dropped on either side, as any forged
// datagram is. From there, gossip and push-pull spread the rest.
//
// Discover waits one protocol period for answers, or until ctx ends, and
// returns how many distinct members answered (members we knew already
// included). Members bound to a specific address rather than a wildcard
// (0.0.0.0, the default, or ::) do not receive broadcasts, and members
// outside the local networks are not reached: use Join for those. The
// allow-list applies to the answers as to any datagram.
func (n *Node) Discover(ctx context.Context, ports ...uint16) (int, error) {
	if !n.running() {
		return 0, ErrShutdown
	}
	d, ok := n.tr.(transport.Discoverer)
	if !ok {
		return 0, fmt.Errorf("%w: the transport (%T) cannot broadcast", ErrNoDiscovery, n.tr)
	}
	if len(ports) == 0 {
		ports = []uint16{n.tr.LocalAddr().Port()}
	}
	var targets []string
	disc := &discovery{names: make(map[string]struct{}), done: make(chan struct{})}
	var errs []error
	for _, p := range ports {
		addrs, err := d.DiscoveryAddrs(p)
		if err != nil {
			return 0, fmt.Errorf("membership: discover: %w", err)
		}
		n.do(func() {
			for _, a := range addrs {
				tok, err := n.core.Discover(a)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				if n.discoveries == nil {
					n.discoveries = make(map[uint64]*discovery)
				}
				n.discoveries[tok] = disc
				disc.pending++
				targets = append(targets, a.String())
			}
		})
	}
	if len(targets) == 0 {
		if len(errs) > 0 {
			return 0, fmt.Errorf("membership: discover: %w", errors.Join(errs...))
		}
		return 0, fmt.Errorf("%w: no interface is up with an IPv4 broadcast address or IPv6 multicast", ErrNoDiscovery)
	}
	n.log.Debug("discovery probes sent", "to", targets)
	select {
	case <-disc.done:
		return len(disc.names), nil
	case <-ctx.Done():
		var found int
		n.do(func() {
			for tok, d := range n.discoveries {
				if d == disc {
					delete(n.discoveries, tok)
				}
			}
			found = len(disc.names)
		})
		return found, fmt.Errorf("membership: discover: %w", ctx.Err())
	case <-n.loopDone:
		return 0, ErrShutdown
	}
}

// discoveryResult takes a probe result that belongs to a Discover call, and
// reports whether it did. It runs on the loop goroutine.
func (n *Node) discoveryResult(r swim.ProbeResult) bool {
	d, ok := n.discoveries[r.Token]
	if !ok {
		return false
	}
	if r.OK {
		if len(d.names) < n.pcfg.MaxMembers {
			d.names[r.Name] = struct{}{}
		}
		return true
	}
	delete(n.discoveries, r.Token)
	if d.pending--; d.pending == 0 {
		close(d.done)
	}
	return true
}

// WithDiscovery makes the node discover members on its local networks
// (Discover, at its own port) as soon as it starts, and again every
// interval, jittered by ±10 %, for as long as it knows no other live
// member: a group of nodes started on one LAN with no seed list finds
// itself, and a node whose peers all went away keeps looking. Once it has
// company it stops; Join and gossip do the rest. An interval of 0
// discovers once, at start. Each discovery costs one datagram per local
// network and an answer from every member that hears it. Default: off.
func WithDiscovery(interval time.Duration) Option {
	return func(c *config) error {
		if interval < 0 {
			return fmt.Errorf("WithDiscovery: negative interval %v", interval)
		}
		c.discover, c.discoverEvery = true, interval
		return nil
	}
}

// startDiscovery starts the discovery goroutine of WithDiscovery.
func (n *Node) startDiscovery() {
	if !n.cfg.discover {
		return
	}
	n.bg.Add(1)
	go n.discoverLoop()
}

// discoverLoop discovers at start, then every interval while alone.
func (n *Node) discoverLoop() {
	defer n.bg.Done()
	every := n.cfg.discoverEvery
	for {
		var alone bool
		n.do(func() { alone = n.core.NumLive() <= 1 })
		if alone {
			found, err := n.Discover(n.ctx)
			switch {
			case n.ctx.Err() != nil || errors.Is(err, ErrShutdown):
				return
			case err != nil:
				if ok, suppressed := n.limiter.allow("discover", time.Now()); ok {
					n.log.Warn("discovery failed", "err", err, "suppressed", suppressed)
				}
			case found > 0:
				n.log.Info("discovered members on the local network", "answered", found)
			}
		}
		if every == 0 {
			return
		}
		t := time.NewTimer(every - every/10 + rand.N(every/5+1))
		select {
		case <-t.C:
		case <-n.stop:
			t.Stop()
			return
		}
	}
}
