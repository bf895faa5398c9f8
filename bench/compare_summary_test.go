package bench

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// durStats renders min / median / p95 / max of ds in seconds, or "—"
// when there is nothing.
func durStats(ds []time.Duration) string {
	if len(ds) == 0 {
		return "—"
	}
	xs := make([]float64, len(ds))
	for i, d := range ds {
		xs[i] = d.Seconds()
	}
	return summarizeF(xs).format("%.2f") + " s"
}

// byVariant groups the results of every run by variant, in the order the
// variants ran.
func byVariant(all [][]result) (names []string, by map[string][]result) {
	by = map[string][]result{}
	for _, rs := range all {
		for _, r := range rs {
			if _, ok := by[r.name]; !ok {
				names = append(names, r.name)
			}
			by[r.name] = append(by[r.name], r)
		}
	}
	return names, by
}

// summaryTable renders TestCompare's results over every run: min, median,
// p95 and max of each column, over the runs (crash detection: over every
// trial of every run).
func summaryTable(all [][]result, joinOnly bool) string {
	names, by := byVariant(all)
	col := func(rs []result, f func(result) float64) fstats {
		xs := make([]float64, len(rs))
		for i, r := range rs {
			xs[i] = f(r)
		}
		return summarizeF(xs)
	}
	var b strings.Builder
	b.WriteString("| library | runs | join storm (s) | Join calls returned (s) | failed joins |")
	if !joinOnly {
		b.WriteString(" UDP pkt/s/node | UDP B/s/node | TCP B/s/node | CPU ms/s/node | crash → first | crash → all |")
	}
	b.WriteString("\n|---|---|---|---|---|")
	if !joinOnly {
		b.WriteString("---|---|---|---|---|---|")
	}
	b.WriteString("\n")
	for _, nm := range names {
		rs := by[nm]
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s |", nm, len(rs),
			col(rs, func(r result) float64 { return r.join.Seconds() }).format("%.2f"),
			col(rs, func(r result) float64 { return r.joined.Seconds() }).format("%.2f"),
			col(rs, func(r result) float64 { return float64(r.joinFailures) }).format("%.0f"))
		if !joinOnly {
			var first, all []time.Duration
			for _, r := range rs {
				first = append(first, r.first...)
				all = append(all, r.all...)
			}
			fmt.Fprintf(&b, " %s | %s | %s | %s | %s | %s |",
				col(rs, func(r result) float64 { return r.pktPerSec }).format("%.2f"),
				col(rs, func(r result) float64 { return r.bytesPerSec }).format("%.0f"),
				col(rs, func(r result) float64 { return r.tcpPerSec }).format("%.0f"),
				col(rs, func(r result) float64 { return r.cpuPerSec }).format("%.2f"),
				durStats(first), durStats(all))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// summaryRatios renders, for each pair (ours, memberlist) of a run, the
// ratio ours/memberlist per run, as min / median / p95 / max over the
// runs. A run holds four results (plaintext and encrypted of each) or
// two (the encrypted pair).
func summaryRatios(all [][]result, joinOnly bool) string {
	type col struct {
		name string
		f    func(result) float64
	}
	cols := []col{
		{"join storm", func(r result) float64 { return r.join.Seconds() }},
		{"Join calls returned", func(r result) float64 { return r.joined.Seconds() }},
	}
	if !joinOnly {
		cols = append(cols,
			col{"UDP B/s", func(r result) float64 { return r.bytesPerSec }},
			col{"TCP B/s", func(r result) float64 { return r.tcpPerSec }},
			col{"CPU", func(r result) float64 { return r.cpuPerSec }},
			col{"crash → all (median of the run's trials)", func(r result) float64 { return median(r.all).Seconds() }})
	}
	var b strings.Builder
	b.WriteString("| pair |")
	for _, c := range cols {
		b.WriteString(" " + c.name + " |")
	}
	b.WriteString("\n|---|" + strings.Repeat("---|", len(cols)) + "\n")
	if len(all) == 0 {
		return b.String()
	}
	var pairs [][2]int // indices of ours and memberlist within a run
	switch len(all[0]) {
	case 4:
		pairs = [][2]int{{2, 0}, {3, 1}}
	case 2:
		pairs = [][2]int{{1, 0}}
	}
	for _, pr := range pairs {
		fmt.Fprintf(&b, "| %s / %s |", all[0][pr[0]].name, all[0][pr[1]].name)
		for _, c := range cols {
			var qs []float64
			for _, rs := range all {
				if m := c.f(rs[pr[1]]); m > 0 {
					qs = append(qs, c.f(rs[pr[0]])/m)
				}
			}
			if len(qs) == 0 {
				b.WriteString(" — |")
				continue
			}
			b.WriteString(" " + summarizeF(qs).format("%.2f") + " |")
		}
		b.WriteString("\n")
	}
	return b.String()
}

// The summary over runs pools what it should: p95 by nearest rank over
// runs, crash trials pooled over runs, ratios per run.
func TestSummaryTables(t *testing.T) {
	s := time.Second
	var all [][]result
	for run := 1; run <= 3; run++ {
		all = append(all, []result{
			{name: "memberlist (AES-256-GCM)", join: s, joined: s / 10, bytesPerSec: 100, cpuPerSec: 1, all: []time.Duration{6 * s, 7 * s}, first: []time.Duration{6 * s}},
			{name: "membership (XChaCha20-Poly1305)", join: time.Duration(run) * s, joined: s / 10, bytesPerSec: 120, cpuPerSec: 0.5, all: []time.Duration{time.Duration(run+5) * s}, first: []time.Duration{5 * s}},
		})
	}
	out := summaryTable(all, false)
	for _, want := range []string{
		"| membership (XChaCha20-Poly1305) | 3 | 1.00 / 2.00 / 3.00 / 3.00 |",
		"| 6.00 / 6.00 / 6.00 / 6.00 s | 6.00 / 6.50 / 7.00 / 7.00 s |", // memberlist: 6 trials pooled
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	rat := summaryRatios(all, false)
	// join storm ratios per run 1, 2, 3; UDP bytes 1.2; CPU 0.5; crash → all 6/6.5, 7/6.5, 8/6.5.
	for _, want := range []string{"| 1.00 / 2.00 / 3.00 / 3.00 |", "| 1.20 / 1.20 / 1.20 / 1.20 |", "| 0.50 / 0.50 / 0.50 / 0.50 |", "| 0.92 / 1.08 / 1.23 / 1.23 |"} {
		if !strings.Contains(rat, want) {
			t.Errorf("ratios lack %q:\n%s", want, rat)
		}
	}
	if j := summaryTable(all, true); strings.Contains(j, "crash") {
		t.Errorf("join-only summary shows crash columns:\n%s", j)
	}
}
