package envelope

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"
)

// seqNonce returns a distinct 24-byte nonce for each i.
func seqNonce(i uint64) []byte {
	n := make([]byte, 24)
	binary.BigEndian.PutUint64(n, i)
	binary.BigEndian.PutUint64(n[16:], ^i)
	return n
}

// TestReplayGuardIssueBusyMinute is the hardening issue's scenario, with the
// guard built as the runtime built it (a 5-minute window, a cache of 1<<14):
// after about 17,000 datagrams accepted in a minute, a valid datagram sent a
// minute ago was refused as "older than the replay window".
func TestReplayGuardIssueBusyMinute(t *testing.T) {
	g := NewReplayGuard(5*time.Minute, 1<<14)
	t0 := time.Unix(1_800_000_000, 0)
	const busy = 17_500
	for i := range busy {
		now := t0.Add(time.Duration(i) * time.Minute / busy)
		if err := g.Check(now, now, seqNonce(uint64(i))); err != nil {
			t.Fatalf("datagram %d of a busy minute refused: %v", i, err)
		}
	}
	now := t0.Add(time.Minute)
	if err := g.Check(now, t0, seqNonce(busy)); err != nil {
		t.Fatalf("a valid datagram sent 60s ago, after %d in a minute: %v", busy, err)
	}
	if err := g.Check(now, t0, seqNonce(busy)); !errors.Is(err, ErrReplay) {
		t.Fatalf("its replay: err = %v, want ErrReplay", err)
	}
}

// TestReplayGuardSustainedRate: with the runtime's arguments the cache holds
// MinReplayRate datagrams a second over the whole window, so ten minutes at
// that rate never shrink the window.
func TestReplayGuardSustainedRate(t *testing.T) {
	const window = 5 * time.Minute
	g := NewReplayGuard(window, 1<<14)
	if want := MinReplayRate * 301; g.Cap() != want {
		t.Fatalf("Cap = %d, want %d (%d/s over 5 minutes and a second)", g.Cap(), want, MinReplayRate)
	}
	t0 := time.Unix(1_800_000_000, 0)
	const total = MinReplayRate * 600
	var now time.Time
	for i := range total {
		now = t0.Add(time.Duration(i) * time.Second / MinReplayRate)
		if err := g.Check(now, now, seqNonce(uint64(i))); err != nil {
			t.Fatalf("datagram %d at %d/s refused: %v", i, MinReplayRate, err)
		}
		if i%1000 == 0 && g.EffectiveWindow(now) != window {
			t.Fatalf("datagram %d: effective window %v, want %v", i, g.EffectiveWindow(now), window)
		}
	}
	// A datagram delayed by almost the whole window is still told apart.
	old := now.Add(-window + time.Second)
	if err := g.Check(now, old, seqNonce(total)); err != nil {
		t.Fatalf("datagram sent %v ago: %v", now.Sub(old), err)
	}
	if g.Len() > g.Cap() {
		t.Fatalf("Len %d above Cap %d", g.Len(), g.Cap())
	}
}

// TestReplayGuardCap pins how the cache is sized.
func TestReplayGuardCap(t *testing.T) {
	for _, c := range []struct {
		window time.Duration
		size   int
		want   int
	}{
		{5 * time.Minute, 1 << 14, 120_400}, // the rate floor beats a small size
		{5 * time.Minute, 0, 120_400},
		{5 * time.Minute, 200_000, 200_000}, // a larger size is kept
		{time.Second, -1, 2 * MinReplayRate},
		{time.Millisecond, 0, MinReplayRate + 1},
		{0, 0, MinReplayRate},
		{24 * time.Hour, 0, maxRateCap},             // the rate floor is bounded...
		{24 * time.Hour, 3 << 20, 3 << 20},          // ...an explicit size is not
		{math.MaxInt64, 0, maxRateCap},              // no overflow
		{time.Minute + time.Millisecond, 0, 24_401}, // rounded up
	} {
		if got := NewReplayGuard(c.window, c.size).Cap(); got != c.want {
			t.Errorf("NewReplayGuard(%v, %d).Cap() = %d, want %d", c.window, c.size, got, c.want)
		}
	}
}

// TestReplayGuardWindowShrunk: a flood that overflows the cache makes it
// refuse datagrams inside the window that it can no longer tell apart, and
// the refusal blames the cache, not the clock.
func TestReplayGuardWindowShrunk(t *testing.T) {
	const window = 10 * time.Second
	g := NewReplayGuard(window, 0) // 4,400 datagrams
	t0 := time.Unix(1_800_000_000, 0)
	for i := range 5400 { // 5,400 in 5.4 seconds: 1,000 forgotten
		now := t0.Add(time.Duration(i) * time.Millisecond)
		if err := g.Check(now, now, seqNonce(uint64(i))); err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
	}
	now := t0.Add(5400 * time.Millisecond)
	// The newest forgotten datagram was sent at t0+999ms, the oldest
	// remembered at t0+1000ms, and the cache is full.
	if got, want := g.EffectiveWindow(now), 4400*time.Millisecond; got != want {
		t.Fatalf("EffectiveWindow = %v, want %v", got, want)
	}
	err := g.Check(now, t0.Add(500*time.Millisecond), seqNonce(1<<40)) // fresh, 4.9s old, inside the 10s window
	var re *ReplayError
	if !errors.Is(err, ErrWindowShrunk) || errors.Is(err, ErrTooOld) || !errors.As(err, &re) {
		t.Fatalf("err = %v, want ErrWindowShrunk", err)
	}
	if re.Cap != 4400 || re.EffectiveWindow != 4400*time.Millisecond || re.Window != window || re.Skew != 4900*time.Millisecond {
		t.Fatalf("ReplayError = %+v", re)
	}
	msg := err.Error()
	for _, want := range []string{"replay cache full", "4400 datagrams", "to 4.4s of the 10s configured", "4.9s old", "raise the replay cache size"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q does not say %q", msg, want)
		}
	}
	for _, blame := range []string{"clock", "NTP", "skew", "behind", "ahead"} {
		if strings.Contains(strings.ToLower(msg), strings.ToLower(blame)) {
			t.Errorf("message %q talks about %q: the cache is the cause", msg, blame)
		}
	}
	// A replay of a forgotten datagram is refused the same way.
	if err := g.Check(now, t0.Add(999*time.Millisecond), seqNonce(999)); !errors.Is(err, ErrWindowShrunk) {
		t.Fatalf("replay of a forgotten datagram: err = %v, want ErrWindowShrunk", err)
	}
	// So is a fresh one as old as the oldest remembered: remembering it
	// would mean forgetting that one.
	if err := g.Check(now, t0.Add(1000*time.Millisecond), seqNonce(1<<41)); !errors.Is(err, ErrWindowShrunk) {
		t.Fatalf("datagram as old as the full cache: err = %v, want ErrWindowShrunk", err)
	}
	// A newer one is remembered, and forgets the oldest: the window
	// shrinks further.
	if err := g.Check(now, t0.Add(1001*time.Millisecond), seqNonce(1<<41)); err != nil {
		t.Fatalf("datagram newer than the full cache: %v", err)
	}
	if got, want := g.EffectiveWindow(now), 4399*time.Millisecond; got != want {
		t.Fatalf("EffectiveWindow = %v, want %v", got, want)
	}
	// Outside the configured window it is still the clock's fault.
	if err := g.Check(now, now.Add(-window-time.Second), seqNonce(1<<42)); !errors.Is(err, ErrTooOld) {
		t.Fatalf("11s old: err = %v, want ErrTooOld", err)
	}
	// Once the forgotten datagrams are older than the window, the window
	// is whole again.
	later := t0.Add(12 * time.Second)
	if got := g.EffectiveWindow(later); got != window {
		t.Fatalf("EffectiveWindow after the flood = %v, want %v", got, window)
	}
	if err := g.Check(later, later.Add(-9*time.Second), seqNonce(1<<43)); err != nil {
		t.Fatalf("9s old datagram after the flood: %v", err)
	}
}

// TestReplayGuardFullWindow: a full cache reports the window it still covers
// before anything is forgotten.
func TestReplayGuardFullWindow(t *testing.T) {
	g := newReplayGuard(time.Minute, 2)
	now := time.Unix(1_800_000_000, 0)
	if got := g.EffectiveWindow(now); got != time.Minute {
		t.Fatalf("empty: EffectiveWindow = %v", got)
	}
	for i, ago := range []time.Duration{20 * time.Second, 10 * time.Second} {
		if err := g.Check(now, now.Add(-ago), seqNonce(uint64(i))); err != nil {
			t.Fatal(err)
		}
	}
	if got := g.EffectiveWindow(now); got != 20*time.Second {
		t.Fatalf("full: EffectiveWindow = %v, want 20s", got)
	}
	err := g.Check(now, now.Add(-30*time.Second), seqNonce(9))
	var re *ReplayError
	if !errors.As(err, &re) || re.Reason != ErrWindowShrunk || re.EffectiveWindow != 20*time.Second {
		t.Fatalf("older than a full cache: err = %v, want ErrWindowShrunk at 20s", err)
	}
}

// TestReplayGuardFloodNeverReplays drives small caches with floods of random
// timestamps and replays, with and without our clock stepping back: a nonce
// is accepted at most once, the cache stays within Cap, and while our clock
// runs forward a datagram inside the window is never blamed on the clock.
func TestReplayGuardFloodNeverReplays(t *testing.T) {
	for _, steps := range []bool{false, true} {
		rng := rand.New(rand.NewPCG(3, 4))
		const window = 30 * time.Second
		g := newReplayGuard(window, 50)
		now := time.Unix(1_800_000_000, 0)
		type datagram struct {
			sent  time.Time
			nonce uint64
		}
		var history []datagram
		accepted := map[uint64]bool{}
		var shrunk, ok int
		for i := range 50_000 {
			now = now.Add(time.Duration(rng.IntN(20)) * time.Millisecond)
			if steps && rng.IntN(2000) == 0 {
				now = now.Add(-time.Duration(rng.IntN(20)) * time.Second)
			}
			var d datagram
			if len(history) > 0 && rng.IntN(3) == 0 {
				d = history[rng.IntN(len(history))]
			} else {
				d = datagram{sent: now.Add(time.Duration(rng.IntN(80_000)-40_000) * time.Millisecond), nonce: uint64(i)}
				history = append(history, d)
			}
			err := g.Check(now, d.sent, seqNonce(d.nonce))
			switch {
			case err == nil:
				if accepted[d.nonce] {
					t.Fatalf("steps=%v, step %d: nonce accepted twice", steps, i)
				}
				accepted[d.nonce] = true
				ok++
			case errors.Is(err, ErrWindowShrunk):
				shrunk++
			case errors.Is(err, ErrTooOld) && !steps && now.Sub(d.sent) <= window:
				t.Fatalf("step %d: a datagram %v old, inside the window, refused as too old while our clock ran forward: %v", i, now.Sub(d.sent), err)
			}
			if g.Len() > g.Cap() {
				t.Fatalf("Len %d above Cap %d", g.Len(), g.Cap())
			}
		}
		if ok < 2000 || shrunk == 0 {
			t.Fatalf("steps=%v: %d accepted, %d refused for a shrunk window: the flood did not exercise the cache", steps, ok, shrunk)
		}
	}
}

// TestReplayGuardClockStepsBackMessage: a datagram forgotten because it left
// the window, replayed after our clock stepped back, is ErrTooOld, and the
// message says our clock went back.
func TestReplayGuardClockStepsBackMessage(t *testing.T) {
	g := NewReplayGuard(5*time.Minute, 0)
	t0 := time.Unix(1_800_000_000, 0)
	if err := g.Check(t0, t0, seqNonce(1)); err != nil {
		t.Fatal(err)
	}
	later := t0.Add(5*time.Minute + time.Second)
	if err := g.Check(later, later, seqNonce(2)); err != nil {
		t.Fatal(err)
	}
	stepped := later.Add(-2 * time.Minute)
	err := g.Check(stepped, t0, seqNonce(1))
	if !errors.Is(err, ErrTooOld) || !strings.Contains(err.Error(), "our clock went back") {
		t.Fatalf("replay after the clock stepped back: err = %v, want ErrTooOld saying our clock went back", err)
	}
	if g.EffectiveWindow(stepped) != 5*time.Minute {
		t.Fatalf("EffectiveWindow = %v: nothing was evicted", g.EffectiveWindow(stepped))
	}
}

// TestReplayGuardSkewSaturates: timestamps at the ends of the int64 range
// are measured with the right sign.
func TestReplayGuardSkewSaturates(t *testing.T) {
	g := NewReplayGuard(5*time.Minute, 0)
	now := time.Unix(1_800_000_000, 0)
	var re *ReplayError
	if err := g.Check(now, time.UnixMilli(math.MinInt64), seqNonce(1)); !errors.As(err, &re) || re.Reason != ErrTooOld || re.Skew <= 0 {
		t.Fatalf("far past: err = %v (%+v)", err, re)
	}
	if err := g.Check(now, time.UnixMilli(math.MaxInt64), seqNonce(2)); !errors.As(err, &re) || re.Reason != ErrTooNew || re.Skew >= 0 {
		t.Fatalf("far future: err = %v (%+v)", err, re)
	}
}

// TestReplayGuardMemoryFollowsTraffic: an idle guard holds no cache, and
// after a burst the cache is given back.
func TestReplayGuardMemoryFollowsTraffic(t *testing.T) {
	g := NewReplayGuard(5*time.Minute, 0)
	if cap(g.byTime) != 0 || len(g.seen.slots) != 0 {
		t.Fatalf("new guard allocated %d entries and %d slots", cap(g.byTime), len(g.seen.slots))
	}
	t0 := time.Unix(1_800_000_000, 0)
	for i := range 100_000 { // a burst in 10 seconds
		now := t0.Add(time.Duration(i) * 100 * time.Microsecond)
		if err := g.Check(now, now, seqNonce(uint64(i))); err != nil {
			t.Fatal(err)
		}
	}
	if c := cap(g.byTime); c < 100_000 || c > g.Cap() {
		t.Fatalf("after the burst: %d entries allocated, want 100000..%d", c, g.Cap())
	}
	// Then a trickle: 1 a second for 10 minutes.
	for i := range 600 {
		now := t0.Add(10*time.Second + time.Duration(i)*time.Second)
		if err := g.Check(now, now, seqNonce(uint64(1e6+i))); err != nil {
			t.Fatal(err)
		}
	}
	if g.Len() > 301 || cap(g.byTime) > 1024 || len(g.seen.slots) > 2048 {
		t.Fatalf("after the trickle: %d remembered, %d entries and %d slots allocated", g.Len(), cap(g.byTime), len(g.seen.slots))
	}
}

// TestReplayGuardSteadyStateAllocs: at MinReplayRate over the default
// window, once the cache has grown, accepting a datagram allocates nothing.
func TestReplayGuardSteadyStateAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's instrumentation allocates")
	}
	g := NewReplayGuard(5*time.Minute, 0)
	t0 := time.Unix(1_800_000_000, 0)
	nonce := make([]byte, 24)
	var i uint64
	check := func() {
		i++
		binary.BigEndian.PutUint64(nonce, i)
		now := t0.Add(time.Duration(i) * time.Second / MinReplayRate)
		if err := g.Check(now, now, nonce); err != nil {
			t.Fatal(err)
		}
	}
	for range MinReplayRate * 400 { // past the window: entries expire as fast as they come
		check()
	}
	// Count every allocation: testing.AllocsPerRun rounds the average
	// down, which would hide one allocation every few thousand checks. The
	// count is process-wide, so a stray allocation elsewhere is forgiven
	// if another window's worth of checks allocates nothing.
	const runs = MinReplayRate * 300 // a whole window's worth
	var counts []uint64
	for range 3 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range runs {
			check()
		}
		runtime.ReadMemStats(&after)
		if after.Mallocs == before.Mallocs {
			return
		}
		counts = append(counts, after.Mallocs-before.Mallocs)
	}
	t.Fatalf("%d checks in steady state allocated, three times over: %v allocations", runs, counts)
}

// BenchmarkReplayGuardCheck measures an accepted datagram in the steady
// state at MinReplayRate over the default window (120,000 remembered).
func BenchmarkReplayGuardCheck(b *testing.B) {
	g := NewReplayGuard(5*time.Minute, 0)
	t0 := time.Unix(1_800_000_000, 0)
	nonce := make([]byte, 24)
	var i uint64
	check := func() {
		i++
		binary.BigEndian.PutUint64(nonce, i)
		now := t0.Add(time.Duration(i) * time.Second / MinReplayRate)
		if err := g.Check(now, now, nonce); err != nil {
			b.Fatal(err)
		}
	}
	for range MinReplayRate * 310 {
		check()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		check()
	}
}

// BenchmarkReplayGuardMemory measures the heap a guard holds when its
// default-sized cache is full, per remembered datagram (B/entry), the worst
// case SECURITY.md states.
func BenchmarkReplayGuardMemory(b *testing.B) {
	var perEntry float64
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		g := NewReplayGuard(5*time.Minute, 0)
		now := time.Unix(1_800_000_000, 0)
		for i := range g.Cap() + 10 { // full, then evicting
			if err := g.Check(now, now, seqNonce(uint64(i))); err != nil {
				b.Fatal(err)
			}
			now = now.Add(time.Millisecond)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if g.Len() != g.Cap() {
			b.Fatalf("Len %d, Cap %d", g.Len(), g.Cap())
		}
		perEntry = float64(after.HeapAlloc-before.HeapAlloc) / float64(g.Len())
		runtime.KeepAlive(g)
	}
	b.ReportMetric(perEntry, "B/entry")
}

// TestHashSet checks the open-addressing set against a map, with small
// tables and clustered keys so that runs wrap around and deletions shift.
func TestHashSet(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{1, 6, 48, 1000} {
		var s hashSet
		s.reset(n)
		ref := map[uint64]bool{}
		var keys []uint64
		for range 50 * n {
			if len(keys) < n && (len(keys) == 0 || rng.IntN(2) == 0) {
				// Keys crowd a few home slots, including the last ones.
				k := uint64(rng.IntN(4))<<32 | uint64(len(s.slots)-1-rng.IntN(3))
				if k == 0 || ref[k] {
					continue
				}
				s.add(k)
				ref[k] = true
				keys = append(keys, k)
			} else {
				i := rng.IntN(len(keys))
				s.remove(keys[i])
				delete(ref, keys[i])
				keys[i] = keys[len(keys)-1]
				keys = keys[:len(keys)-1]
			}
			for _, k := range keys {
				if !s.has(k) {
					t.Fatalf("n=%d: key %x lost", n, k)
				}
			}
			for k := uint64(1); k < 8; k++ {
				if s.has(k<<32|1) != ref[k<<32|1] {
					t.Fatalf("n=%d: has(%x) = %v", n, k<<32|1, !ref[k<<32|1])
				}
			}
			full := 0
			for _, v := range s.slots {
				if v != 0 {
					full++
				}
			}
			if full != len(keys) {
				t.Fatalf("n=%d: %d slots full, %d keys", n, full, len(keys))
			}
		}
	}
}

// FuzzReplayGuard runs random sequences of checks against a small cache.
// The input's first two bytes pick the cache size (1 to 16) and the window
// (0.1 to 6.4 s); then each 3 bytes are a step of our clock (back, when
// negative), a nonce (0: none, as in plaintext) and, the first time a nonce
// is seen, its timestamp relative to now; later uses of a nonce replay it
// with the same timestamp, as a captured datagram would. Whatever the
// sequence: no panic, no nonce accepted twice, no more than Cap remembered,
// a shrunk window only once the cache has been full and never blamed on the
// clock, and while our clock has not gone back, ErrTooOld only outside the
// window.
func FuzzReplayGuard(f *testing.F) {
	f.Add([]byte{2, 9, 1, 1, 0, 1, 2, 0, 1, 3, 0, 1, 4, 0, 0, 5, 0xf0, 0, 1, 0})
	f.Add([]byte{0, 0, 0, 1, 0, 0, 1, 0})
	f.Add([]byte{15, 63, 0x7f, 7, 0x80, 0x80, 7, 0, 0x7f, 8, 0x7f})
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < 2 {
			return
		}
		window := time.Duration(in[1]%64+1) * 100 * time.Millisecond
		g := newReplayGuard(window, int(in[0]%16)+1)
		now := time.Unix(1_800_000_000, 0)
		sentOf := map[byte]time.Time{}
		accepted := map[byte]bool{}
		everFull, wentBack := false, false
		for ops := in[2:]; len(ops) >= 3; ops = ops[3:] {
			step := time.Duration(int8(ops[0])) * 20 * time.Millisecond
			wentBack = wentBack || step < 0
			now = now.Add(step)
			id := ops[1]
			sent, replay := sentOf[id]
			if !replay {
				sent = now.Add(time.Duration(int8(ops[2])) * 50 * time.Millisecond)
				sentOf[id] = sent
			}
			var nonce []byte
			if id != 0 {
				nonce = bytes.Repeat([]byte{id}, 24)
			}
			everFull = everFull || g.Len() == g.Cap()
			err := g.Check(now, sent, nonce)
			if g.Len() > g.Cap() {
				t.Fatalf("Len %d above Cap %d", g.Len(), g.Cap())
			}
			if ew := g.EffectiveWindow(now); ew < 0 || ew > window {
				t.Fatalf("EffectiveWindow %v outside 0..%v", ew, window)
			}
			if err == nil {
				if id != 0 && accepted[id] {
					t.Fatalf("nonce %d accepted twice", id)
				}
				accepted[id] = true
				continue
			}
			var re *ReplayError
			if !errors.As(err, &re) || err.Error() == "" {
				t.Fatalf("err = %v, want a *ReplayError", err)
			}
			switch {
			case errors.Is(err, ErrWindowShrunk):
				if !everFull {
					t.Fatalf("window shrunk though the cache was never full: %v", err)
				}
				if strings.Contains(err.Error(), "clock") || re.EffectiveWindow > window {
					t.Fatalf("shrunk window: %v", err)
				}
			case errors.Is(err, ErrTooOld) && !wentBack:
				if sent.UnixMilli() >= now.UnixMilli()-window.Milliseconds() {
					t.Fatalf("ErrTooOld inside the window while our clock ran forward: %v", err)
				}
			}
		}
	})
}
