package swimtest

import (
	"testing"

	"github.com/meshward/membership/swim"
)

// TestStateCountsThroughChurn: the per-state counts each core keeps agree
// with its view after every period of crashes, deaths, restarts at new
// addresses, leaves and tombstone expiry.
func TestStateCountsThroughChurn(t *testing.T) {
	s := newSim(t, 12, 7, func(c *swim.Config) { c.TombstoneTimeout = 20 * c.ProbeInterval })
	var buf []swim.Member
	var seen [4]bool // states some view held, so that the test covers them
	check := func(when string) {
		t.Helper()
		for _, n := range s.Nodes() {
			var want [4]int
			buf = n.Core.AppendMembers(buf[:0])
			for _, m := range buf {
				want[m.State]++
				seen[m.State] = true
			}
			for st := swim.StateAlive; st <= swim.StateLeft; st++ {
				if got := n.Core.NumInState(st); got != want[st] {
					t.Fatalf("%s: %s counts %d %v, its view holds %d", when, n.Name, got, st, want[st])
				}
			}
		}
	}
	step := func(periods int, when string) {
		t.Helper()
		for range periods {
			s.Run(s.Period())
			check(when)
		}
	}
	step(5, "joining")
	s.Crash(3)
	s.Crash(4)
	step(30, "while 3 and 4 are suspected and declared dead")
	if err := s.Restart(3, true); err != nil {
		t.Fatal(err)
	}
	s.Do(5, func(c *swim.Core) { c.Leave() })
	step(10, "after a restart at a new address and a leave")
	s.Crash(5)
	step(40, "while tombstones expire")
	if seen != [4]bool{true, true, true, true} {
		t.Fatalf("states seen in some view (alive, suspect, dead, left): %v; the test should see them all", seen)
	}
	var sawTombstones bool
	for _, n := range s.Nodes() {
		if n.Up && n.Core.NumMembers() < 12 {
			sawTombstones = true
		}
	}
	if !sawTombstones {
		t.Fatalf("no view lost an entry within %v: the test never saw a tombstone forgotten", 85*s.Period())
	}
}
