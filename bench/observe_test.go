package bench

import (
	"bytes"
	"sync"
	"sync/atomic"
	"time"

	hmetrics "github.com/hashicorp/go-metrics"
	"github.com/hashicorp/memberlist"

	"github.com/meshward/membership"
	"github.com/meshward/membership/metrics"
)

// This file holds what the loss scenario (loss_test.go) reads from each
// library while a cluster runs: the events, logs and metrics each library
// itself offers, summed over the cluster's nodes. Each observer's
// snapshot is a map from a count's name to its value so far; the scenario
// takes the difference over its window.

// Count names common to both libraries, as the loss tables show them.
const (
	countProbes        = "probes"              // probes of other members started or completed
	countFailedProbes  = "failed_probes"       // probes answered by no path: the prober suspects the target
	countSuspects      = "suspect_transitions" // members some observer moved from alive to suspect
	countRefutations   = "refutations"         // suspicions the suspected member refuted
	countDeaths        = "dead_transitions"    // members some observer moved to dead
	countTCPRescues    = "tcp_rescues"         // UDP probes failed, memberlist's TCP ping or our stream ping got through
	countDirectTimeout = "direct_timeouts"     // memberlist: direct UDP ping timed out (before indirect and TCP)
)

// mlLogLines maps a memberlist v0.7.0 log line (state.go) to the count it
// adds to. Each line names the node that logged it, never a peer's claim.
var mlLogLines = []struct {
	text  []byte
	count string
}{
	// state.go:413, probeNode: the direct UDP ping got no ack in time.
	{[]byte("[DEBUG] memberlist: Failed UDP ping: "), countDirectTimeout},
	// state.go:518, probeNode: no ack by UDP, indirect or TCP: the
	// prober suspects the target (SWIM §4.2's suspicion).
	{[]byte("[INFO] memberlist: Suspect "), countFailedProbes},
	// state.go:496: UDP and indirect failed, the TCP ping reached it.
	{[]byte("[WARN] memberlist: Was able to connect to "), countTCPRescues},
	// state.go:473: the fallback TCP ping itself failed.
	{[]byte("[ERR] memberlist: Failed fallback TCP ping: "), "tcp_ping_errors"},
	// state.go:1191: a node refuted a suspicion about itself.
	{[]byte("[WARN] memberlist: Refuting a suspect message"), countRefutations},
	// state.go:1239: a suspicion timed out and the node declared the
	// suspect dead.
	{[]byte("[INFO] memberlist: Marking "), "declared_dead"},
	// state.go:1278: a node refuted a death notice about itself.
	{[]byte("[WARN] memberlist: Refuting a dead message"), "dead_refutations"},
}

// mlObserver reads a memberlist cluster: it is every node's log writer
// (memberlist logs one line per Write) and EventDelegate, and reads the
// counters memberlist sends to go-metrics' global sink, which it installs.
// One memberlist cluster per process: the global sink sums every
// memberlist of the process.
type mlObserver struct {
	mu     sync.Mutex
	counts map[string]float64
	inm    *hmetrics.InmemSink
}

func newMLObserver() (*mlObserver, error) {
	o := &mlObserver{counts: map[string]float64{}, inm: hmetrics.NewInmemSink(24*time.Hour, 48*time.Hour)}
	cfg := hmetrics.DefaultConfig("")
	cfg.EnableHostname = false
	cfg.HostName = ""
	cfg.EnableRuntimeMetrics = false
	if _, err := hmetrics.NewGlobal(cfg, o.inm); err != nil {
		return nil, err
	}
	return o, nil
}

func (o *mlObserver) add(name string, v float64) {
	o.mu.Lock()
	o.counts[name] += v
	o.mu.Unlock()
}

// Write counts one log line.
func (o *mlObserver) Write(p []byte) (int, error) {
	for _, l := range mlLogLines {
		if bytes.Contains(p, l.text) {
			o.add(l.count, 1)
			break
		}
	}
	return len(p), nil
}

// NotifyJoin is part of memberlist.EventDelegate.
func (o *mlObserver) NotifyJoin(*memberlist.Node) { o.add("join_events", 1) }

// NotifyLeave is part of memberlist.EventDelegate: memberlist calls it
// when a member is dead or has left. No member leaves in the loss
// scenario, so every call is a death some observer saw.
func (o *mlObserver) NotifyLeave(*memberlist.Node) { o.add(countDeaths, 1) }

// NotifyUpdate is part of memberlist.EventDelegate.
func (o *mlObserver) NotifyUpdate(*memberlist.Node) {}

// snapshot returns the counts so far. From go-metrics: every node's
// alive-to-suspect transitions (memberlist.msg.suspect, state.go:1198,
// counted after the suspect message changed the node's view) and its
// probes (the samples of memberlist.probeNode, state.go:306, one per
// probe).
func (o *mlObserver) snapshot() map[string]float64 {
	o.mu.Lock()
	out := make(map[string]float64, len(o.counts)+2)
	for k, v := range o.counts {
		out[k] = v
	}
	o.mu.Unlock()
	out[countSuspects], out[countProbes] = 0, 0
	for _, iv := range o.inm.Data() {
		iv.RLock()
		for _, v := range iv.Counters {
			if v.Name == "memberlist.msg.suspect" {
				out[countSuspects] += v.Sum
			}
		}
		for _, v := range iv.Samples {
			if v.Name == "memberlist.probeNode" {
				out[countProbes] += float64(v.Count)
			}
		}
		iv.RUnlock()
	}
	return out
}

// oursObserver reads a membership cluster: every node sends its metrics
// (docs/metrics.md) to one in-memory sink, and a subscription on every
// node counts its suspect and failed events.
type oursObserver struct {
	sink    *metrics.Inmem
	suspect atomic.Int64
	failed  atomic.Int64
	mu      sync.Mutex
	subs    []*membership.Subscription
}

func newOursObserver() *oursObserver { return &oursObserver{sink: metrics.NewInmem()} }

// watch subscribes to n's suspect and failed events for as long as n runs
// (Shutdown closes the subscription).
func (o *oursObserver) watch(n *membership.Node) {
	sub := n.Subscribe(1<<14, membership.EventSuspected, membership.EventFailed)
	o.mu.Lock()
	o.subs = append(o.subs, sub)
	o.mu.Unlock()
	go func() {
		for ev := range sub.Events() {
			switch ev.Kind {
			case membership.EventSuspected:
				o.suspect.Add(1)
			case membership.EventFailed:
				o.failed.Add(1)
			}
		}
	}()
}

// snapshot returns the counts so far: probes by result (membership.probes,
// one key per result the library reports, so that a new result such as a
// stream fallback shows up without a change here), suspicions and deaths
// both from the events and from the metrics, refutations (reported once a
// second by each node), and events lost to a full subscription. None of
// them is a traffic counter, which the node sums and hands the sink only
// once a second (docs/metrics.md): reading those would shift the window's
// edges by up to a second.
func (o *oursObserver) snapshot() map[string]float64 {
	out := map[string]float64{
		countSuspects: float64(o.suspect.Load()),
		countDeaths:   float64(o.failed.Load()),
		countProbes:   0,
	}
	for _, iv := range o.sink.Data() {
		iv.RLock()
		for _, v := range iv.Counters {
			if v.Name != metrics.Probes {
				continue
			}
			out[countProbes] += v.Sum
			for _, l := range v.Labels {
				if l.Name == metrics.LabelResult {
					out["probes_"+l.Value] += v.Sum
				}
			}
		}
		iv.RUnlock()
	}
	out[countFailedProbes] = out["probes_"+string(metrics.ProbeFailed)]
	// The stream fallback (docs/probing.md) is our counterpart of
	// memberlist's TCP ping: UDP failed, the stream ping got through.
	out[countTCPRescues] = out["probes_"+string(metrics.ProbeStreamAck)]
	out[countRefutations], _ = o.sink.Counter(metrics.Refutations)
	out["suspicions_metric"], _ = o.sink.Counter(metrics.Suspicions)
	out["deaths_metric"], _ = o.sink.Counter(metrics.Deaths)
	o.mu.Lock()
	var dropped uint64
	for _, s := range o.subs {
		dropped += s.Dropped()
	}
	o.mu.Unlock()
	out["events_dropped"] = float64(dropped)
	return out
}

// diff returns after − before for every count in after.
func diff(before, after map[string]float64) map[string]float64 {
	out := make(map[string]float64, len(after))
	for k, v := range after {
		out[k] = v - before[k]
	}
	return out
}
