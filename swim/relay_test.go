package swim

import (
	"testing"
	"time"
)

// TestRelayNackIgnoresHelperHealth: a helper whose own health is poor still
// nacks a ping-req within its base ack timeout, as memberlist's helpers do
// (ProbeTimeout, never scaled). Stretched by the helper's health
// multiplier, the nack would reach the requester after the requester's
// probe ended, count as missing there, and raise the requester's health
// score: in a partition that cuts off half the cluster, every member of a
// half then stays unhealthy, and quiet, for minutes.
func TestRelayNackIgnoresHelperHealth(t *testing.T) {
	c := newTestCore(t, 1, nil)
	know(t, c, 4)
	c.addHealth(c.cfg.HealthMax)
	c.Step(t0, testAddr(2), []Message{{Kind: KindPingReq, Seq: 7, From: testName(2), Name: testName(3), Addr: testAddr(3), Nack: true}})
	if out := datagramsTo(c.Ready(), testAddr(3)); len(out) != 1 {
		t.Fatalf("ping-req relayed %d pings to the target, want 1", len(out))
	}
	c.Advance()
	at := t0.Add(c.AckTimeout())
	c.Tick(at)
	nacks := 0
	for _, d := range datagramsTo(c.Ready(), testAddr(2)) {
		for _, m := range d.Msgs {
			if m.Kind == KindNack && m.Seq == 7 {
				nacks++
			}
		}
	}
	if nacks != 1 {
		t.Fatalf("a helper at health %d sent %d nacks one base ack timeout (%v) after the ping-req, want 1; stretched it would nack after %v",
			c.Health(), nacks, c.AckTimeout(), time.Duration(c.Health()+1)*c.AckTimeout())
	}
}
