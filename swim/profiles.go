package swim

import "time"

// The presets of the node runtime's profiles (membership.ProfileLAN,
// ProfileWAN and ProfileLocal). They live here, next to DefaultConfig,
// so that a simulation (swimtest) runs exactly what a node runs.
//
// Each adds to DefaultConfig a gossip timer of its own while there is news
// (memberlist's values): joins and deaths reach everyone in under a second
// instead of waiting a period per hop, and an idle cluster sends nothing
// extra. The suspicion multiplier α of each comes from the measured
// frontier of detection time against false deaths (docs/performance.md,
// "The frontier"): with StreamFallback no healthy member is falsely
// suspected at any α from 2 to 6 under up to 20 % datagram loss, so α
// trades detection time against how often a member that stalls for about
// a period is declared dead and comes back (Lifeguard §4.2).

// LANConfig is ProfileLAN's configuration: DefaultConfig with a gossip
// timer (3 members every 200 ms) and α = 2, with which a crash is known to
// every member in 4.5–4.8 s at n = 16 (6.6 s at α = 4; memberlist's LAN
// defaults take 6.8 s).
func LANConfig() Config {
	c := DefaultConfig()
	c.GossipFanout, c.GossipInterval = 3, 200*time.Millisecond
	c.SuspicionMult = 2
	return c
}

// WANConfig is ProfileWAN's configuration, for members across data
// centres: a 5 s period, a 3 s ack timeout (adaptive between 1 and 4 s),
// slower anti-entropy, a gossip timer of 4 members every 500 ms, and α = 4,
// which detects 20–25 % sooner than α = 6 for rare flaps of stalled members.
func WANConfig() Config {
	c := DefaultConfig()
	c.ProbeInterval = 5 * time.Second
	c.AckTimeout = 3 * time.Second
	c.AckTimeoutMin = time.Second
	c.AckTimeoutMax = 4 * time.Second
	c.SuspicionMult = 4
	c.PushPullInterval = 60 * time.Second
	c.DeadProbeInterval = 15 * time.Second
	c.RepairInterval = 10 * time.Second
	c.GossipFanout, c.GossipInterval = 4, 500*time.Millisecond
	return c
}

// LocalConfig is ProfileLocal's configuration, for members on one host
// (loopback, tests, demos): everything five times faster than on a LAN (a
// 200 ms period, a 100 ms ack timeout, a gossip timer of 3 members every
// 50 ms), and α = 5, because a stall of 200 ms is common on a loaded host:
// stalled members flap a third as often as with α = 3, for 0.1–1.1 s of
// detection.
func LocalConfig() Config {
	c := DefaultConfig()
	c.ProbeInterval = 200 * time.Millisecond
	c.AckTimeout = 100 * time.Millisecond
	c.AckTimeoutMin = 20 * time.Millisecond
	c.AckTimeoutMax = 150 * time.Millisecond
	c.SuspicionMult = 5
	c.PushPullInterval = 5 * time.Second
	c.DeadProbeInterval = time.Second
	c.RepairInterval = time.Second
	c.GossipFanout, c.GossipInterval = 3, 50*time.Millisecond
	return c
}
