package swimtest

import (
	"testing"
	"time"

	"github.com/meshward/membership/swim"
)

// idlePushPulls runs 16 members at cfg for a minute to settle, then counts
// the state exchanges they start over the next ten idle minutes.
func idlePushPulls(t *testing.T, cfg swim.Config, seed uint64) (pushPulls, agreed uint64) {
	t.Helper()
	s, err := New(Options{Nodes: 16, Seed: seed, Config: cfg, Link: lan})
	if err != nil {
		t.Fatal(err)
	}
	s.Run(time.Minute)
	before, skipped := s.Totals().PushPulls, uint64(0)
	for _, nd := range s.Nodes() {
		skipped += nd.Core.Count(swim.CountPushPullsAgreed)
	}
	s.Run(10 * time.Minute)
	if !s.Converged() {
		t.Fatalf("seed %d: an idle cluster did not stay converged", seed)
	}
	for _, nd := range s.Nodes() {
		agreed += nd.Core.Count(swim.CountPushPullsAgreed)
	}
	return s.Totals().PushPulls - before, agreed - skipped
}

// TestPushPullSkippedWhenViewsAgree: in an idle cluster whose views agree,
// a periodic exchange with a member whose last ping or ack carried our
// digest is not asked for. Fast repair stands in for it, so the skipping
// is off without repair, and with PushPullAgreed (the node sets it for
// WithState). Ten idle minutes of 16 members at ProfileLAN ask for 16 × 20
// periodic exchanges when every one is kept.
func TestPushPullSkippedWhenViewsAgree(t *testing.T) {
	base := swim.LANConfig()
	always := base
	always.PushPullAgreed = true
	noRepair := base
	noRepair.RepairInterval = 0
	for seed := uint64(1); seed <= 3; seed++ {
		kept, _ := idlePushPulls(t, always, seed)
		// 320 expected; the interval is jittered.
		if kept < 250 {
			t.Fatalf("seed %d: PushPullAgreed: %d exchanges in ten idle minutes, want about 320", seed, kept)
		}
		if n, _ := idlePushPulls(t, noRepair, seed); n < 250 {
			t.Fatalf("seed %d: without repair: %d exchanges in ten idle minutes, want about 320", seed, n)
		}
		got, agreed := idlePushPulls(t, base, seed)
		if got > kept/10 || got+agreed < kept*8/10 {
			t.Fatalf("seed %d: %d exchanges and %d skipped in agreement; %d with every one kept: want at most a tenth asked for", seed, got, agreed, kept)
		}
		t.Logf("seed %d: %d periodic exchanges with every one kept, %d when agreed views skip them (%d skipped)", seed, kept, got, agreed)
	}
}

// TestAgreementDoesNotHideADivergence: views that diverge while the
// members cannot talk converge again once they can, with agreed exchanges
// skipped. Two halves of 16 members are split long enough to hold each
// other dead, and every member holds all 16 alive within 30 s of the heal.
func TestAgreementDoesNotHideADivergence(t *testing.T) {
	const n = 16
	for seed := uint64(1); seed <= 5; seed++ {
		s, err := New(Options{Nodes: n, Seed: seed, Config: swim.LANConfig(), Link: lan})
		if err != nil {
			t.Fatal(err)
		}
		s.Run(time.Minute)
		cut := s.Now()
		var a, b []int
		for i := range n {
			if i%2 == 0 {
				a = append(a, i)
			} else {
				b = append(b, i)
			}
		}
		s.Partition(a, b)
		if !s.RunWhile(5*time.Minute, func() bool {
			for _, nd := range s.Nodes() {
				if nd.Core.NumLive() != n/2 {
					return true
				}
			}
			return false
		}) {
			t.Fatalf("seed %d: the halves did not hold each other dead within 5 minutes", seed)
		}
		split := s.Now()
		s.Heal()
		if !s.RunWhile(30*time.Second, func() bool { return !s.Converged() }) {
			t.Fatalf("seed %d: not converged 30 s after the heal", seed)
		}
		t.Logf("seed %d: split after %v, converged %v after the heal", seed, split.Sub(cut), s.Now().Sub(split))
	}
}
