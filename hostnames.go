package membership

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/meshward/membership/swim"
)

// lookupFunc resolves a host name to its addresses, as
// net.Resolver.LookupNetIP does for the network "ip".
type lookupFunc func(ctx context.Context, host string) ([]netip.Addr, error)

func lookupDNS(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// withLookup replaces DNS for host names: for tests of names with several
// addresses.
func withLookup(f lookupFunc) Option {
	return func(c *config) error { c.lookup = f; return nil }
}

// lookup returns the node's resolver.
func (n *Node) lookup() lookupFunc {
	if n.cfg.lookup != nil {
		return n.cfg.lookup
	}
	return lookupDNS
}

// maxProbeAddrs bounds how many of a host name's addresses Probe and
// AddMember probe.
const maxProbeAddrs = 16

// probe resolves addr with ctx and probes each of its addresses at once
// (start says how: Probe or AddMember). It returns the first ack. With
// all, it waits for every probe to end, so that the caller knows each
// member that answers has been added; without, it stops the others at the
// first ack.
func (n *Node) probe(ctx context.Context, addr string, start func(*swim.Core, netip.AddrPort) (uint64, error), all bool) (swim.ProbeResult, error) {
	if !n.running() {
		return swim.ProbeResult{}, ErrShutdown
	}
	as, err := resolveSeed(ctx, addr, n.lookup())
	if err != nil {
		return swim.ProbeResult{}, fmt.Errorf("membership: probe %q: %w", addr, err)
	}
	as = slices.Compact(slices.SortedFunc(slices.Values(as), netip.AddrPort.Compare))
	switch len(as) {
	case 0:
		return swim.ProbeResult{}, fmt.Errorf("membership: probe %q: the name has no address", addr)
	case 1:
		return n.probeAddr(ctx, as[0], start)
	}
	as = as[:min(len(as), maxProbeAddrs)]
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type answer struct {
		r   swim.ProbeResult
		err error
	}
	answers := make(chan answer, len(as))
	for _, a := range as {
		go func() {
			r, err := n.probeAddr(ctx, a, start)
			answers <- answer{r, err}
		}()
	}
	var (
		first swim.ProbeResult
		ok    bool
		errs  []error
	)
	for range as {
		a := <-answers
		switch {
		case a.err == nil && !ok:
			first, ok = a.r, true
			if !all {
				cancel() // the others end at once and are not counted
			}
		case a.err != nil && !ok:
			errs = append(errs, a.err)
		}
	}
	if ok {
		return first, nil
	}
	if !n.running() {
		return swim.ProbeResult{}, ErrShutdown
	}
	return swim.ProbeResult{}, fmt.Errorf("membership: probe %q: no address answered: %w", addr, errors.Join(errs...))
}
