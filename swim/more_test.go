package swim

import (
	"testing"
	"time"
)

func TestAdaptiveAckTimeout(t *testing.T) {
	c := newTestCore(t, 0, nil)
	if c.AckTimeout() != 500*time.Millisecond {
		t.Fatalf("initial ack timeout %v, want the configured 500ms", c.AckTimeout())
	}
	// 128 samples: most 10ms, two at 300ms. p99 = 300ms, +10 % = 330ms.
	for i := range rttWindow {
		d := 10 * time.Millisecond
		if i%64 == 5 {
			d = 300 * time.Millisecond
		}
		c.sampleRTT(int64(d))
	}
	if got := c.AckTimeout(); got != 330*time.Millisecond {
		t.Fatalf("ack timeout %v, want p99 + 10%% = 330ms", got)
	}
	// A fast network is clamped at AckTimeoutMin.
	for range rttWindow {
		c.sampleRTT(int64(time.Millisecond))
	}
	if got := c.AckTimeout(); got != c.cfg.AckTimeoutMin {
		t.Fatalf("ack timeout %v, want the minimum %v", got, c.cfg.AckTimeoutMin)
	}
	// A slow one at AckTimeoutMax.
	for range rttWindow {
		c.sampleRTT(int64(2 * time.Second))
	}
	if got := c.AckTimeout(); got != c.cfg.AckTimeoutMax {
		t.Fatalf("ack timeout %v, want the maximum %v", got, c.cfg.AckTimeoutMax)
	}
	// The fixed option ignores samples.
	f := newTestCore(t, 1, func(cfg *Config) { cfg.AdaptiveAckTimeout = false })
	for range rttWindow {
		f.sampleRTT(int64(time.Millisecond))
	}
	if f.AckTimeout() != 500*time.Millisecond {
		t.Fatalf("fixed ack timeout moved to %v", f.AckTimeout())
	}
}

func TestQuietWhileUnhealthy(t *testing.T) {
	// At QuietHealth we neither start suspicions nor pass accusations on.
	c := newTestCore(t, 0, nil)
	know(t, c, 8)
	c.health = c.cfg.QuietHealth
	now := t0
	_, ping := probeOnce(t, c, &now)
	c.Advance()
	c.Tick(c.NextDeadline()) // ping-reqs
	c.Advance()
	endProbe(c)
	if c.Count(CountProbeFailures) != 1 {
		t.Fatalf("probe failures %d, want 1", c.Count(CountProbeFailures))
	}
	if m, _ := c.Member(ping.Name); m.State != StateAlive || c.Count(CountQuiet) != 1 {
		t.Fatalf("unhealthy member holds %s %v (quiet count %d), want alive and one suppressed accusation",
			ping.Name, m.State, c.Count(CountQuiet))
	}
	c.Advance()
	other := testName(1)
	if other == ping.Name {
		other = testName(2)
	}
	c.Step(now, testAddr(3), []Message{{Kind: KindSuspect, From: testName(3), Name: other}})
	c.Step(now, testAddr(2), []Message{{Kind: KindPing, Seq: 9, From: testName(4), Name: testName(0)}})
	for _, m := range c.Ready().Datagrams[0].Msgs {
		if m.Kind == KindSuspect {
			t.Fatalf("unhealthy member passed on %+v", m)
		}
	}
	if c.QueueLen() == 0 {
		t.Fatal("the held-back accusation left the queue")
	}
}

func TestBuddySystem(t *testing.T) {
	// A ping to a member we suspect carries the suspicion first
	// (Lifeguard §4.3), even when the queue holds fresher news.
	c := newTestCore(t, 0, nil)
	know(t, c, 3)
	c.Step(t0, testAddr(1), []Message{{Kind: KindSuspect, From: testName(1), Name: testName(2)}})
	c.Step(t0, testAddr(1), []Message{{Kind: KindAlive, Name: "fresh", Addr: testAddr(9)}})
	c.Advance()
	now := t0
	for {
		d, ping := probeOnce(t, c, &now)
		if ping.Name == testName(2) {
			if u := d.Msgs[1]; u.Kind != KindSuspect || u.Name != testName(2) {
				t.Fatalf("first piggybacked update %+v, want the suspicion of the target", u)
			}
			return
		}
		c.Advance()
	}
}

func TestMessageSizeBudget(t *testing.T) {
	// The codec's sizes, not the estimate, bound the datagram.
	calls := 0
	c := newTestCore(t, 0, func(cfg *Config) {
		cfg.MessageSize = func(m *Message) int { calls++; return 100 }
		cfg.MaxDatagram = 608
	})
	know(t, c, 40)
	for i := 100; i < 120; i++ {
		c.Step(t0, testAddr(1), []Message{{Kind: KindAlive, Name: testName(i), Addr: testAddr(i)}})
	}
	c.Advance()
	c.Step(t0, testAddr(1), []Message{{Kind: KindPing, Seq: 1, From: testName(1), Name: testName(0)}})
	if got := len(c.Ready().Datagrams[0].Msgs); got != 6 {
		t.Fatalf("%d messages in a 608-byte datagram of 100-byte messages with 8 bytes overhead, want 6", got)
	}
	if calls == 0 {
		t.Fatal("MessageSize never called")
	}
}

func TestTombstoneProbing(t *testing.T) {
	c := newTestCore(t, 0, func(cfg *Config) { cfg.PushPullInterval = 0 })
	know(t, c, 3)
	c.Step(t0, testAddr(1), []Message{{Kind: KindDead, From: testName(1), Name: testName(2)}})
	c.Advance()
	for i := 0; i < 100; i++ {
		now := c.NextDeadline()
		c.Tick(now)
		for _, d := range datagramsTo(c.Ready(), testAddr(2)) {
			// The ping names the tombstone and tells it it is dead.
			if d.Msgs[0].Kind == KindPing && d.Msgs[0].Name == testName(2) {
				found := false
				for _, u := range d.Msgs[1:] {
					found = found || (u.Kind == KindDead && u.Name == testName(2))
				}
				if !found {
					t.Fatalf("tombstone ping without our dead view: %+v", d.Msgs)
				}
				if now.Sub(t0) > 2*c.cfg.DeadProbeInterval {
					t.Fatalf("first tombstone probe after %v", now.Sub(t0))
				}
				return
			}
		}
		c.Advance()
	}
	t.Fatal("the tombstone was never probed")
}

func TestTombstonesExpire(t *testing.T) {
	c := newTestCore(t, 0, nil)
	know(t, c, 3)
	c.Step(t0, testAddr(1), []Message{{Kind: KindDead, From: testName(1), Name: testName(2)}})
	c.Advance()
	c.Tick(t0.Add(c.cfg.TombstoneTimeout + time.Second))
	if _, ok := c.Member(testName(2)); ok {
		t.Fatal("tombstone kept past TombstoneTimeout")
	}
}

func TestQueueCapKeepsOurOwnNews(t *testing.T) {
	c := newTestCore(t, 0, func(cfg *Config) { cfg.MaxQueuedUpdates = 2 })
	know(t, c, 3)
	c.Step(t0, testAddr(1), []Message{{Kind: KindSuspect, From: testName(1), Name: testName(0)}})
	for i := 100; i < 140; i++ {
		c.Step(t0, testAddr(1), []Message{{Kind: KindAlive, Name: testName(i), Addr: testAddr(i)}})
		if c.self.qIdx < 0 {
			t.Fatalf("our refutation was dropped from the queue after %d updates", i-99)
		}
	}
	if c.QueueLen() != 2 || c.Count(CountQueueDrop) != 39 {
		t.Fatalf("queue %d drops %d, want 2 and 39", c.QueueLen(), c.Count(CountQueueDrop))
	}
}
