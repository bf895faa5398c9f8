package integration

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshward/membership"
	"github.com/meshward/membership/keyring"
	"github.com/meshward/membership/metrics"
)

// exporterEnv names the statsd_exporter binary TestStatsdExporter runs.
const exporterEnv = "MEMBERSHIP_STATSD_EXPORTER"

// TestStatsdExporter checks docs/metrics.md end to end: real agents send
// their metrics in the DogStatsD format to a real prometheus/statsd_exporter,
// and every metric the page documents must appear in the exporter's
// /metrics with the documented name (dots to underscores), type (counter,
// gauge, summary for samples) and label names (the page's plus node), and
// no undocumented membership metric may appear.
//
// Some metrics appear only under conditions, which the test drives; each
// expected series below says how. What cannot be driven with agents (an
// event subscriber too slow, an application message) is driven by one
// in-process node. The only documented metrics not required are those of
// notEmittedYet, and only while no code of the library emits them.
func TestStatsdExporter(t *testing.T) {
	bin := os.Getenv(exporterEnv)
	if bin == "" {
		t.Skipf("set %s to a statsd_exporter binary to check the metrics end to end (go install github.com/prometheus/statsd_exporter@v0.31.0; .ci/run does)", exporterEnv)
	}
	if testing.Short() {
		t.Skip("multi-process test: skipped with -short")
	}
	rows := documentedMetrics(t)
	skipped := notEmitted(t)
	exp := startExporter(t, bin)
	agent := agentBin(t)
	dir := t.TempDir()
	keyfile, otherKey, aesKey := filepath.Join(dir, "cluster.key"), filepath.Join(dir, "other.key"), filepath.Join(dir, "aes.key")
	for _, k := range []struct{ path, suite string }{{keyfile, "xchacha20-poly1305"}, {otherKey, "xchacha20-poly1305"}, {aesKey, "aes-gcm"}} {
		if out, err := exec.Command(agent, "-keygen", "-suite", k.suite, "-keyfile", k.path).CombinedOutput(); err != nil {
			t.Fatalf("agent -keygen %s: %v\n%s", k.path, err, out)
		}
	}
	aesRing, err := keyring.Load(aesKey)
	if err != nil {
		t.Fatal(err)
	}
	aesFingerprint := fmt.Sprintf("%x", keyring.Fingerprint(aesRing.Keys()[0]))

	h := newHub()
	statsd := []string{"-keyfile", keyfile, "-statsd", exp.statsd}
	nodes := []*proc{start(t, h, agent, "m0", statsd...)}
	seed := nodes[0].addr
	for i := 1; i < 4; i++ {
		nodes = append(nodes, start(t, h, agent, fmt.Sprintf("m%d", i), append(statsd, "-join", seed)...))
	}

	// An in-process node whose one-event buffer nobody reads: its events
	// overflow (membership.events.dropped).
	ring, err := keyring.Load(keyfile)
	if err != nil {
		t.Fatal(err)
	}
	sink, err := metrics.NewDogStatsd(exp.statsd)
	if err != nil {
		t.Fatal(err)
	}
	inproc, err := membership.New(
		membership.WithName("inproc"),
		membership.WithBindAddr("127.0.0.1:0"),
		membership.WithKeyring(ring),
		membership.WithKeyringFile(filepath.Join(dir, "inproc.key")),
		membership.WithProfile(membership.ProfileLocal),
		membership.WithEventBuffer(1),
		membership.WithMetrics(sink),
		membership.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inproc.Shutdown(); sink.Shutdown() }) // after transit's Shutdown: cleanups run last first
	ctx, cancel := context.WithTimeout(context.Background(), startDeadline)
	defer cancel()
	if _, err := inproc.Join(ctx, seed); err != nil {
		t.Fatalf("in-process node: join: %v", err)
	}
	h.waitFor(t, startDeadline, "every agent to see every other and the in-process node joined", func() bool {
		for _, p := range nodes {
			if p.eventAbout("joined", "inproc", time.Time{}) == nil {
				return false
			}
			for _, q := range nodes {
				if p != q && p.eventAbout("joined", q.name, time.Time{}) == nil {
					return false
				}
			}
		}
		return true
	})
	// A key listing is a query, which travels as a broadcast: it drives
	// membership.user.queries and membership.user.broadcasts.
	nodes[0].command("keys list")
	h.waitFor(t, startDeadline, "m0's key listing", func() bool { return nodes[0].count("keys") == 1 })
	if r := nodes[0].first("keys"); r.Error != "" {
		t.Fatalf("keys list: %+v", *r)
	}

	// Two outsiders, each with a key of its own: their join streams and
	// probe datagrams are dropped by m0, as unknown_key (another
	// XChaCha20-Poly1305 key) and as malformed (an AES-GCM key: a suite
	// this cluster does not use). The AES-GCM one counts its own seals.
	for _, o := range []struct{ name, key string }{{"outsider", otherKey}, {"aes-outsider", aesKey}} {
		p := start(t, h, agent, o.name, "-keyfile", o.key, "-statsd", exp.statsd, "-join", seed, "-join-timeout", "3s")
		h.waitFor(t, startDeadline, o.name+"'s join to fail", func() bool { return p.count("join") == 1 })
		if r := p.first("join"); r.Error == "" {
			t.Fatalf("%s joined: %+v", o.name, *r)
		}
		p.command("add %s", seed)
		h.waitFor(t, startDeadline, o.name+"'s probe to fail", func() bool { return p.count("add") == 1 })
	}

	// A second process under m1's name: the seed refuses it
	// (membership.name.conflicts). SIGTERM makes it flush its metrics.
	dup := start(t, h, agent, "m1", "-keyfile", keyfile, "-statsd", exp.statsd, "-join", seed, "-join-timeout", "3s")
	h.waitFor(t, startDeadline, "the duplicate's join to be refused", func() bool { return dup.count("join") == 1 })
	if r := dup.first("join"); r.Error == "" {
		t.Fatalf("a second m1 joined: %+v", *r)
	}
	dup.signal(syscall.SIGTERM)
	h.waitFor(t, startDeadline, "the duplicate to exit", func() bool { return dup.exited })

	// A datagram above the transport's size limit
	// (membership.transport.dropped, too_large).
	udp, err := net.Dial("udp", seed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := udp.Write(make([]byte, 9000)); err != nil {
		t.Fatal(err)
	}
	udp.Close()

	// A key installed on the in-process node is saved to its key file
	// (membership.keyring.saves).
	newKey, err := keyring.Generate(keyring.XChaCha20Poly1305)
	if err != nil {
		t.Fatal(err)
	}
	if err := inproc.Keyring().Install(newKey); err != nil {
		t.Fatalf("install a key on the in-process node: %v", err)
	}

	// A node moving to encryption (send-sealed: it seals, and accepts
	// plaintext too) is probed by a plaintext agent: it accepts the
	// plaintext ping (membership.encryption.plaintext). It joins nobody.
	transitRing, err := keyring.Load(keyfile)
	if err != nil {
		t.Fatal(err)
	}
	transit, err := membership.New(
		membership.WithName("transit"),
		membership.WithBindAddr("127.0.0.1:0"),
		membership.WithKeyring(transitRing),
		membership.WithEncryptionMode(membership.EncryptionSendSealed),
		membership.WithProfile(membership.ProfileLocal),
		membership.WithMetrics(sink),
		membership.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { transit.Shutdown() })
	plain := start(t, h, agent, "plain", "-plaintext", "-statsd", exp.statsd)
	plain.command("add %s", transit.Myself().Addr)
	h.waitFor(t, startDeadline, "the plaintext agent's probe of the send-sealed node", func() bool { return plain.count("add") == 1 })

	// An application message over a stream, from the in-process node to
	// m0 (membership.user.messages, reliable_sent here and reliable there;
	// the agent reads no messages, so they queue or drop).
	sendCtx, sendCancel := context.WithTimeout(context.Background(), startDeadline)
	defer sendCancel()
	if err := inproc.SendReliable(sendCtx, "m0", []byte("hello")); err != nil {
		t.Fatalf("SendReliable to m0: %v", err)
	}

	// m3 paused past the suspicion timeout, then resumed: suspected and
	// failed, then it refutes (membership.refutations). The failed probes
	// of it go through ping-req helpers, whose nacks are counted
	// (membership.probes.nacks) when they reach the prober before its
	// period ends: a pause gives a handful of chances, so pause again, at
	// most five times in all, until one has arrived.
	var at time.Time
	for pause := 1; ; pause++ {
		at = nodes[3].signal(syscall.SIGSTOP)
		h.waitFor(t, detectDeadline, "m0 and m1 to report the paused m3 failed", func() bool {
			return everyone(nodes[:2], "failed", "m3", at)
		})
		at = nodes[3].signal(syscall.SIGCONT)
		h.waitFor(t, detectDeadline, "m0 and m1 to see m3 alive again", func() bool {
			return everyone(nodes[:2], "alive", "m3", at)
		})
		nacked := exp.poll(t, 2*time.Second, func(s *scrape) bool { return s.has("membership_probes_nacks", nil) })
		if nacked || pause == 5 {
			t.Logf("a nack counted after %d pause(s) of m3: %v", pause, nacked)
			break
		}
	}

	// m2 killed: failed probes, nacks from the ping-req helpers, a death.
	at = nodes[2].signal(syscall.SIGKILL)
	survivors := []*proc{nodes[0], nodes[1], nodes[3]}
	h.waitFor(t, detectDeadline, "the survivors to report m2 failed", func() bool {
		return everyone(survivors, "failed", "m2", at)
	})

	// m1 leaves (membership.leaves, members{state="left"}).
	at = nodes[1].signal(syscall.SIGTERM)
	h.waitFor(t, detectDeadline, "m0 and m3 to report m1 left", func() bool {
		return everyone([]*proc{nodes[0], nodes[3]}, "left", "m1", at)
	})

	// Series the run must have produced, beyond each family's presence.
	series := []struct {
		family string
		labels map[string]string
		why    string
	}{
		{"membership_dropped", map[string]string{"reason": "unknown_key", "node": "m0"}, "an outsider joins and probes m0 with another key"},
		{"membership_dropped", map[string]string{"reason": "malformed", "node": "m0"}, "an outsider joins and probes m0 with an AES-GCM key"},
		{"membership_keyring_aesgcm_seals", map[string]string{"key": aesFingerprint, "node": "aes-outsider"}, "an outsider seals with an AES-GCM key"},
		{"membership_name_conflicts", nil, "a second m1 tries to join"},
		{"membership_transport_dropped", map[string]string{"reason": "too_large", "node": "m0"}, "the test sends m0 a 9000-byte datagram"},
		{"membership_events_dropped", map[string]string{"node": "inproc"}, "nobody reads the in-process node's one-event buffer"},
		{"membership_refutations", map[string]string{"node": "m3"}, "m3 resumes after being declared failed"},
		{"membership_suspicions", nil, "m3 paused, m2 killed"},
		{"membership_deaths", nil, "m3 paused, m2 killed"},
		{"membership_probes", map[string]string{"result": "failed"}, "m2 killed"},
		{"membership_probes_nacks", nil, "m3 paused, m2 killed: ping-req helpers cannot reach them"},
		{"membership_leaves", nil, "m1 leaves"},
		{"membership_members", map[string]string{"state": "left", "node": "m0"}, "m1 left"},
		{"membership_pushpull", map[string]string{"direction": "inbound", "result": "ok", "node": "m0"}, "joins through m0"},
		{"membership_pushpull", map[string]string{"direction": "outbound", "result": "ok"}, "joins through m0"},
		{"membership_wire_bytes_sent", map[string]string{"channel": "stream"}, "joins"},
		{"membership_wire_bytes_received", map[string]string{"channel": "datagram"}, "probes"},
		{"membership_probes_rtt", map[string]string{"path": "direct"}, "probes"},
		{"membership_user_messages", map[string]string{"type": "reliable_sent", "result": "ok", "node": "inproc"}, "the in-process node sends m0 a reliable message"},
		{"membership_user_messages", map[string]string{"type": "reliable", "node": "m0"}, "m0 receives it"},
		{"membership_keyring_saves", map[string]string{"result": "ok", "node": "inproc"}, "a key installed on the in-process node, which has a key file"},
		{"membership_encryption_plaintext", map[string]string{"node": "transit"}, "a plaintext agent probes the send-sealed node"},
	}

	var last *scrape
	var problems []string
	deadline := time.Now().Add(20 * time.Second) // gauges and report counters come once a second
	for {
		last = exp.scrape(t)
		problems = checkScrape(last, rows, skipped)
		for _, s := range series {
			if !last.has(s.family, s.labels) {
				problems = append(problems, fmt.Sprintf("no %s series with labels %v (expected because %s)", s.family, s.labels, s.why))
			}
		}
		if len(problems) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond) // the exporter has nothing to wait on; poll
	}
	for _, p := range problems {
		t.Error(p)
	}
	if t.Failed() {
		var ours []string
		for l := range strings.SplitSeq(last.text, "\n") {
			if strings.Contains(l, metrics.Prefix+"_") {
				ours = append(ours, l)
			}
		}
		t.Logf("last scrape, membership metrics:\n%s", strings.Join(ours, "\n"))
		return
	}
	t.Logf("all %d documented metrics arrived with their names, types and labels (%d not emitted by any code yet: %v), and the %d series the run drives",
		len(rows)-len(skipped), len(skipped), slices.Sorted(maps.Keys(skipped)), len(series))
}

// docMetric is one table row of docs/metrics.md.
type docMetric struct {
	name   string   // dotted, as in names.go
	typ    string   // counter, gauge or sample
	labels []string // without the base label node
}

// documentedMetrics parses the metric tables of docs/metrics.md.
func documentedMetrics(t *testing.T) []docMetric {
	t.Helper()
	doc, err := os.ReadFile("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("^\\| `(membership\\.[a-z0-9._]+)` \\| ([a-z]+)[^|]* \\| ([^|]*) \\|")
	label := regexp.MustCompile("`([a-z_]+)`")
	var out []docMetric
	for line := range strings.SplitSeq(string(doc), "\n") {
		m := row.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		d := docMetric{name: m[1], typ: m[2]}
		for _, l := range label.FindAllStringSubmatch(m[3], -1) {
			d.labels = append(d.labels, l[1])
		}
		out = append(out, d)
	}
	if len(out) < 20 {
		t.Fatalf("found only %d metric rows in docs/metrics.md", len(out))
	}
	return out
}

// promName is the name statsd_exporter gives a dotted metric name.
func promName(dotted string) string { return strings.ReplaceAll(dotted, ".", "_") }

// promType is the Prometheus type statsd_exporter gives a go-metrics type.
func promType(typ string) string {
	if typ == "sample" {
		return "summary" // a statsd timer; statsd_exporter's default observer
	}
	return typ
}

// notEmittedYet lists documented metrics that no code of the library
// emits yet, with the metrics.Metrics method that would emit them: the
// application broadcast and query API is documented ahead of its merge.
// An entry is void, and its metric required, as soon as a non-test file of
// the root package calls its method.
var notEmittedYet = map[string]string{}

// notEmitted returns the entries of notEmittedYet whose method no non-test
// file of the root package calls.
func notEmitted(t *testing.T) map[string]bool {
	t.Helper()
	files, err := filepath.Glob("../*.go")
	if err != nil {
		t.Fatal(err)
	}
	var src strings.Builder
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src.Write(b)
	}
	out := map[string]bool{}
	for name, method := range notEmittedYet {
		if !strings.Contains(src.String(), "."+method+"(") {
			out[name] = true
		}
	}
	return out
}

// checkScrape compares a scrape with the documented metrics; those in
// skip need not have arrived.
func checkScrape(s *scrape, rows []docMetric, skip map[string]bool) []string {
	var problems []string
	documented := map[string]bool{}
	for _, r := range rows {
		name := promName(r.name)
		documented[name] = true
		typ, ok := s.types[name]
		if !ok {
			if !skip[r.name] {
				problems = append(problems, fmt.Sprintf("%s (%s) did not arrive", name, r.name))
			}
			continue
		}
		if want := promType(r.typ); typ != want {
			problems = append(problems, fmt.Sprintf("%s is a %s, docs/metrics.md says %s (%s)", name, typ, r.typ, want))
		}
		want := append(slices.Clone(r.labels), metrics.LabelNode)
		slices.Sort(want)
		for _, got := range s.labelSets(name) {
			if !slices.Equal(got, want) {
				problems = append(problems, fmt.Sprintf("%s has labels %v, docs/metrics.md says %v", name, got, want))
				break
			}
		}
	}
	for name := range s.types {
		if strings.HasPrefix(name, metrics.Prefix+"_") && !documented[name] {
			problems = append(problems, fmt.Sprintf("%s arrived but docs/metrics.md does not document it", name))
		}
	}
	slices.Sort(problems)
	return problems
}

// exporter is a running statsd_exporter.
type exporter struct {
	statsd string // UDP host:port it reads statsd lines on
	web    string // host:port of its /metrics
}

// startExporter runs the statsd_exporter binary on loopback ports, until
// the test ends. It retries on other ports if the binary exits at once (a
// port taken between freePort and its bind).
func startExporter(t *testing.T, bin string) *exporter {
	t.Helper()
	for attempt := 1; ; attempt++ {
		e, err := tryExporter(t, bin)
		if err == nil {
			return e
		}
		if attempt == 3 {
			t.Fatal(err)
		}
		t.Logf("%v; retrying on other ports", err)
	}
}

// tryExporter starts statsd_exporter once and waits for its /metrics.
func tryExporter(t *testing.T, bin string) (*exporter, error) {
	t.Helper()
	e := &exporter{statsd: freePort(t, "udp"), web: freePort(t, "tcp")}
	errLog := filepath.Join(t.TempDir(), "statsd_exporter.stderr")
	errFile, err := os.Create(errLog)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin,
		"--statsd.listen-udp="+e.statsd,
		"--statsd.listen-tcp=", // UDP only
		"--web.listen-address="+e.web,
		"--log.level=warn",
	)
	cmd.Stdout, cmd.Stderr = errFile, errFile
	err = cmd.Start()
	errFile.Close()
	if err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	up := time.After(10 * time.Second)
	for {
		resp, err := http.Get("http://" + e.web + "/metrics")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return e, nil
			}
		}
		select {
		case err := <-exited:
			b, _ := os.ReadFile(errLog)
			return nil, fmt.Errorf("statsd_exporter exited: %v\n%s", err, b)
		case <-up:
			t.Fatalf("statsd_exporter did not serve /metrics on %s within 10s", e.web)
		case <-time.After(100 * time.Millisecond): // nothing to wait on but the port
		}
	}
}

// freePort returns a loopback host:port that was free a moment ago.
func freePort(t *testing.T, network string) string {
	t.Helper()
	var (
		addr string
		err  error
	)
	if network == "udp" {
		var pc net.PacketConn
		if pc, err = net.ListenPacket("udp4", "127.0.0.1:0"); err == nil {
			addr = pc.LocalAddr().String()
			pc.Close()
		}
	} else {
		var l net.Listener
		if l, err = net.Listen("tcp4", "127.0.0.1:0"); err == nil {
			addr = l.Addr().String()
			l.Close()
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// scrape is one parsed Prometheus text exposition.
type scrape struct {
	text    string
	types   map[string]string // family name -> type
	samples []sample
}

type sample struct {
	name   string
	labels map[string]string
}

// poll scrapes every 100 ms until cond holds or d passes, and reports
// whether it held.
func (e *exporter) poll(t *testing.T, d time.Duration, cond func(*scrape) bool) bool {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if cond(e.scrape(t)) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond) // the exporter has nothing to wait on; poll
	}
}

func (e *exporter) scrape(t *testing.T) *scrape {
	t.Helper()
	resp, err := http.Get("http://" + e.web + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	s, err := parseExposition(string(b))
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	return s
}

// parseExposition parses the Prometheus text format, as much of it as the
// check needs: TYPE lines and each sample's name and labels.
func parseExposition(text string) (*scrape, error) {
	s := &scrape{text: text, types: map[string]string{}}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if f, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, typ, _ := strings.Cut(f, " ")
			s.types[name] = typ
			continue
		}
		if line == "" || line[0] == '#' {
			continue
		}
		smp, err := parseSample(line)
		if err != nil {
			return nil, fmt.Errorf("line %q: %w", line, err)
		}
		s.samples = append(s.samples, smp)
	}
	return s, sc.Err()
}

func parseSample(line string) (sample, error) {
	smp := sample{labels: map[string]string{}}
	i := strings.IndexAny(line, "{ ")
	if i < 0 {
		return smp, fmt.Errorf("no value")
	}
	smp.name = line[:i]
	if line[i] == ' ' {
		return smp, nil
	}
	rest := line[i+1:]
	for {
		rest = strings.TrimLeft(rest, ",")
		if strings.HasPrefix(rest, "}") {
			return smp, nil
		}
		k, v, ok := strings.Cut(rest, "=")
		if !ok || !strings.HasPrefix(v, `"`) {
			return smp, fmt.Errorf("bad label at %q", rest)
		}
		// The quoted value ends at the first unescaped quote.
		end := 1
		for ; end < len(v) && v[end] != '"'; end++ {
			if v[end] == '\\' {
				end++
			}
		}
		if end >= len(v) {
			return smp, fmt.Errorf("unterminated label value")
		}
		val, err := strconv.Unquote(v[:end+1])
		if err != nil {
			return smp, fmt.Errorf("label value %s: %w", v[:end+1], err)
		}
		smp.labels[k] = val
		rest = v[end+1:]
	}
}

// labelSets returns the sorted label names of each sample of family name
// (for a summary, its quantile, _sum and _count samples, quantile left out).
func (s *scrape) labelSets(name string) [][]string {
	var out [][]string
	for _, smp := range s.samples {
		if smp.name != name && smp.name != name+"_sum" && smp.name != name+"_count" {
			continue
		}
		var ls []string
		for k := range smp.labels {
			if k != "quantile" {
				ls = append(ls, k)
			}
		}
		slices.Sort(ls)
		out = append(out, ls)
	}
	return out
}

// has reports whether family has a sample whose labels include want.
func (s *scrape) has(family string, want map[string]string) bool {
	for _, smp := range s.samples {
		if smp.name != family && smp.name != family+"_count" {
			continue
		}
		ok := true
		for k, v := range want {
			if smp.labels[k] != v {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}
