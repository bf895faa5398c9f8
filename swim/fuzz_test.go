package swim

import (
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// checkInvariants verifies that the indexes agree with the member table.
func checkInvariants(t *testing.T, c *Core) {
	t.Helper()
	live, dead := 0, 0
	var digest uint64
	for name, m := range c.members {
		if m.name != name {
			t.Fatalf("index key %q holds %q", name, m.name)
		}
		if m.live() {
			live++
			digest += memberHash(m.name, m.inc)
			if m != c.self && (m.orderIdx < 0 || c.order[m.orderIdx] != m) {
				t.Fatalf("live member %s not in the probe order", name)
			}
		} else if m.orderIdx >= 0 {
			t.Fatalf("%v member %s in the probe order", m.state, name)
		}
		if m.state == StateDead {
			dead++
			if m.deadIdx < 0 || c.dead[m.deadIdx] != m {
				t.Fatalf("dead member %s not among the tombstones", name)
			}
		}
		if m.state == StateSuspect && m != c.self && (m.tIdx < 0 || m.susp == nil) {
			t.Fatalf("suspect %s without a timer", name)
		}
		if m.inc > MaxIncarnation {
			t.Fatalf("%s at incarnation %d", name, m.inc)
		}
	}
	if len(c.all) != len(c.members) {
		t.Fatalf("%d entries listed, %d indexed", len(c.all), len(c.members))
	}
	for i, m := range c.all {
		if int(m.allIdx) != i || c.members[m.name] != m {
			t.Fatalf("entry list broken at %d", i)
		}
	}
	if live != c.live || digest != c.digest {
		t.Fatalf("live %d digest %x, indexes say %d %x", live, digest, c.live, c.digest)
	}
	if len(c.dead) != dead {
		t.Fatalf("%d tombstones listed, %d dead", len(c.dead), dead)
	}
	if len(c.queue) > c.cfg.MaxQueuedUpdates || len(c.pending) > c.cfg.MaxPendingProbes || len(c.members) > c.cfg.MaxMembers {
		t.Fatalf("a cap was exceeded: queue %d pending %d members %d", len(c.queue), len(c.pending), len(c.members))
	}
	for i, m := range c.queue {
		if int(m.qIdx) != i {
			t.Fatalf("queue position of %s is %d, stored %d", m.name, i, m.qIdx)
		}
		if i > 0 && c.queueLess(m, c.queue[(i-1)/2]) {
			t.Fatal("queue heap order broken")
		}
	}
	for i, m := range c.timers {
		if int(m.tIdx) != i || (i > 0 && m.tAt < c.timers[(i-1)/2].tAt) {
			t.Fatal("timer heap broken")
		}
	}
	for _, d := range c.out.Datagrams {
		size := c.cfg.CompoundOverhead
		for i := range d.Msgs {
			size += EstimateSize(&d.Msgs[i])
		}
		if size > c.cfg.MaxDatagram {
			t.Fatalf("datagram of %d bytes", size)
		}
	}
}

// FuzzStep feeds arbitrary message sequences, ticks and API calls to a
// core and checks that it neither panics nor breaks its invariants or caps.
func FuzzStep(f *testing.F) {
	f.Add([]byte{1, 0, 1, 2, 0, 0, 0})
	f.Add([]byte{6, 1, 2, 1, 3, 0, 0, 7, 2, 2, 1, 2, 0, 0, 5, 3, 3, 0, 4, 9, 0})
	f.Add([]byte{8, 0, 1, 0, 2, 0, 0, 5, 0, 5, 0, 1, 200, 0, 0xff, 0, 0, 0, 0, 0, 0, 3, 1, 1, 1, 1, 0, 0})
	names := []string{"", "m0", "m1", "m2", "m3", "new-a", "new-b", strings.Repeat("x", MaxNameLen), strings.Repeat("y", MaxNameLen+1)}
	incs := []uint64{0, 1, 2, 7, MaxIncarnation - 1, MaxIncarnation, math.MaxUint64, 3}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := newTestCore(t, 0, func(cfg *Config) {
			cfg.MaxMembers = 8
			cfg.MaxQueuedUpdates = 4
			cfg.MaxPendingProbes = 3
			cfg.MaxDatagram = 850
			cfg.MaxPayload = 200
		})
		know(t, c, 4)
		now := t0
		for len(data) >= 7 {
			b := data[:7]
			data = data[7:]
			switch b[0] % 16 {
			case 9:
				now = now.Add(time.Duration(b[1]) * 50 * time.Millisecond)
				c.Tick(now)
			case 10:
				_ = c.SetPayload(make([]byte, int(b[1])*3))
			case 11:
				_, _ = c.Probe(testAddr(int(b[1] % 8)))
			case 12:
				_ = c.MarkLeft(names[int(b[1])%len(names)])
			case 13:
				_ = c.RemoveMember(names[int(b[1])%len(names)])
			case 14:
				s := c.Snapshot()
				if len(s.Members) > 0 {
					s.Members[0].Incarnation = incs[int(b[1])%len(incs)]
					s.Members[0].State = State(b[2] % 5)
				}
				s.From = names[int(b[3])%len(names)]
				_ = c.Merge(now, &s)
			case 15:
				c.Leave()
			default:
				m := Message{
					Kind:        Kind(b[0] % 10),
					Seq:         c.seq - uint32(b[1]%4),
					Name:        names[int(b[2])%len(names)],
					From:        names[int(b[3])%len(names)],
					Incarnation: incs[int(b[4])%len(incs)],
					Payload:     make([]byte, int(b[5])*3),
					Addr:        testAddr(int(b[6] % 8)),
					Nack:        b[6]&0x80 != 0,
					Digest:      uint64(b[1]),
				}
				if b[6]&0x40 != 0 {
					m.Addr = netip.AddrPortFrom(testAddr(0).Addr(), 0)
				}
				c.Step(now, testAddr(int(b[6]%8)), []Message{m})
			}
			checkInvariants(t, c)
			c.Advance()
		}
	})
}
