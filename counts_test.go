package membership

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// tally counts Members() by state, the slow way.
func tally(nd *Node) Counts {
	var c Counts
	for _, m := range nd.Members() {
		switch m.State {
		case StateAlive:
			c.Alive++
		case StateSuspect:
			c.Suspect++
		case StateDead:
			c.Dead++
		case StateLeft:
			c.Left++
		}
	}
	return c
}

// TestCounts: the counts follow joins, a crash and a leave, and agree with
// Members().
func TestCounts(t *testing.T) {
	t.Parallel()
	c := newMemCluster(t, 5)
	a := c.nodes[0]
	if got := a.Counts(); got != (Counts{Alive: 1}) || got.Live() != 1 || got.Total() != 1 {
		t.Fatalf("alone: %+v", got)
	}
	c.joinAll()
	c.everyoneSees(c.nodes, names(c.nodes), StateAlive, 10*time.Second)
	if got := a.Counts(); got != (Counts{Alive: 5}) || got != tally(a) {
		t.Fatalf("joined: %+v, Members() says %+v", got, tally(a))
	}
	c.nodes[4].Shutdown()
	if err := c.nodes[3].Leave(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := Counts{Alive: 3, Dead: 1, Left: 1}
	waitFor(t, 20*time.Second, fmt.Sprintf("counts %+v", want), func() bool { return a.Counts() == want })
	if got := a.Counts(); got != tally(a) || got.Live() != 3 || got.Total() != len(a.Members()) {
		t.Fatalf("after a crash and a leave: %+v (live %d, total %d); Members() says %+v", got, got.Live(), got.Total(), tally(a))
	}
}

// TestHealthRisesWhenCutOff: a node that hears nothing back (every link to
// it cut) misses its acks and nacks, and its health score rises from 0.
func TestHealthRisesWhenCutOff(t *testing.T) {
	c := newMemCluster(t, 4)
	c.joinAll()
	c.everyoneSees(c.nodes, names(c.nodes), StateAlive, 10*time.Second)
	a := c.nodes[0]
	waitFor(t, 10*time.Second, "a healthy score in a healthy cluster", func() bool { return a.Health() == 0 })
	for _, nd := range c.nodes[1:] {
		c.net.Block(nd.Myself().Addr, a.Myself().Addr)
	}
	waitFor(t, 10*time.Second, "the cut-off node's health score to rise", func() bool { return a.Health() > 0 })
	if h := a.Health(); h > a.pcfg.HealthMax {
		t.Fatalf("health %d above the maximum %d", h, a.pcfg.HealthMax)
	}
}

func TestCountsRealSockets(t *testing.T) {
	if testing.Short() {
		t.Skip("real sockets")
	}
	var nodes []*Node
	for i := range 3 {
		nd, err := New(WithName(fmt.Sprintf("udp-%d", i)), WithBindAddr("127.0.0.1:0"), WithKeyring(newRing(t, testKey)),
			WithProfile(ProfileLocal), WithLogger(quietLogger()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nd.Shutdown() })
		nodes = append(nodes, nd)
	}
	for _, nd := range nodes[1:] {
		if _, err := nd.Join(context.Background(), nodes[0].Myself().Addr.String()); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "3 alive everywhere", func() bool {
		for _, nd := range nodes {
			if nd.Counts() != (Counts{Alive: 3}) {
				return false
			}
		}
		return true
	})
	if h := nodes[0].Health(); h < 0 || h > nodes[0].pcfg.HealthMax {
		t.Fatalf("health %d outside [0, %d]", h, nodes[0].pcfg.HealthMax)
	}
}
