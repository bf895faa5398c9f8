package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLoss runs both libraries under UDP loss that the kernel inflicts
// (issue 13, "Method"): for each loss rate P it creates a network
// namespace with its loopback up and the rule
//
//	iptables -A INPUT -i lo -p udp -m statistic --mode random --probability P -j DROP
//
// and runs every cluster inside it, so that both libraries lose the same
// share of datagrams and neither loses a TCP segment. Each cluster runs in
// a child process: the test binary again, under `ip netns exec`, running
// TestLossChild, which prints its result as one JSON line. Each run starts
// a fresh cluster of each variant in turn (memberlist, memberlist with
// DisableTcpPings, ours), so the variants are interleaved A B C A B C, and
// every cluster has a process, a heap and a scheduler of its own.
//
// In each cluster: a join storm under that loss (n−1 nodes join the first
// at once; time until every node holds all n alive), a warm-up, then a
// window in which it counts, from each library's own events, logs and
// metrics (observe_test.go): probes, failed probes, suspect transitions
// seen by every observer, refutations and deaths, and, at the transport,
// UDP datagrams and bytes and TCP bytes per node per second, and the
// process's CPU time per node. No member fails in the window: every
// suspicion is false, and so is every death.
//
// It needs root, ip and iptables, and minutes, so it runs only with
// MEMBERSHIP_BENCH_LOSS=1 and skips without root or the tools. The
// namespaces are removed when the test ends, also when it fails (a test
// binary killed by its -timeout leaves them: `ip netns list | grep mbloss`).
// MEMBERSHIP_BENCH_LOSS_P (comma-separated, default 0.10,0.20),
// MEMBERSHIP_BENCH_LOSS_N (32), MEMBERSHIP_BENCH_LOSS_WINDOW (300s),
// MEMBERSHIP_BENCH_LOSS_WARMUP (35s) and MEMBERSHIP_BENCH_LOSS_RUNS (3)
// change them.
func TestLoss(t *testing.T) {
	if os.Getenv("MEMBERSHIP_BENCH_LOSS") != "1" {
		t.Skip("set MEMBERSHIP_BENCH_LOSS=1 (as root, with ip and iptables) for the comparison under kernel UDP loss (minutes per run)")
	}
	if os.Geteuid() != 0 {
		t.Skip("the loss scenario needs root to create a network namespace and an iptables rule")
	}
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the loss scenario needs %s (apt-get install iproute2 iptables): %v", tool, err)
		}
	}
	p := lossParams{
		losses:  envLosses(t, "MEMBERSHIP_BENCH_LOSS_P", []float64{0.10, 0.20}),
		n:       envInt(t, "MEMBERSHIP_BENCH_LOSS_N", 32),
		window:  envDuration(t, "MEMBERSHIP_BENCH_LOSS_WINDOW", 300*time.Second),
		warmup:  envDuration(t, "MEMBERSHIP_BENCH_LOSS_WARMUP", 35*time.Second),
		runs:    envInt(t, "MEMBERSHIP_BENCH_LOSS_RUNS", 3),
		timeout: 3 * time.Minute,
	}
	if p.n < 3 {
		t.Fatalf("MEMBERSHIP_BENCH_LOSS_N=%d: need at least 3 nodes", p.n)
	}
	// MEMBERSHIP_BENCH_LOSS_VARIANTS (comma-separated keys: ml, ml-notcp,
	// ours; default all) runs a subset, for more runs of the pair that the
	// goals compare once DisableTcpPings has made its point.
	keep := map[string]bool{}
	for _, v := range lossVariants {
		keep[v.key] = true
	}
	if list := os.Getenv("MEMBERSHIP_BENCH_LOSS_VARIANTS"); list != "" {
		keep = map[string]bool{}
		for _, k := range strings.Split(list, ",") {
			keep[strings.TrimSpace(k)] = true
		}
	}
	for i, loss := range p.losses {
		ns := newLossNetns(t, i, loss)
		var rs []lossResult
		for run := 1; run <= p.runs; run++ {
			for _, v := range lossVariants {
				if !keep[v.key] {
					continue
				}
				req := lossRequest{
					Variant: v.key, N: p.n, Warmup: p.warmup, Window: p.window, Timeout: p.timeout,
				}
				if dir := os.Getenv("MEMBERSHIP_BENCH_LOSS_CPUPROFILE"); dir != "" {
					req.CPUProfile = filepath.Join(dir, fmt.Sprintf("%s-p%02.0f-run%d.pprof", v.key, 100*loss, run))
				}
				r := runLossChild(t, ns, req)
				r.Run, r.Name, r.Loss = run, v.name, loss
				t.Logf("P=%.2f run %d %s: %s", loss, run, v.name, r.summary())
				rs = append(rs, r)
			}
		}
		t.Logf("N=%d under %.0f %% UDP loss (kernel, iptables statistic in a netns), %v window after a %v warm-up, %d runs (variants interleaved, a fresh cluster and process each)\n%s",
			p.n, 100*loss, p.window, p.warmup, p.runs, lossTables(rs))
	}
}

type lossParams struct {
	losses         []float64
	n, runs        int
	window, warmup time.Duration
	timeout        time.Duration
}

// lossVariants are the clusters of one run, in order. The second confirms
// or refutes that memberlist's TCP ping after a failed UDP probe
// (state.go:450–474) is what keeps its failed probes at zero under UDP
// loss.
var lossVariants = []struct{ key, name string }{
	{"ml", "memberlist (AES-256-GCM)"},
	{"ml-notcp", "memberlist (AES-256-GCM, DisableTcpPings)"},
	{"ours", "membership (XChaCha20-Poly1305)"},
}

// lossRequest is what the parent asks of a child process.
type lossRequest struct {
	Variant                 string
	N                       int
	Warmup, Window, Timeout time.Duration
	// CPUProfile, when set, is the file the child writes a CPU profile of
	// its window to (MEMBERSHIP_BENCH_LOSS_CPUPROFILE names the directory).
	CPUProfile string
}

// lossResult is what one cluster measured. Counts are over the window,
// summed over the cluster's nodes; rates are per node per second.
type lossResult struct {
	Run  int     `json:"run"`
	Name string  `json:"name"`
	Loss float64 `json:"loss"`

	Join         float64 `json:"join_s"`   // until every node held all n alive
	Joined       float64 `json:"joined_s"` // until every Join call had returned
	JoinFailures int     `json:"join_failures"`

	Window   float64            `json:"window_s"`
	UDPPkt   float64            `json:"udp_pkt_per_node_s"`
	UDPBytes float64            `json:"udp_bytes_per_node_s"`
	TCPBytes float64            `json:"tcp_bytes_per_node_s"`
	CPU      float64            `json:"cpu_ms_per_node_s"`
	Counts   map[string]float64 `json:"counts"`
	// NotAllAlive is how many nodes did not hold all n alive (suspects
	// included) at the end of the window.
	NotAllAlive int `json:"not_all_alive"`

	// The kernel's own count while the child ran (the parent reads the
	// iptables rules): UDP datagrams that reached loopback input, and
	// how many of them the rule dropped.
	KernelUDP     int64 `json:"kernel_udp"`
	KernelDropped int64 `json:"kernel_dropped"`
}

func (r lossResult) summary() string {
	b, _ := json.Marshal(r.Counts)
	return fmt.Sprintf("join %.2f s (Join calls %.2f s, %d failed); %.2f pkt/s, %.0f B/s UDP, %.0f B/s TCP, %.2f ms/s CPU per node; kernel dropped %d of %d UDP (%.1f %%); nodes not holding all alive at the end: %d; counts over %.0f s: %s",
		r.Join, r.Joined, r.JoinFailures, r.UDPPkt, r.UDPBytes, r.TCPBytes, r.CPU,
		r.KernelDropped, r.KernelUDP, 100*float64(r.KernelDropped)/max(1, float64(r.KernelUDP)), r.NotAllAlive, r.Window, b)
}

const (
	lossChildEnv     = "MEMBERSHIP_BENCH_LOSS_CHILD"
	lossResultPrefix = "LOSS-RESULT "
	// Comments on the two iptables rules, to find their counters.
	ruleSeen = "mbloss-seen"
	ruleDrop = "mbloss-drop"
)

// newLossNetns creates a network namespace with loopback up, a rule that
// counts UDP datagrams reaching loopback input and one that drops each
// with probability loss, and removes it when the test ends.
func newLossNetns(t *testing.T, i int, loss float64) string {
	t.Helper()
	ns := fmt.Sprintf("mbloss-%d-%d", os.Getpid(), i)
	mustRun(t, "ip", "netns", "add", ns)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", ns, err, out)
		}
	})
	mustRun(t, "ip", "-n", ns, "link", "set", "lo", "up")
	mustRun(t, "ip", "netns", "exec", ns, "iptables", "-A", "INPUT", "-i", "lo", "-p", "udp",
		"-m", "comment", "--comment", ruleSeen)
	mustRun(t, "ip", "netns", "exec", ns, "iptables", "-A", "INPUT", "-i", "lo", "-p", "udp",
		"-m", "statistic", "--mode", "random", "--probability", strconv.FormatFloat(loss, 'f', -1, 64),
		"-m", "comment", "--comment", ruleDrop, "-j", "DROP")
	return ns
}

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// kernelCounts returns the packet counters of the two rules in ns.
func kernelCounts(t *testing.T, ns string) (seen, dropped int64) {
	t.Helper()
	out := mustRun(t, "ip", "netns", "exec", ns, "iptables", "-L", "INPUT", "-v", "-n", "-x")
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		switch {
		case strings.Contains(line, "/* "+ruleSeen+" */"):
			seen = v
		case strings.Contains(line, "/* "+ruleDrop+" */"):
			dropped = v
		}
	}
	return seen, dropped
}

// runLossChild runs one cluster in a child process inside ns and returns
// what it measured.
func runLossChild(t *testing.T, ns string, req lossRequest) lossResult {
	t.Helper()
	spec, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	mustRun(t, "ip", "netns", "exec", ns, "iptables", "-Z", "INPUT")
	ctx, cancel := context.WithTimeout(context.Background(), req.Warmup+req.Window+2*req.Timeout+time.Minute)
	defer cancel()
	// ip netns exec execs the program in place, so the context's kill
	// reaches the child itself.
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, os.Args[0],
		"-test.run=^TestLossChild$", "-test.count=1", "-test.timeout=0")
	cmd.Env = append(os.Environ(), lossChildEnv+"="+string(spec))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var r lossResult
	found := false
	sc := bufio.NewScanner(bytes.NewReader(stdout.Bytes()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if s, ok := strings.CutPrefix(sc.Text(), lossResultPrefix); ok {
			if err := json.Unmarshal([]byte(s), &r); err != nil {
				t.Fatalf("%s: bad result %q: %v", req.Variant, s, err)
			}
			found = true
		}
	}
	if runErr != nil || !found {
		t.Fatalf("%s in %s: %v, result found: %v\nstdout:\n%s\nstderr:\n%s", req.Variant, ns, runErr, found, tail(stdout.String()), tail(stderr.String()))
	}
	r.KernelUDP, r.KernelDropped = kernelCounts(t, ns)
	return r
}

func tail(s string) string {
	const keep = 4000
	if len(s) > keep {
		return "…" + s[len(s)-keep:]
	}
	return s
}

// TestLossChild is one cluster of TestLoss, run by it in a child process
// inside the namespace; on its own it skips.
func TestLossChild(t *testing.T) {
	spec := os.Getenv(lossChildEnv)
	if spec == "" {
		t.Skip("runs only as a child process of TestLoss (MEMBERSHIP_BENCH_LOSS=1)")
	}
	var req lossRequest
	if err := json.Unmarshal([]byte(spec), &req); err != nil {
		t.Fatalf("%s=%q: %v", lossChildEnv, spec, err)
	}
	r := runLossCluster(t, req)
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("%s%s\n", lossResultPrefix, b)
}

// runLossCluster starts one cluster of req.Variant and measures it: the
// join storm, then, after the warm-up, the window.
func runLossCluster(t *testing.T, req lossRequest) lossResult {
	t.Helper()
	var im impl
	var counts func() map[string]float64
	switch req.Variant {
	case "ml", "ml-notcp":
		obs, err := newMLObserver()
		if err != nil {
			t.Fatal(err)
		}
		im, counts = mlImpl{encrypt: true, noTCPPings: req.Variant == "ml-notcp", obs: obs}, obs.snapshot
	case "ours":
		obs := newOursObserver()
		im, counts = oursImpl{encrypt: true, obs: obs}, obs.snapshot
	default:
		t.Fatalf("unknown variant %q", req.Variant)
	}
	c := &counters{}
	var nodes []node
	defer func() {
		for _, nd := range nodes {
			nd.crash()
		}
	}()
	for i := 0; i < req.N; i++ {
		nd, err := im.start(fmt.Sprintf("node-%02d", i), c, nil)
		if err != nil {
			t.Fatalf("%s: start node %d: %v", req.Variant, i, err)
		}
		nodes = append(nodes, nd)
	}
	var r lossResult
	join, joined, failures := joinStorm(t, req.Variant, nodes, req.N, req.Timeout)
	r.Join, r.Joined, r.JoinFailures = join.Seconds(), joined.Seconds(), failures

	// The warm-up lets the join news run out and push-pull reach its
	// steady rate, as in TestCompare; it is method, not a wait for a
	// condition.
	time.Sleep(req.Warmup)
	stopProfile := startCPUProfile(t, req.CPUProfile)
	k0, s0, cpu0, w0 := counts(), c.snapshot(), cpuTime(t), time.Now()
	time.Sleep(req.Window)
	k1, s1, cpu1, elapsed := counts(), c.snapshot(), cpuTime(t), time.Since(w0)
	stopProfile()

	perNodeSec := float64(req.N) * elapsed.Seconds()
	r.Window = elapsed.Seconds()
	r.UDPPkt = float64(s1.udpPackets-s0.udpPackets) / perNodeSec
	r.UDPBytes = float64(s1.udpBytes-s0.udpBytes) / perNodeSec
	r.TCPBytes = float64(s1.tcpBytes-s0.tcpBytes) / perNodeSec
	r.CPU = float64((cpu1 - cpu0).Milliseconds()) / perNodeSec
	r.Counts = diff(k0, k1)
	for _, nd := range nodes {
		if nd.alive() != req.N {
			r.NotAllAlive++
		}
	}
	return r
}

// startCPUProfile writes a CPU profile to path until the returned function
// is called; with an empty path it does nothing. The profile covers the
// window only, so that the comparison's CPU column can be read by function
// (go tool pprof -top path).
func startCPUProfile(t *testing.T, path string) func() {
	t.Helper()
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatalf("cpu profile: %v", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		t.Fatalf("cpu profile %s: %v", path, err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			t.Errorf("cpu profile %s: %v", path, err)
		}
	}
}

func envLosses(t *testing.T, name string, def []float64) []float64 {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	var out []float64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || v < 0 || v >= 1 {
			t.Fatalf("%s=%q: want comma-separated probabilities in [0, 1)", name, s)
		}
		out = append(out, v)
	}
	return out
}
