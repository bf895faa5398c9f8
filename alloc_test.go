package membership

import (
	"bytes"
	"testing"
	"time"

	"github.com/meshward/membership/keyring"
	"github.com/meshward/membership/metrics"
	"github.com/meshward/membership/transport"
)

// TestForgedDatagramAllocatesNothing: the runtime's receive path rejects a
// forged datagram (unknown key, failed authentication, truncated, another
// version or suite) without allocating, so a flood of them costs no
// garbage collection. The rejections are still counted.
func TestForgedDatagramAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	sink := metrics.NewInmem()
	c := newMemCluster(t, 0)
	nd := c.add("target", WithMetrics(sink))
	ring := newRing(t, testKey)
	other := newRing(t, bytes.Repeat([]byte{9}, 32))
	valid, err := ring.Seal(nil, make([]byte, 40), nil)
	if err != nil {
		t.Fatal(err)
	}
	unknownKey, err := other.Seal(nil, make([]byte, 40), nil)
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Clone(valid)
	tampered[len(tampered)-1] ^= 1
	version := bytes.Clone(valid)
	version[0] = 9
	suite := bytes.Clone(valid)
	suite[1] = byte(keyring.AESGCM)
	from := c.nodes[0].Myself().Addr
	for name, data := range map[string][]byte{
		"unknown key": unknownKey, "auth failed": tampered, "truncated": valid[:10],
		"unknown version": version, "unknown suite": suite,
	} {
		var allocs float64
		nd.do(func() {
			p := transport.Packet{Data: data, From: from, At: time.Now()}
			allocs = testing.AllocsPerRun(1000, func() { nd.receive(&p) })
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per forged datagram, want 0", name, allocs)
		}
	}
	waitFor(t, 5*time.Second, "the rejections to be reported", func() bool {
		n, _ := sink.Counter(metrics.Dropped, metrics.Label{Name: metrics.LabelReason, Value: string(metrics.DropAuth)})
		return n >= 1000
	})
}
