package swimtest

import (
	"testing"
	"time"

	"github.com/meshward/membership/swim"
)

func TestSmoke(t *testing.T) {
	cfg := swim.DefaultConfig()
	s, err := New(Options{Nodes: 32, Seed: 1, Config: cfg, Link: Link{LatencyMin: time.Millisecond, LatencyMax: 5 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	s.Run(100 * time.Second)
	tot := s.Totals()
	t.Logf("after 100 s: %+v false susp %d deaths %d dropped %d", tot, s.FalseSuspicions, s.FalseDeaths, s.Dropped)
	s.Crash(5)
	victim := s.Node(5)
	ok := s.RunWhile(120*time.Second, func() bool { return !s.Knows(victim, swim.StateDead) })
	d, _ := s.Detection(5)
	t.Logf("all know dead: %v; first accused after %v, all know after %v", ok, d.FirstAccused.Sub(d.CrashedAt), d.AllKnow.Sub(d.CrashedAt))
	if !ok {
		t.Fatal("not detected")
	}
}
