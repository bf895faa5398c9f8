package membership

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshward/membership/internal/envelope"
	"github.com/meshward/membership/keyring"
	"github.com/meshward/membership/metrics"
)

// startChurn builds testdata/churn (without the race detector, so that
// it keeps its rate when the test runs under -race) and starts it against
// target for dur. wait returns how many connections it made and in how
// long.
func startChurn(t *testing.T, target string, dur time.Duration) (wait func() (int, float64)) {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to build the attacker: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "churn")
	if out, err := exec.Command(gobin, "build", "-o", bin, "./testdata/churn").CombinedOutput(); err != nil {
		t.Fatalf("go build ./testdata/churn: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-target", target, "-rate", "15000", "-hold", "2000", "-workers", "16", "-for", dur.String())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return func() (int, float64) {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("churn: %v\n%s", err, out.String())
		}
		var made int
		var secs float64
		if _, err := fmt.Sscan(out.String(), &made, &secs); err != nil {
			t.Fatalf("churn printed %q: %v", out.String(), err)
		}
		return made, secs
	}
}

// TestJoinUnderConnectionChurn: another process on 127.0.0.1 opens idle TCP
// connections to a seed as fast as it can (up to 15,000 a second; it
// manages 7,000 to 13,000 here), and members still join through that seed:
// at least 95 % of joins succeed, each within its own context. The joiners
// are on 127.0.0.1 too, the attacker's own address.
func TestJoinUnderConnectionChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("real sockets under a connection flood; skipped with -short")
	}
	const joins = 20
	ring := newRing(t, testKey)
	seed, err := New(WithName("seed"), WithBindAddr("127.0.0.1:0"), WithKeyring(ring),
		WithProfile(ProfileLocal), WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	defer seed.Shutdown()
	target := seed.Myself().Addr.String()

	wait := startChurn(t, target, 3*time.Second)
	// Let the flood fill the seed's waiting room before anyone joins.
	waitFor(t, 5*time.Second, "the flood to fill the seed's waiting room", func() bool {
		seed.streamMu.Lock()
		defer seed.streamMu.Unlock()
		return seed.inPending >= seed.cfg.maxPending/2
	})
	// Joins start 100 ms apart, so that they meet the flood for 2 s.
	pace := time.NewTicker(100 * time.Millisecond)
	defer pace.Stop()

	var ok, failed atomic.Int64
	var errsMu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i := range joins {
		<-pace.C
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			nd, err := New(WithName(fmt.Sprintf("joiner-%d", i)), WithBindAddr("127.0.0.1:0"), WithKeyring(ring),
				WithProfile(ProfileLocal), WithLogger(quietLogger()))
			if err != nil {
				t.Error(err)
				return
			}
			defer nd.Shutdown()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := nd.Join(ctx, target); err != nil {
				failed.Add(1)
				errsMu.Lock()
				errs = append(errs, err)
				errsMu.Unlock()
				return
			}
			ok.Add(1)
		}()
	}
	wg.Wait()
	made, secs := wait()
	rate := float64(made) / secs
	t.Logf("attacker: %d connections in %.1fs (%.0f/s); joins: %d of %d succeeded", made, secs, rate, ok.Load(), joins)
	for _, err := range errs {
		t.Logf("join failed: %v", err)
	}
	// The old code locked joins out at 1,800 connections a second; below
	// that this test proves nothing.
	if rate < 1800 {
		t.Fatalf("the attacker managed only %.0f connections/s: too slow to test the lockout", rate)
	}
	if ok.Load()*100 < 95*joins {
		t.Fatalf("%d of %d joins succeeded under the flood, want at least 95 %%", ok.Load(), joins)
	}
}

// TestRefusedStreamSaysWhy: a seed with no room for another stream answers
// a newcomer with the refusal byte in place of its hello.
func TestRefusedStreamSaysWhy(t *testing.T) {
	ring := newRing(t, testKey)
	seed, err := New(WithName("seed"), WithBindAddr("127.0.0.1:0"), WithKeyring(ring),
		WithProfile(ProfileLocal), WithLogger(quietLogger()), WithInboundStreamLimits(1, 1),
		func(c *config) error { c.evictAge = time.Hour; return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer seed.Shutdown()
	target := seed.Myself().Addr.String()
	hello := append([]byte{envelope.StreamVersion}, make([]byte, 16)...)
	// A stranger that sends a hello and then nothing holds the one
	// waiting slot (for an hour, in this test); a newcomer that cannot
	// evict anything is refused with a reason.
	hold, err := net.Dial("tcp", target)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	if _, err := hold.Write(hello); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the stranger's hello to be read", func() bool {
		seed.streamMu.Lock()
		defer seed.streamMu.Unlock()
		for s := range seed.streams {
			if s.inbound && s.stage == stageHello {
				return true
			}
		}
		return false
	})
	c, err := net.Dial("tcp", target)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(hello); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, _ := io.ReadAll(c); !bytes.Equal(b, []byte{0xFF}) {
		t.Fatalf("a refused newcomer read %x, want the refusal ff", b)
	}
}

// TestJoinSaysSeedIsBusy: a seed that refuses every stream for load makes
// Join fail with ErrSeedBusy ("seed is refusing streams: too many
// connections"), after retrying until its context ends, not with
// "connection reset by peer".
func TestJoinSaysSeedIsBusy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var refused atomic.Int64
	go func() { // a seed that refuses everyone, as a full one does
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			refused.Add(1)
			c.SetDeadline(time.Now().Add(time.Second))
			envelope.ReadHello(c)
			envelope.Refuse(c)
			c.Close()
		}
	}()
	joiner, err := New(WithName("joiner"), WithBindAddr("127.0.0.1:0"), WithKeyring(newRing(t, testKey)),
		WithProfile(ProfileLocal), WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	defer joiner.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err = joiner.Join(ctx, ln.Addr().String())
	if !errors.Is(err, ErrSeedBusy) || strings.Contains(err.Error(), "reset by peer") {
		t.Fatalf("Join to a refusing seed: %v, want ErrSeedBusy", err)
	}
	if refused.Load() < 2 {
		t.Fatalf("Join tried %d times in 500 ms, want it to retry", refused.Load())
	}
	t.Logf("Join: %v", err)
}

// TestStreamRejectsCounted: every way a stranger's stream fails is counted
// under membership.dropped with its own reason, as rejected datagrams are.
func TestStreamRejectsCounted(t *testing.T) {
	hello := append([]byte{envelope.StreamVersion}, make([]byte, 16)...)
	cases := []struct {
		reason metrics.DropReason
		send   func(c net.Conn)
	}{
		{metrics.DropStreamBadHello, func(c net.Conn) { c.Write(append([]byte{9}, make([]byte, 16)...)) }},
		{metrics.DropStreamTooLarge, func(c net.Conn) {
			c.Write(hello)
			io.ReadFull(c, make([]byte, 17))
			c.Write([]byte{0x7f, 0xff, 0xff, 0xff})
		}},
		{metrics.DropStreamTruncated, func(c net.Conn) {
			c.Write(hello)
			io.ReadFull(c, make([]byte, 17))
			c.Write([]byte{0, 0})
		}},
		{metrics.DropStreamTimeout, func(c net.Conn) {
			c.Write(hello)
			io.ReadFull(c, make([]byte, 17))
			// Say nothing more: the node gives up after its 300 ms
			// stream timeout and closes the connection.
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			io.Copy(io.Discard, c)
		}},
		{metrics.DropUnknownKey, func(c net.Conn) {
			c.Write(hello)
			io.ReadFull(c, make([]byte, 17))
			rec := make([]byte, 4+80)
			binary.BigEndian.PutUint32(rec, 80)
			rec[4], rec[5] = 1, byte(keyring.XChaCha20Poly1305)
			c.Write(rec)
		}},
	}
	for _, tc := range cases {
		t.Run(string(tc.reason), func(t *testing.T) {
			sink := metrics.NewInmem()
			nd, err := New(WithName("seed"), WithBindAddr("127.0.0.1:0"), WithKeyring(newRing(t, testKey)),
				WithProfile(ProfileLocal), WithLogger(quietLogger()), WithMetrics(sink),
				func(c *config) error { c.streamTimeout = 300 * time.Millisecond; return nil })
			if err != nil {
				t.Fatal(err)
			}
			defer nd.Shutdown()
			c, err := net.Dial("tcp", nd.Myself().Addr.String())
			if err != nil {
				t.Fatal(err)
			}
			tc.send(c)
			c.Close()
			waitFor(t, 5*time.Second, "the reject to be counted as "+string(tc.reason), func() bool {
				n, _ := sink.Counter(metrics.Dropped, metrics.Label{Name: metrics.LabelReason, Value: string(tc.reason)})
				return n == 1
			})
		})
	}
}

// TestSilentStreamEvicted: with room for one waiting stream, a newcomer
// evicts a silent one, and the eviction is counted.
func TestSilentStreamEvicted(t *testing.T) {
	sink := metrics.NewInmem()
	nd, err := New(WithName("seed"), WithBindAddr("127.0.0.1:0"), WithKeyring(newRing(t, testKey)),
		WithProfile(ProfileLocal), WithLogger(quietLogger()), WithMetrics(sink), WithInboundStreamLimits(1, 1))
	if err != nil {
		t.Fatal(err)
	}
	defer nd.Shutdown()
	silent, err := net.Dial("tcp", nd.Myself().Addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	waitFor(t, 5*time.Second, "the silent stream to wait", func() bool {
		nd.streamMu.Lock()
		defer nd.streamMu.Unlock()
		return nd.inPending == 1
	})
	joiner, err := New(WithName("joiner"), WithBindAddr("127.0.0.1:0"), WithKeyring(newRing(t, testKey)),
		WithProfile(ProfileLocal), WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	defer joiner.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := joiner.Join(ctx, nd.Myself().Addr.String()); err != nil {
		t.Fatalf("Join past a silent stream: %v", err)
	}
	// The silent connection was told why, then closed.
	silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, _ := io.ReadAll(silent)
	if !bytes.Equal(b, []byte{0xFF}) {
		t.Fatalf("the evicted connection read %x, want the refusal ff", b)
	}
	if n, _ := sink.Counter(metrics.Dropped, metrics.Label{Name: metrics.LabelReason, Value: string(metrics.DropStreamEvicted)}); n != 1 {
		t.Fatalf("stream_evicted counted %v times, want 1", n)
	}
}
