package swimtest

import (
	"testing"
	"time"

	"github.com/meshward/membership/swim"
)

// conflictPeriods bounds, in periods, how long after a second process
// starts under a member's name every member has reported the conflict.
// Measured: 6 to 10 periods over the three seeds below at 16 members, and
// 7 at 64; the bound leaves room for a slower seed.
const conflictPeriods = 20

func TestScenarioNameConflict(t *testing.T) {
	// A second process is started under member 4's name at another
	// address, later than the real one (so at a higher incarnation, from
	// the clock). The two refute each other's claims; every member, the
	// real one and the impostor included, reports EventNameConflict naming
	// both addresses within conflictPeriods.
	for _, tc := range []struct {
		n    int
		seed uint64
	}{{16, 71}, {16, 72}, {16, 73}, {64, 74}} {
		s, err := New(Options{Nodes: tc.n, Seed: tc.seed, Config: swim.DefaultConfig(), Link: lan, ClockIncarnation: true})
		if err != nil {
			t.Fatal(err)
		}
		s.Run(10 * s.Period())
		real := s.Node(4)
		first := make(map[int]time.Duration)
		var imp *Node
		start := s.Now()
		s.OnEvent = func(n *Node, ev swim.Event) {
			if ev.Kind != swim.EventNameConflict {
				return
			}
			pair := [2]string{ev.Member.Addr.String(), ev.Addr.String()}
			if ev.Member.Name != real.Name || imp == nil ||
				(pair != [2]string{real.Addr.String(), imp.Addr.String()} && pair != [2]string{imp.Addr.String(), real.Addr.String()}) {
				t.Errorf("%s reported %+v, want %s at %v and %v", n.Name, ev, real.Name, real.Addr, imp.Addr)
			}
			if _, ok := first[n.Index]; !ok {
				first[n.Index] = s.Now().Sub(start)
			}
		}
		imp, err = s.AddNamed(real.Name)
		if err != nil {
			t.Fatal(err)
		}
		p := runUntil(t, s, conflictPeriods, "every member reports the conflict", func() bool { return len(first) == len(s.Nodes()) })
		t.Logf("n=%d seed %d: every member reported within %d periods (the real member after %v, the impostor after %v)",
			tc.n, tc.seed, p, first[real.Index], first[imp.Index])
		if real.Core.Count(swim.CountNameConflict) == 0 || s.Node(0).Core.Count(swim.CountNameConflict) == 0 {
			t.Error("the conflict is not counted")
		}
	}
}

func TestScenarioRestartIsNoNameConflict(t *testing.T) {
	// Restarts with the clock's incarnation: at a new address before the
	// old life was noticed dead, at a new address after it was declared
	// dead, and at the same address. None is a name conflict anywhere.
	s, err := New(Options{Nodes: 16, Seed: 75, Config: swim.DefaultConfig(), Link: lan, ClockIncarnation: true})
	if err != nil {
		t.Fatal(err)
	}
	conflicts := 0
	s.OnEvent = func(n *Node, ev swim.Event) {
		if ev.Kind == swim.EventNameConflict {
			conflicts++
			t.Errorf("%s reported %+v", n.Name, ev)
		}
	}
	s.Run(10 * s.Period())
	s.Do(5, func(c *swim.Core) { _ = c.SetPayload([]byte("v1")) })
	s.Run(2 * s.Period())
	s.Crash(5)
	if err := s.Restart(5, true); err != nil {
		t.Fatal(err)
	}
	s.Crash(6)
	runUntil(t, s, 120, "member 6 dead everywhere", func() bool { return s.Knows(s.Node(6), swim.StateDead) })
	if err := s.Restart(6, true); err != nil {
		t.Fatal(err)
	}
	s.Crash(7)
	if err := s.Restart(7, false); err != nil {
		t.Fatal(err)
	}
	runUntil(t, s, 30, "views converged", s.Converged)
	s.Run(60 * s.Period())
	for _, n := range s.Nodes() {
		if c := n.Core.Count(swim.CountNameConflict); c != 0 {
			t.Errorf("%s counted %d name conflicts", n.Name, c)
		}
		for _, i := range []int{5, 6} {
			if m, _ := n.Core.Member(s.Node(i).Name); m.Addr != s.Node(i).Addr {
				t.Errorf("%s holds %s at %v, want the new address %v", n.Name, m.Name, m.Addr, s.Node(i).Addr)
			}
		}
	}
}
