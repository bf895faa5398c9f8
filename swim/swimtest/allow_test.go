package swimtest

import (
	"fmt"
	"testing"

	"github.com/meshward/membership/swim"
)

// TestAllowListHoldsAgainstGossip: six members filter by an allow-list that
// leaves out member 11; five members do not filter and take member 11 in
// like any other; member 11 has the right key (here: it speaks the
// protocol) and changes its payload now and then, so that news about it
// keeps flowing. Over 100 protocol periods of gossip and push-pull from the
// members that do not filter, member 11 never appears in the view of a
// member that filters, checked after every simulated event.
func TestAllowListHoldsAgainstGossip(t *testing.T) {
	const (
		n         = 12
		filtering = 6 // members 0..5
		outsider  = n - 1
		periods   = 100
	)
	s := newSim(t, n, 7, func(c *swim.Config) {
		c.PushPullInterval = 5 * c.ProbeInterval // plenty of anti-entropy in 100 periods
	})
	var names []string
	for i := 0; i < n-1; i++ {
		names = append(names, s.Node(i).Name)
	}
	allow, err := swim.NewAllow(names, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := s.Node(outsider)
	for i := range filtering {
		s.Do(i, func(c *swim.Core) {
			if removed := c.SetAllow(allow); removed != 1 {
				t.Fatalf("member %d forgot %d members, want 1", i, removed)
			}
		})
	}
	var joined []string
	s.OnEvent = func(nd *Node, ev swim.Event) {
		if nd.Index < filtering && ev.Member.Name == out.Name {
			joined = append(joined, fmt.Sprintf("%s: %v at %v", nd.Name, ev.Kind, s.Now().Sub(Start)))
		}
	}
	inView := func() string {
		for i := range filtering {
			if m, ok := s.Node(i).Core.Member(out.Name); ok {
				return fmt.Sprintf("%s holds %s as %v at %v", s.Node(i).Name, out.Name, m.State, s.Now().Sub(Start))
			}
		}
		return ""
	}
	var seen string
	for p := 0; p < periods && seen == ""; p += 10 {
		s.Do(outsider, func(c *swim.Core) { _ = c.SetPayload([]byte(fmt.Sprintf("v%d", p))) })
		s.RunWhile(10*s.Period(), func() bool {
			seen = inView()
			return seen == ""
		})
	}
	if seen != "" || len(joined) > 0 {
		t.Fatalf("the outsider entered a filtering member's view: %s %v", seen, joined)
	}
	// The test means something only if the news did flow: the members
	// that do not filter hold the outsider with its latest payload, and
	// every filtering member ignored news about it.
	for i := filtering; i < outsider; i++ {
		m, ok := s.Node(i).Core.Member(out.Name)
		if !ok || m.State != swim.StateAlive || string(m.Payload) != fmt.Sprintf("v%d", periods-10) {
			t.Errorf("%s holds the outsider as %+v (%v): the gossip did not flow", s.Node(i).Name, m, ok)
		}
	}
	for i := range filtering {
		if c := s.Node(i).Core.Count(swim.CountNotAllowed); c == 0 {
			t.Errorf("%s never saw news of the outsider", s.Node(i).Name)
		}
	}
	// And the members on the list agree on each other.
	for i := 0; i < outsider; i++ {
		for j := 0; j < outsider; j++ {
			if m, ok := s.Node(i).Core.Member(s.Node(j).Name); !ok || m.State != swim.StateAlive {
				t.Errorf("%s holds %s as %+v (%v)", s.Node(i).Name, s.Node(j).Name, m.State, ok)
			}
		}
	}
	// The outsider cannot reach the filtering members directly, only
	// through helpers that let it in, so its probes of them sometimes
	// fail and its suspicions reach the others (push-pull carries them
	// even to filtering members, in the sender's name); the suspected
	// members refute. None is declared dead.
	if s.FalseDeaths != 0 {
		t.Errorf("%d false deaths", s.FalseDeaths)
	}
	t.Logf("false suspicions %d (raised by the outsider, refuted); not_allowed at member 0: %d", s.FalseSuspicions, s.Node(0).Core.Count(swim.CountNotAllowed))
}
