package swim

import (
	"math"
	"net/netip"
	"testing"
	"time"
)

// FuzzMergeAndStep interleaves Merge of arbitrary snapshots, multi-message
// Steps, Ticks and API calls, and checks the core's invariants after each,
// and that one received datagram or snapshot never makes the core send more
// than an answer and a few tellStale datagrams, none larger than what it
// answers when the sender is not a member at its address (no
// amplification).
func FuzzMergeAndStep(f *testing.F) {
	f.Add([]byte{0, 3, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 1, 2, 1, 2, 3, 4, 5, 6, 7, 8, 2, 5})
	f.Add([]byte{1, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0, 2, 9, 9, 9, 9, 9, 9, 9, 9, 2, 200, 2, 200})
	names := []string{"m0", "m1", "m2", "m3", "m4", "a", "b", "c", "d", "e"}
	incs := []uint64{0, 1, 2, 3, 5, MaxIncarnation - 2, MaxIncarnation - 1, MaxIncarnation, math.MaxUint64}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := newTestCore(t, 0, func(cfg *Config) {
			cfg.MaxMembers = 7
			cfg.MaxQueuedUpdates = 5
			cfg.MaxPendingProbes = 3
			cfg.MaxDatagram = 900
			cfg.MaxPayload = 250
			cfg.TombstoneTimeout = 20 * time.Second
		})
		now := t0
		next := func() byte {
			if len(data) == 0 {
				return 0
			}
			b := data[0]
			data = data[1:]
			return b
		}
		for len(data) > 0 {
			op := next() % 4
			switch op {
			case 0: // Merge
				s := Snapshot{From: names[int(next())%len(names)], Join: next()&1 == 1}
				k := int(next() % 6)
				for i := 0; i < k; i++ {
					b := next()
					s.Members = append(s.Members, MemberState{
						Name:        names[int(b)%len(names)],
						Addr:        testAddr(int(b>>4) % 6),
						Incarnation: incs[int(next())%len(incs)],
						State:       State(next() % 5),
						Payload:     make([]byte, int(next()%4)*100),
					})
				}
				_ = c.Merge(now, &s)
			case 1: // Step with several messages
				k := 1 + int(next()%4)
				msgs := make([]Message, k)
				for i := range msgs {
					b := next()
					msgs[i] = Message{
						Kind:        Kind(b % 10),
						Seq:         c.seq - uint32(next()%4),
						Name:        names[int(next())%len(names)],
						From:        names[int(b>>4)%len(names)],
						Incarnation: incs[int(next())%len(incs)],
						Payload:     make([]byte, int(next()%4)*100),
						Addr:        testAddr(int(b>>4) % 6),
						Nack:        b&0x80 != 0,
						Digest:      uint64(b),
					}
				}
				from := testAddr(int(next() % 6))
				placed, size := c.placed(from, msgs), c.datagramSize(msgs)
				c.Step(now, from, msgs)
				// Answers to a sender we could not place are no larger
				// than what they answer (or the bare answer): no
				// amplification. A ping goes to a member we know.
				for _, d := range c.Ready().Datagrams {
					if !placed && d.To == from && d.Msgs[0].Kind != KindPing &&
						c.datagramSize(d.Msgs) > max(size, c.datagramSize(d.Msgs[:1])) {
						t.Fatalf("a %d-byte datagram answered with %d bytes: %+v", size, c.datagramSize(d.Msgs), d.Msgs)
					}
				}
			case 2:
				now = now.Add(time.Duration(next()) * 100 * time.Millisecond)
				c.Tick(now)
			case 3:
				switch next() % 5 {
				case 0:
					_ = c.SetPayload(make([]byte, int(next()%3)*100))
				case 1:
					_ = c.MarkLeft(names[int(next())%len(names)])
				case 2:
					_ = c.RemoveMember(names[int(next())%len(names)])
				case 3:
					_, _ = c.AddMember(testAddr(int(next() % 6)))
				case 4:
					c.Join([]netip.AddrPort{testAddr(1), testAddr(2)})
				}
			}
			checkInvariants(t, c)
			if op <= 1 && len(c.Ready().Datagrams) > 1+maxStalePerPeriod {
				t.Fatalf("one input made the core send %d datagrams", len(c.Ready().Datagrams))
			}
			for _, d := range c.Ready().Datagrams {
				if !validAddr(d.To) {
					t.Fatalf("datagram to %v", d.To)
				}
			}
			if c.Myself().Incarnation > MaxIncarnation {
				t.Fatal("self incarnation")
			}
			c.Advance()
		}
	})
}
