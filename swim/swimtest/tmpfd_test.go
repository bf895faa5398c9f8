package swimtest

import (
	"testing"
	"time"
)

func TestTmpFalseDeaths(t *testing.T) {
	const n = 32
	for _, loss := range []float64{0.10, 0.20} {
		link := lan
		link.Loss = loss
		var deaths, susp uint64
		for seed := uint64(1); seed <= 40; seed++ {
			s := newStreamSim(t, n, 700+seed, link, false)
			s.Run(300 * time.Second)
			deaths += s.FalseDeaths
			susp += s.FalseSuspicions
		}
		t.Logf("loss %.2f: 40 seeds no fallback: false deaths %d, suspicions %d", loss, deaths, susp)
	}
}
