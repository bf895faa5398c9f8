package metrics

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gometrics "github.com/armon/go-metrics"
)

var node = Label{Name: LabelNode, Value: "node-a"}

func lbl(name, value string) Label { return Label{Name: name, Value: value} }

func TestNilMetricsIsNoOp(t *testing.T) {
	if New(nil) != nil {
		t.Fatal("New(nil) should be the nil no-op Metrics")
	}
	var m *Metrics
	// Every method on a nil Metrics must return without panicking.
	m.IncrCounter(Probes, 1)
	m.SetGauge(Health, 1)
	m.AddSample(ProbeRTT, 1)
	m.MeasureSince(ProbeRTT, time.Now())
	m.MessageSent("ping", 10)
	m.MessageReceived("ack", 10)
	m.WireSent(ChannelDatagram, 10)
	m.WireReceived(ChannelStream, 10)
	m.UserMessage("direct", ResultDelivered)
	m.Flush()
	m.Probe(ProbeAck)
	m.Nack()
	m.RTT(PathDirect, time.Millisecond)
	m.Suspicion()
	m.Refutation()
	m.Death()
	m.Leave()
	m.MemberCounts(1, 2, 3, 4)
	m.HealthScore(2)
	m.GossipQueueDepth(3)
	m.PushPull(Outbound, time.Second, nil)
	m.Drop(DropAuth)
	m.AESGCMSealed("abcd0123", 1)
	m.EventOverflow(1)
	m.TransportDrop(TransportQueueFull, 1)
	if m.Sink() != nil {
		t.Fatal("nil Metrics has a sink")
	}
}

func TestHelpersEmitNamesAndLabels(t *testing.T) {
	s := NewInmem()
	m := New(s, node)
	if m.Sink() != s {
		t.Fatal("Sink() is not the sink given")
	}

	m.MessageSent("ping", 100)
	m.MessageSent("ping", 50)
	m.MessageSent("alive", 7)
	m.MessageReceived("ack", 30)
	m.WireSent(ChannelDatagram, 190)
	m.WireSent(ChannelStream, 400)
	m.WireReceived(ChannelDatagram, 70)
	m.Probe(ProbeAck)
	m.Probe(ProbeAck)
	m.Probe(ProbeIndirectAck)
	m.Probe(ProbeFailed)
	m.Nack()
	m.RTT(PathDirect, 1500*time.Microsecond)
	m.RTT(PathIndirect, 4*time.Millisecond)
	m.Suspicion()
	m.Refutation()
	m.Death()
	m.Leave()
	m.Leave()
	m.MemberCounts(5, 1, 2, 3)
	m.HealthScore(2)
	m.GossipQueueDepth(17)
	m.PushPull(Outbound, 20*time.Millisecond, nil)
	m.PushPull(Inbound, 10*time.Millisecond, errors.New("timeout"))
	m.Drop(DropUnknownKey)
	m.Drop(DropReplay)
	m.Drop(DropReplay)
	m.AESGCMSealed("01020304", 3)
	m.AESGCMSealed("01020304", 0) // nothing
	m.EventOverflow(4)
	m.TransportDrop(TransportQueueFull, 9)
	m.TransportDrop(TransportTooLarge, 0) // nothing
	m.UserMessage("direct", ResultDelivered)
	m.UserMessage("direct", ResultDelivered)
	m.UserMessage("reliable_sent", ResultError)
	m.Flush()

	counters := []struct {
		name   string
		labels []Label
		sum    float64
	}{
		{MessagesSent, []Label{lbl(LabelType, "ping")}, 2},
		{BytesSent, []Label{lbl(LabelType, "ping")}, 150},
		{MessagesSent, nil, 3},
		{BytesSent, []Label{lbl(LabelType, "alive")}, 7},
		{MessagesReceived, []Label{lbl(LabelType, "ack")}, 1},
		{BytesReceived, []Label{lbl(LabelType, "ack")}, 30},
		{WireBytesSent, []Label{lbl(LabelChannel, "datagram")}, 190},
		{WireBytesSent, []Label{lbl(LabelChannel, "stream")}, 400},
		{WireBytesReceived, []Label{lbl(LabelChannel, "datagram")}, 70},
		{WireBytesReceived, []Label{lbl(LabelChannel, "stream")}, 0},
		{Probes, []Label{lbl(LabelResult, "ack")}, 2},
		{Probes, []Label{lbl(LabelResult, "indirect_ack")}, 1},
		{Probes, []Label{lbl(LabelResult, "failed")}, 1},
		{Nacks, nil, 1},
		{Suspicions, nil, 1},
		{Refutations, nil, 1},
		{Deaths, nil, 1},
		{Leaves, nil, 2},
		{PushPulls, []Label{lbl(LabelDirection, "outbound"), lbl(LabelResult, "ok")}, 1},
		{PushPulls, []Label{lbl(LabelDirection, "inbound"), lbl(LabelResult, "error")}, 1},
		{Dropped, []Label{lbl(LabelReason, "unknown_key")}, 1},
		{Dropped, []Label{lbl(LabelReason, "replay")}, 2},
		{AESGCMSeals, []Label{lbl(LabelKey, "01020304")}, 3},
		{EventsDropped, nil, 4},
		{TransportDropped, []Label{lbl(LabelReason, "queue_full")}, 9},
		{TransportDropped, []Label{lbl(LabelReason, "too_large")}, 0},
		{UserMessages, []Label{lbl(LabelType, "direct"), lbl(LabelResult, "delivered")}, 2},
		{UserMessages, []Label{lbl(LabelType, "reliable_sent"), lbl(LabelResult, "error")}, 1},
	}
	for _, c := range counters {
		// Every metric carries the base label.
		got, _ := s.Counter(c.name, append(c.labels, node)...)
		if got != c.sum {
			t.Errorf("counter %s %v = %v, want %v", c.name, c.labels, got, c.sum)
		}
	}
	if got, _ := s.Counter(Probes, lbl(LabelNode, "someone-else")); got != 0 {
		t.Errorf("label filter ignored: %v", got)
	}

	gauges := []struct {
		name  string
		label []Label
		want  float32
	}{
		{Members, []Label{lbl(LabelState, "alive")}, 5},
		{Members, []Label{lbl(LabelState, "suspect")}, 1},
		{Members, []Label{lbl(LabelState, "dead")}, 2},
		{Members, []Label{lbl(LabelState, "left")}, 3},
		{Health, nil, 2},
		{GossipQueue, nil, 17},
	}
	for _, g := range gauges {
		got, ok := s.Gauge(g.name, append(g.label, node)...)
		if !ok || got != g.want {
			t.Errorf("gauge %s %v = %v %v, want %v", g.name, g.label, got, ok, g.want)
		}
	}

	n, sum, lo, hi := s.Samples(ProbeRTT, node)
	if n != 2 || sum != 5.5 || lo != 1.5 || hi != 4 {
		t.Errorf("rtt samples n=%d sum=%v min=%v max=%v", n, sum, lo, hi)
	}
	n, sum, _, _ = s.Samples(ProbeRTT, lbl(LabelPath, "indirect"))
	if n != 1 || sum != 4 {
		t.Errorf("indirect rtt n=%d sum=%v", n, sum)
	}
	n, sum, _, _ = s.Samples(PushPullDuration, lbl(LabelDirection, "outbound"))
	if n != 1 || sum != 20 {
		t.Errorf("push-pull duration n=%d sum=%v", n, sum)
	}
}

func TestGenericHelpers(t *testing.T) {
	s := NewInmem()
	m := New(s, node)
	extra := lbl("extra", "x")
	m.IncrCounter("membership.custom", 2, extra)
	m.SetGauge("membership.custom.gauge", 3, extra)
	m.AddSample("membership.custom.sample", 4)
	m.MeasureSince("membership.custom.time", time.Now().Add(-time.Second))
	if v, _ := s.Counter("membership.custom", extra, node); v != 2 {
		t.Errorf("counter %v", v)
	}
	if v, ok := s.Gauge("membership.custom.gauge", extra, node); !ok || v != 3 {
		t.Errorf("gauge %v %v", v, ok)
	}
	if n, sum, _, _ := s.Samples("membership.custom.sample", node); n != 1 || sum != 4 {
		t.Errorf("sample %d %v", n, sum)
	}
	if n, sum, _, _ := s.Samples("membership.custom.time"); n != 1 || sum < 1000 {
		t.Errorf("measure since: %d samples, %vms", n, sum)
	}
}

func TestNoBaseLabels(t *testing.T) {
	s := NewInmem()
	m := New(s)
	m.Probe(ProbeAck)
	m.IncrCounter(Deaths, 1)
	for _, iv := range s.Data() {
		for _, c := range iv.Counters {
			for _, l := range c.Labels {
				if l.Name == LabelNode {
					t.Errorf("%s has a node label without base labels", c.Name)
				}
			}
		}
	}
	if v, _ := s.Counter(Probes, lbl(LabelResult, "ack")); v != 1 {
		t.Errorf("probes %v", v)
	}
}

// appendingSink does to keys and labels what go-metrics' statsd sink does:
// appends to them. With a shared backing array that would be a data race
// (caught by -race) and would corrupt other callers' keys.
type appendingSink struct {
	gometrics.BlackholeSink
	mu   sync.Mutex
	seen []string
}

func (s *appendingSink) IncrCounterWithLabels(key []string, val float32, labels []Label) {
	for _, l := range labels {
		key = append(key, l.Value)
	}
	labels = append(labels, Label{Name: "scribble", Value: "x"})
	_ = labels
	s.mu.Lock()
	s.seen = append(s.seen, strings.Join(key, "."))
	s.mu.Unlock()
}

func TestSharedKeysAndLabelsAreNotAliased(t *testing.T) {
	for n, k := range keys {
		if len(k) != cap(k) {
			t.Errorf("key of %s has spare capacity", n)
		}
	}
	s := &appendingSink{}
	m := New(s, node)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				m.Probe(ProbeAck)
				m.Drop(DropReason(fmt.Sprint("r", i)))
			}
		}()
	}
	wg.Wait()
	for _, k := range s.seen {
		if k != "membership.probes.ack.node-a" && !strings.HasPrefix(k, "membership.dropped.r") {
			t.Fatalf("key corrupted: %q", k)
		}
	}
	if len(s.seen) != 4*200*2 {
		t.Fatalf("saw %d", len(s.seen))
	}
}

// TestCachesBounded: label values without bound (a caller's bug) grow
// neither the label cache nor the summed counters beyond their caps, and
// the counts beyond the cap still reach the sink, at once.
func TestCachesBounded(t *testing.T) {
	s := NewInmem()
	m := New(s, node)
	const types = 3 * maxCachedLabelSets
	for i := range types {
		m.MessageSent(fmt.Sprint("type-", i), 1)
	}
	m.mu.RLock()
	n := len(m.cache)
	m.mu.RUnlock()
	if n > maxCachedLabelSets {
		t.Fatalf("label cache grew to %d", n)
	}
	if n := len(m.batch.Load().all); n != maxBatched {
		t.Fatalf("%d summed counters, want the cap of %d", n, maxBatched)
	}
	// Two summed counters per type (messages and bytes): the types past
	// the first maxBatched/2 went to the sink at once.
	if got, _ := s.Counter(MessagesSent); got != types-maxBatched/2 {
		t.Errorf("before Flush the sink has %v messages, want the %d past the cap", got, types-maxBatched/2)
	}
	m.Flush()
	if got, _ := s.Counter(MessagesSent); got != types {
		t.Errorf("after Flush the sink has %v messages, want %d", got, types)
	}
	if got, _ := s.Counter(BytesSent); got != types {
		t.Errorf("after Flush the sink has %v bytes, want %d", got, types)
	}
}

// countingSink counts the calls that reach it.
type countingSink struct {
	*Inmem
	calls atomic.Int64
}

func (s *countingSink) IncrCounterWithLabels(key []string, val float32, labels []Label) {
	s.calls.Add(1)
	s.Inmem.IncrCounterWithLabels(key, val, labels)
}

// TestSummedCounters: the per-message counters reach the sink only on
// Flush, each name and label set as one call carrying the sum of what
// concurrent callers counted, flushing concurrently too; nothing is lost
// or emitted twice. A rare counter still reaches the sink at once.
func TestSummedCounters(t *testing.T) {
	s := &countingSink{Inmem: NewInmem()}
	m := New(s, node)

	m.MessageSent("ping", 100)
	m.MessageReceived("ack", 40)
	m.WireSent(ChannelDatagram, 130)
	m.WireReceived(ChannelStream, 7)
	m.UserMessage("direct", ResultDelivered)
	if n := s.calls.Load(); n != 0 {
		t.Fatalf("%d sink calls before Flush", n)
	}
	m.Death()
	if got, _ := s.Counter(Deaths, node); got != 1 || s.calls.Load() != 1 {
		t.Fatalf("a death reached the sink as %v in %d calls, want 1 at once", got, s.calls.Load())
	}
	m.Flush()
	// Seven summed counters moved: messages and bytes sent, messages and
	// bytes received, wire bytes sent, wire bytes received, user
	// messages.
	if n := s.calls.Load(); n != 1+7 {
		t.Fatalf("%d sink calls after Flush, want 1+7", n)
	}
	m.Flush()
	if n := s.calls.Load(); n != 1+7 {
		t.Fatalf("a Flush with nothing counted called the sink: %d calls", n)
	}

	const (
		workers = 8
		rounds  = 2000
	)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var flushers sync.WaitGroup
	for range 2 {
		flushers.Add(1)
		go func() {
			defer flushers.Done()
			for {
				select {
				case <-stop:
					return
				default:
					m.Flush()
				}
			}
		}()
	}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			typ := []string{"ping", "ack"}[w%2]
			for i := range rounds {
				m.MessageSent(typ, i%50)
				m.MessageReceived(typ, 3)
				m.WireSent(ChannelDatagram, 10)
				m.WireReceived(ChannelDatagram, 1)
			}
		}()
	}
	wg.Wait()
	close(stop)
	flushers.Wait()
	m.Flush()

	// Each worker sends i%50 bytes for i in [0, rounds): rounds/50 times
	// 0+1+...+49.
	perWorker := float64(rounds / 50 * (49 * 50 / 2))
	for _, c := range []struct {
		name   string
		labels []Label
		want   float64
	}{
		{MessagesSent, []Label{lbl(LabelType, "ping")}, 1 + workers/2*rounds},
		{MessagesSent, []Label{lbl(LabelType, "ack")}, workers / 2 * rounds},
		{BytesSent, nil, 100 + workers*perWorker},
		{MessagesReceived, []Label{lbl(LabelType, "ack")}, 1 + workers/2*rounds},
		{BytesReceived, nil, 40 + workers*rounds*3},
		{WireBytesSent, []Label{lbl(LabelChannel, "datagram")}, 130 + workers*rounds*10},
		{WireBytesReceived, []Label{lbl(LabelChannel, "datagram")}, workers * rounds},
		{WireBytesReceived, []Label{lbl(LabelChannel, "stream")}, 7},
		{UserMessages, []Label{lbl(LabelType, "direct"), lbl(LabelResult, ResultDelivered)}, 1},
	} {
		if got, _ := s.Counter(c.name, append(c.labels, node)...); got != c.want {
			t.Errorf("%s %v: sink has %v, counted %v", c.name, c.labels, got, c.want)
		}
	}
}

func TestNewStatsd(t *testing.T) {
	for _, bad := range []string{"", "localhost", "127.0.0.1", ":8125"} {
		if _, err := NewStatsd(bad); err == nil {
			t.Errorf("NewStatsd(%q) accepted", bad)
		}
	}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	sink, err := NewStatsd(pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Shutdown()
	m := New(sink, node)
	m.Probe(ProbeIndirectAck)
	m.GossipQueueDepth(3)

	want := []string{
		"membership.probes.indirect_ack.node-a:1.000000|c",
		"membership.gossip.queue.node-a:3.000000|g",
	}
	got := readStatsd(t, pc, len(want))
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("statsd lines %q lack %q", got, w)
		}
	}
}

// readStatsd reads statsd lines from pc until it has n, with a deadline.
func readStatsd(t testing.TB, pc net.PacketConn, n int) []string {
	t.Helper()
	var lines []string
	buf := make([]byte, 2048)
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for len(lines) < n {
		k, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("read statsd after %q: %v", lines, err)
		}
		for _, l := range strings.Split(strings.TrimSpace(string(buf[:k])), "\n") {
			if l != "" {
				lines = append(lines, l)
			}
		}
	}
	return lines
}

// constNames parses names.go and returns every constant whose value is
// built from Prefix: the metric names.
func constNames(t *testing.T) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "names.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			for i, v := range vs.Values {
				be, ok := v.(*ast.BinaryExpr)
				if !ok {
					continue
				}
				if id, ok := be.X.(*ast.Ident); ok && id.Name == "Prefix" {
					lit := be.Y.(*ast.BasicLit).Value
					out[vs.Names[i].Name] = Prefix + strings.Trim(lit, `"`)
				}
			}
		}
	}
	return out
}

func TestNamesComplete(t *testing.T) {
	consts := constNames(t)
	if len(consts) != len(allNames) {
		t.Errorf("names.go declares %d metric names, allNames lists %d", len(consts), len(allNames))
	}
	seen := map[string]bool{}
	for _, n := range allNames {
		if seen[n] {
			t.Errorf("%s listed twice", n)
		}
		seen[n] = true
		if !strings.HasPrefix(n, Prefix+".") {
			t.Errorf("%s lacks the prefix", n)
		}
	}
	for id, n := range consts {
		if !seen[n] {
			t.Errorf("constant %s (%s) missing from allNames", id, n)
		}
	}
}

func TestNamesDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	for _, n := range allNames {
		if !strings.Contains(text, "| `"+n+"` |") {
			t.Errorf("docs/metrics.md has no table row for %s", n)
		}
	}
	values := []string{
		string(ProbeAck), string(ProbeIndirectAck), string(ProbeFailed), string(ProbeStreamAck),
		StreamProbeOK, StreamProbeFailed, StreamProbeSkipped,
		string(TransportQueueFull), string(TransportTooLarge), string(TransportStreamQueueFull),
	}
	for _, r := range DropReasons {
		values = append(values, string(r))
	}
	for _, v := range values {
		if !strings.Contains(text, "`"+v+"`") {
			t.Errorf("docs/metrics.md does not mention label value %s", v)
		}
	}
}

// BenchmarkMessageSent: the cost of counting one message sent into
// go-metrics' in-memory sink, which formats every call it gets (as the
// statsd, datadog and Prometheus sinks do). The counts are summed; Flush,
// once a second in the node, is BenchmarkFlush.
func BenchmarkMessageSent(b *testing.B) {
	m := New(gometrics.NewInmemSink(10*time.Second, time.Minute), node)
	b.ReportAllocs()
	for range b.N {
		m.MessageSent("ping", 120)
	}
}

// BenchmarkFlush: one Flush of twelve summed counters that all moved, about
// what a node's second of traffic leaves.
func BenchmarkFlush(b *testing.B) {
	m := New(gometrics.NewInmemSink(10*time.Second, time.Minute), node)
	types := []string{"ping", "ack", "ping-req", "alive", "suspect"}
	b.ReportAllocs()
	for range b.N {
		for _, typ := range types {
			m.MessageSent(typ, 120)
		}
		m.WireSent(ChannelDatagram, 600)
		m.WireReceived(ChannelDatagram, 600)
		m.Flush()
	}
}

func BenchmarkProbeNil(b *testing.B) {
	var m *Metrics
	b.ReportAllocs()
	for range b.N {
		m.Probe(ProbeAck)
	}
}
