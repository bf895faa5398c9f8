package bench

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestBroadcast measures application broadcast dissemination side by side:
// memberlist's TransmitLimitedQueue through its delegate against our
// Node.Broadcast, both at LAN defaults and encrypted (AES-256-GCM against
// XChaCha20-Poly1305). Each run starts a fresh memberlist cluster of N,
// then a fresh one of ours, and in each:
//
//   - single: once the cluster is idle, one node broadcasts one 64-byte
//     payload; the time runs from the call until the median and until the
//     last of the N−1 receivers has it;
//   - burst: once the cluster is idle again, the same node broadcasts B
//     such payloads in a row; the time runs until the median and the last
//     receiver holds all B.
//
// The same node (by index) broadcasts in both libraries' clusters of one
// run. It prints min, median, p95 and max over the runs, and the ratio
// ours/memberlist per run and of the pooled medians and worsts.
//
// MEMBERSHIP_BENCH=1: N=64, B=20, 10 runs (MEMBERSHIP_BENCH_BCAST_N,
// _BCAST_BURST and _BCAST_RUNS change them); BENCH_QUICK=1 or -quick: N=32,
// B=10, 3 runs.
func TestBroadcast(t *testing.T) {
	p := bcastParams{n: 64, burst: 20, runs: 10, timeout: time.Minute, form: 3 * time.Minute}
	if needMode(t) == modeQuick {
		p = bcastParams{n: 32, burst: 10, runs: 3, timeout: time.Minute, form: 3 * time.Minute}
	}
	p.n = envInt(t, "MEMBERSHIP_BENCH_BCAST_N", p.n)
	p.burst = envInt(t, "MEMBERSHIP_BENCH_BCAST_BURST", p.burst)
	p.runs = envInt(t, "MEMBERSHIP_BENCH_BCAST_RUNS", p.runs)
	if p.n < 3 {
		t.Fatalf("MEMBERSHIP_BENCH_BCAST_N=%d: need at least 3 nodes", p.n)
	}
	ml, ours := runBroadcast(t, p)
	t.Logf("broadcast dissemination, N=%d, %d-byte payloads, burst of %d, %d runs (memberlist, then ours, fresh clusters each run)\n%s\n%s",
		p.n, payloadSize, p.burst, p.runs, bcastTable(p, ml, ours), bcastRatios(ml, ours))
}

type bcastParams struct {
	n, burst, runs int
	timeout        time.Duration // for a round, and the idle wait after it
	// form bounds the wait for a new cluster to converge and fall idle:
	// at N=64 a memberlist node that missed some alive messages waits for
	// push-pull, every 60 s at that size.
	form time.Duration
}

// bcastRound is what one round measured.
type bcastRound struct {
	last, median time.Duration // until the last and the median receiver
	missing      int           // receivers that lacked a broadcast at the timeout
	dups         int           // receipts the application saw more than once
	// udpPerNode is the UDP bytes sent per node from the call until the
	// cluster is idle again, less what it sent per second when idle.
	udpPerNode float64
	// perID is, for each broadcast of the round in the order sent, the
	// time until its last receiver had it: where a burst's time goes.
	perID []time.Duration
}

// bcastResult is one library's rounds, one per run.
type bcastResult struct {
	name          string
	single, burst []bcastRound
}

// runBroadcast runs p.runs runs, memberlist then ours in each.
func runBroadcast(t *testing.T, p bcastParams) (ml, ours bcastResult) {
	t.Helper()
	ml.name, ours.name = "memberlist (AES-256-GCM)", "membership (XChaCha20-Poly1305)"
	for run := 0; run < p.runs; run++ {
		origin := 1 + (run*17)%(p.n-1)
		for _, side := range []struct {
			r  *bcastResult
			im impl
		}{{&ml, mlImpl{encrypt: true}}, {&ours, oursImpl{encrypt: true}}} {
			cl := startCluster(t, side.r.name, side.im, p.n, p.form)
			s := cl.round(t, origin, 1, p.timeout)
			b := cl.round(t, origin, p.burst, p.timeout)
			cl.shutdown()
			side.r.single = append(side.r.single, s)
			side.r.burst = append(side.r.burst, b)
			t.Logf("run %d %s: single last %v median %v; burst last %v median %v (last receiver of the burst's first broadcast %v, of the others: %v)",
				run+1, side.r.name, ms(s.last), ms(s.median), ms(b.last), ms(b.median), ms(b.perID[0]), summarize(b.perID[1:]))
		}
	}
	return ml, ours
}

// cluster is n nodes of one library, joined into one group.
type cluster struct {
	label string
	nodes []node
	names []string
	c     *counters
	rec   *recorder
	// idleBytes is the cluster's UDP bytes per second in the window
	// that waitIdle last found idle: pings and acks.
	idleBytes float64
}

// startCluster starts n nodes and joins them to the first one by one,
// then waits until every node holds all n alive and the cluster is idle.
func startCluster(t *testing.T, label string, im impl, n int, timeout time.Duration) *cluster {
	t.Helper()
	cl := &cluster{label: label, c: &counters{}, rec: newRecorder()}
	t0 := time.Now()
	for i := 0; i < n; i++ {
		nm := fmt.Sprintf("node-%02d", i)
		nd, err := im.start(nm, cl.c, cl.rec)
		if err != nil {
			cl.shutdown()
			t.Fatalf("%s: start %s: %v", label, nm, err)
		}
		cl.nodes = append(cl.nodes, nd)
		cl.names = append(cl.names, nm)
	}
	seed := cl.nodes[0].addr()
	for i, nd := range cl.nodes[1:] {
		if err := nd.join(seed); err != nil {
			cl.shutdown()
			t.Fatalf("%s: join of %s: %v", label, cl.names[i+1], err)
		}
	}
	// Forming the cluster is not what this test measures. A node that
	// still lacks members a few seconds after the last join (memberlist's
	// sometimes do, until their next push-pull, 30-60 s away) joins the
	// seed again, which holds every member, as a deployment's rejoin loop
	// would. Both libraries get the same help.
	deadline := time.Now().Add(timeout)
	rejoins := 0
	for {
		settle := time.Now().Add(5 * time.Second)
		for !allAlive(cl.nodes, n) && time.Now().Before(settle) {
			time.Sleep(10 * time.Millisecond)
		}
		if allAlive(cl.nodes, n) {
			break
		}
		if time.Now().After(deadline) {
			cl.shutdown()
			t.Fatalf("%s: not every node holds all %d alive after %v", label, n, timeout)
		}
		for _, nd := range cl.nodes[1:] {
			if nd.alive() != n {
				rejoins++
				if err := nd.join(seed); err != nil {
					t.Logf("%s: rejoin: %v", label, err)
				}
			}
		}
	}
	converged := time.Since(t0)
	cl.waitIdle(t, timeout)
	t.Logf("%s: %d nodes converged %v after start (%d rejoins), idle after %v",
		label, n, converged.Round(time.Millisecond), rejoins, time.Since(t0).Round(time.Millisecond))
	return cl
}

func (cl *cluster) shutdown() {
	for _, nd := range cl.nodes {
		nd.crash()
	}
}

// idleRate is the datagrams per node per second below which a cluster
// counts as idle: both libraries then send a ping and its ack per 1 s
// protocol period, 2 per node per second, and gossip nothing.
const idleRate = 3.0

// waitIdle waits until the cluster sends fewer than idleRate datagrams per
// node per second over a one-second window: the news of the joins or of
// the last broadcast has run out of retransmissions.
func (cl *cluster) waitIdle(t *testing.T, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		before, t0 := cl.c.snapshot(), time.Now()
		time.Sleep(time.Second)
		after, elapsed := cl.c.snapshot(), time.Since(t0).Seconds()
		rate := float64(after.udpPackets-before.udpPackets) / float64(len(cl.nodes)) / elapsed
		if rate < idleRate {
			cl.idleBytes = float64(after.udpBytes-before.udpBytes) / elapsed
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %.1f datagrams per node per second after %v", cl.label, rate, timeout)
		}
	}
}

var lastID atomic.Uint64

// round has node origin broadcast count payloads in a row, waits until
// every other node has all of them (or the timeout), and then until the
// cluster is idle again.
func (cl *cluster) round(t *testing.T, origin, count int, timeout time.Duration) bcastRound {
	t.Helper()
	ids := make([]uint64, count)
	payloads := make([][]byte, count)
	for i := range ids {
		ids[i] = lastID.Add(1)
		payloads[i] = newPayload(ids[i])
		cl.rec.sending(ids[i], cl.names[origin])
	}
	var receivers []string
	for i, nm := range cl.names {
		if i != origin {
			receivers = append(receivers, nm)
		}
	}
	before, dups0 := cl.c.snapshot(), cl.rec.duplicates()
	t0 := time.Now()
	for _, p := range payloads {
		if err := cl.nodes[origin].broadcast(p); err != nil {
			t.Fatalf("%s: broadcast: %v", cl.label, err)
		}
	}
	deadline := t0.Add(timeout)
	for !cl.rec.complete(ids, receivers) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	times, missing := cl.rec.completion(ids, receivers, t0)
	r := bcastRound{missing: missing, perID: cl.rec.lastPerID(ids, receivers, t0)}
	if len(times) > 0 {
		r.last, r.median = slices.Max(times), median(times)
	}
	if missing > 0 {
		r.last = 0 // there is no last receiver: it is left out of the statistics
		t.Logf("%s: %d of %d receivers lacked a broadcast after %v", cl.label, missing, len(receivers), timeout)
	}
	idleBefore := cl.idleBytes
	cl.waitIdle(t, timeout)
	sent := float64(cl.c.snapshot().udpBytes-before.udpBytes) - idleBefore*time.Since(t0).Seconds()
	r.udpPerNode = sent / float64(len(cl.nodes))
	r.dups = cl.rec.duplicates() - dups0
	return r
}

// stats is min, median, p95 and max of a sample.
type stats struct{ min, median, p95, max time.Duration }

func summarize(ds []time.Duration) stats {
	if len(ds) == 0 {
		return stats{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	// p95 by nearest rank: with fewer than 20 samples it is the maximum.
	k := int(math.Ceil(0.95*float64(len(s)))) - 1
	return stats{s[0], median(s), s[k], s[len(s)-1]}
}

func (s stats) String() string {
	return fmt.Sprintf("%s / %s / %s / %s", ms(s.min), ms(s.median), ms(s.p95), ms(s.max))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

// pick returns f of every round for which f has a value.
func pick(rs []bcastRound, f func(bcastRound) (time.Duration, bool)) []time.Duration {
	var ds []time.Duration
	for _, r := range rs {
		if d, ok := f(r); ok {
			ds = append(ds, d)
		}
	}
	return ds
}

// lastOf is the time until the last receiver, which a round where some
// receiver never got a broadcast does not have.
func lastOf(r bcastRound) (time.Duration, bool) { return r.last, r.missing == 0 }

// medianOf is the time until the median receiver (of those that got
// every broadcast).
func medianOf(r bcastRound) (time.Duration, bool) { return r.median, true }

func incomplete(rs []bcastRound) int {
	k := 0
	for _, r := range rs {
		if r.missing > 0 {
			k++
		}
	}
	return k
}

func medianFloat(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// bcastTable renders both libraries' rounds as a Markdown table.
func bcastTable(p bcastParams, rs ...bcastResult) string {
	var b strings.Builder
	b.WriteString("| library | scenario | rounds (incomplete: a receiver never got a broadcast) | last receiver, complete rounds: min / median / p95 / max | median receiver: min / median / p95 / max | UDP B/node above idle, call to idle again (median) | repeated receipts (median) |\n")
	b.WriteString("|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		for _, sc := range []struct {
			name   string
			rounds []bcastRound
		}{{"single", r.single}, {fmt.Sprintf("burst of %d", p.burst), r.burst}} {
			var bytes, dups []float64
			for _, x := range sc.rounds {
				bytes = append(bytes, x.udpPerNode)
				dups = append(dups, float64(x.dups))
			}
			fmt.Fprintf(&b, "| %s | %s | %d (%d) | %s | %s | %.0f | %.0f |\n", r.name, sc.name, len(sc.rounds), incomplete(sc.rounds),
				summarize(pick(sc.rounds, lastOf)), summarize(pick(sc.rounds, medianOf)), medianFloat(bytes), medianFloat(dups))
		}
	}
	return b.String()
}

// bcastRatios renders ours/memberlist per run, and of the pooled medians
// and maxima (of complete rounds, for the last receiver).
func bcastRatios(ml, ours bcastResult) string {
	ratio := func(o, m time.Duration) string { return quotient(o.Seconds(), m.Seconds()) }
	each := func(o, m bcastRound, f func(bcastRound) (time.Duration, bool)) string {
		od, ook := f(o)
		md, mok := f(m)
		switch {
		case !ook && !mok:
			return "— (both incomplete)"
		case !ook:
			return "— (ours incomplete)"
		case !mok:
			return "— (memberlist incomplete)"
		}
		return ratio(od, md)
	}
	var b strings.Builder
	b.WriteString("| run | single: last | single: median receiver | burst: last | burst: median receiver |\n")
	b.WriteString("|---|---|---|---|---|\n")
	for i := range ours.single {
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s |\n", i+1,
			each(ours.single[i], ml.single[i], lastOf), each(ours.single[i], ml.single[i], medianOf),
			each(ours.burst[i], ml.burst[i], lastOf), each(ours.burst[i], ml.burst[i], medianOf))
	}
	pooled := func(o, m []bcastRound, f func(bcastRound) (time.Duration, bool), g func(stats) time.Duration) string {
		return ratio(g(summarize(pick(o, f))), g(summarize(pick(m, f))))
	}
	med := func(s stats) time.Duration { return s.median }
	worst := func(s stats) time.Duration { return s.max }
	fmt.Fprintf(&b, "| median of runs | %s | %s | %s | %s |\n",
		pooled(ours.single, ml.single, lastOf, med), pooled(ours.single, ml.single, medianOf, med),
		pooled(ours.burst, ml.burst, lastOf, med), pooled(ours.burst, ml.burst, medianOf, med))
	fmt.Fprintf(&b, "| worst of runs | %s | %s | %s | %s |\n",
		pooled(ours.single, ml.single, lastOf, worst), pooled(ours.single, ml.single, medianOf, worst),
		pooled(ours.burst, ml.burst, lastOf, worst), pooled(ours.burst, ml.burst, medianOf, worst))
	return b.String()
}
