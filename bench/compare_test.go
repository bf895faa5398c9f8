package bench

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestCompare runs the same scenarios against hashicorp/memberlist and
// membership, one after the other in one process, on loopback UDP and TCP
// at each library's LAN defaults, and prints one table so that ratios come
// from one run:
//
//   - join storm: n−1 nodes join one seed at once; time until every node
//     holds all n alive;
//   - idle traffic: after a warm-up, what the converged cluster sends per
//     node per second (UDP datagrams and bytes, TCP bytes), and the process
//     CPU time per node;
//   - crash detection: one node stops without leaving; time until the
//     first and until every survivor holds it dead. A fresh node then
//     replaces it before the next trial, so every trial starts at n alive.
//
// It takes minutes of real time, so it runs only with MEMBERSHIP_BENCH=1
// (or in quick mode, below). MEMBERSHIP_BENCH_N (default 16),
// MEMBERSHIP_BENCH_WARMUP (default 35s), MEMBERSHIP_BENCH_WINDOW (default
// 60s) and MEMBERSHIP_BENCH_TRIALS (default 3) change the cluster size, the
// wait between convergence and the traffic window, the window and the
// number of crash trials. MEMBERSHIP_BENCH_RUNS (default 1) repeats the
// whole comparison, each run in fresh clusters with the variants
// interleaved, and prints min, median, p95 and max over the runs;
// MEMBERSHIP_BENCH_JOIN_ONLY=1 measures only the join storm (for N=128 over
// 20 runs) and MEMBERSHIP_BENCH_ENCRYPTED_ONLY=1 only the encrypted pair.
//
// The warm-up is longer than the 30 s push-pull interval of both
// libraries: memberlist's first push-pull comes a random stagger plus one
// interval after start, ours one jittered interval after start, so only
// after 30 s does every node of both run push-pull at its steady rate, and
// a 60 s window then holds two rounds of each.
//
// Quick mode (BENCH_QUICK=1 or -quick) runs the encrypted pair only, with
// a 2 s warm-up, a 5 s window and one crash trial: its traffic columns are
// not idle traffic (the join news is still spreading), and it is a check
// that the comparison runs and of its rough shape, not a result.
func TestCompare(t *testing.T) {
	m := needMode(t)
	def := params{n: 16, window: 60 * time.Second, warmup: 35 * time.Second, trials: 3}
	if m == modeQuick {
		def = params{n: 16, window: 5 * time.Second, warmup: 2 * time.Second, trials: 1}
	}
	p := params{
		n:        envInt(t, "MEMBERSHIP_BENCH_N", def.n),
		window:   envDuration(t, "MEMBERSHIP_BENCH_WINDOW", def.window),
		warmup:   envDuration(t, "MEMBERSHIP_BENCH_WARMUP", def.warmup),
		trials:   envInt(t, "MEMBERSHIP_BENCH_TRIALS", def.trials),
		joinOnly: os.Getenv("MEMBERSHIP_BENCH_JOIN_ONLY") == "1",
		timeout:  3 * time.Minute,
	}
	runs := envInt(t, "MEMBERSHIP_BENCH_RUNS", 1)
	if p.n < 3 {
		t.Fatalf("MEMBERSHIP_BENCH_N=%d: need at least 3 nodes", p.n)
	}
	variants := compareVariants
	if m == modeQuick || os.Getenv("MEMBERSHIP_BENCH_ENCRYPTED_ONLY") == "1" {
		variants = []variant{compareVariants[1], compareVariants[3]} // the encrypted pair
	}
	var all [][]result
	for run := 1; run <= runs; run++ {
		results := runVariants(t, variants, p)
		all = append(all, results)
		if p.joinOnly {
			continue
		}
		t.Logf("run %d of %d: N=%d, traffic window %v after a %v warm-up, %d crash trials\n%s", run, runs, p.n, p.window, p.warmup, p.trials, table(results))
		t.Logf("run %d of %d: ratios membership/memberlist\n%s", run, runs, ratioPairs(results))
	}
	t.Logf("N=%d, %d runs (variants interleaved, fresh clusters), min / median / p95 / max over runs (crash: over every trial of every run)\n%s", p.n, runs, summaryTable(all, p.joinOnly))
	t.Logf("ours / memberlist per run, min / median / p95 / max\n%s", summaryRatios(all, p.joinOnly))
}

// compareVariants are the four configurations TestCompare runs, each
// memberlist variant before its counterpart of ours.
var compareVariants = []variant{
	{"memberlist (plaintext)", mlImpl{encrypt: false}},
	{"memberlist (AES-256-GCM)", mlImpl{encrypt: true}},
	{"membership (plaintext)", oursImpl{encrypt: false}},
	{"membership (XChaCha20-Poly1305)", oursImpl{encrypt: true}},
}

type variant struct {
	name string
	impl impl
}

func runVariants(t *testing.T, vs []variant, p params) []result {
	t.Helper()
	var results []result
	for _, v := range vs {
		r := runVariant(t, v.name, v.impl, p)
		if p.joinOnly {
			t.Logf("%s: join %v (Join calls returned after %v, %d failed attempts)", v.name, r.join.Round(time.Millisecond), r.joined.Round(time.Millisecond), r.joinFailures)
		} else {
			t.Logf("%s: %s", v.name, r.summary())
		}
		results = append(results, r)
	}
	return results
}

// ratioPairs renders ours/memberlist for each pair of results: plaintext
// and encrypted when there are four, the encrypted pair when there are two.
func ratioPairs(rs []result) string {
	if len(rs) == 4 {
		return ratios(rs[2], rs[0], rs[3], rs[1])
	}
	return ratios(rs[1], rs[0])
}

type params struct {
	n       int
	window  time.Duration
	warmup  time.Duration
	trials  int
	timeout time.Duration
	// joinOnly stops after the join storm: no idle window, no crash
	// trial (MEMBERSHIP_BENCH_JOIN_ONLY=1, for join storms at N=128 over
	// 20 runs).
	joinOnly bool
}

type result struct {
	name         string
	join         time.Duration
	joinFailures int           // join attempts that failed and were retried
	joined       time.Duration // until every Join call had returned
	pktPerSec    float64       // UDP datagrams sent per node per second
	bytesPerSec  float64       // UDP payload bytes sent per node per second
	tcpPerSec    float64       // TCP bytes written per node per second
	cpuPerSec    float64       // process CPU milliseconds per node per second
	first, all   []time.Duration
}

func (r result) summary() string {
	return fmt.Sprintf("join %v (Join calls returned after %v, %d failed attempts); %.2f pkt/s, %.0f B/s UDP, %.0f B/s TCP, %.2f ms/s CPU per node; crash → first %v, all %v",
		r.join.Round(time.Millisecond), r.joined.Round(time.Millisecond), r.joinFailures, r.pktPerSec, r.bytesPerSec, r.tcpPerSec, r.cpuPerSec, rounded(r.first), rounded(r.all))
}

func runVariant(t *testing.T, name string, im impl, p params) result {
	t.Helper()
	r := result{name: name}
	c := &counters{}
	var nodes []node
	names := map[node]string{}
	defer func() {
		for _, nd := range nodes {
			nd.crash()
		}
	}()
	start := func(nm string) node {
		nd, err := im.start(nm, c, nil)
		if err != nil {
			t.Fatalf("%s: start %s: %v", name, nm, err)
		}
		names[nd] = nm
		return nd
	}
	for i := 0; i < p.n; i++ {
		nodes = append(nodes, start(fmt.Sprintf("node-%02d", i)))
	}
	seed := nodes[0].addr()

	r.join, r.joined, r.joinFailures = joinStorm(t, name, nodes, p.n, p.timeout)

	if p.joinOnly {
		return r
	}

	// Idle traffic. The warm-up lets the join news run out of
	// retransmissions and push-pull reach its steady rate (see above); it
	// is part of the method, not a wait for a condition.
	time.Sleep(p.warmup)
	before, cpu0, w0 := c.snapshot(), cpuTime(t), time.Now()
	time.Sleep(p.window)
	after, cpu1, elapsed := c.snapshot(), cpuTime(t), time.Since(w0)
	perNodeSec := float64(p.n) * elapsed.Seconds()
	r.pktPerSec = float64(after.udpPackets-before.udpPackets) / perNodeSec
	r.bytesPerSec = float64(after.udpBytes-before.udpBytes) / perNodeSec
	r.tcpPerSec = float64(after.tcpBytes-before.tcpBytes) / perNodeSec
	r.cpuPerSec = float64((cpu1 - cpu0).Milliseconds()) / perNodeSec

	// Crash detection.
	for k := 0; k < p.trials; k++ {
		victim := nodes[len(nodes)-1]
		survivors := nodes[:len(nodes)-1]
		vname := names[victim]
		t0 := time.Now()
		victim.crash()
		nodes = survivors
		var first time.Duration
		waitFor(t, p.timeout, fmt.Sprintf("%s: every survivor to hold %s dead", name, vname), func() bool {
			seen := 0
			for _, nd := range survivors {
				if nd.gone(vname) {
					seen++
				}
			}
			if seen > 0 && first == 0 {
				first = time.Since(t0)
			}
			return seen == len(survivors)
		})
		r.first = append(r.first, first)
		r.all = append(r.all, time.Since(t0))

		// A fresh member (new name) takes the victim's place.
		nd := start(fmt.Sprintf("repl-%02d", k))
		nodes = append(nodes, nd)
		if err := nd.join(seed); err != nil {
			t.Fatalf("%s: join of %s: %v", name, names[nd], err)
		}
		waitFor(t, p.timeout, name+": every node to hold the replacement alive", func() bool { return allAlive(nodes, p.n) })
	}
	return r
}

// joinStorm makes every node but the first join the first at once, and
// returns the time until every node held all n alive, the time until every
// Join call had returned, and how many Join calls failed. A join that fails
// is retried after 100 ms, as a deployment's rejoin loop would, and
// counted: a seed may refuse streams beyond its concurrency cap.
func joinStorm(t *testing.T, name string, nodes []node, n int, timeout time.Duration) (join, joined time.Duration, failures int) {
	t.Helper()
	seed := nodes[0].addr()
	t0 := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Int64
	errs := make(chan error, n)
	for _, nd := range nodes[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(timeout)
			for {
				err := nd.join(seed)
				if err == nil {
					return
				}
				failed.Add(1)
				if time.Now().After(deadline) {
					errs <- err
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	joined = time.Since(t0)
	close(errs)
	for err := range errs {
		t.Fatalf("%s: join: %v", name, err)
	}
	waitFor(t, timeout, name+": every node to hold all alive", func() bool { return allAlive(nodes, n) })
	return time.Since(t0), joined, int(failed.Load())
}

// allAlive reports whether every node holds n members alive.
func allAlive(nodes []node, n int) bool {
	for _, nd := range nodes {
		if nd.alive() != n {
			return false
		}
	}
	return true
}

// waitFor polls cond every 10 ms until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// cpuTime is the CPU time (user plus system) the process has used.
func cpuTime(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func envInt(t *testing.T, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 {
		t.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return v
}

func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		t.Fatalf("%s=%q: want a positive duration", name, s)
	}
	return v
}

func rounded(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(10 * time.Millisecond)
	}
	return out
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

// table renders the results as a Markdown table.
func table(rs []result) string {
	var b strings.Builder
	b.WriteString("| library | join storm | Join calls returned | failed joins | UDP pkt/s/node | UDP B/s/node | B/datagram | TCP B/s/node | CPU ms/s/node | crash → first: min / median / p95 / max | crash → all: min / median / p95 / max | crash → all (trials) |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		var trials []string
		for _, d := range r.all {
			trials = append(trials, fmt.Sprintf("%.2f", d.Seconds()))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %.2f | %.0f | %.0f | %.0f | %.2f | %s | %s | %s s |\n",
			r.name, secs(r.join), secs(r.joined), r.joinFailures, r.pktPerSec, r.bytesPerSec, r.bytesPerSec/r.pktPerSec, r.tcpPerSec, r.cpuPerSec,
			durStats(r.first), durStats(r.all), strings.Join(trials, ", "))
	}
	return b.String()
}

// quotient renders a/b with two decimals (three below 0.1), or "—" when b
// is not positive (nothing was measured).
func quotient(a, b float64) string {
	switch q := a / b; {
	case b <= 0:
		return "—"
	case q < 0.1:
		return fmt.Sprintf("%.3f", q)
	default:
		return fmt.Sprintf("%.2f", q)
	}
}

// ratios renders ours/memberlist for each pair (ours, theirs, ours, theirs...).
func ratios(pairs ...result) string {
	var b strings.Builder
	b.WriteString("| pair | join storm | UDP pkt/s | UDP B/s | TCP B/s | CPU | crash → first | crash → all |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for i := 0; i+1 < len(pairs); i += 2 {
		o, m := pairs[i], pairs[i+1]
		fmt.Fprintf(&b, "| %s / %s | %s | %s | %s | %s | %s | %s | %s |\n", o.name, m.name,
			quotient(o.join.Seconds(), m.join.Seconds()), quotient(o.pktPerSec, m.pktPerSec), quotient(o.bytesPerSec, m.bytesPerSec),
			quotient(o.tcpPerSec, m.tcpPerSec), quotient(o.cpuPerSec, m.cpuPerSec),
			quotient(median(o.first).Seconds(), median(m.first).Seconds()), quotient(median(o.all).Seconds(), median(m.all).Seconds()))
	}
	return b.String()
}
