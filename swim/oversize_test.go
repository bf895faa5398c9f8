package swim

import (
	"testing"
	"time"
)

// TestOversizedUpdateIsDropped checks the defence in depth behind
// Validate's payload bound: an update that does not fit even an empty
// datagram (here because MessageSize says so) leaves the queue, is
// counted, and does not keep Leave from completing.
func TestOversizedUpdateIsDropped(t *testing.T) {
	c := newTestCore(t, 0, func(cfg *Config) {
		cfg.GossipInterval = 200 * time.Millisecond
		// No stream ping deadline within the period, so that the next
		// deadline tells whether the gossip timer still runs.
		cfg.StreamFallback = false
		cfg.MessageSize = func(m *Message) int {
			if string(m.Payload) == "oversize" {
				return 1 << 20
			}
			return EstimateSize(m)
		}
	})
	know(t, c, 8)
	if err := c.SetPayload([]byte("oversize")); err != nil {
		t.Fatal(err)
	}
	c.Step(t0, testAddr(1), []Message{{Kind: KindAlive, Name: testName(3), Addr: testAddr(3), Incarnation: 1, Payload: []byte("oversize")}})
	c.Advance()
	now := t0
	for range 3 {
		now = c.NextDeadline()
		c.Tick(now)
		c.Advance()
	}
	if c.QueueLen() != 0 || c.Count(CountUpdateTooLarge) != 2 {
		t.Fatalf("queue %d, update_too_large %d: want both updates dropped", c.QueueLen(), c.Count(CountUpdateTooLarge))
	}
	if next := c.NextDeadline(); next.Sub(now) < 500*time.Millisecond {
		t.Fatalf("next deadline %v after the last: the gossip timer still runs", next.Sub(now))
	}
	c.Leave()
	for i := 0; i < 3 && !c.LeaveDone(); i++ {
		c.Tick(c.NextDeadline())
		c.Advance()
	}
	if !c.LeaveDone() {
		t.Fatal("Leave never completes with an oversized left message")
	}
}
