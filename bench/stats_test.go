package bench

import (
	"strings"
	"testing"
	"time"
)

// A round in which some receiver never got a broadcast has no time to the
// last receiver: it must not enter the statistics as a time (it used to
// enter as the round's timeout), and its ratio says which side missed.
func TestIncompleteRoundsLeftOut(t *testing.T) {
	ms := time.Millisecond
	ml := bcastResult{name: "memberlist",
		single: []bcastRound{{last: 100 * ms, median: 50 * ms}, {last: 300 * ms, median: 60 * ms}, {last: 200 * ms, median: 70 * ms}},
		burst:  []bcastRound{{last: 100 * ms, median: 50 * ms}, {missing: 1, median: 60 * ms}, {last: 300 * ms, median: 70 * ms}},
	}
	ours := bcastResult{name: "ours", single: ml.single, burst: ml.single}

	if got, want := summarize(pick(ml.burst, lastOf)), (stats{100 * ms, 200 * ms, 300 * ms, 300 * ms}); got != want {
		t.Errorf("last receiver of the bursts: got %v, want %v", got, want)
	}
	if got, want := summarize(pick(ml.burst, medianOf)), (stats{50 * ms, 60 * ms, 70 * ms, 70 * ms}); got != want {
		t.Errorf("median receiver of the bursts: got %v, want %v", got, want)
	}
	out := bcastRatios(ml, ours)
	if !strings.Contains(out, "| 2 | 1.00 | 1.00 | — (memberlist incomplete) | 1.00 |") {
		t.Errorf("run 2 should show memberlist's burst as incomplete:\n%s", out)
	}
	// Pooled over complete rounds: ours 300 ms worst against memberlist's 300 ms.
	if !strings.Contains(out, "| worst of runs | 1.00 | 1.00 | 1.00 |") {
		t.Errorf("worst of runs should compare complete rounds only:\n%s", out)
	}
}
