package swim

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

func conflictEvents(o *Output) []Event {
	var out []Event
	for _, e := range o.Events {
		if e.Kind == EventNameConflict {
			out = append(out, e)
		}
	}
	return out
}

func TestNameConflictAboutOurselves(t *testing.T) {
	// We started at incarnation 5, from the clock.
	c, err := New(newTestCore(t, 1, nil).cfg, Member{Name: testName(1), Addr: testAddr(1), Incarnation: 5}, rand.New(rand.NewPCG(1, 1)), t0)
	if err != nil {
		t.Fatal(err)
	}
	know(t, c, 4)
	other := testAddr(77)
	// An earlier life of ours at an old address is below our incarnation:
	// stale, not a conflict.
	c.Step(t0, testAddr(2), []Message{{Kind: KindAlive, Name: testName(1), Addr: other, Incarnation: 4}})
	if ev := conflictEvents(c.Ready()); len(ev) != 0 || c.Count(CountNameConflict) != 0 {
		t.Fatalf("a previous life counted as a conflict: %+v", ev)
	}
	c.Advance()
	// Our name at another address at our incarnation: someone else.
	c.Step(t0, testAddr(2), []Message{{Kind: KindAlive, Name: testName(1), Addr: other, Incarnation: 5}})
	ev := conflictEvents(c.Ready())
	if len(ev) != 1 || ev[0].Member.Name != testName(1) || ev[0].Member.Addr != testAddr(1) || ev[0].Addr != other {
		t.Fatalf("events %+v, want one name conflict about us with the other address", ev)
	}
	if ev[0].Member.Incarnation != 6 || c.Count(CountNameConflict) != 1 {
		t.Fatalf("incarnation %d, conflicts %d: want refuted to 6, one conflict", ev[0].Member.Incarnation, c.Count(CountNameConflict))
	}
	c.Advance()
	// Again within the period: counted, refuted, not reported again; a
	// left message counts too.
	c.Step(t0.Add(500*time.Millisecond), testAddr(2), []Message{{Kind: KindLeft, Name: testName(1), Addr: other, Incarnation: 7}})
	if ev := conflictEvents(c.Ready()); len(ev) != 0 || c.Count(CountNameConflict) != 2 || c.Myself().Incarnation != 8 || c.Myself().State != StateAlive {
		t.Fatalf("events %+v, conflicts %d, us %+v: want counted and refuted, no event", ev, c.Count(CountNameConflict), c.Myself())
	}
	c.Advance()
	c.Step(t0.Add(time.Second), testAddr(2), []Message{{Kind: KindAlive, Name: testName(1), Addr: other, Incarnation: 8}})
	if ev := conflictEvents(c.Ready()); len(ev) != 1 {
		t.Fatalf("events %+v, want one a period later", ev)
	}
	c.Advance()
	// Accusations carry no address: refuted, not a conflict.
	c.Step(t0.Add(3*time.Second), testAddr(2), []Message{{Kind: KindSuspect, From: testName(2), Name: testName(1), Incarnation: 9}})
	if c.Count(CountNameConflict) != 3 {
		t.Fatalf("conflicts %d after a suspicion, want still 3", c.Count(CountNameConflict))
	}
}

func TestNameConflictAboutAnotherMember(t *testing.T) {
	c := newTestCore(t, 0, nil)
	know(t, c, 4)
	a, b, d := testAddr(3), testAddr(33), testAddr(44)
	alive := func(at time.Time, addr netip.AddrPort, inc uint64) []Event {
		c.Advance()
		c.Step(at, testAddr(1), []Message{{Kind: KindAlive, Name: testName(3), Addr: addr, Incarnation: inc}})
		return conflictEvents(c.Ready())
	}
	// A restart at a new address, and much later another one: moves.
	if ev := alive(t0, b, 1); len(ev) != 0 {
		t.Fatalf("a move reported as a conflict: %+v", ev)
	}
	w := timeDur(c.flapWindow())
	if ev := alive(t0.Add(w+time.Second), a, 2); len(ev) != 0 || c.Count(CountNameConflict) != 0 {
		t.Fatalf("a move back after the window reported as a conflict: %+v", ev)
	}
	if ev := alive(t0.Add(w+2*time.Second), d, 3); len(ev) != 0 {
		t.Fatalf("a move to a third address reported as a conflict: %+v", ev)
	}
	// Back and forth within the window: two claimants.
	now := t0.Add(w + 3*time.Second)
	ev := alive(now, a, 4)
	if len(ev) != 1 || ev[0].Member.Name != testName(3) || ev[0].Member.Addr != a || ev[0].Addr != d || c.Count(CountNameConflict) != 1 {
		t.Fatalf("events %+v, want one conflict between %v and %v", ev, a, d)
	}
	// It keeps alternating: counted, reported once per window.
	if ev := alive(now.Add(time.Second), d, 5); len(ev) != 0 || c.Count(CountNameConflict) != 2 {
		t.Fatalf("events %+v, conflicts %d: want counted, not reported", ev, c.Count(CountNameConflict))
	}
	// A left message from the other address is a claim too.
	c.Advance()
	c.Step(now.Add(2*time.Second), testAddr(1), []Message{{Kind: KindLeft, Name: testName(3), Addr: a, Incarnation: 6}})
	if c.Count(CountNameConflict) != 3 {
		t.Fatalf("conflicts %d after a left message from the other address, want 3", c.Count(CountNameConflict))
	}
	if ev := alive(now.Add(w+time.Second), d, 7); len(ev) != 1 || ev[0].Addr != a {
		t.Fatalf("events %+v, want the next window's report", ev)
	}
}
