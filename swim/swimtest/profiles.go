package swimtest

import (
	"time"

	"github.com/meshward/membership/swim"
)

// ProfileConfig returns the protocol configuration of one of the node
// runtime's profiles, "lan", "wan" or "local" (membership.ProfileLAN,
// ProfileWAN and ProfileLocal), and whether the name is known, so that a
// simulation can run what a real cluster runs. swim cannot import the root
// package, so this is a copy of options.go's Profile.protocol; a test in
// the root package (TestProfilesMatchSimulator) fails if the two drift.
func ProfileConfig(name string) (swim.Config, bool) {
	c := swim.DefaultConfig()
	c.GossipFanout, c.GossipInterval = 3, 200*time.Millisecond
	switch name {
	case "lan":
		c.SuspicionMult = 2
	case "wan":
		c.ProbeInterval = 5 * time.Second
		c.AckTimeout = 3 * time.Second
		c.AckTimeoutMin = time.Second
		c.AckTimeoutMax = 4 * time.Second
		c.SuspicionMult = 4
		c.PushPullInterval = 60 * time.Second
		c.DeadProbeInterval = 15 * time.Second
		c.RepairInterval = 10 * time.Second
		c.GossipFanout, c.GossipInterval = 4, 500*time.Millisecond
	case "local":
		c.ProbeInterval = 200 * time.Millisecond
		c.AckTimeout = 100 * time.Millisecond
		c.AckTimeoutMin = 20 * time.Millisecond
		c.AckTimeoutMax = 150 * time.Millisecond
		c.SuspicionMult = 5
		c.PushPullInterval = 5 * time.Second
		c.DeadProbeInterval = time.Second
		c.RepairInterval = time.Second
		c.GossipInterval = 50 * time.Millisecond
	default:
		return swim.Config{}, false
	}
	return c, true
}
