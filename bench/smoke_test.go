package bench

import (
	"strings"
	"testing"
	"time"
)

// TestSmoke runs the encrypted pair through every scenario of the
// comparison at toy size, in seconds, without MEMBERSHIP_BENCH: a join
// storm and a traffic window (no crash trial), then one broadcast run. It
// is what .ci/run runs: it checks that both libraries join, deliver every
// broadcast to every member and shut down (a Shutdown that hangs fails the
// test binary's -timeout), and that the tables render. Its figures mean
// nothing.
func TestSmoke(t *testing.T) {
	const n = 4
	p := params{n: n, window: 500 * time.Millisecond, warmup: 10 * time.Millisecond, timeout: 30 * time.Second}
	rs := runVariants(t, []variant{compareVariants[1], compareVariants[3]}, p)
	for _, out := range []string{table(rs), ratioPairs(rs), summaryTable([][]result{rs}, false), summaryRatios([][]result{rs}, false)} {
		if strings.Count(out, "\n") < 3 {
			t.Errorf("table with fewer than 3 lines:\n%s", out)
		}
	}

	bp := bcastParams{n: n, burst: 3, runs: 1, timeout: 30 * time.Second, form: 30 * time.Second}
	ml, ours := runBroadcast(t, bp)
	for _, r := range []bcastResult{ml, ours} {
		if k := incomplete(r.single) + incomplete(r.burst); k > 0 {
			t.Errorf("%s: %d rounds where a member lacked a broadcast after %v", r.name, k, bp.timeout)
		}
	}
	for _, r := range append(ours.single, ours.burst...) {
		if r.dups != 0 {
			t.Errorf("%s: the application received a broadcast more than once (%d repeats); it promises once", ours.name, r.dups)
		}
	}
	t.Logf("\n%s\n%s", bcastTable(bp, ml, ours), bcastRatios(ml, ours))
}
