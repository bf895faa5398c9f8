package swimtest

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"testing"
	"time"

	"github.com/meshward/membership/swim"
)

// Protocol scenarios on the simulator: each sets up a cluster, injects a
// fault or an operation, and checks how the cluster's views end up.

func newSim(t *testing.T, n int, seed uint64, mut func(*swim.Config)) *Sim {
	t.Helper()
	cfg := swim.DefaultConfig()
	if mut != nil {
		mut(&cfg)
	}
	s, err := New(Options{Nodes: n, Seed: seed, Config: cfg, Link: lan})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// runUntil runs the simulation period by period until cond holds, failing
// the test after max periods.
func runUntil(t *testing.T, s *Sim, max int, what string, cond func() bool) int {
	t.Helper()
	for p := 0; p <= max; p++ {
		if cond() {
			return p
		}
		s.Run(s.Period())
	}
	t.Fatalf("%s: not reached in %d periods", what, max)
	return 0
}

func TestScenarioRefutation(t *testing.T) {
	// Member 3 hears nothing for three periods, so others suspect it; it
	// refutes as soon as it hears of the suspicion, and nobody declares it
	// dead.
	s := newSim(t, 16, 1, nil)
	s.Run(3 * s.Period())
	for i := range 16 {
		if i != 3 {
			s.Block(i, 3)
		}
	}
	runUntil(t, s, 20, "member 3 suspected", func() bool { return s.FalseSuspicions > 0 })
	for i := range 16 {
		s.Unblock(i, 3)
	}
	runUntil(t, s, 20, "member 3 alive everywhere", func() bool { return s.Knows(s.Node(3), swim.StateAlive) })
	if inc := s.Node(3).Core.Myself().Incarnation; inc == 0 {
		t.Error("member 3 did not raise its incarnation to refute")
	}
	if s.Node(3).Core.Count(swim.CountRefutations) == 0 {
		t.Error("no refutation counted")
	}
	if s.FalseDeaths != 0 {
		t.Errorf("%d false deaths", s.FalseDeaths)
	}
}

func TestScenarioRestartWithLostIncarnation(t *testing.T) {
	// Member 5 reaches incarnation 2, crashes, is declared dead at 2 and
	// comes back as a new process at incarnation 0 on a new address (a pod
	// with a new IP). It learns its old incarnation from the cluster and
	// refutes above it; everyone takes the new address.
	s := newSim(t, 16, 2, nil)
	s.Do(5, func(c *swim.Core) { _ = c.SetPayload([]byte("v1")) })
	s.Do(5, func(c *swim.Core) { _ = c.SetPayload([]byte("v2")) })
	s.Run(10 * s.Period())
	s.Crash(5)
	runUntil(t, s, 120, "member 5 dead everywhere", func() bool { return s.Knows(s.Node(5), swim.StateDead) })
	if err := s.Restart(5, true); err != nil {
		t.Fatal(err)
	}
	runUntil(t, s, 30, "member 5 alive everywhere", func() bool { return s.Knows(s.Node(5), swim.StateAlive) })
	me := s.Node(5).Core.Myself()
	if me.Incarnation < 3 {
		t.Errorf("restarted member at incarnation %d, want above the old 2", me.Incarnation)
	}
	for _, n := range s.Nodes() {
		if m, _ := n.Core.Member(s.Node(5).Name); m.Addr != s.Node(5).Addr {
			t.Errorf("%s holds member 5 at %v, want the new address %v", n.Name, m.Addr, s.Node(5).Addr)
		}
	}
}

func TestScenarioMassRestart(t *testing.T) {
	// Half the cluster crashes, is declared dead, and restarts at
	// incarnation 0 on the same addresses: nobody stays stuck dead
	// (memberlist #311).
	s := newSim(t, 16, 3, nil)
	s.Run(3 * s.Period())
	for i := 0; i < 8; i++ {
		s.Crash(i)
	}
	runUntil(t, s, 120, "crashed half dead everywhere", func() bool {
		for i := 0; i < 8; i++ {
			if !s.Knows(s.Node(i), swim.StateDead) {
				return false
			}
		}
		return true
	})
	for i := 0; i < 8; i++ {
		if err := s.Restart(i, false); err != nil {
			t.Fatal(err)
		}
	}
	p := runUntil(t, s, 40, "views converged", s.Converged)
	t.Logf("converged %d periods after the mass restart", p)
}

func TestScenarioLeave(t *testing.T) {
	// Member 7 leaves with its payload; once the news went out it stops.
	// Everyone reports it as left, nobody as failed, and nobody probes it.
	s := newSim(t, 16, 4, nil)
	failed := 0
	s.OnEvent = func(n *Node, ev swim.Event) {
		if ev.Kind == swim.EventFailed && ev.Member.Name == s.Node(7).Name {
			failed++
		}
	}
	s.Do(7, func(c *swim.Core) { _ = c.SetPayload([]byte("role=db")) })
	s.Run(3 * s.Period())
	s.Do(7, func(c *swim.Core) { c.Leave() })
	runUntil(t, s, 30, "leave done", s.Node(7).Core.LeaveDone)
	s.Crash(7)
	runUntil(t, s, 10, "left everywhere", func() bool { return s.Knows(s.Node(7), swim.StateLeft) })
	before := s.Node(7).Stats.Received
	s.Run(30 * s.Period())
	for _, n := range s.Nodes() {
		if n.Index == 7 {
			continue
		}
		m, _ := n.Core.Member(s.Node(7).Name)
		if m.State != swim.StateLeft || string(m.Payload) != "role=db" {
			t.Errorf("%s holds member 7 as %v with payload %q", n.Name, m.State, m.Payload)
		}
	}
	if failed != 0 {
		t.Errorf("%d Failed events about a member that left", failed)
	}
	if s.Node(7).Stats.Received != before {
		t.Error("a left member was probed")
	}
}

func TestScenarioPartitionHeals(t *testing.T) {
	// Two halves lose each other long enough to declare each other dead;
	// after the partition heals, tombstone probing brings everyone back
	// with no Join and no user code.
	s := newSim(t, 20, 5, func(c *swim.Config) { c.PushPullInterval = 0 })
	s.Run(3 * s.Period())
	var a, b []int
	for i := range 20 {
		if i < 10 {
			a = append(a, i)
		} else {
			b = append(b, i)
		}
	}
	s.Partition(a, b)
	runUntil(t, s, 120, "each half holds the other dead", func() bool {
		return s.Node(0).Core.NumLive() == 10 && s.Node(19).Core.NumLive() == 10
	})
	s.Run(30 * s.Period())
	s.Heal()
	p := runUntil(t, s, 60, "healed", s.Converged)
	t.Logf("views converged %d periods after the partition healed", p)
}

func TestScenarioPayloadUpdate(t *testing.T) {
	s := newSim(t, 32, 6, nil)
	updated := map[string]bool{}
	s.OnEvent = func(n *Node, ev swim.Event) {
		if ev.Kind == swim.EventUpdated && ev.Member.Name == s.Node(2).Name && string(ev.Member.Payload) == "v2" {
			updated[n.Name] = true
		}
	}
	s.Do(2, func(c *swim.Core) {
		if err := c.SetPayload([]byte("v2")); err != nil {
			t.Fatal(err)
		}
	})
	runUntil(t, s, 20, "payload everywhere", func() bool {
		for _, n := range s.Nodes() {
			if m, _ := n.Core.Member(s.Node(2).Name); !bytes.Equal(m.Payload, []byte("v2")) {
				return false
			}
		}
		return true
	})
	if len(updated) != 31 {
		t.Errorf("%d members reported Updated, want 31", len(updated))
	}
}

func TestScenarioProbeUnknownAddress(t *testing.T) {
	// Member 0 forgets member 9 and adds it back by address: the ack names
	// it. A probe of an address where nobody listens fails.
	s := newSim(t, 10, 7, func(c *swim.Config) { c.PushPullInterval = 0; c.RepairInterval = 0 })
	var results []swim.ProbeResult
	s.OnProbeResult = func(n *Node, r swim.ProbeResult) { results = append(results, r) }
	var tokAdd, tokNone uint64
	s.Do(0, func(c *swim.Core) {
		if err := c.RemoveMember(s.Node(9).Name); err != nil {
			t.Fatal(err)
		}
		var err error
		if tokAdd, err = c.AddMember(s.Node(9).Addr); err != nil {
			t.Fatal(err)
		}
		if tokNone, err = c.Probe(addrOf(999, 9)); err != nil {
			t.Fatal(err)
		}
	})
	s.Run(2 * s.Period())
	if m, ok := s.Node(0).Core.Member(s.Node(9).Name); !ok || m.State != swim.StateAlive {
		t.Fatalf("member 9 not back in member 0's view: %+v", m)
	}
	got := map[uint64]swim.ProbeResult{}
	for _, r := range results {
		got[r.Token] = r
	}
	if r := got[tokAdd]; !r.OK || r.Name != s.Node(9).Name {
		t.Errorf("AddMember result %+v, want OK named %s", r, s.Node(9).Name)
	}
	if r, ok := got[tokNone]; !ok || r.OK {
		t.Errorf("probe of an empty address: %+v (reported %v), want a failure", r, ok)
	}
}

func TestScenarioOneWayLink(t *testing.T) {
	// Member 0 cannot reach member 1 directly; indirect probes through the
	// others keep 1 alive in 0's view, with no false death.
	s := newSim(t, 16, 8, nil)
	s.Block(0, 1)
	s.Run(200 * s.Period())
	if s.FalseDeaths != 0 {
		t.Errorf("%d false deaths with one one-way link", s.FalseDeaths)
	}
	if !s.Converged() {
		t.Error("views disagree")
	}
}

func TestScenarioFastRepair(t *testing.T) {
	// Member 0 silently loses member 5 (as if a dissemination never
	// reached it). With push-pull off, the digest on pings and acks
	// notices the difference and a targeted exchange repairs it.
	s := newSim(t, 32, 9, func(c *swim.Config) { c.PushPullInterval = 0 })
	s.Run(10 * s.Period())
	s.Do(0, func(c *swim.Core) { _ = c.RemoveMember(s.Node(5).Name) })
	p := runUntil(t, s, 30, "repaired", func() bool {
		_, ok := s.Node(0).Core.Member(s.Node(5).Name)
		return ok
	})
	var repairs uint64
	for _, n := range s.Nodes() {
		repairs += n.Core.Count(swim.CountRepairs)
	}
	t.Logf("repaired after %d periods with %d digest-triggered exchanges cluster-wide", p, repairs)
	if repairs == 0 {
		t.Error("no repair counted")
	}
}

func TestScenarioJoinStorm(t *testing.T) {
	// 64 members join a 64-member cluster at once. Every member knows
	// every other within 2·log2(128) = 14 periods: no stragglers waiting
	// for push-pull (memberlist at n = 64 leaves some for 40–90 s).
	s := newSim(t, 64, 10, nil)
	s.Run(3 * s.Period())
	for range 64 {
		if _, err := s.Add(); err != nil {
			t.Fatal(err)
		}
	}
	p := runUntil(t, s, 14, "everyone knows everyone", s.Converged)
	t.Logf("join storm of 64 into 64: views converged after %d periods", p)
}

func TestDeterministic(t *testing.T) {
	trace := func() (uint64, Stats) {
		s := newSim(t, 24, 42, nil)
		s.opts.Link.Loss = 0.05
		h := fnv.New64a()
		s.OnEvent = func(n *Node, ev swim.Event) {
			fmt.Fprintf(h, "%v %s %v %s %d\n", s.Now().UnixNano(), n.Name, ev.Kind, ev.Member.Name, ev.Member.Incarnation)
		}
		s.Crash(3)
		s.Run(60 * time.Second)
		return h.Sum64(), s.Totals()
	}
	h1, t1 := trace()
	h2, t2 := trace()
	if h1 != h2 || t1 != t2 {
		t.Fatalf("two runs with one seed differ: %x %+v vs %x %+v", h1, t1, h2, t2)
	}
}

func TestScenarioDuplicationAndReorder(t *testing.T) {
	// Every datagram is duplicated with probability 0.2 and delayed by
	// 1–100 ms, so datagrams also arrive out of order; 5 % are lost. The
	// cluster keeps agreeing, with no false death, and a crash is still
	// known everywhere.
	cfg := swim.DefaultConfig()
	s, err := New(Options{Nodes: 32, Seed: 13, Config: cfg, Link: Link{
		Loss: 0.05, Duplicate: 0.2, LatencyMin: time.Millisecond, LatencyMax: 100 * time.Millisecond,
	}})
	if err != nil {
		t.Fatal(err)
	}
	s.Run(200 * s.Period())
	if s.FalseDeaths != 0 {
		t.Errorf("%d false deaths", s.FalseDeaths)
	}
	s.Crash(4)
	p := runUntil(t, s, 60, "crash known everywhere", func() bool { return s.Knows(s.Node(4), swim.StateDead) })
	t.Logf("crash known everywhere after %d periods", p)
}
