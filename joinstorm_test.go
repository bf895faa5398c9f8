package membership

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshward/membership/metrics"
)

// stormRun is what one join storm measured: times from the moment the
// joiners were released.
type stormRun struct {
	seedAll      time.Duration   // the seed holds every joiner alive
	joined       time.Duration   // every Join call has returned
	joinEach     []time.Duration // each Join call, sorted
	converged    []time.Duration // each node holds all n alive, sorted
	attempts     int             // exchanges the joiners started (retries included)
	failed       int             // of which failed
	busy         float64         // streams the seed refused or evicted for load
	served       int             // exchanges the seed served
	serveMax     float64         // the seed's slowest inbound exchange, ms
	queueDropped uint64          // streams the seed's transport closed for a full queue
	inFailed     float64         // inbound exchanges that failed at the seed
	streamBytes  float64         // stream bytes every node sent, until the end of the storm
}

// runJoinStorm starts n real-socket nodes (loopback, ProfileLAN, encrypted),
// makes n−1 of them Join the first at once and records when the seed held
// every joiner, when every Join returned and when each node held all n
// alive. Membership is tracked through each node's EventJoined events, so
// that nothing polls the nodes' loops.
func runJoinStorm(t testing.TB, n int, opts ...Option) stormRun {
	t.Helper()
	ring := newRing(t, testKey)
	nodes := make([]*Node, n)
	sinks := make([]*metrics.Inmem, n)
	for i := range nodes {
		sinks[i] = metrics.NewInmem()
		o := append([]Option{WithName(fmt.Sprintf("node-%03d", i)), WithBindAddr("127.0.0.1:0"), WithKeyring(ring),
			WithProfile(ProfileLAN), WithLogger(quietLogger()), WithMetrics(sinks[i]), WithEventBuffer(0)}, opts...)
		nd, err := New(o...)
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = nd
	}
	defer func() {
		var wg sync.WaitGroup
		for _, nd := range nodes {
			wg.Add(1)
			go func() { defer wg.Done(); nd.Shutdown() }()
		}
		wg.Wait()
	}()
	seed := nodes[0].Myself().Addr.String()

	var t0 time.Time
	start := make(chan struct{})
	conv := make([]time.Duration, n)
	debug := os.Getenv("MEMBERSHIP_STORM_DEBUG") != ""
	var mu sync.Mutex
	learned := make([][]string, n)
	var convWG sync.WaitGroup
	for i, nd := range nodes {
		sub := nd.Subscribe(4*n, EventJoined)
		convWG.Add(1)
		go func() {
			defer convWG.Done()
			defer sub.Close()
			known := map[string]bool{}
			deadline := time.NewTimer(60 * time.Second)
			defer deadline.Stop()
			for len(known) < n-1 {
				select {
				case e := <-sub.Events():
					known[e.Member.Name] = true
					if debug {
						mu.Lock()
						learned[i] = append(learned[i], fmt.Sprintf("%s@%d", e.Member.Name, time.Since(t0).Milliseconds()))
						mu.Unlock()
					}
				case <-deadline.C:
					conv[i] = -1
					return
				}
			}
			<-start
			conv[i] = time.Since(t0)
		}()
	}

	each := make([]time.Duration, n-1)
	var wg sync.WaitGroup
	ready := make(chan struct{})
	for i, nd := range nodes[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-ready
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := nd.Join(ctx, seed); err != nil {
				t.Errorf("%s: Join: %v", nd.cfg.name, err)
			}
			each[i] = time.Since(t0)
		}()
	}
	t0 = time.Now()
	close(start)
	close(ready)
	wg.Wait()
	var r stormRun
	r.joined = time.Since(t0)
	convWG.Wait()
	r.seedAll = conv[0]
	for i, d := range conv {
		if d < 0 {
			t.Fatalf("node %d did not hold all %d members within 60 s", i, n)
		}
	}
	if debug {
		last := 0
		for i := range conv {
			if conv[i] > conv[last] {
				last = i
			}
		}
		t.Logf("last node %d (Join returned at %v) learned: %v", last, each[max(last-1, 0)], learned[last])
		mu.Lock()
		for i := range nodes {
			for _, e := range learned[i] {
				if strings.HasPrefix(e, fmt.Sprintf("node-%03d@", last)) {
					t.Logf("node %d learned of the last node at %s", i, e)
				}
			}
		}
		mu.Unlock()
	}
	r.converged = slices.Sorted(slices.Values(conv))
	r.joinEach = slices.Sorted(slices.Values(each))
	out := metrics.Label{Name: metrics.LabelDirection, Value: string(metrics.Outbound)}
	in := metrics.Label{Name: metrics.LabelDirection, Value: string(metrics.Inbound)}
	for _, nd := range nodes {
		nd.met.Flush() // the stream bytes are summed until the next report
	}
	for _, s := range sinks {
		tcp, _ := s.Counter(metrics.WireBytesSent, metrics.Label{Name: metrics.LabelChannel, Value: string(metrics.ChannelStream)})
		r.streamBytes += tcp
	}
	for _, s := range sinks[1:] {
		all, _ := s.Counter(metrics.PushPulls, out)
		bad, _ := s.Counter(metrics.PushPulls, out, metrics.Label{Name: metrics.LabelResult, Value: metrics.ResultError})
		r.attempts += int(all)
		r.failed += int(bad)
	}
	busy, _ := sinks[0].Counter(metrics.Dropped, metrics.Label{Name: metrics.LabelReason, Value: string(metrics.DropStreamBusy)})
	ev, _ := sinks[0].Counter(metrics.Dropped, metrics.Label{Name: metrics.LabelReason, Value: string(metrics.DropStreamEvicted)})
	r.busy = busy + ev
	r.served, _, _, r.serveMax = sinks[0].Samples(metrics.PushPullDuration, in)
	r.queueDropped = nodes[0].tr.Stats().StreamsDropped
	r.inFailed, _ = sinks[0].Counter(metrics.PushPulls, in, metrics.Label{Name: metrics.LabelResult, Value: metrics.ResultError})
	if os.Getenv("MEMBERSHIP_STORM_DEBUG") != "" {
		t.Logf("seed drops: %v", sinks[0])
	}
	return r
}

func (r stormRun) String() string {
	ms := func(d time.Duration) string { return strconv.FormatFloat(d.Seconds()*1000, 'f', 0, 64) }
	return fmt.Sprintf("seed holds all %s ms; Joins returned %s ms (median %s); converged median %s ms, last %s ms; "+
		"exchanges %d (failed %d), seed refused/evicted %.0f, served %d (slowest %.0f ms, failed %.0f), transport queue dropped %d; %.0f kB on streams",
		ms(r.seedAll), ms(r.joined), ms(r.joinEach[len(r.joinEach)/2]), ms(r.converged[len(r.converged)/2]),
		ms(r.converged[len(r.converged)-1]), r.attempts, r.failed, r.busy, r.served, r.serveMax, r.inFailed, r.queueDropped, r.streamBytes/1000)
}

// TestJoinStormFigures runs join storms of real-socket nodes and logs what
// each measured (see runJoinStorm); it asserts only that every Join
// succeeded and every node converged. MEMBERSHIP_STORM=N (nodes) turns it
// on; MEMBERSHIP_STORM_RUNS (default 5) sets the number of storms.
func TestJoinStormFigures(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("MEMBERSHIP_STORM"))
	if n < 2 {
		t.Skip("join storm figures: set MEMBERSHIP_STORM=64 (nodes) to run, MEMBERSHIP_STORM_RUNS for the number of storms")
	}
	runs := 5
	if v, err := strconv.Atoi(os.Getenv("MEMBERSHIP_STORM_RUNS")); err == nil && v > 0 {
		runs = v
	}
	var seedAll, joined, median, last []time.Duration
	for i := range runs {
		r := runJoinStorm(t, n)
		t.Logf("run %d: %v", i+1, r)
		seedAll = append(seedAll, r.seedAll)
		joined = append(joined, r.joined)
		median = append(median, r.converged[len(r.converged)/2])
		last = append(last, r.converged[len(r.converged)-1])
	}
	spread := func(ds []time.Duration) string {
		s := slices.Sorted(slices.Values(ds))
		return fmt.Sprintf("%v / %v / %v", s[0].Round(time.Millisecond), s[len(s)/2].Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond))
	}
	t.Logf("N=%d, %d storms, min / median / max:\n  seed holds all: %s\n  every Join returned: %s\n  median node converged: %s\n  last node converged: %s",
		n, runs, spread(seedAll), spread(joined), spread(median), spread(last))
}
