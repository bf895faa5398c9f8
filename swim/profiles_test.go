package swim

import "testing"

// Every preset is a valid configuration, and each differs from the others
// where its doc comment says.
func TestProfileConfigsValidate(t *testing.T) {
	for name, c := range map[string]Config{"lan": LANConfig(), "wan": WANConfig(), "local": LocalConfig()} {
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if c.GossipInterval <= 0 || c.GossipFanout <= 0 {
			t.Errorf("%s: no gossip timer (%v, fanout %d)", name, c.GossipInterval, c.GossipFanout)
		}
	}
	if a := [3]float64{LANConfig().SuspicionMult, WANConfig().SuspicionMult, LocalConfig().SuspicionMult}; a != [3]float64{2, 4, 5} {
		t.Errorf("α of LAN, WAN, Local = %v, want [2 4 5] (docs/performance.md, the frontier)", a)
	}
}
