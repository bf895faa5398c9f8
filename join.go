package membership

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/meshward/membership/internal/envelope"
	"github.com/meshward/membership/transport"
)

// Join contacts each seed and exchanges full state with it over an
// encrypted stream, so that we learn the group and the group learns us. A
// seed is "ip:port", an IP (port 7946), a go-sockaddr template, or
// "host:port", whose every address (a DNS name of a headless service, say)
// becomes a seed. It returns how many seeds answered; with none, the error
// says why each failed (ErrSeedBusy when a seed kept refusing streams for
// load). A seed that fails is tried again, after a pause that grows from
// 50 ms to 1 s, until it answers or ctx ends (30 s when ctx has no
// deadline), since a seed in a join storm or under a flood of connections
// refuses streams for a moment, and one that is starting comes up. Our own
// address is skipped.
func (n *Node) Join(ctx context.Context, seeds ...string) (int, error) {
	if !n.running() {
		return 0, ErrShutdown
	}
	var addrs []netip.AddrPort
	var errs []error
	self := n.tr.LocalAddr()
	for _, s := range seeds {
		as, err := resolveSeed(ctx, s, n.lookup())
		if err != nil {
			errs = append(errs, fmt.Errorf("seed %q: %w", s, err))
			continue
		}
		for _, a := range as {
			if a != self && !slices.Contains(addrs, a) {
				addrs = append(addrs, a)
			}
		}
	}
	n.do(func() { n.core.Join(nil) }) // queue our alive message
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		ok  int
		sem = make(chan struct{}, 16) // exchanges at once
	)
	for _, a := range addrs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := n.joinOne(ctx, a)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("seed %v: %w", a, err))
				return
			}
			ok++
		}()
	}
	wg.Wait()
	if !n.running() {
		return ok, ErrShutdown
	}
	if ok == 0 && len(seeds) > 0 {
		if len(addrs) == 0 && len(errs) == 0 {
			return 0, nil // only ourselves: nothing to join
		}
		return 0, fmt.Errorf("%w: %w", ErrNoSeed, errors.Join(errs...))
	}
	if len(errs) > 0 {
		n.log.Warn("some seeds did not answer", "answered", ok, "err", errors.Join(errs...))
	}
	return ok, nil
}

// Join retries a seed that fails after a pause that starts at
// joinRetryMin and doubles up to joinRetryMax, with jitter, until the seed
// answers or the context ends; a context without a deadline gets
// joinRetryFor. A seed in a join storm, or under a flood of connections,
// refuses streams for a moment, and a seed that is still starting comes up.
const (
	joinRetryMin = 50 * time.Millisecond
	joinRetryMax = time.Second
	joinRetryFor = 30 * time.Second
)

// ErrSeedBusy: a seed refused our stream for load (too many connections
// waiting), for as long as Join kept trying.
var ErrSeedBusy = errors.New("seed is refusing streams: too many connections")

// joinOne exchanges state with one seed, retrying after a growing, jittered
// pause until it answers or ctx ends.
func (n *Node) joinOne(ctx context.Context, a netip.AddrPort) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, joinRetryFor)
		defer cancel()
	}
	pause := joinRetryMin
	for attempt := 1; ; attempt++ {
		err := n.pushPull(ctx, a, true)
		if err == nil {
			return nil
		}
		if errors.Is(err, envelope.ErrBusy) {
			err = fmt.Errorf("%w (tried %d times)", ErrSeedBusy, attempt)
		} else if attempt > 1 {
			err = fmt.Errorf("%w (tried %d times)", err, attempt)
		}
		var hungUp *hungUpError
		if errors.Is(err, ErrShutdown) || errors.Is(err, ErrNameConflict) || errors.Is(err, ErrNotAllowed) || errors.As(err, &hungUp) {
			return err
		}
		wait := pause/2 + rand.N(pause/2+1)
		pause = min(2*pause, joinRetryMax)
		if d, ok := ctx.Deadline(); ok && time.Until(d) < wait {
			return err // no time for another try
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		case <-n.stop:
			t.Stop()
			return err
		}
	}
}

// resolveSeed turns a seed into addresses: an address or template
// directly, a host name through lookup (DNS).
func resolveSeed(ctx context.Context, s string, lookup lookupFunc) ([]netip.AddrPort, error) {
	a, err := transport.ResolveAddr(s, DefaultPort)
	if err == nil {
		return []netip.AddrPort{a}, nil
	}
	host, portStr, serr := net.SplitHostPort(s)
	if serr != nil || strings.Contains(s, "{{") {
		return nil, err
	}
	port, perr := strconv.ParseUint(portStr, 10, 16)
	if perr != nil || port == 0 {
		return nil, fmt.Errorf("invalid port %q", portStr)
	}
	ips, lerr := lookup(ctx, host)
	if lerr != nil {
		return nil, lerr
	}
	out := make([]netip.AddrPort, 0, len(ips))
	for _, ip := range ips {
		out = append(out, netip.AddrPortFrom(ip.Unmap(), uint16(port)))
	}
	return out, nil
}
