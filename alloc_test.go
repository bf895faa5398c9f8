package membership

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshward/membership/internal/envelope"
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
	compact, err := ring.SealStamped(nil, make([]byte, 40), nil, time.Now().UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	compactUnknown, err := other.SealStamped(nil, make([]byte, 40), nil, time.Now().UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	compact[len(compact)-1] ^= 1
	from := c.nodes[0].Myself().Addr
	for name, data := range map[string][]byte{
		"unknown key": unknownKey, "auth failed": tampered, "truncated": valid[:10],
		"unknown version": version, "unknown suite": suite,
		"compact unknown key": compactUnknown, "compact auth failed": compact, "compact truncated": compact[:30],
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

// syncBuffer is a bytes.Buffer safe for a logger on another goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestShrunkReplayWindowBlamesTheCache: when a flood fills the replay
// cache, a genuine datagram that the full cache can no longer tell from a
// replay is dropped as window_shrunk, and the log names the cache, not the
// clock.
func TestShrunkReplayWindowBlamesTheCache(t *testing.T) {
	sink := metrics.NewInmem()
	var logs syncBuffer
	c := newMemCluster(t, 0)
	nd := c.add("target", WithMetrics(sink), WithReplayWindow(time.Second),
		WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	ring := newRing(t, testKey)
	from := nd.Myself().Addr
	now := time.Now()
	var capacity int
	nd.do(func() { capacity = nd.replay.Cap() })
	seal := func(at time.Time) []byte {
		d, err := envelope.SealDatagram(ring, nil, nil, make([]byte, envelope.TimestampLen+4), at)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	nd.do(func() {
		// Fill the cache with datagrams from the last half second...
		for i := range capacity + 10 {
			at := now.Add(-500*time.Millisecond + time.Duration(i)*500*time.Millisecond/time.Duration(capacity+10))
			p := transport.Packet{Data: seal(at), From: from, At: now}
			nd.receive(&p)
		}
		// ...then one sent 600 ms ago: inside the 1 s window, but older
		// than anything the full cache still remembers.
		p := transport.Packet{Data: seal(now.Add(-600 * time.Millisecond)), From: from, At: now}
		nd.receive(&p)
	})
	waitFor(t, 5*time.Second, "the shrunk window to be counted", func() bool {
		n, _ := sink.Counter(metrics.Dropped, metrics.Label{Name: metrics.LabelReason, Value: string(metrics.DropWindowShrunk)})
		return n >= 1
	})
	if n, _ := sink.Counter(metrics.Dropped, metrics.Label{Name: metrics.LabelReason, Value: string(metrics.DropTooOld)}); n != 0 {
		t.Fatalf("%v datagrams counted too_old: the cache, not the clock, refused them", n)
	}
	out := logs.String()
	if !strings.Contains(out, "window_shrunk") || strings.Contains(out, "NTP") || strings.Contains(out, "behind our clock") {
		t.Fatalf("log does not blame the cache alone:\n%s", out)
	}
}
