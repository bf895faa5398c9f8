package swimtest

import (
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshward/membership/swim"
)

// The frontier sweep (issue 13, goal 2; method and results in
// docs/frontier.md) measures, for each of the node runtime's profiles, how
// fast a crash is known everywhere against how often a member that never
// crashed is suspected or declared dead, over cluster sizes, datagram loss
// rates and candidate suspicion multipliers α, with 10 % of the members
// slow (Lifeguard §5's fault). It prints one table per profile and takes
// minutes, so it runs only when asked:
//
//	MEMBERSHIP_FRONTIER=1 go test -run TestFrontier -v -timeout 60m ./swim/swimtest/
//	MEMBERSHIP_FRONTIER=quick go test -run TestFrontier -v ./swim/swimtest/
//
// MEMBERSHIP_FRONTIER_VARIANT names a change applied on top of every
// profile (frontierVariants), so that the same sweep can be re-run with a
// new protocol knob and compared; MEMBERSHIP_FRONTIER_OUT also writes the
// tables to a file; MEMBERSHIP_FRONTIER_WORKERS sets how many cells run at
// once (default GOMAXPROCS: each simulation is single-threaded);
// MEMBERSHIP_FRONTIER_PROFILES, _SIZES, _LOSSES and _ALPHAS run a subset;
// MEMBERSHIP_FRONTIER_SLOW sets the fraction of slowed members.
const (
	frontierEnv        = "MEMBERSHIP_FRONTIER"
	frontierVariantEnv = "MEMBERSHIP_FRONTIER_VARIANT"
	frontierOutEnv     = "MEMBERSHIP_FRONTIER_OUT"
	frontierWorkersEnv = "MEMBERSHIP_FRONTIER_WORKERS"
	// Subsets of the plan, comma-separated: profiles (lan,wan,local),
	// cluster sizes, loss rates and α.
	frontierProfilesEnv = "MEMBERSHIP_FRONTIER_PROFILES"
	frontierSizesEnv    = "MEMBERSHIP_FRONTIER_SIZES"
	frontierLossesEnv   = "MEMBERSHIP_FRONTIER_LOSSES" // fractions: 0.01,0.1
	frontierAlphasEnv   = "MEMBERSHIP_FRONTIER_ALPHAS"
	// The fraction of members slowed; default 0.1, 0 for none.
	frontierSlowEnv = "MEMBERSHIP_FRONTIER_SLOW"
)

// frontierVariants are the named changes MEMBERSHIP_FRONTIER_VARIANT can
// apply to every profile's configuration after α is set. Add one here to
// measure a new knob (a stream fallback for failed probes, say) on the
// same frontier.
var frontierVariants = map[string]func(c *swim.Config){
	// The node's profiles (swim/profiles.go).
	"": func(*swim.Config) {},
	// Without the stream ping after a late datagram ack (what the first
	// sweep, before the fallback was merged, measured).
	"no-stream-fallback": func(c *swim.Config) { c.StreamFallback = false },
	// memberlist's K = α−2 independent confirmations instead of our 3.
	"k-memberlist": func(c *swim.Config) { c.SuspicionConfirmations = max(int(c.SuspicionMult)-2, 0) },
	// Dissemination by piggybacking alone (SWIM §4.1), no gossip timer: how
	// much of the detection time the dead message's spread is.
	"no-gossip-timer": func(c *swim.Config) { c.GossipInterval = 0 },
	// Half the probe interval, ack timeouts and gossip interval: the
	// other lever on detection time (first detection and the rate of
	// confirmations both scale with the period), at twice the probe
	// traffic.
	"half-period": func(c *swim.Config) {
		c.ProbeInterval /= 2
		c.AckTimeout /= 2
		c.AckTimeoutMin /= 2
		c.AckTimeoutMax /= 2
		c.GossipInterval /= 2
	},
}

// frontierProfile is one profile of the sweep: the runtime's configuration
// (ProfileConfig) and the link its members are modelled on.
type frontierProfile struct {
	name string
	link Link
}

// The links: one-way latency drawn uniformly, as on a switched LAN (the
// statistical tests' 1–5 ms), between data centres, and on loopback.
var frontierProfiles = []frontierProfile{
	{"lan", Link{LatencyMin: time.Millisecond, LatencyMax: 5 * time.Millisecond}},
	{"wan", Link{LatencyMin: 10 * time.Millisecond, LatencyMax: 100 * time.Millisecond}},
	{"local", Link{LatencyMin: 20 * time.Microsecond, LatencyMax: 500 * time.Microsecond}},
}

// frontierPlan is the extent of the sweep.
type frontierPlan struct {
	profiles []string
	sizes    []int
	losses   []float64
	alphas   []float64
	// scale gives, per cluster size, the seeds, the length of the window
	// in which false suspicions and deaths are counted, and the crash
	// rounds and victims per round for the detection time.
	scale func(n int) frontierScale
	// skip, when set, leaves cells out of the sweep (they show as "—").
	skip func(profile string, n int, loss, alpha float64) bool
}

type frontierScale struct {
	seeds, windowPeriods, rounds, victims int
}

var fullPlan = frontierPlan{
	profiles: []string{"lan", "wan", "local"},
	sizes:    []int{16, 64, 256, 1024},
	losses:   []float64{0.01, 0.05, 0.10, 0.20},
	alphas:   []float64{2, 3, 4, 5, 6},
	scale: func(n int) frontierScale {
		switch {
		case n <= 16:
			return frontierScale{seeds: 4, windowPeriods: 600, rounds: 25, victims: 1}
		case n <= 64:
			return frontierScale{seeds: 2, windowPeriods: 600, rounds: 20, victims: 1}
		case n <= 256:
			return frontierScale{seeds: 1, windowPeriods: 300, rounds: 6, victims: 3}
		default:
			return frontierScale{seeds: 1, windowPeriods: 60, rounds: 1, victims: 12}
		}
	},
	// At n = 1024 a cell takes 1–1.5 min of one core (the churn of 102
	// slow members, each suspected and refuted about once a period, is
	// gossiped to everyone): only LAN, at 1 and 10 % loss, α = 2, 4, 6.
	skip: func(profile string, n int, loss, alpha float64) bool {
		return n > 256 && (profile != "lan" || (loss != 0.01 && loss != 0.10) || int(alpha)%2 != 0)
	},
}

var quickPlan = frontierPlan{
	profiles: []string{"lan"},
	sizes:    []int{16, 64},
	losses:   []float64{0.01, 0.10},
	alphas:   []float64{2, 4},
	scale: func(n int) frontierScale {
		return frontierScale{seeds: 1, windowPeriods: 300, rounds: 10, victims: 1}
	},
}

// frontierCell is one simulation: a profile at one size, loss rate, α and
// seed.
type frontierCell struct {
	profile frontierProfile
	n       int
	loss    float64
	alpha   float64
	seed    uint64
	scale   frontierScale
	variant func(*swim.Config)
	slow    float64 // fraction of members slowed
}

// detSample is one crash: the time from the crash to the first suspicion
// (someone's probe of it failed), to the first member declaring it dead
// (a suspicion timed out), to every up member that is not slow holding it
// dead, and to every up member holding it dead.
type detSample struct {
	accused, declared, healthy, all time.Duration
}

// cellResult is what one or more simulations of a cell measured.
type cellResult struct {
	memberHours float64
	// False suspicions and deaths are counted as episodes: distinct
	// (member, incarnation) pairs suspected, or declared dead, by anyone
	// while the member was up. A refutation ends an episode.
	suspHealthy, suspSlow   int
	deathHealthy, deathSlow int
	probeFailures           uint64
	det                     []detSample
	censored                int // crashes not known everywhere within the cap
	unconverged             int // victims not back everywhere 30 periods after their resumption
	lo, hi                  time.Duration
	wall                    time.Duration
}

func (r *cellResult) add(o cellResult) {
	r.memberHours += o.memberHours
	r.suspHealthy += o.suspHealthy
	r.suspSlow += o.suspSlow
	r.deathHealthy += o.deathHealthy
	r.deathSlow += o.deathSlow
	r.probeFailures += o.probeFailures
	r.det = append(r.det, o.det...)
	r.censored += o.censored
	r.unconverged += o.unconverged
	r.lo, r.hi = o.lo, o.hi
	r.wall += o.wall
}

// frontierConfig is the profile's configuration with α set, β·α kept at
// the profile's ratio (β unchanged), and the variant applied.
func frontierConfig(c frontierCell) swim.Config {
	cfg, ok := ProfileConfig(c.profile.name)
	if !ok {
		panic("unknown profile " + c.profile.name)
	}
	cfg.SuspicionMult = c.alpha
	c.variant(&cfg)
	return cfg
}

// slowCount is how many of n members are slowed: the fraction f,
// rounded, at least one unless f is 0.
func slowCount(n int, f float64) int {
	if f <= 0 {
		return 0
	}
	return max(1, int(math.Round(f*float64(n))))
}

// runCell runs one simulation: a warm-up, the window in which false
// suspicions and deaths are counted, then the crash rounds.
func runCell(c frontierCell) (cellResult, error) {
	start := time.Now()
	cfg := frontierConfig(c)
	link := c.profile.link
	link.Loss = c.loss
	// The runtime has a stream transport: model it, so that the stream
	// fallback (Config.StreamFallback) works as on real sockets.
	s, err := New(Options{Nodes: c.n, Seed: c.seed, Config: cfg, Link: link, Streams: true})
	if err != nil {
		return cellResult{}, err
	}
	T := cfg.ProbeInterval
	// Slow members handle every datagram 0.5–1.5 periods late: later than
	// the largest ack timeout of every profile (0.8, 0.8 and 0.75 of the
	// period), so their direct and indirect probes fail and acks reach
	// their own probes too late, Lifeguard §5's fault at full strength.
	slow := make([]bool, c.n)
	ns := slowCount(c.n, c.slow)
	for i := range ns {
		j := i * c.n / ns
		s.Node(j).Slow = T
		slow[j] = true
	}
	var r cellResult
	nf := float64(max(c.n, 1))
	lo := time.Duration(cfg.SuspicionMult * max(1, math.Log10(nf)) * float64(T))
	r.lo, r.hi = lo, time.Duration(cfg.SuspicionMaxMult*float64(lo))

	type episode struct {
		node int
		inc  uint64
	}
	susp := map[episode]bool{}
	dead := map[episode]bool{}
	counting := false
	declared := map[int]time.Time{}
	healthyKnow := map[int]time.Time{}
	healthyHoldDead := func(subj *Node) bool {
		for _, o := range s.nodes {
			if o == subj || !o.Up || slow[o.Index] {
				continue
			}
			if m, ok := o.Core.Member(subj.Name); ok && (m.State == swim.StateAlive || m.State == swim.StateSuspect) {
				return false
			}
		}
		return true
	}
	s.OnEvent = func(_ *Node, ev swim.Event) {
		if ev.Kind != swim.EventSuspected && ev.Kind != swim.EventFailed {
			return
		}
		subj := s.byName(ev.Member.Name)
		if subj == nil {
			return
		}
		if !subj.Up {
			if ev.Kind == swim.EventFailed {
				if _, ok := declared[subj.Index]; !ok {
					declared[subj.Index] = s.Now()
				}
				if _, ok := healthyKnow[subj.Index]; !ok && healthyHoldDead(subj) {
					healthyKnow[subj.Index] = s.Now()
				}
			}
			return
		}
		if !counting {
			return
		}
		e := episode{subj.Index, ev.Member.Incarnation}
		if ev.Kind == swim.EventSuspected {
			if !susp[e] {
				susp[e] = true
				if slow[subj.Index] {
					r.suspSlow++
				} else {
					r.suspHealthy++
				}
			}
		} else if !dead[e] {
			dead[e] = true
			if slow[subj.Index] {
				r.deathSlow++
			} else {
				r.deathHealthy++
			}
		}
	}
	failures := func() uint64 {
		var f uint64
		for _, nd := range s.Nodes() {
			f += nd.Core.Count(swim.CountProbeFailures)
		}
		return f
	}

	s.Run(10 * T)
	counting = true
	f0 := failures()
	window := time.Duration(c.scale.windowPeriods) * T
	s.Run(window)
	r.probeFailures = failures() - f0
	counting = false
	r.memberHours = float64(c.n) * window.Hours()

	limit := r.hi + 60*T
	for range c.scale.rounds {
		s.Run(time.Duration(s.rng.Int64N(int64(T))))
		var vs []int
		for tries := 0; len(vs) < c.scale.victims && tries < 100*c.scale.victims; tries++ {
			v := s.rng.IntN(c.n)
			if !slow[v] && s.nodes[v].Up {
				s.Crash(v)
				delete(declared, v)
				delete(healthyKnow, v)
				vs = append(vs, v)
			}
		}
		done := func() bool {
			for _, v := range vs {
				if d, _ := s.Detection(v); d.AllKnow.IsZero() {
					return false
				}
			}
			return true
		}
		s.RunWhile(limit, func() bool { return !done() })
		for _, v := range vs {
			d, _ := s.Detection(v)
			if d.AllKnow.IsZero() {
				r.censored++
			} else {
				r.det = append(r.det, detSample{
					accused:  d.FirstAccused.Sub(d.CrashedAt),
					declared: declared[v].Sub(d.CrashedAt),
					healthy:  healthyKnow[v].Sub(d.CrashedAt),
					all:      d.AllKnow.Sub(d.CrashedAt),
				})
			}
			s.Resume(v)
		}
		// Let the victims come back (they refute when a tombstone probe
		// tells them they are dead) before the next round: every up
		// member must hold each alive or suspect again.
		back := func() bool {
			for _, v := range vs {
				if !s.Knows(s.nodes[v], swim.StateAlive, swim.StateSuspect) {
					return false
				}
			}
			return true
		}
		ok := false
		for range 30 {
			s.Run(T)
			if ok = back(); ok {
				break
			}
		}
		if !ok {
			r.unconverged++
		}
		s.Run(3 * T)
	}
	r.wall = time.Since(start)
	return r, nil
}

// rankQuantile is the nearest-rank q-quantile of sorted xs, where the last
// `censored` values are beyond the largest: it returns -1 for those.
func rankQuantile(xs []time.Duration, censored int, q float64) time.Duration {
	n := len(xs) + censored
	if n == 0 {
		return -1
	}
	k := int(math.Ceil(q*float64(n))) - 1
	k = max(k, 0)
	if k >= len(xs) {
		return -1
	}
	return xs[k]
}

func fmtSec(d time.Duration) string {
	if d < 0 {
		return "—"
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 2, 64)
}

func fmtRate(x float64) string {
	switch {
	case x == 0:
		return "0"
	case x >= 100:
		return strconv.FormatFloat(x, 'f', 0, 64)
	case x >= 1:
		return strconv.FormatFloat(x, 'f', 1, 64)
	}
	return strconv.FormatFloat(x, 'g', 2, 64)
}

type cellKey struct {
	profile string
	n       int
	loss    float64
	alpha   float64
}

// TestFrontier runs the sweep and prints the tables (see the top of this
// file). It asserts what must hold for the tables to mean anything: every
// cell measured a crash, and at n ≤ 64 with 1 % loss every crash was known
// everywhere.
func TestFrontier(t *testing.T) {
	mode := os.Getenv(frontierEnv)
	var plan frontierPlan
	switch mode {
	case "1":
		plan = fullPlan
	case "quick":
		plan = quickPlan
	default:
		t.Skipf("frontier sweep: set %s=1 (about 20 min on 2 cores) or %s=quick (under a minute)", frontierEnv, frontierEnv)
	}
	if raceEnabled {
		t.Skip("frontier sweep: skipped under the race detector (too slow)")
	}
	variantName := os.Getenv(frontierVariantEnv)
	variant, ok := frontierVariants[variantName]
	if !ok {
		t.Fatalf("%s=%q: unknown variant", frontierVariantEnv, variantName)
	}
	if v := os.Getenv(frontierProfilesEnv); v != "" {
		plan.profiles = strings.Split(v, ",")
	}
	floats := func(env string, into *[]float64) {
		if v := os.Getenv(env); v != "" {
			*into = nil
			for _, f := range strings.Split(v, ",") {
				x, err := strconv.ParseFloat(f, 64)
				if err != nil || x < 0 {
					t.Fatalf("%s=%q: want numbers of at least 0 separated by commas", env, v)
				}
				*into = append(*into, x)
			}
		}
	}
	var sizes []float64
	floats(frontierSizesEnv, &sizes)
	if sizes != nil {
		plan.skip = nil // sizes asked for by name run at every point
		plan.sizes = nil
		for _, x := range sizes {
			plan.sizes = append(plan.sizes, max(2, int(x)))
		}
	}
	floats(frontierLossesEnv, &plan.losses)
	floats(frontierAlphasEnv, &plan.alphas)
	slowFrac := []float64{0.1}
	floats(frontierSlowEnv, &slowFrac)
	for _, pn := range plan.profiles {
		if _, ok := ProfileConfig(pn); !ok {
			t.Fatalf("%s: unknown profile %q", frontierProfilesEnv, pn)
		}
	}
	workers := runtime.GOMAXPROCS(0)
	if w, err := strconv.Atoi(os.Getenv(frontierWorkersEnv)); err == nil && w > 0 {
		workers = w
	}

	var cells []frontierCell
	for _, pn := range plan.profiles {
		var prof frontierProfile
		for _, p := range frontierProfiles {
			if p.name == pn {
				prof = p
			}
		}
		for _, n := range plan.sizes {
			sc := plan.scale(n)
			for _, loss := range plan.losses {
				for _, a := range plan.alphas {
					if plan.skip != nil && plan.skip(pn, n, loss, a) {
						continue
					}
					for seed := range sc.seeds {
						cells = append(cells, frontierCell{profile: prof, n: n, loss: loss, alpha: a,
							seed: uint64(1000*n + seed + 1), scale: sc, variant: variant, slow: slowFrac[0]})
					}
				}
			}
		}
	}
	// Largest first, so that the long cells do not end up last on one
	// worker.
	slices.SortStableFunc(cells, func(a, b frontierCell) int {
		return b.n*int(1+100*b.loss) - a.n*int(1+100*a.loss)
	})

	begin := time.Now()
	results := map[cellKey]*cellResult{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	work := make(chan frontierCell)
	var firstErr error
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				r, err := runCell(c)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				k := cellKey{c.profile.name, c.n, c.loss, c.alpha}
				if results[k] == nil {
					results[k] = &cellResult{}
				}
				results[k].add(r)
				mu.Unlock()
				t.Logf("%s n=%d loss=%.0f%% α=%g seed=%d: %v; %d crashes measured, %d not known everywhere in time, %d victims not back 30 periods after resuming",
					c.profile.name, c.n, c.loss*100, c.alpha, c.seed, r.wall.Round(time.Millisecond), len(r.det), r.censored, r.unconverged)
			}
		}()
	}
	for _, c := range cells {
		work <- c
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	elapsed := time.Since(begin)

	var out strings.Builder
	fmt.Fprintf(&out, "Frontier sweep (%s mode, variant %q, %.0f %% of members slow): %d simulations in %v with %d workers, %s/%s.\n\n",
		map[string]string{"1": "full", "quick": "quick"}[mode], variantName, 100*slowFrac[0], len(cells), elapsed.Round(time.Second), workers, runtime.GOOS, runtime.GOARCH)
	for _, pn := range plan.profiles {
		writeFrontierTables(&out, pn, plan, variant, results)
	}
	fmt.Print(out.String())
	if path := os.Getenv(frontierOutEnv); path != "" {
		if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
			t.Error(err)
		}
	}

	for k, r := range results {
		if len(r.det) == 0 && r.censored == 0 {
			t.Errorf("%+v: no crash measured", k)
		}
		// In small clusters with little loss every crash must be known
		// everywhere in time: if not, the harness (or the protocol) is
		// broken, not merely slow.
		if k.n <= 64 && k.loss <= 0.01 && r.censored > 0 {
			t.Errorf("%+v: %d crashes at 1%% loss not known everywhere within β·α·log10(n) + 60 periods", k, r.censored)
		}
	}
}

// writeFrontierTables writes the profile's frontier table (rows n × loss,
// columns per α) and its detection breakdown.
func writeFrontierTables(w io.Writer, pn string, plan frontierPlan, variant func(*swim.Config), results map[cellKey]*cellResult) {
	cfg, _ := ProfileConfig(pn)
	variant(&cfg) // the header shows the variant's K, gossip and so on
	fmt.Fprintf(w, "### %s: probe %v, ack %v (adaptive %v–%v), β = %g, K = %d, gossip %d every %v; slow members handle datagrams %v ± 50 %% late\n\n",
		pn, cfg.ProbeInterval, cfg.AckTimeout, cfg.AckTimeoutMin, cfg.AckTimeoutMax, cfg.SuspicionMaxMult,
		cfg.SuspicionConfirmations, cfg.GossipFanout, cfg.GossipInterval, cfg.ProbeInterval)
	fmt.Fprint(w, "| n | loss |")
	for _, a := range plan.alphas {
		fmt.Fprintf(w, " α=%g detect p50 / p99 (s) | α=%g false deaths /member-h, healthy / slow | α=%g false susp. of healthy /member-min |", a, a, a)
	}
	fmt.Fprint(w, "\n|---|---|")
	for range plan.alphas {
		fmt.Fprint(w, "---|---|---|")
	}
	fmt.Fprintln(w)
	for _, n := range plan.sizes {
		for _, loss := range plan.losses {
			fmt.Fprintf(w, "| %d | %.0f %% |", n, loss*100)
			for _, a := range plan.alphas {
				r := results[cellKey{pn, n, loss, a}]
				if r == nil {
					fmt.Fprint(w, " — | — | — |")
					continue
				}
				all := make([]time.Duration, 0, len(r.det))
				for _, d := range r.det {
					all = append(all, d.all)
				}
				slices.Sort(all)
				fd := fmtRate(float64(r.deathHealthy)/r.memberHours) + " / " + fmtRate(float64(r.deathSlow)/r.memberHours)
				cens := ""
				if r.censored > 0 {
					cens = fmt.Sprintf(" (%d/%d undetected)", r.censored, r.censored+len(r.det))
				}
				fmt.Fprintf(w, " %s / %s%s | %s | %s |", fmtSec(rankQuantile(all, r.censored, 0.5)), fmtSec(rankQuantile(all, r.censored, 0.99)), cens,
					fd, fmtRate(float64(r.suspHealthy)/(60*r.memberHours)))
			}
			fmt.Fprintln(w)
		}
	}
	fmt.Fprintln(w)

	// Breakdown at the lowest loss: where the detection time goes.
	loss := plan.losses[0]
	fmt.Fprintf(w, "Where the detection time goes (%s, %.0f %% loss; medians over the crashes; timeout bounds α·log10(n)·T and β times that):\n\n", pn, loss*100)
	fmt.Fprintln(w, "| n | α | crashes | crash → first suspicion (s) | → first declared dead (s) | → all healthy hold it dead (s) | → all hold it dead (s) | suspicion timeout min / max (s) | false susp. of slow members /member-min | failed probes /member-min |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
	for _, n := range plan.sizes {
		for _, a := range plan.alphas {
			r := results[cellKey{pn, n, loss, a}]
			if r == nil {
				continue
			}
			var acc, dec, hea, all []time.Duration
			for _, d := range r.det {
				acc, dec = append(acc, d.accused), append(dec, d.declared)
				hea, all = append(hea, d.healthy), append(all, d.all)
			}
			slices.Sort(acc)
			slices.Sort(dec)
			slices.Sort(hea)
			slices.Sort(all)
			fmt.Fprintf(w, "| %d | %g | %d | %s | %s | %s | %s | %s / %s | %s | %s |\n", n, a, len(r.det),
				fmtSec(rankQuantile(acc, 0, 0.5)), fmtSec(rankQuantile(dec, 0, 0.5)),
				fmtSec(rankQuantile(hea, 0, 0.5)), fmtSec(rankQuantile(all, 0, 0.5)),
				fmtSec(r.lo), fmtSec(r.hi),
				fmtRate(float64(r.suspSlow)/(60*r.memberHours)), fmtRate(float64(r.probeFailures)/(60*r.memberHours)))
		}
	}
	fmt.Fprintln(w)
}
