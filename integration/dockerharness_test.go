//go:build linux

package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meshward/membership/swim"
)

// The Docker scenarios run only with MEMBERSHIP_DOCKER=1, with a docker
// CLI that can reach a daemon (root, or a member of the docker group).
const dockerGate = "MEMBERSHIP_DOCKER"

const dockerHowTo = "MEMBERSHIP_DOCKER=1 go test -count=1 -parallel 8 -run TestDocker -v ./integration/"

// Every container, network, volume and image a run makes is named
// "mit-PID-RANDOM…" (the image "membership-it-agent:mit-PID-RANDOM") and
// carries this label, so that two runs never collide and a later run can
// remove what a killed one left behind.
const dockerLabel = "io.meshward.membership.it"

// scriptLabel is the label deploy/docker/cluster.sh puts on what it makes.
const scriptLabel = "io.meshward.membership.cluster"

// staleName matches the names a run gives its resources; the number is
// the process id of the test binary that made them.
var staleName = regexp.MustCompile(`^mit-(\d+)-[0-9a-f]{8}`)

// lan is the protocol configuration of ProfileLAN, which the Docker
// scenarios run.
var lan = swim.LANConfig()

// The bounds the scenarios assert, derived from lan for a cluster of n live
// members. They assume healthy members (a Lifeguard health score of zero),
// which the scenarios check by never seeing a member falsely suspected.

// periodMax is the longest protocol period: ProbeInterval·(1 + Jitter/2).
func periodMax() time.Duration {
	return time.Duration(float64(lan.ProbeInterval) * (1 + lan.Jitter/2))
}

// suspicionMin and suspicionMax are the Lifeguard suspicion timeouts (see
// suspicionBounds in swim/core.go): α·max(1, log10 n)·ProbeInterval, and β
// times that before any confirmation.
func suspicionMin(n int) time.Duration {
	return time.Duration(lan.SuspicionMult * max(1, math.Log10(float64(n))) * float64(lan.ProbeInterval))
}

func suspicionMax(n int) time.Duration {
	return time.Duration(lan.SuspicionMaxMult * float64(suspicionMin(n)))
}

// spreadMax is how long an update is piggybacked: λ·⌈log2(n+1)⌉
// transmissions (SWIM §4.1), at least one per period. Every update reaches
// every member well within it (the gossip timer sends three every 200 ms).
func spreadMax(n int) time.Duration {
	return time.Duration(lan.RetransmitMult*bits.Len(uint(n))) * periodMax()
}

// detectBound is how long after a member stops answering every other
// member reports it failed: the randomized round-robin probes every member
// within 2n−1 periods (SWIM §4.3), the probe fails at the end of its
// period, the suspicion spreads (spreadMax) and each member's own
// suspicion timer runs out at the latest after suspicionMax; the first
// timer to fire declares it dead for everyone it reaches sooner.
func detectBound(n int) time.Duration {
	return time.Duration(2*n)*periodMax() + spreadMax(n) + suspicionMax(n)
}

// partitionBound is detectBound for members that are not healthy, as
// every member is in a partition that cuts off half the cluster: half its
// probes fail, and helpers on the far side send no nack, so its Lifeguard
// health score climbs and its period stretches up to (HealthMax+1)·
// ProbeInterval (Lifeguard §4.1). Members at a score of QuietHealth or more
// start no suspicion and confirm none, so the suspicion timeouts also run
// near suspicionMax. This is the configuration's bound with the longest
// period; the quiet rule makes it a bound in practice, not a proof (a
// member must come back below QuietHealth, which successful probes of its
// own half bring about).
func partitionBound(n int) time.Duration {
	return time.Duration(2*n*(lan.HealthMax+1))*periodMax() + spreadMax(n) + suspicionMax(n)
}

// convergeBound is how long after the last join every member knows every
// other: the joiner's alive message spreads (spreadMax); a member it
// missed finds a different view digest on its next ping (one period) and
// asks for a state exchange, at most once per RepairInterval.
func convergeBound(n int) time.Duration {
	return spreadMax(n) + periodMax() + lan.RepairInterval
}

// reviveBound is how long after a member held dead can be reached again
// until every member sees it alive: every member pings one of its dead
// tombstones every DeadProbeInterval (jittered), telling it that it is
// held dead; it refutes with a higher incarnation, which spreads; a member
// whose view still differs asks for a state exchange (RepairInterval), and
// the refutations that exchange causes spread again.
func reviveBound(n int) time.Duration {
	dp := time.Duration(float64(lan.DeadProbeInterval) * (1 + lan.Jitter/2))
	return dp + lan.RepairInterval + 2*spreadMax(n)
}

// rejoinBound is how long after a restarted agent prints its ready line
// every member sees it again: its join (the agent's -join-timeout, 10 s)
// and the spread of its alive message.
func rejoinBound(n int) time.Duration {
	return 10*time.Second + spreadMax(n)
}

// dockerSuite is what the scenarios share: the image, the key volumes and
// the run's unique name.
type dockerSuite struct {
	prefix   string // "mit-PID-RANDOM"
	image    string
	keyVol   string // a volume with /keys/cluster.key
	otherVol string // a volume with another key
}

// requireDocker skips the test unless MEMBERSHIP_DOCKER=1 is set and the
// docker CLI reaches a daemon.
func requireDocker(t *testing.T) {
	t.Helper()
	if os.Getenv(dockerGate) != "1" {
		t.Skipf("set %s=1 to run the Docker scenarios (needs Docker and root or the docker group; no registry): %s", dockerGate, dockerHowTo)
	}
	if testing.Short() {
		t.Skip("Docker scenarios: skipped with -short")
	}
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skipf("no docker command (%v); install Docker and run, as root or in the docker group: %s", err, dockerHowTo)
	}
	if out, err := dockerOut(20*time.Second, "info", "--format", "{{.ServerVersion}}"); err != nil {
		t.Skipf("docker cannot reach a daemon (%v: %s); run as root or in the docker group: %s", err, out, dockerHowTo)
	}
}

// dockerOut runs the docker CLI and returns its trimmed combined output.
func dockerOut(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	if err != nil {
		err = fmt.Errorf("docker %s: %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), err
}

// dockerDo runs the docker CLI and fails the test if it fails.
func dockerDo(t testing.TB, args ...string) string {
	t.Helper()
	out, err := dockerOut(2*time.Minute, args...)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return out
}

// dockerAll runs several docker commands at once, so that a fault hits
// every container at about the same moment, and fails the test if any
// failed.
func dockerAll(t testing.TB, cmds [][]string) {
	t.Helper()
	errs := make([]error, len(cmds))
	outs := make([]string, len(cmds))
	var wg sync.WaitGroup
	for i, args := range cmds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = dockerOut(2*time.Minute, args...)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("%v\n%s", err, outs[i])
		}
	}
}

// dockerTry runs the docker CLI for cleanup: a failure is reported, not
// fatal, so that the rest of the cleanup still runs.
func dockerTry(t testing.TB, args ...string) {
	t.Helper()
	if out, err := dockerOut(2*time.Minute, args...); err != nil {
		t.Errorf("cleanup: %v\n%s", err, out)
	}
}

// newDockerSuite removes what killed runs left behind, builds the static
// agent and the image from deploy/docker/Dockerfile (FROM scratch: nothing
// is pulled), and makes two key volumes. Everything goes in t.Cleanup.
func newDockerSuite(t *testing.T) *dockerSuite {
	t.Helper()
	sweepStale(t)
	var rnd [4]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatal(err)
	}
	s := &dockerSuite{prefix: fmt.Sprintf("mit-%d-%s", os.Getpid(), hex.EncodeToString(rnd[:]))}
	s.image = "membership-it-agent:" + s.prefix
	s.keyVol, s.otherVol = s.prefix+"-keys", s.prefix+"-other-keys"

	// The build context: the Dockerfile, the static agent, an empty keys
	// directory (as deploy/docker/cluster.sh build makes it).
	ctx := t.TempDir()
	if err := os.Mkdir(filepath.Join(ctx, "keys"), 0o755); err != nil {
		t.Fatal(err)
	}
	df, err := os.ReadFile(filepath.Join("..", "deploy", "docker", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ctx, "Dockerfile"), df, 0o644); err != nil {
		t.Fatal(err)
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to build the agent: %v", err)
	}
	build := exec.Command(gobin, "build", "-ldflags=-s -w", "-o", filepath.Join(ctx, "agent"), "./examples/agent")
	build.Dir = ".."
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build ./examples/agent: %v\n%s", err, out)
	}
	label := dockerLabel + "=" + s.prefix
	dockerDo(t, "build", "-q", "--label", label, "-t", s.image, ctx)
	t.Cleanup(func() { dockerTry(t, "rmi", "-f", s.image) })
	for _, vol := range []string{s.keyVol, s.otherVol} {
		dockerDo(t, "volume", "create", "--label", label, vol)
		t.Cleanup(func() { dockerTry(t, "volume", "rm", "-f", vol) })
		dockerDo(t, "run", "--rm", "--label", label, "-v", vol+":/keys", s.image, "-keygen", "-keyfile", "/keys/cluster.key")
	}
	return s
}

// sweepStale removes the containers, networks, volumes and images of runs
// whose test process is gone (killed by a timeout, say, before its
// cleanup ran). Runs that are still going are left alone.
func sweepStale(t *testing.T) {
	t.Helper()
	stale := func(name string) bool {
		m := staleName.FindStringSubmatch(name)
		if m == nil {
			return false
		}
		pid, err := strconv.Atoi(m[1])
		if err != nil || pid <= 0 || pid == os.Getpid() {
			return false
		}
		return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
	}
	list := func(args ...string) []string {
		out, err := dockerOut(time.Minute, args...)
		if err != nil {
			t.Logf("sweep: %v: %s", err, out)
			return nil
		}
		var names []string
		for _, name := range strings.Fields(out) {
			if stale(strings.TrimPrefix(name, "membership-it-agent:")) {
				names = append(names, name)
			}
		}
		return names
	}
	// Our label, and the one deploy/docker/cluster.sh puts on what it
	// makes (the script scenario runs it under a run's prefix).
	for _, key := range []string{dockerLabel, scriptLabel} {
		filter := "label=" + key
		for _, kind := range []struct{ list, rm []string }{
			{[]string{"ps", "-a", "--filter", filter, "--format", "{{.Names}}"}, []string{"rm", "-f"}},
			{[]string{"network", "ls", "--filter", filter, "--format", "{{.Name}}"}, []string{"network", "rm"}},
			{[]string{"volume", "ls", "--filter", filter, "--format", "{{.Name}}"}, []string{"volume", "rm", "-f"}},
			{[]string{"images", "--filter", filter, "--format", "{{.Repository}}:{{.Tag}}"}, []string{"rmi", "-f"}},
		} {
			if names := list(kind.list...); len(names) > 0 {
				t.Logf("removing what an earlier run left behind: %s", strings.Join(names, " "))
				if out, err := dockerOut(2*time.Minute, append(kind.rm, names...)...); err != nil {
					t.Logf("sweep: %v: %s", err, out)
				}
			}
		}
	}
}

// dnet is a user-defined bridge network of one scenario.
type dnet struct {
	name   string
	subnet string // chosen by Docker
}

// dnode is one member: a container that may be started more than once.
type dnode struct {
	member    string // member name, also the container's host name
	container string
	procs     []*proc // one per start, the last is current
}

func (n *dnode) p() *proc { return n.procs[len(n.procs)-1] }

// nodeSpec says how to create a member's container.
type nodeSpec struct {
	member  string
	net     dnet   // the network whose address is advertised
	also    []dnet // further networks, connected before the first start
	keyVol  string // default the suite's key
	label   string // cluster label, default the scenario's
	seeds   []string
	payload string
	args    []string // further agent flags
}

// dcluster is the containers of one scenario, on networks of its own.
type dcluster struct {
	s     *dockerSuite
	t     *testing.T
	h     *hub
	name  string // prefix of every name: suite prefix + scenario
	label string // the scenario's cluster label
	nodes []*dnode
}

func (s *dockerSuite) cluster(t *testing.T, scenario string) *dcluster {
	return &dcluster{s: s, t: t, h: newHub(), name: s.prefix + "-" + scenario, label: scenario}
}

// network creates a bridge network, removed in t.Cleanup after the
// containers (cleanups run last-in first-out).
func (c *dcluster) network(suffix string) dnet {
	t := c.t
	t.Helper()
	n := dnet{name: c.name + "-" + suffix}
	dockerDo(t, "network", "create", "--driver", "bridge", "--label", dockerLabel+"="+c.s.prefix, n.name)
	t.Cleanup(func() { dockerTry(t, "network", "rm", n.name) })
	n.subnet = dockerDo(t, "network", "inspect", "--format", "{{(index .IPAM.Config 0).Subnet}}", n.name)
	return n
}

// create makes a member's container (not started). The agent binds every
// interface and advertises its address on spec.net, found by subnet, so
// the address stays right whichever order Docker gives the interfaces.
func (c *dcluster) create(spec nodeSpec) *dnode {
	t := c.t
	t.Helper()
	n := &dnode{member: spec.member, container: c.name + "-" + spec.member}
	vol := spec.keyVol
	if vol == "" {
		vol = c.s.keyVol
	}
	label := spec.label
	if label == "" {
		label = c.label
	}
	args := []string{
		"create", "-i", "--name", n.container, "--hostname", spec.member,
		"--label", dockerLabel + "=" + c.s.prefix, "--network", spec.net.name,
		"-v", vol + ":/keys:ro", c.s.image,
		"-name", spec.member, "-bind", "0.0.0.0:7946",
		"-advertise", fmt.Sprintf(`{{ GetAllInterfaces | include "network" %q | attr "address" }}:7946`, spec.net.subnet),
		"-keyfile", "/keys/cluster.key", "-label", label, "-profile", "lan",
	}
	if spec.payload != "" {
		args = append(args, "-payload", spec.payload)
	}
	if len(spec.seeds) > 0 {
		args = append(args, "-join", strings.Join(spec.seeds, ","))
	}
	args = append(args, spec.args...)
	dockerDo(t, args...)
	t.Cleanup(func() { c.remove(n) })
	for _, net := range spec.also {
		dockerDo(t, "network", "connect", net.name, n.container)
	}
	c.nodes = append(c.nodes, n)
	return n
}

// remove removes n's container and waits for every attached CLI to end,
// so that no reader outlives the test; on failure it logs the agent's
// stderr.
func (c *dcluster) remove(n *dnode) {
	t := c.t
	dockerTry(t, "rm", "-f", n.container)
	for _, p := range n.procs {
		if !waitCond(c.h, 30*time.Second, func() bool { return p.exited }) {
			t.Errorf("the docker CLI attached to %s did not end; killing it", n.container)
			p.cmd.Process.Kill()
			waitCond(c.h, 10*time.Second, func() bool { return p.exited })
		}
		if t.Failed() {
			if b, err := os.ReadFile(p.errLog); err == nil && len(b) > 0 {
				t.Logf("stderr of %s (start %d):\n%s", n.member, slicesIndex(n.procs, p)+1, tail(string(b), 30))
			}
		}
	}
}

func slicesIndex(ps []*proc, p *proc) int {
	for i := range ps {
		if ps[i] == p {
			return i
		}
	}
	return -1
}

// launch starts n's container attached (docker start -a -i): the agent's
// stdout lines go to the hub, its stdin takes commands, its stderr goes
// to a file. It does not wait for the ready line.
func (c *dcluster) launch(n *dnode) *proc {
	t := c.t
	t.Helper()
	p := &proc{t: t, hub: c.h, name: n.member,
		errLog: filepath.Join(t.TempDir(), fmt.Sprintf("%s.%d.stderr", n.member, len(n.procs)+1))}
	errFile, err := os.Create(p.errLog)
	if err != nil {
		t.Fatal(err)
	}
	defer errFile.Close()
	p.cmd = exec.Command("docker", "start", "-a", "-i", n.container)
	p.cmd.Stderr = errFile
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("docker start -a -i %s: %v", n.container, err)
	}
	n.procs = append(n.procs, p)
	go p.read(stdout)
	return p
}

// ready waits for the ready line of each of ps and records its address.
func (c *dcluster) ready(ps ...*proc) {
	t := c.t
	t.Helper()
	c.h.waitFor(t, time.Minute, "the agents' ready lines", func() bool {
		for _, p := range ps {
			if !p.exited && len(p.records) == 0 {
				return false
			}
		}
		return true
	})
	for _, p := range ps {
		r := p.first("ready")
		if r == nil {
			b, _ := os.ReadFile(p.errLog)
			t.Fatalf("%s did not start: %v\n%s", p.name, p.exitError(), tail(string(b), 20))
		}
		p.addr = r.Addr
	}
}

// start creates, launches and waits for the given members, all at once.
func (c *dcluster) start(specs ...nodeSpec) []*dnode {
	c.t.Helper()
	var ns []*dnode
	var ps []*proc
	for _, spec := range specs {
		n := c.create(spec)
		ns = append(ns, n)
		ps = append(ps, c.launch(n))
	}
	c.ready(ps...)
	return ns
}

// procs returns the current process of each node.
func procs(ns []*dnode) []*proc {
	var ps []*proc
	for _, n := range ns {
		ps = append(ps, n.p())
	}
	return ps
}

// waitCond is hub.waitFor without failing the test: it reports whether
// cond held before timeout. It may be called from any goroutine.
func waitCond(h *hub, timeout time.Duration, cond func() bool) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		h.mu.Lock()
		ok := cond()
		ch := h.changed
		h.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-timer.C:
			return false
		}
	}
}

// views asks each of ps for its members at once and returns every answer,
// by asker and member name. Unlike proc.members it does not fail the test,
// so that a sampling goroutine can use it.
func views(h *hub, ps []*proc, timeout time.Duration) (map[string]map[string]record, error) {
	h.mu.Lock()
	before := make([]int, len(ps))
	for i, p := range ps {
		before[i] = len(p.records)
	}
	h.mu.Unlock()
	for _, p := range ps {
		if _, err := fmt.Fprintln(p.stdin, "members"); err != nil {
			return nil, fmt.Errorf("members to %s: %w", p.name, err)
		}
	}
	out := make(map[string]map[string]record, len(ps))
	ok := waitCond(h, timeout, func() bool {
		for i, p := range ps {
			if _, done := out[p.name]; done {
				continue
			}
			for j := before[i]; j < len(p.records); j++ {
				if p.records[j].Event == "members" {
					ms := make(map[string]record, len(p.records[j].Members))
					for _, m := range p.records[j].Members {
						ms[m.Name] = m
					}
					out[p.name] = ms
					break
				}
			}
		}
		return len(out) == len(ps)
	})
	if !ok {
		var missing []string
		for _, p := range ps {
			if _, done := out[p.name]; !done {
				missing = append(missing, p.name)
			}
		}
		return nil, fmt.Errorf("no members answer within %v from %s", timeout, strings.Join(missing, ", "))
	}
	return out, nil
}

// waitViews asks ps for their members until want holds for every view, or
// fails the test after timeout. It returns how long it took.
func waitViews(t *testing.T, h *hub, ps []*proc, timeout time.Duration, what string, want func(asker string, ms map[string]record) bool) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		vs, err := views(h, ps, 10*time.Second)
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		bad := ""
		for _, p := range ps {
			if !want(p.name, vs[p.name]) {
				bad = fmt.Sprintf("%s sees %s", p.name, describeView(vs[p.name]))
				break
			}
		}
		if bad == "" {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; %s", timeout, what, bad)
		}
		// Wait for the next line from anyone (an event may change a
		// view) or a quarter period, whichever comes first.
		h.mu.Lock()
		ch := h.changed
		h.mu.Unlock()
		select {
		case <-ch:
		case <-time.After(lan.ProbeInterval / 4):
		}
	}
}

// describeView lists a view as name=state, sorted.
func describeView(ms map[string]record) string {
	var parts []string
	for _, name := range keys(ms) {
		parts = append(parts, name+"="+ms[name].State)
	}
	return strings.Join(parts, " ")
}

// allAlive returns a view check: exactly the given members, every one
// alive.
func allAlive(names ...string) func(string, map[string]record) bool {
	return func(_ string, ms map[string]record) bool {
		if len(ms) != len(names) {
			return false
		}
		for _, name := range names {
			if ms[name].State != "alive" {
				return false
			}
		}
		return true
	}
}

func memberNames(ns []*dnode) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.member)
	}
	return out
}

// eventsAbout returns, as "reporter: event name", every record of ps about
// one of names whose event is in events; call with hub.mu held.
func eventsAbout(ps []*proc, names []string, events ...string) []string {
	var out []string
	for _, p := range ps {
		for i := range p.records {
			r := &p.records[i]
			if r.Name == p.name {
				continue
			}
			for _, ev := range events {
				if r.Event == ev && containsString(names, r.Name) {
					out = append(out, fmt.Sprintf("%s: %s %s at %s", p.name, r.Event, r.Name, r.Time.Format("15:04:05.000")))
				}
			}
		}
	}
	return out
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// mentions reports every record of ps that names a member in names, in
// an event or in a members answer; call with hub.mu held.
func mentions(ps []*proc, names []string) []string {
	var out []string
	for _, p := range ps {
		for i := range p.records {
			r := &p.records[i]
			if r.Name != p.name && containsString(names, r.Name) {
				out = append(out, fmt.Sprintf("%s: %s %s", p.name, r.Event, r.Name))
			}
			for _, m := range r.Members {
				if m.Name != p.name && containsString(names, m.Name) {
					out = append(out, fmt.Sprintf("%s: %s lists %s", p.name, r.Event, m.Name))
				}
			}
		}
	}
	return out
}

// latency describes when each of ps first printed event about name at or
// after from: "first..last (count/total)", by the agents' clocks, which in
// containers are the host's.
func latency(h *hub, ps []*proc, name, event string, from time.Time) (first, last time.Duration, desc string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, p := range ps {
		r := p.eventAbout(event, name, from)
		if r == nil {
			continue
		}
		d := r.Time.Sub(from)
		if n == 0 || d < first {
			first = d
		}
		if n == 0 || d > last {
			last = d
		}
		n++
	}
	return first, last, fmt.Sprintf("%s %s by %d/%d after %v..%v", name, event, n, len(ps), first.Round(time.Millisecond), last.Round(time.Millisecond))
}

// scriptLogs follows a container's output with docker logs -f, as a proc
// without stdin, for containers the test did not start itself.
func scriptLogs(t *testing.T, h *hub, container, member string) *proc {
	t.Helper()
	p := &proc{t: t, hub: h, name: member, errLog: filepath.Join(t.TempDir(), member+".stderr")}
	var stderr bytes.Buffer
	p.cmd = exec.Command("docker", "logs", "-f", container)
	p.cmd.Stderr = &stderr // the agent's log lines; docker logs keeps the streams apart
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("docker logs -f %s: %v", container, err)
	}
	go p.read(stdout)
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		waitCond(h, 10*time.Second, func() bool { return p.exited })
	})
	return p
}

// sampler asks a changing set of agents for their views, one sample after
// another, while a scenario runs, and checks each sample.
type sampler struct {
	h     *hub
	mu    sync.Mutex // held for a whole sample; setting the set waits for it
	set   []*proc
	check func(vs map[string]map[string]record) []string

	samples    int
	violations []string
	errs       []string
	stop, done chan struct{}
	stopOnce   sync.Once
}

func newSampler(h *hub, check func(map[string]map[string]record) []string) *sampler {
	return &sampler{h: h, check: check, stop: make(chan struct{}), done: make(chan struct{})}
}

// run samples until stopped; start it in a goroutine.
func (s *sampler) run(every time.Duration) {
	defer close(s.done)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		s.mu.Lock()
		if len(s.set) > 0 {
			vs, err := views(s.h, s.set, 10*time.Second)
			if err != nil {
				s.errs = append(s.errs, err.Error())
			} else {
				s.samples++
				s.violations = append(s.violations, s.check(vs)...)
			}
		}
		s.mu.Unlock()
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
	}
}

// setProcs changes the sampled set between two samples.
func (s *sampler) setProcs(ps []*proc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.set = ps
}

// finish stops the sampling and waits for the last sample; it may be
// called more than once.
func (s *sampler) finish() {
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.done
}
