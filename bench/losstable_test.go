package bench

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
)

// fstats is min, median, p95 and max of a sample of numbers. p95 is by
// nearest rank: with fewer than 20 samples it is the maximum.
type fstats struct{ min, median, p95, max float64 }

func summarizeF(xs []float64) fstats {
	if len(xs) == 0 {
		return fstats{math.NaN(), math.NaN(), math.NaN(), math.NaN()}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	k := int(math.Ceil(0.95*float64(len(s)))) - 1
	return fstats{s[0], medianFloat(s), s[k], s[len(s)-1]}
}

// format renders the four with verb f, as "min / median / p95 / max".
func (s fstats) format(f string) string {
	return fmt.Sprintf(f+" / "+f+" / "+f+" / "+f, s.min, s.median, s.p95, s.max)
}

// lossTables renders one loss rate's results (every run of every variant)
// as Markdown tables: what each library counted, what it cost, its join
// storm, and ours over memberlist per run.
func lossTables(rs []lossResult) string {
	var names []string
	by := map[string][]lossResult{}
	for _, r := range rs {
		if _, ok := by[r.Name]; !ok {
			names = append(names, r.Name)
		}
		by[r.Name] = append(by[r.Name], r)
	}
	col := func(rs []lossResult, f func(lossResult) float64) fstats {
		xs := make([]float64, len(rs))
		for i, r := range rs {
			xs[i] = f(r)
		}
		return summarizeF(xs)
	}
	count := func(k string) func(lossResult) float64 { return func(r lossResult) float64 { return r.Counts[k] } }

	var b strings.Builder
	b.WriteString("Over the window, summed over the cluster's nodes (min / median / p95 / max over runs):\n\n")
	b.WriteString("| library | runs | window | probes | failed probes | failed / probes | TCP / stream rescues | suspect transitions (all observers) | refutations | false deaths (all observers) |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, nm := range names {
		g := by[nm]
		fmt.Fprintf(&b, "| %s | %d | %.0f s | %s | %s | %s | %s | %s | %s | %s |\n", nm, len(g), col(g, func(r lossResult) float64 { return r.Window }).median,
			col(g, count(countProbes)).format("%.0f"), col(g, count(countFailedProbes)).format("%.0f"),
			col(g, func(r lossResult) float64 { return 100 * r.Counts[countFailedProbes] / max(1, r.Counts[countProbes]) }).format("%.2f %%"),
			col(g, count(countTCPRescues)).format("%.0f"), col(g, count(countSuspects)).format("%.0f"),
			col(g, count(countRefutations)).format("%.0f"), col(g, count(countDeaths)).format("%.0f"))
	}
	b.WriteString("\nCost per node (min / median / p95 / max over runs):\n\n")
	b.WriteString("| library | UDP pkt/s | UDP B/s | TCP B/s | CPU ms/s |\n|---|---|---|---|---|\n")
	for _, nm := range names {
		g := by[nm]
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", nm,
			col(g, func(r lossResult) float64 { return r.UDPPkt }).format("%.2f"),
			col(g, func(r lossResult) float64 { return r.UDPBytes }).format("%.0f"),
			col(g, func(r lossResult) float64 { return r.TCPBytes }).format("%.0f"),
			col(g, func(r lossResult) float64 { return r.CPU }).format("%.2f"))
	}
	b.WriteString("\nJoin storm under the same loss, and the kernel's drop rate (min / median / p95 / max over runs):\n\n")
	b.WriteString("| library | join storm (s) | Join calls returned (s) | failed joins | nodes not holding all alive at the end | kernel drop rate |\n|---|---|---|---|---|---|\n")
	for _, nm := range names {
		g := by[nm]
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", nm,
			col(g, func(r lossResult) float64 { return r.Join }).format("%.2f"),
			col(g, func(r lossResult) float64 { return r.Joined }).format("%.2f"),
			col(g, func(r lossResult) float64 { return float64(r.JoinFailures) }).format("%.0f"),
			col(g, func(r lossResult) float64 { return float64(r.NotAllAlive) }).format("%.0f"),
			col(g, func(r lossResult) float64 { return 100 * float64(r.KernelDropped) / max(1, float64(r.KernelUDP)) }).format("%.1f %%"))
	}
	b.WriteString(lossRatios(rs))
	return b.String()
}

// lossRatios renders ours / memberlist (at its defaults, TCP pings on) per
// run, with min / median / max over the runs.
func lossRatios(rs []lossResult) string {
	type pair struct{ ml, ours *lossResult }
	runs := map[int]*pair{}
	var order []int
	for i := range rs {
		r := &rs[i]
		p := runs[r.Run]
		if p == nil {
			p = &pair{}
			runs[r.Run] = p
			order = append(order, r.Run)
		}
		switch r.Name {
		case lossVariants[0].name:
			p.ml = r
		case lossVariants[2].name:
			p.ours = r
		}
	}
	cols := []struct {
		name string
		f    func(lossResult) float64
	}{
		{"UDP pkt/s", func(r lossResult) float64 { return r.UDPPkt }},
		{"UDP B/s", func(r lossResult) float64 { return r.UDPBytes }},
		{"TCP B/s", func(r lossResult) float64 { return r.TCPBytes }},
		{"CPU", func(r lossResult) float64 { return r.CPU }},
		{"join storm", func(r lossResult) float64 { return r.Join }},
	}
	var b strings.Builder
	b.WriteString("\nOurs / memberlist (TCP pings on), per run:\n\n| run |")
	for _, c := range cols {
		b.WriteString(" " + c.name + " |")
	}
	b.WriteString("\n|---|" + strings.Repeat("---|", len(cols)) + "\n")
	qs := make([][]float64, len(cols))
	for _, run := range order {
		p := runs[run]
		if p.ml == nil || p.ours == nil {
			continue
		}
		fmt.Fprintf(&b, "| %d |", run)
		for i, c := range cols {
			m, o := c.f(*p.ml), c.f(*p.ours)
			b.WriteString(" " + quotient(o, m) + " |")
			if m > 0 {
				qs[i] = append(qs[i], o/m)
			}
		}
		b.WriteString("\n")
	}
	b.WriteString("| min / median / max |")
	for _, q := range qs {
		s := summarizeF(q)
		fmt.Fprintf(&b, " %.2f / %.2f / %.2f |", s.min, s.median, s.max)
	}
	b.WriteString("\n")
	return b.String()
}

// The loss tables count what they should from where they should: p95 by
// nearest rank, the failed share per run, ours over memberlist per run.
func TestLossTables(t *testing.T) {
	if got, want := summarizeF([]float64{5, 1, 3, 2, 4}), (fstats{1, 3, 5, 5}); got != want {
		t.Errorf("summarizeF of 1..5: got %v, want %v", got, want)
	}
	xs := make([]float64, 20)
	for i := range xs {
		xs[i] = float64(i + 1)
	}
	if got, want := summarizeF(xs), (fstats{1, 10.5, 19, 20}); got != want {
		t.Errorf("summarizeF of 1..20: got %v, want %v (p95 is the 19th by nearest rank)", got, want)
	}
	var rs []lossResult
	for run := 1; run <= 2; run++ {
		rs = append(rs,
			lossResult{Run: run, Name: lossVariants[0].name, Window: 60, UDPPkt: 4, UDPBytes: 300, CPU: 1, Join: 1,
				Counts: map[string]float64{countProbes: 1000, countFailedProbes: 0, countTCPRescues: 7}, KernelUDP: 1000, KernelDropped: 100},
			lossResult{Run: run, Name: lossVariants[1].name, Window: 60, UDPPkt: 4, UDPBytes: 300, CPU: 1, Join: 1,
				Counts: map[string]float64{countProbes: 1000, countFailedProbes: 8}},
			lossResult{Run: run, Name: lossVariants[2].name, Window: 60, UDPPkt: 8, UDPBytes: 600 * float64(run), CPU: 0.5, Join: 2,
				Counts: map[string]float64{countProbes: 1000, countFailedProbes: 8, countSuspects: 250, countRefutations: 8}})
	}
	out := lossTables(rs)
	for _, want := range []string{
		"| memberlist (AES-256-GCM) | 2 | 60 s | 1000 / 1000 / 1000 / 1000 | 0 / 0 / 0 / 0 | 0.00 % / 0.00 % / 0.00 % / 0.00 % | 7 / 7 / 7 / 7 |",
		"| membership (XChaCha20-Poly1305) | 2 | 60 s | 1000 / 1000 / 1000 / 1000 | 8 / 8 / 8 / 8 | 0.80 % / 0.80 % / 0.80 % / 0.80 % | 0 / 0 / 0 / 0 | 250 / 250 / 250 / 250 | 8 / 8 / 8 / 8 |",
		"| 10.0 % / 10.0 % / 10.0 % / 10.0 % |",
		"| 1 | 2.00 | 2.00 | — | 0.50 | 2.00 |",
		"| 2 | 2.00 | 4.00 | — | 0.50 | 2.00 |",
		"| min / median / max | 2.00 / 2.00 / 2.00 | 2.00 / 3.00 / 4.00 |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("tables lack %q:\n%s", want, out)
		}
	}
}
