package swim

import (
	"testing"
	"time"
)

// checkCounts compares NumInState with a count over AppendMembers.
func checkCounts(t *testing.T, c *Core, when string) {
	t.Helper()
	var want [numStates]int
	for _, m := range c.AppendMembers(nil) {
		want[m.State]++
	}
	for s := StateAlive; s <= StateLeft; s++ {
		if got := c.NumInState(s); got != want[s] {
			t.Errorf("%s: NumInState(%v) = %d, the view holds %d", when, s, got, want[s])
		}
	}
	if got := c.NumInState(StateLeft + 1); got != 0 {
		t.Errorf("%s: NumInState of an invalid state = %d", when, got)
	}
	if live := c.NumInState(StateAlive) + c.NumInState(StateSuspect); live != c.NumLive() {
		t.Errorf("%s: alive+suspect = %d, NumLive = %d", when, live, c.NumLive())
	}
}

func TestNumInStateFollowsEveryChange(t *testing.T) {
	c := newTestCore(t, 0, func(cfg *Config) { cfg.TombstoneTimeout = time.Minute })
	checkCounts(t, c, "alone")
	if c.NumInState(StateAlive) != 1 {
		t.Fatalf("alone: %d alive, want 1 (ourselves)", c.NumInState(StateAlive))
	}
	know(t, c, 10)
	checkCounts(t, c, "after a merge")
	s := Snapshot{From: testName(1), Members: []MemberState{
		{Name: testName(2), Addr: testAddr(2), State: StateSuspect, Incarnation: 0},
		{Name: testName(3), Addr: testAddr(3), State: StateDead, Incarnation: 1},
		{Name: testName(4), Addr: testAddr(4), State: StateLeft, Incarnation: 1},
		{Name: testName(20), Addr: testAddr(20), State: StateLeft, Incarnation: 1},
		{Name: testName(21), Addr: testAddr(21), State: StateDead, Incarnation: 1},
	}}
	if err := c.Merge(t0, &s); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, c, "after suspect, dead and left news")
	if err := c.MarkLeft(testName(5)); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, c, "after MarkLeft")
	if err := c.RemoveMember(testName(6)); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, c, "after RemoveMember")
	if err := c.SetPayload([]byte("x")); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, c, "after SetPayload")
	// Past the suspicion and tombstone timeouts: suspects die, and
	// tombstones are forgotten.
	for i := 1; i <= 120; i++ {
		c.Tick(t0.Add(time.Duration(i) * time.Second))
		c.Advance()
		checkCounts(t, c, "while ticking")
	}
	if c.NumMembers() >= 10 {
		t.Fatalf("%d entries after the tombstone timeout: the test did not see tombstones forgotten", c.NumMembers())
	}
	c.Leave()
	checkCounts(t, c, "after Leave")
	if c.NumInState(StateLeft) == 0 {
		t.Fatal("no left entry after Leave")
	}
}

func TestMemberByAddr(t *testing.T) {
	c := newTestCore(t, 0, nil)
	know(t, c, 3)
	m, ok := c.MemberByAddr(testAddr(2))
	if !ok || m.Name != testName(2) {
		t.Fatalf("MemberByAddr(%v) = %v, %v", testAddr(2), m.Name, ok)
	}
	if m, ok := c.MemberByAddr(testAddr(0)); !ok || m.Name != testName(0) {
		t.Fatalf("MemberByAddr(ourselves) = %v, %v", m.Name, ok)
	}
	if _, ok := c.MemberByAddr(testAddr(99)); ok {
		t.Fatal("found a member at an address nobody has")
	}
	// m2 is reported dead (a suspect to us, until it refutes) and a new
	// member takes its address under another name: the alive one wins,
	// though m2 comes first in the view.
	s := Snapshot{From: testName(1), Members: []MemberState{
		{Name: testName(2), Addr: testAddr(2), State: StateDead, Incarnation: 1},
		{Name: "newcomer", Addr: testAddr(2), State: StateAlive},
	}}
	if err := c.Merge(t0.Add(time.Second), &s); err != nil {
		t.Fatal(err)
	}
	if m, ok := c.MemberByAddr(testAddr(2)); !ok || m.Name != "newcomer" || m.State != StateAlive {
		t.Fatalf("MemberByAddr after a restart under a new name = %v %v, %v; want newcomer alive", m.Name, m.State, ok)
	}
	if m, _ := c.Member(testName(2)); m.State != StateSuspect {
		t.Fatalf("m2 is %v, the test wants it suspect", m.State)
	}
	// Both left: the one that left last.
	for i, name := range []string{"newcomer", testName(2)} {
		s = Snapshot{From: testName(1), Members: []MemberState{{Name: name, Addr: testAddr(2), State: StateLeft, Incarnation: 2}}}
		if err := c.Merge(t0.Add(time.Duration(2+i)*time.Second), &s); err != nil {
			t.Fatal(err)
		}
	}
	if m, ok := c.MemberByAddr(testAddr(2)); !ok || m.Name != testName(2) || m.State != StateLeft {
		t.Fatalf("MemberByAddr with two tombstones = %v %v, %v; want m2, which left last", m.Name, m.State, ok)
	}
}
