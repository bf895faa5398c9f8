package membership

import (
	"fmt"
	"time"

	"github.com/meshward/membership/keyring"
	"github.com/meshward/membership/metrics"
	"github.com/meshward/membership/swim"
)

// report publishes gauges and counter increments once a second, and
// hands the sink what the per-message counters summed since the last one
// (metrics.Metrics.Flush).
func (n *Node) report() {
	n.reportMismatches(time.Now()) // mismatch.go
	n.reportEncryption()           // encryption.go
	if n.met == nil {
		return
	}
	n.met.Flush()
	c := n.counts()
	n.met.MemberCounts(c.Alive, c.Suspect, c.Dead, c.Left)
	n.clockReport()
	n.met.HealthScore(n.core.Health())
	n.met.SetGauge(metrics.ReplayWindow, float32(n.replay.EffectiveWindow(time.Now()).Seconds()))
	n.met.GossipQueueDepth(n.core.QueueLen())
	n.met.UserBroadcastQueue(n.core.BroadcastQueue())
	for c := swim.Counter(0); int(c) < swim.NumCounters; c++ {
		v := n.core.Count(c)
		if d := v - n.seen[c]; d > 0 {
			n.met.IncrCounter(metrics.Protocol, float32(d), metrics.Label{Name: metrics.LabelReason, Value: c.String()})
			switch c {
			case swim.CountRefutations:
				for range d {
					n.met.Refutation()
				}
			case swim.CountBroadcastQueued:
				n.met.UserBroadcasts(metrics.BroadcastQueued, d)
			case swim.CountBroadcastSent:
				n.met.UserBroadcasts(metrics.BroadcastSent, d)
			case swim.CountBroadcastDelivered:
				n.met.UserBroadcasts(metrics.BroadcastDelivered, d)
			case swim.CountBroadcastDuplicate:
				n.met.UserBroadcasts(metrics.BroadcastDuplicate, d)
			case swim.CountBroadcastReplaced:
				n.met.UserBroadcasts(metrics.BroadcastReplaced, d)
			case swim.CountBroadcastStale:
				n.met.UserBroadcasts(metrics.BroadcastStale, d)
			case swim.CountBroadcastDropped:
				n.met.UserBroadcasts(metrics.BroadcastDropped, d)
			}
		}
		n.seen[c] = v
	}
	st := n.tr.Stats()
	d := st.Sub(n.lastTr)
	n.lastTr = st
	n.met.TransportDrop(metrics.TransportQueueFull, d.PacketsDropped)
	n.met.TransportDrop(metrics.TransportTooLarge, d.TooLarge)
	n.met.TransportDrop(metrics.TransportStreamQueueFull, d.StreamsDropped)
	for _, r := range metrics.DropReasons {
		if d := n.drops[r] - n.lastDropped[r]; d > 0 {
			n.met.IncrCounter(metrics.Dropped, float32(d), metrics.Label{Name: metrics.LabelReason, Value: string(r)})
			n.lastDropped[r] = n.drops[r]
		}
	}
	if dropped := n.dropped.Load() + n.subs.dropped.Load(); dropped > n.lastDrops {
		n.met.EventOverflow(dropped - n.lastDrops)
		n.lastDrops = dropped
	}
	if n.ring != nil && n.ring.Suite() == keyring.AESGCM {
		for _, ks := range n.ring.Stats() {
			if d := ks.Seals - n.lastSeals[ks.Fingerprint]; d > 0 {
				n.met.AESGCMSealed(fmt.Sprintf("%x", ks.Fingerprint), d)
			}
			n.lastSeals[ks.Fingerprint] = ks.Seals
			// The bound holds for the whole cluster: assume every live
			// member seals as much as we do, and warn at a quarter of it.
			if share := ks.SealLimit / uint64(4*max(1, n.core.NumLive())); ks.Primary && ks.Seals > share && !n.sealWarn {
				n.sealWarn = true
				n.log.Warn("AES-GCM key nears the NIST SP 800-38D nonce bound cluster-wide (a quarter of 2^32 seals if every member seals as much as this one): rotate the key",
					"key", fmt.Sprintf("%x", ks.Fingerprint), "seals_here", ks.Seals, "members", n.core.NumLive())
			}
		}
	}
}
