package swim

import (
	"testing"
	"time"
)

// A member that missed every retransmission of a joiner's alive message
// learns of the joiner the first time the joiner probes it: its ack says
// "I do not know you" (StrangerDigest) and the joiner answers with its alive
// message. Without it, it learns only from a push-pull.
func TestStrangerLearnsProberFromIntroduction(t *testing.T) {
	joiner := newTestCore(t, 0, nil)
	know(t, joiner, 2) // the joiner knows m1
	stranger := newTestCore(t, 1, nil)
	// The stranger knows nobody but itself.
	now := t0
	ping, msg := probeOnce(t, joiner, &now)
	if ping.To != testAddr(1) {
		t.Fatalf("joiner pinged %v, want m1", ping.To)
	}
	pingMsgs := append([]Message(nil), ping.Msgs...) // Advance reuses the output
	joiner.Advance()

	stranger.Step(now, testAddr(0), pingMsgs)
	acks := datagramsTo(stranger.Ready(), testAddr(0))
	if len(acks) != 1 || acks[0].Msgs[0].Kind != KindAck || acks[0].Msgs[0].Digest != StrangerDigest {
		t.Fatalf("stranger's answer %+v, want one ack with digest %d", acks, StrangerDigest)
	}
	if _, ok := stranger.Member(testName(0)); ok {
		t.Fatal("the stranger already knows the joiner: the test proves nothing")
	}

	now = now.Add(time.Millisecond)
	ackMsgs := append([]Message(nil), acks[0].Msgs...)
	stranger.Advance()
	joiner.Step(now, testAddr(1), ackMsgs)
	intro := datagramsTo(joiner.Ready(), testAddr(1))
	if len(intro) != 1 || joiner.Count(CountIntroductions) != 1 {
		t.Fatalf("joiner sent %d datagrams to the stranger and counted %d introductions, want 1 and 1", len(intro), joiner.Count(CountIntroductions))
	}
	if m := intro[0].Msgs[0]; m.Kind != KindAlive || m.Name != testName(0) || m.Addr != testAddr(0) {
		t.Fatalf("introduction %+v, want the joiner's alive message", m)
	}
	if outs := joiner.Ready().Probes; len(outs) != 1 || outs[0].Result != ProbeDirect {
		t.Fatalf("probe outcomes %+v, want one direct success", outs)
	}
	introMsgs := append([]Message(nil), intro[0].Msgs...)
	joiner.Advance()

	stranger.Step(now, testAddr(0), introMsgs)
	if m, ok := stranger.Member(testName(0)); !ok || m.State != StateAlive {
		t.Fatalf("stranger's view of the joiner: %+v (known %v), want alive", m, ok)
	}

	// A member that knows the prober answers with its digest, and the
	// prober sends nothing more.
	stranger.Advance()
	msg.Seq++
	stranger.Step(now, testAddr(0), []Message{msg})
	acks = datagramsTo(stranger.Ready(), testAddr(0))
	if len(acks) != 1 || acks[0].Msgs[0].Digest == StrangerDigest {
		t.Fatalf("answer of a member that knows the prober: %+v, want its digest", acks)
	}
}

// With fast repair off (RepairInterval 0, as for partial views), a
// stranger acks with its digest and nobody introduces itself.
func TestNoStrangerAckWithoutRepair(t *testing.T) {
	stranger := newTestCore(t, 1, func(c *Config) { c.RepairInterval = 0 })
	stranger.Step(t0, testAddr(0), []Message{{Kind: KindPing, Seq: 5, From: testName(0), Name: testName(1), Digest: 77}})
	acks := datagramsTo(stranger.Ready(), testAddr(0))
	if len(acks) != 1 || acks[0].Msgs[0].Kind != KindAck || acks[0].Msgs[0].Digest != stranger.Digest() {
		t.Fatalf("answer %+v, want one ack with the stranger's own digest", acks)
	}
}
