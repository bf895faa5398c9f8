package swim

import (
	"testing"
	"time"
)

// steady drives one core through its periods with every peer answering:
// the core's pings are acked, and a peer pings it and asks it to probe.
type steady struct {
	c    *Core
	now  time.Time
	acks []Message
	in   []Message // reused, as the runtime reuses its decoder's output
	seq  uint32
}

func newSteady(tb testing.TB, n int) *steady {
	c := newTestCore(tb, 0, nil)
	know(tb, c, n)
	s := &steady{c: c, now: t0, acks: make([]Message, 0, 8), in: make([]Message, 2)}
	for range 20 * n { // run through the startup news
		s.step()
	}
	return s
}

func (s *steady) step() {
	c := s.c
	s.now = c.NextDeadline()
	c.Tick(s.now)
	s.acks = s.acks[:0]
	for _, d := range c.Ready().Datagrams {
		if p := d.Msgs[0]; p.Kind == KindPing {
			s.acks = append(s.acks, Message{Kind: KindAck, Seq: p.Seq, From: p.Name, Digest: c.Digest()})
		}
	}
	c.Advance()
	at := s.now.Add(time.Millisecond)
	for i := range s.acks {
		c.Step(at, testAddr(1), s.acks[i:i+1])
	}
	s.seq++
	s.in[0] = Message{Kind: KindPing, Seq: s.seq, From: testName(1), Name: testName(0), Digest: c.Digest()}
	s.in[1] = Message{Kind: KindPingReq, Seq: s.seq, From: testName(2), Name: testName(3), Addr: testAddr(3), Nack: true}
	c.Step(at, testAddr(2), s.in)
	c.Advance()
}

func TestSteadyStateAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	s := newSteady(t, 64)
	if allocs := testing.AllocsPerRun(1000, s.step); allocs != 0 {
		t.Fatalf("steady-state Tick and Step allocate %.2f times per period, want 0", allocs)
	}
	if s.c.Count(CountProbes) == 0 || s.c.Count(CountProbeFailures) != 0 {
		t.Fatalf("probes %d failures %d: the steady state is not steady", s.c.Count(CountProbes), s.c.Count(CountProbeFailures))
	}
}

// BenchmarkSteadyState measures one protocol period of one member at n =
// 1024: a Tick, the acks to its ping, a ping and a ping-req from peers.
func BenchmarkSteadyState(b *testing.B) {
	s := newSteady(b, 1024)
	b.ReportAllocs()
	for b.Loop() {
		s.step()
	}
}
