package membership

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshward/membership/metrics"
	"github.com/meshward/membership/transport"
)

// skewClock is a node's wall clock offset from the real one, changeable
// while the node runs.
type skewClock struct{ d atomic.Int64 }

func (s *skewClock) set(d time.Duration) { s.d.Store(int64(d)) }
func (s *skewClock) option() Option {
	return withClockSkew(func() time.Duration { return time.Duration(s.d.Load()) })
}

// clockOf waits until nd has an estimate of name's clock and returns it.
func clockOf(t *testing.T, nd *Node, name string) ClockOffset {
	t.Helper()
	var c ClockOffset
	waitFor(t, 10*time.Second, "a clock estimate of "+name, func() bool {
		m, ok := nd.Member(name)
		c = m.Clock
		return ok && c.Known()
	})
	return c
}

// checkBound fails unless the true offset lies within the estimate's
// error bound.
func checkBound(t *testing.T, c ClockOffset, truth time.Duration, what string) {
	t.Helper()
	if d := c.Offset - truth; d > c.Error || -d > c.Error {
		t.Fatalf("%s: estimate %v ± %v, the true offset %v is outside", what, c.Offset, c.Error, truth)
	}
	if c.Error < clockResolution/2 {
		t.Fatalf("%s: error bound %v below the timestamps' resolution", what, c.Error)
	}
}

func TestClockEntryKeepsTheTightestRecentSample(t *testing.T) {
	t0 := time.Now()
	at := func(s time.Duration) time.Time { return t0.Add(s) }
	var e clockEntry
	e.add(clockSample{offset: 100 * time.Millisecond, err: 20 * time.Millisecond, at: at(0)})
	e.add(clockSample{offset: 95 * time.Millisecond, err: 2 * time.Millisecond, at: at(time.Second)})
	e.add(clockSample{offset: 110 * time.Millisecond, err: 30 * time.Millisecond, at: at(2 * time.Second)})
	if got := e.estimate(); got.Offset != 95*time.Millisecond || got.Error != 2*time.Millisecond || !got.At.Equal(at(time.Second)) {
		t.Fatalf("estimate %+v, want the 2 ms sample", got)
	}
	// A sample that cannot be reconciled with the estimate: the clock
	// stepped, and the older samples are dropped.
	e.add(clockSample{offset: 3 * time.Second, err: 10 * time.Millisecond, at: at(3 * time.Second)})
	if got := e.estimate(); got.Offset != 3*time.Second || len(e.samples) != 1 {
		t.Fatalf("after a step: estimate %v from %d samples, want 3s from 1", got.Offset, len(e.samples))
	}
	// At most clockSamples samples: the tight one ages out of the window.
	e.add(clockSample{offset: 3 * time.Second, err: time.Millisecond, at: at(4 * time.Second)})
	for i := range clockSamples {
		e.add(clockSample{offset: 3 * time.Second, err: 5 * time.Millisecond, at: at(time.Duration(5+i) * time.Second)})
	}
	if got := e.estimate(); got.Error != 5*time.Millisecond || len(e.samples) != clockSamples {
		t.Fatalf("after %d more samples: error %v from %d samples, want 5ms from %d", clockSamples, got.Error, len(e.samples), clockSamples)
	}
	// Samples older than clockMaxAge no longer count, however tight.
	e.add(clockSample{offset: 3 * time.Second, err: time.Millisecond, at: at(20 * time.Second)})
	e.add(clockSample{offset: 3 * time.Second, err: 4 * time.Millisecond, at: at(20*time.Second + clockMaxAge + time.Second)})
	if got := e.estimate(); got.Error != 4*time.Millisecond || len(e.samples) != 1 {
		t.Fatalf("after the window: error %v from %d samples, want the newest alone", got.Error, len(e.samples))
	}
}

// TestClockOffsetEstimated: with members whose clocks run ahead and behind,
// every node's estimate of every other contains the true offset, and the
// largest is the gauge.
func TestClockOffsetEstimated(t *testing.T) {
	t.Parallel()
	sink := metrics.NewInmem()
	skews := []time.Duration{0, 2 * time.Second, -750 * time.Millisecond}
	c := newMemCluster(t, 0)
	for i, d := range skews {
		var s skewClock
		s.set(d)
		opts := []Option{s.option()}
		if i == 0 {
			opts = append(opts, WithMetrics(sink))
		}
		c.add(fmt.Sprintf("node-%d", i), opts...)
	}
	c.joinAll()
	for i, nd := range c.nodes {
		for j := range c.nodes {
			if i == j {
				continue
			}
			name := fmt.Sprintf("node-%d", j)
			checkBound(t, clockOf(t, nd, name), skews[j]-skews[i], fmt.Sprintf("node-%d's estimate of %s", i, name))
		}
	}
	if me := c.nodes[0].Myself(); me.Clock.Known() {
		t.Fatalf("our own entry has a clock estimate: %+v", me.Clock)
	}
	for _, m := range c.nodes[0].Members() {
		if m.Name != "node-0" && !m.Clock.Known() {
			t.Fatalf("Members() lacks the estimate of %s", m.Name)
		}
	}
	waitFor(t, 5*time.Second, "the largest offset as a gauge", func() bool {
		v, ok := sink.Gauge(metrics.ClockOffsetMax)
		return ok && v > 1900 && v < 2100
	})
	// Once the skewed members are gone, so are their estimates, and the
	// gauge does not keep showing them.
	c.nodes[1].Shutdown()
	c.nodes[2].Shutdown()
	waitFor(t, 20*time.Second, "the gauge back to 0 once the skewed members failed", func() bool {
		v, ok := sink.Gauge(metrics.ClockOffsetMax)
		return ok && v == 0
	})
	if m, _ := c.nodes[0].Member("node-1"); m.Clock.Known() {
		t.Fatalf("a failed member keeps its clock estimate: %+v", m.Clock)
	}
}

// TestClockBoundCoversAsymmetricDelay: the estimate cannot tell a slow
// way out from a fast way back, and its error bound must say so.
func TestClockBoundCoversAsymmetricDelay(t *testing.T) {
	var skew skewClock
	skew.set(time.Second)
	c := newMemCluster(t, 0)
	a := c.add("node-0")
	b := c.add("node-1", skew.option())
	c.net.SetLink(a.Myself().Addr, b.Myself().Addr, transport.LinkConfig{Delay: 30 * time.Millisecond})
	c.joinAll()
	est := clockOf(t, a, "node-1")
	checkBound(t, est, time.Second, "with 30 ms one way and none back")
	if est.Error < 15*time.Millisecond {
		t.Fatalf("error bound %v: less than half the 30 ms round trip", est.Error)
	}
	// The ping took 30 ms and the ack none: the member stamped its ack
	// 15 ms later than the middle of the round trip that we assume.
	if d := est.Offset - time.Second; d < 5*time.Millisecond {
		t.Fatalf("estimate %v: the slow way out should push it above the true 1s", est.Offset)
	}
}

// TestClockStepFollowed: when a member's clock steps, the estimate moves
// to the new offset instead of holding on to older, tighter samples.
func TestClockStepFollowed(t *testing.T) {
	var skew skewClock
	c := newMemCluster(t, 0)
	a := c.add("node-0")
	c.add("node-1", skew.option())
	c.joinAll()
	checkBound(t, clockOf(t, a, "node-1"), 0, "before the step")
	skew.set(3 * time.Second)
	waitFor(t, 10*time.Second, "the estimate to follow a 3 s step", func() bool {
		m, _ := a.Member("node-1")
		d := m.Clock.Offset - 3*time.Second
		return d <= m.Clock.Error && -d <= m.Clock.Error
	})
}

// TestReplayLogQuotesClockOffset: a member whose clock is more than half
// the replay window off is logged once, and when its clock then jumps past
// the window, the too_new line quotes the offset estimated before.
func TestReplayLogQuotesClockOffset(t *testing.T) {
	var logs syncBuffer
	var skew skewClock
	skew.set(1200 * time.Millisecond)
	c := newMemCluster(t, 0)
	a := c.add("node-0", WithReplayWindow(2*time.Second), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	c.add("node-1", WithReplayWindow(2*time.Second), skew.option())
	c.joinAll()
	checkBound(t, clockOf(t, a, "node-1"), 1200*time.Millisecond, "before the jump")
	waitFor(t, 5*time.Second, "a warning about node-1's clock", func() bool {
		return strings.Contains(logs.String(), "more than half the replay window") && strings.Contains(logs.String(), "member=node-1")
	})
	skew.set(10 * time.Second)
	re := regexp.MustCompile(`reason=too_new .*sender=node-1 sender_clock_offset=(\S+)`)
	var quoted string
	defer func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	}()
	waitFor(t, 10*time.Second, "a too_new line that quotes node-1's offset", func() bool {
		m := re.FindStringSubmatch(logs.String())
		if m != nil {
			quoted = m[1]
		}
		return m != nil
	})
	if d, err := time.ParseDuration(quoted); err != nil || d < 1100*time.Millisecond || d > 1300*time.Millisecond {
		t.Fatalf("the too_new line quotes an offset of %s, want about 1.2s", quoted)
	}
}

// TestClockOffsetRealSockets: the estimate over real UDP on loopback.
func TestClockOffsetRealSockets(t *testing.T) {
	if testing.Short() {
		t.Skip("real sockets")
	}
	var skew skewClock
	skew.set(-1500 * time.Millisecond)
	var nodes []*Node
	for i, opt := range []Option{WithLabel("clock"), skew.option()} {
		nd, err := New(WithName(fmt.Sprintf("udp-%d", i)), WithBindAddr("127.0.0.1:0"), WithKeyring(newRing(t, testKey)),
			WithLabel("clock"), WithProfile(ProfileLocal), WithLogger(quietLogger()), opt)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nd.Shutdown() })
		nodes = append(nodes, nd)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := nodes[1].Join(ctx, nodes[0].Myself().Addr.String()); err != nil {
		t.Fatal(err)
	}
	checkBound(t, clockOf(t, nodes[0], "udp-1"), -1500*time.Millisecond, "over UDP")
	checkBound(t, clockOf(t, nodes[1], "udp-0"), 1500*time.Millisecond, "over UDP, the other way")
}
