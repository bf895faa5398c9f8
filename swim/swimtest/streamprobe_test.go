package swimtest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/meshward/membership/swim"
)

// The stream fallback probe (swim.Config.StreamFallback) on the simulator,
// with Options.Streams: streams are immune to datagram loss but not to
// crashes and partitions.

func newStreamSim(t *testing.T, n int, seed uint64, link Link, fallback bool) *Sim {
	t.Helper()
	cfg := swim.DefaultConfig()
	cfg.StreamFallback = fallback
	// The node runtime's LAN gossip settings.
	cfg.GossipFanout, cfg.GossipInterval = 3, 200*time.Millisecond
	s, err := New(Options{Nodes: n, Seed: seed, Config: cfg, Link: link, Streams: true})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestStreamFallbackUDPBrokenMember: a member whose datagrams are all lost,
// both ways, but whose stream works stays alive in every view and is
// reported as stream-only by the members that probe it; without the
// fallback it is declared dead.
func TestStreamFallbackUDPBrokenMember(t *testing.T) {
	const n, broken = 16, 5
	for _, fallback := range []bool{true, false} {
		t.Run(fmt.Sprintf("fallback=%v", fallback), func(t *testing.T) {
			s := newStreamSim(t, n, 13, lan, fallback)
			for j := range n {
				if j != broken {
					s.SetLink(broken, j, Link{Loss: 1})
					s.SetLink(j, broken, Link{Loss: 1})
				}
			}
			brokenName := s.Node(broken).Name
			var reporters []string
			suspicions := 0
			s.OnEvent = func(o *Node, ev swim.Event) {
				switch {
				case ev.Kind == swim.EventStreamOnly && ev.Member.Name == brokenName:
					reporters = append(reporters, o.Name)
				case ev.Kind == swim.EventSuspected && ev.Member.Name == brokenName:
					suspicions++
				}
			}
			s.Run(200 * s.Period())
			m, _ := s.Node(0).Core.Member(brokenName)
			if !fallback {
				if m.State != swim.StateDead || s.FalseDeaths == 0 {
					t.Fatalf("without the fallback the member is %v (false deaths %d): the scenario does not cut its datagrams", m.State, s.FalseDeaths)
				}
				return
			}
			t.Logf("%d of %d members reported it stream-only in 200 periods; %d stream pings, %d acked", len(slices.Compact(slices.Sorted(slices.Values(reporters)))), n-1, s.Totals().StreamProbes, s.StreamAcks)
			if suspicions != 0 || s.FalseDeaths != 0 || !s.Knows(s.Node(broken), swim.StateAlive) {
				t.Fatalf("member with broken datagrams: %d suspicions, %d false deaths, alive everywhere %v", suspicions, s.FalseDeaths, s.Knows(s.Node(broken), swim.StateAlive))
			}
			if len(reporters) < (n-1)/2 {
				t.Fatalf("only %d members reported the stream-only member in 200 periods, want at least half of %d", len(reporters), n-1)
			}
			if got := s.Node(broken).Core.Count(swim.CountStreamOnly); got < uint64(n-1)/2 {
				t.Fatalf("the broken member reported %d others as stream-only, want most of %d", got, n-1)
			}
		})
	}
}

// TestStreamFallbackDetectsCrashAndPartition: a crashed member and a
// partitioned one fail the stream ping too and are declared dead.
func TestStreamFallbackDetectsCrashAndPartition(t *testing.T) {
	s := newStreamSim(t, 16, 21, lan, true)
	s.Run(5 * s.Period())
	s.Crash(3)
	p := runUntil(t, s, 60, "every survivor holds the crashed member dead", func() bool {
		return s.Knows(s.Node(3), swim.StateDead)
	})
	t.Logf("crash known dead everywhere after %d periods", p)
	if s.FalseDeaths != 0 {
		t.Fatalf("%d false deaths", s.FalseDeaths)
	}
	// A partitioned member is up (so its death counts as false in the
	// statistics) but unreachable by any path, the stream included.
	s.Partition([]int{7})
	runUntil(t, s, 90, "the majority holds the partitioned member dead", func() bool {
		return s.Knows(s.Node(7), swim.StateDead)
	})
}

// TestStreamFallbackUnderLoss: n = 32 at 10 % and 20 % datagram loss for
// 300 virtual seconds, with the node runtime's LAN gossip settings, with
// and without the stream fallback. Without it about 0.8 % of probes fail at
// 10 % (SWIM §5: (1−0.9²)·(1−0.9⁴)³), each a suspicion every member sees;
// with it a probe fails only if the stream fails too, which loss alone
// never makes it do. It reports what the fallback costs: stream pings per
// member per minute.
func TestStreamFallbackUnderLoss(t *testing.T) {
	skipLong(t, 5*time.Second)
	const n, seeds = 32, 5
	const window = 300 * time.Second
	for _, loss := range []float64{0.10, 0.20} {
		link := lan
		link.Loss = loss
		for _, fallback := range []bool{false, true} {
			var failed, suspects, deaths []uint64
			var streamsPerMin, datagramsPerSec []float64
			for seed := uint64(1); seed <= seeds; seed++ {
				s := newStreamSim(t, n, 700+seed, link, fallback)
				s.Run(window)
				var f uint64
				for _, nd := range s.Nodes() {
					f += nd.Core.Count(swim.CountProbeFailures)
				}
				tot := s.Totals()
				failed = append(failed, f)
				suspects = append(suspects, s.FalseSuspicions)
				deaths = append(deaths, s.FalseDeaths)
				streamsPerMin = append(streamsPerMin, float64(tot.StreamProbes)/n/window.Minutes())
				datagramsPerSec = append(datagramsPerSec, float64(tot.Datagrams)/n/window.Seconds())
			}
			t.Logf("loss=%.0f%% fallback=%v n=%d %v, %d seeds: failed probes %v, suspect events seen %v, false deaths %v, stream pings/member/min %.1f, datagrams sent/member/s %.2f",
				100*loss, fallback, n, window, seeds, failed, suspects, deaths, streamsPerMin, datagramsPerSec)
			for i := range failed {
				// Without the fallback false deaths happen at 20 %: over 40
				// seeds, Failed events about up members were seen 67 times
				// before periodic exchanges in agreement were skipped and 95
				// times after (a few deaths, each seen by ~31 observers).
				// That arm is the control; only the fallback promises none.
				if fallback && deaths[i] != 0 {
					t.Errorf("loss %v fallback=%v seed %d: %d false deaths", loss, fallback, i+1, deaths[i])
				}
				switch {
				case fallback && failed[i] > 1:
					t.Errorf("loss %v with the fallback, seed %d: %d failed probes in %v, want at most 1 (issue 13)", loss, i+1, failed[i], window)
				case !fallback && failed[i] < 20:
					t.Errorf("loss %v without the fallback, seed %d: only %d failed probes: the scenario lost its loss (SWIM predicts about 75 at 10 %%)", loss, i+1, failed[i])
				}
			}
		}
	}
}
