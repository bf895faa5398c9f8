package swimtest

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/meshward/membership/swim"
)

// Application broadcasts on the simulator: delivery exactly once, its time,
// keyed replacement, restarts, and the byte budget shared with membership
// news.

// lanRuntime is the node runtime's LAN profile: gossip every 200 ms to 3
// members while there is news.
func lanRuntime() swim.Config {
	cfg := swim.DefaultConfig()
	cfg.GossipFanout, cfg.GossipInterval = 3, 200*time.Millisecond
	return cfg
}

// disseminationBound is the dissemination bound of a broadcast, in
// protocol periods: λ·⌈log2(n+1)⌉·GossipInterval/GossipFanout, the time in
// which a member that holds the broadcast spends its λ·⌈log2(n+1)⌉
// transmissions of it, GossipFanout per gossip interval (least-sent first
// puts a new broadcast in the very next datagrams, and its pings and acks
// carry it on top). SWIM §4.1's infection-style dissemination reaches all
// but n^−(2λ−2) of the members within those transmissions. It holds while
// the broadcasts fit the byte budget: each member sends each one
// λ·⌈log2(n+1)⌉ times, so a cluster-wide rate beyond what its datagrams
// carry backs the queues up and delays them (see the swim package doc).
// n = 64 with the runtime's LAN profile: 3·7·200 ms/3 = 1.4 periods.
func disseminationBound(cfg swim.Config, n int) float64 {
	sends := cfg.RetransmitMult * bits.Len(uint(n))
	return float64(sends) * float64(cfg.GossipInterval) / float64(cfg.GossipFanout) / float64(cfg.ProbeInterval)
}

// payloadID makes a broadcast payload of size bytes that carries id.
func payloadID(id, size int) []byte {
	p := make([]byte, max(size, 4))
	binary.BigEndian.PutUint32(p, uint32(id))
	return p
}

func idOf(b swim.Broadcast) int { return int(binary.BigEndian.Uint32(b.Payload)) }

// quantile returns the q-quantile of sorted (nearest rank).
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// TestBroadcastDissemination: at n = 64 with 5 % loss in both directions
// and the runtime's LAN timings, 200 broadcasts from random origins, one
// every 250 ms, are delivered exactly once by every other member (12,600
// deliveries), and at least 99.9 % of the deliveries come within the
// dissemination bound.
func TestBroadcastDissemination(t *testing.T) { broadcastDissemination(t, 200, 91) }

// TestBroadcastDisseminationLong is TestBroadcastDissemination with five
// other seeds: 63,000 deliveries.
func TestBroadcastDisseminationLong(t *testing.T) {
	skipLong(t, 10*time.Second)
	for seed := uint64(100); seed < 105; seed++ {
		broadcastDissemination(t, 200, seed)
	}
}

func broadcastDissemination(t *testing.T, count int, seed uint64) {
	const n = 64
	cfg := lanRuntime()
	link := lan
	link.Loss = 0.05
	s, err := New(Options{Nodes: n, Seed: seed, Config: cfg, Link: link})
	if err != nil {
		t.Fatal(err)
	}
	s.Run(3 * s.Period())
	rng := rand.New(rand.NewPCG(seed, 1))
	origin := make([]int, count)
	sentAt := make([]time.Time, count)
	for id := range count {
		origin[id] = rng.IntN(n)
		sentAt[id] = s.Now()
		if err := s.Broadcast(origin[id], "", payloadID(id, 64)); err != nil {
			t.Fatal(err)
		}
		s.Run(250 * time.Millisecond)
	}
	bound := disseminationBound(cfg, n)
	s.Run(time.Duration(2*bound) * s.Period())

	var delays []float64
	late, missing, dups := 0, 0, 0
	for _, nd := range s.Nodes() {
		got := make([]int, count)
		for _, d := range nd.Delivered {
			id := idOf(d.Broadcast)
			if got[id]++; got[id] > 1 {
				dups++
				continue
			}
			if d.From != s.Node(origin[id]).Name {
				t.Fatalf("broadcast %d delivered from %s, sent by %s", id, d.From, s.Node(origin[id]).Name)
			}
			p := float64(d.At.Sub(sentAt[id])) / float64(s.Period())
			delays = append(delays, p)
			if p > bound {
				late++
			}
		}
		for id := range count {
			if got[id] == 0 && origin[id] != nd.Index {
				missing++
			}
			if got[id] != 0 && origin[id] == nd.Index {
				t.Fatalf("member %d delivered its own broadcast %d", nd.Index, id)
			}
		}
	}
	slices.Sort(delays)
	want := count * (n - 1)
	t.Logf("n=%d, 5%% loss, %d broadcasts, %d deliveries of %d: delivery time in periods: median %.2f, p99 %.2f, p99.9 %.2f, max %.2f; bound λ·⌈log2(n+1)⌉·GossipInterval/GossipFanout = %.1f periods; %d late, %d missing, %d duplicates",
		n, count, len(delays), want, quantile(delays, 0.5), quantile(delays, 0.99), quantile(delays, 0.999), quantile(delays, 1), bound, late, missing, dups)
	if dups != 0 {
		t.Errorf("%d duplicate deliveries", dups)
	}
	if bad := late + missing; float64(bad) > 0.001*float64(want) {
		t.Errorf("%d of %d deliveries late or missing: more than 0.1 %%", bad, want)
	}
	if s.Oversized != 0 {
		t.Errorf("%d datagrams above MaxDatagram", s.Oversized)
	}
	var sent, delivered, duplicate uint64
	for _, nd := range s.Nodes() {
		sent += nd.Core.Count(swim.CountBroadcastSent)
		delivered += nd.Core.Count(swim.CountBroadcastDelivered)
		duplicate += nd.Core.Count(swim.CountBroadcastDuplicate)
		if nd.Core.Count(swim.CountBroadcastDropped) != 0 {
			t.Errorf("member %d dropped broadcasts from a full queue", nd.Index)
		}
	}
	if delivered != uint64(len(delays)) {
		t.Errorf("delivered counted %d, %d delivered", delivered, len(delays))
	}
	t.Logf("transmissions %d (%.1f per delivery), duplicates received %d", sent, float64(sent)/float64(delivered), duplicate)
}

func TestBroadcastKeyedReplacement(t *testing.T) {
	// Member 2 broadcasts v1 under a key, then v2 while v1 is still being
	// disseminated: its queue holds v2 alone, no member delivers v1 after
	// v2, and every member ends with v2.
	const n = 16
	s, err := New(Options{Nodes: n, Seed: 92, Config: lanRuntime(), Link: lan})
	if err != nil {
		t.Fatal(err)
	}
	s.Run(3 * s.Period())
	for round := range 20 {
		v1, v2 := payloadID(2*round, 16), payloadID(2*round+1, 16)
		if err := s.Broadcast(2, "cfg", v1); err != nil {
			t.Fatal(err)
		}
		s.Run(time.Duration(1+round*20) * time.Millisecond)
		if err := s.Broadcast(2, "cfg", v2); err != nil {
			t.Fatal(err)
		}
		if q, _ := s.Node(2).Core.BroadcastQueue(); q != 1 {
			t.Fatalf("round %d: origin's queue holds %d, want v2 alone", round, q)
		}
		s.Run(5 * s.Period())
	}
	if s.Node(2).Core.Count(swim.CountBroadcastReplaced) != 20 {
		t.Errorf("origin replaced %d, want 20", s.Node(2).Core.Count(swim.CountBroadcastReplaced))
	}
	both, replaced := 0, uint64(0)
	for _, nd := range s.Nodes() {
		replaced += nd.Core.Count(swim.CountBroadcastReplaced)
		if nd.Index == 2 {
			continue
		}
		newest := -1
		seen := map[int]bool{}
		for _, d := range nd.Delivered {
			id := idOf(d.Broadcast)
			if id < newest {
				t.Fatalf("member %d delivered %d after %d under the same key", nd.Index, id, newest)
			}
			newest = id
			seen[id] = true
		}
		for round := range 20 {
			if !seen[2*round+1] {
				t.Errorf("member %d never delivered v2 of round %d", nd.Index, round)
			}
			if seen[2*round] {
				both++
			}
		}
	}
	t.Logf("v1 delivered before v2 in %d of %d cases; replacements cluster-wide %d", both, 20*(n-1), replaced)
	if s.Oversized != 0 {
		t.Errorf("%d datagrams above MaxDatagram", s.Oversized)
	}
}

func TestBroadcastDuplicationAndReorder(t *testing.T) {
	// Every datagram is duplicated with probability 0.3 and delayed by
	// 1–100 ms (so reordered), 5 % lost: every member still delivers each
	// broadcast exactly once.
	const n, count = 24, 60
	s, err := New(Options{Nodes: n, Seed: 93, Config: lanRuntime(), Link: Link{
		Loss: 0.05, Duplicate: 0.3, LatencyMin: time.Millisecond, LatencyMax: 100 * time.Millisecond,
	}})
	if err != nil {
		t.Fatal(err)
	}
	s.Run(3 * s.Period())
	for id := range count {
		if err := s.Broadcast(id%n, "", payloadID(id, 32)); err != nil {
			t.Fatal(err)
		}
		s.Run(100 * time.Millisecond)
	}
	s.Run(20 * s.Period())
	var dupRecv uint64
	for _, nd := range s.Nodes() {
		dupRecv += nd.Core.Count(swim.CountBroadcastDuplicate)
		got := make([]int, count)
		for _, d := range nd.Delivered {
			got[idOf(d.Broadcast)]++
		}
		for id, k := range got {
			want := 1
			if id%n == nd.Index {
				want = 0
			}
			if k != want {
				t.Errorf("member %d delivered broadcast %d %d times, want %d", nd.Index, id, k, want)
			}
		}
	}
	if dupRecv == 0 {
		t.Error("no duplicate received: the scenario does not test deduplication")
	}
	if s.Oversized != 0 {
		t.Errorf("%d datagrams above MaxDatagram", s.Oversized)
	}
}

func TestBroadcastRestartedOrigin(t *testing.T) {
	// Member 3 broadcasts 5 times, crashes, and comes back as a new
	// process (same name and address) whose sequence numbers start at 1
	// again: its new broadcasts are delivered, not taken for duplicates.
	const n = 16
	s, err := New(Options{Nodes: n, Seed: 94, Config: lanRuntime(), Link: lan})
	if err != nil {
		t.Fatal(err)
	}
	s.Run(3 * s.Period())
	for id := range 5 {
		if err := s.Broadcast(3, "", payloadID(id, 8)); err != nil {
			t.Fatal(err)
		}
	}
	s.Run(10 * s.Period())
	s.Crash(3)
	s.Run(s.Period())
	if err := s.Restart(3, false); err != nil {
		t.Fatal(err)
	}
	for id := 5; id < 10; id++ {
		if err := s.Broadcast(3, "", payloadID(id, 8)); err != nil {
			t.Fatal(err)
		}
	}
	s.Run(10 * s.Period())
	for _, nd := range s.Nodes() {
		if nd.Index == 3 {
			continue
		}
		got := make([]int, 10)
		for _, d := range nd.Delivered {
			got[idOf(d.Broadcast)]++
		}
		for id, k := range got {
			if k != 1 {
				t.Errorf("member %d delivered broadcast %d %d times", nd.Index, id, k)
			}
		}
	}
}

// crashTrials crashes one member at a time, `trials` times, and returns the periods from each crash until every up member
// held it dead. It calls each period once a period while it waits, and
// restarts each crashed member once it is known dead, so that n stays the
// same.
func crashTrials(t *testing.T, s *Sim, trials int, rng *rand.Rand, each func()) []float64 {
	t.Helper()
	var out []float64
	for range trials {
		v := rng.IntN(len(s.Nodes()))
		s.Crash(v)
		for p := 0; ; p++ {
			if d, _ := s.Detection(v); !d.AllKnow.IsZero() {
				out = append(out, float64(d.AllKnow.Sub(d.CrashedAt))/float64(s.Period()))
				break
			}
			if p == 120 {
				t.Fatalf("crash of member %d not known everywhere in 120 periods", v)
			}
			s.Run(s.Period())
			each()
		}
		if err := s.Restart(v, false); err != nil {
			t.Fatal(err)
		}
		for range 10 {
			s.Run(s.Period())
			each()
		}
	}
	return out
}

// TestMembershipNewsNotStarved: with every broadcast queue saturated
// (every member keeps 1,000 broadcasts queued, mostly of 16 bytes and one
// in eight of the largest size, and relays others'), crashes are detected and known everywhere
// as fast as without broadcasts: membership news keeps half of every
// datagram.
func TestMembershipNewsNotStarved(t *testing.T) { membershipNewsNotStarved(t, 4) }

// TestMembershipNewsNotStarvedLong is TestMembershipNewsNotStarved with 20
// crashes.
func TestMembershipNewsNotStarvedLong(t *testing.T) {
	skipLong(t, 10*time.Second)
	membershipNewsNotStarved(t, 20)
}

func membershipNewsNotStarved(t *testing.T, trials int) {
	const n = 32
	run := func(saturate bool) []float64 {
		s, err := New(Options{Nodes: n, Seed: 95, Config: lanRuntime(), Link: lan})
		if err != nil {
			t.Fatal(err)
		}
		s.Run(3 * s.Period())
		// Small broadcasts tile a datagram, which is how they could
		// starve membership news; a few of the largest size leave it no
		// room at all in the half they get.
		size := func(id, big int) int {
			if id%8 == 0 {
				return big
			}
			return 16
		}
		var queued, samples int
		minQueue := 1 << 30
		id := 0
		each := func() {
			if !saturate {
				return
			}
			for _, nd := range s.Nodes() {
				if !nd.Up {
					continue
				}
				q, _ := nd.Core.BroadcastQueue()
				minQueue = min(minQueue, q)
				queued += q
				samples++
				// Every member tops its queue up to 1,000 broadcasts.
				big := nd.Core.MaxBroadcastPayload(0)
				for ; q < 1000; q++ {
					if err := s.Broadcast(nd.Index, "", payloadID(id, size(id, big))); err != nil {
						t.Fatal(err)
					}
					id++
				}
			}
		}
		for range 5 {
			each()
			s.Run(s.Period())
		}
		minQueue, queued, samples = 1<<30, 0, 0
		times := crashTrials(t, s, trials, rand.New(rand.NewPCG(95, 2)), each)
		if saturate {
			var dropped uint64
			for _, nd := range s.Nodes() {
				dropped += nd.Core.Count(swim.CountBroadcastDropped)
			}
			t.Logf("broadcast queues: %d entries on average, %d at least (a restarted member), before topping up; %d broadcasts sent, %d dropped from full queues",
				queued/samples, minQueue, id, dropped)
			if queued/samples < 1000 {
				t.Fatalf("broadcast queues held %d entries on average: not saturated", queued/samples)
			}
		}
		if s.Oversized != 0 {
			t.Errorf("%d datagrams above MaxDatagram", s.Oversized)
		}
		return times
	}
	quiet, busy := run(false), run(true)
	mean := func(v []float64) float64 {
		sum := 0.0
		for _, x := range v {
			sum += x
		}
		return sum / float64(len(v))
	}
	t.Logf("n=%d, %d crashes: known everywhere after %.1f periods on average (max %.1f) without broadcasts, %.1f (max %.1f) with every queue saturated",
		n, trials, mean(quiet), slices.Max(quiet), mean(busy), slices.Max(busy))
	// Detection itself is the suspicion timeout (Lifeguard: 6 to 36
	// periods at n = 32), which broadcasts do not touch; what they could
	// delay is the dissemination of suspect and dead. Allow one
	// dissemination bound more than the worst run without.
	limit := slices.Max(quiet) + disseminationBound(lanRuntime(), n)
	for i, p := range busy {
		if p > limit {
			t.Errorf("crash %d known everywhere after %.1f periods with saturated queues, above %.1f", i, p, limit)
		}
	}
}

func TestBroadcastDeliveriesRecorded(t *testing.T) {
	// The simulator records each delivery with its time, and OnBroadcast
	// sees it.
	s, err := New(Options{Nodes: 4, Seed: 96, Config: lanRuntime(), Link: lan})
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	s.OnBroadcast = func(n *Node, b swim.Broadcast) { seen++ }
	start := s.Now()
	if err := s.Broadcast(1, "k", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	s.Run(5 * s.Period())
	for _, nd := range s.Nodes() {
		want := 1
		if nd.Index == 1 {
			want = 0
		}
		if len(nd.Delivered) != want {
			t.Fatalf("member %d: %d deliveries, want %d", nd.Index, len(nd.Delivered), want)
		}
		for _, d := range nd.Delivered {
			if d.From != s.Node(1).Name || d.Key != "k" || string(d.Payload) != "hello" || !d.At.After(start) {
				t.Fatalf("member %d: delivery %+v", nd.Index, d)
			}
		}
	}
	if seen != 3 {
		t.Fatalf("OnBroadcast saw %d, want 3", seen)
	}
	if err := s.Broadcast(1, "", make([]byte, 1<<16)); err == nil {
		t.Fatal("an oversized broadcast was accepted")
	}
}
