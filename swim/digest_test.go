package swim_test

import (
	"testing"

	"github.com/meshward/membership/swim"
)

// TestRepairComparesLowDigestBits: digests match on their low 32 bits, all
// that a compact datagram carries (docs/codec.md). A digest equal to ours
// but in the high bits, as a 1.x peer sends it, asks for no state
// exchange; one that differs in the low bits does.
func TestRepairComparesLowDigestBits(t *testing.T) {
	b := newWireCore(t, 0, nil)
	wireKnow(t, b, 10)
	mine := b.Digest()
	for _, c := range []struct {
		name   string
		digest uint64
		repair bool
	}{
		{"compact, equal", uint64(uint32(mine)), false},
		{"full, high bits differ", mine ^ 0xffff_0000_0000_0000, false},
		{"low bits differ", mine ^ 1, true},
	} {
		ping := swim.Message{Kind: swim.KindPing, Seq: 1, From: wireName(1), Name: wireName(0), Digest: c.digest}
		deliver(t, b, wt0, wireAddr(1), []swim.Message{ping})
		if pp := b.Ready().PushPulls; (len(pp) == 1) != c.repair || len(pp) > 1 {
			t.Fatalf("%s: push-pulls %+v, want a repair: %v", c.name, pp, c.repair)
		}
		b.Advance()
	}
}
