package envelope

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"time"
)

// Replay errors. A ReplayGuard wraps one of them in a *ReplayError.
var (
	// ErrTooOld: the sender's timestamp is older than the replay window, or
	// our clock went back after datagrams that old left the window and were
	// forgotten. Either way the clocks disagree.
	ErrTooOld = errors.New("envelope: datagram older than the replay window")
	// ErrTooNew: the sender's timestamp is further in the future than the
	// replay window: the sender's clock (or ours) is wrong.
	ErrTooNew = errors.New("envelope: datagram from the future beyond the replay window")
	// ErrReplay: a datagram with this nonce was already accepted.
	ErrReplay = errors.New("envelope: replayed datagram")
	// ErrWindowShrunk: the sender's timestamp is inside the replay window,
	// but the replay cache is full of datagrams at least as recent, so it
	// can neither remember this one nor tell whether it replays one it
	// forgot. The cache is too small for the datagram rate; the clocks are
	// not at fault.
	ErrWindowShrunk = errors.New("envelope: replay cache full: window shrank")
)

// ReplayError says why a datagram failed the replay check.
type ReplayError struct {
	Reason error         // ErrTooOld, ErrTooNew, ErrReplay or ErrWindowShrunk
	Skew   time.Duration // now minus the sender's timestamp; negative when it is ahead
	Window time.Duration // the configured replay window

	// For ErrWindowShrunk: how far back the full cache still tells replays
	// apart, and how many datagrams it holds.
	EffectiveWindow time.Duration
	Cap             int
}

// Error names the reason and what to look at: the measured skew for the
// clock checks, the cache size and the effective window for a shrunk one.
func (e *ReplayError) Error() string {
	switch {
	case errors.Is(e.Reason, ErrReplay):
		return e.Reason.Error()
	case errors.Is(e.Reason, ErrWindowShrunk):
		// Nothing here is about clocks: telling an operator to fix NTP
		// when the cache is too small sends them the wrong way.
		age := ""
		if e.Skew >= 0 {
			age = fmt.Sprintf(", and this datagram is %v old", e.Skew.Round(time.Millisecond))
		}
		return fmt.Sprintf("%v to %v of the %v configured (the cache holds %d datagrams%s): raise the replay cache size",
			e.Reason, e.EffectiveWindow.Round(time.Millisecond), e.Window, e.Cap, age)
	case e.Skew < 0:
		return fmt.Sprintf("%v (sender's timestamp is %v ahead of our clock)", e.Reason, (-e.Skew).Round(time.Millisecond))
	case errors.Is(e.Reason, ErrTooOld) && e.Skew <= e.Window:
		return fmt.Sprintf("%v (sender's timestamp is %v behind our clock, inside the %v window, but our clock went back after datagrams that old were forgotten)",
			e.Reason, e.Skew.Round(time.Millisecond), e.Window)
	}
	return fmt.Sprintf("%v (sender's timestamp is %v behind our clock)", e.Reason, e.Skew.Round(time.Millisecond))
}

// Unwrap returns Reason.
func (e *ReplayError) Unwrap() error { return e.Reason }

// MinReplayRate is the sustained rate of accepted datagrams, per second,
// that a ReplayGuard's cache holds over its whole window before the window
// shrinks, whatever size it was given: 400/s is over ten times what a member
// of a busy cluster receives (probes, acks and gossip), so only a flood
// fills it. For windows over about 43 minutes the rate is bounded by
// maxRateCap instead.
const MinReplayRate = 400

const (
	// maxRateCap bounds the cache size that MinReplayRate alone asks for,
	// so that a very long window does not make a huge cache by default.
	maxRateCap = 1 << 20
	// minAlloc is the smallest the entry slice is allocated or shrunk to.
	minAlloc = 256
)

// ReplayGuard drops authenticated datagrams that are outside the replay
// window or that it has seen before. It remembers the accepted datagrams
// until they leave the window, in a cache of bounded size (Cap). When the
// cache is full it forgets the datagram with the oldest timestamp and from
// then on rejects anything at least that old with ErrWindowShrunk, so a
// replay is never accepted: under a flood the window shrinks instead of
// opening.
//
// Memory grows with the traffic, not with Cap: an idle guard holds about a
// hundred bytes, and after a burst the cache is reallocated smaller once
// three quarters of it has expired. A full cache costs 16 bytes an entry
// for the heap and 8 bytes a slot for the hash table, which is at most 3/4
// full: 33.5 bytes an entry at the default Cap, under 37.4 for any Cap
// above a few hundred (BenchmarkReplayGuardMemory).
//
// A ReplayGuard is not safe for concurrent use; the runtime's single
// protocol goroutine owns it.
type ReplayGuard struct {
	window time.Duration
	cap    int
	seed   maphash.Seed

	// expired is the newest timestamp, in unix ms, forgotten because it
	// left the window; it matters only if our clock goes back.
	expired int64

	// seen holds a 64-bit keyed hash of each remembered nonce, not the
	// nonce: 8 bytes instead of 24 (or 12). Two nonces with the same hash
	// make the guard take a fresh datagram for a replay and drop it, never
	// accept a replay. Nonces are random, only authenticated datagrams
	// enter the cache, and the hash is keyed with a seed drawn per guard,
	// so no one without the cluster key can aim for a collision; by
	// chance, with n nonces remembered, a fresh datagram is dropped with
	// probability n/2^64 (under 10^-14 at the default 120,400). SWIM
	// tolerates loss.
	seen   hashSet
	byTime []replayEntry // a min-heap by sent time; seen is sized for its capacity
}

type replayEntry struct {
	sent int64  // unix ms
	sum  uint64 // keyed hash of the nonce, never 0; the key in seen
}

// NewReplayGuard returns a guard with the given window (how far the sender's
// timestamp may be from ours, either way) and cache size (how many datagrams
// a window may hold before it shrinks). The cache holds at least
// MinReplayRate datagrams per second of window, plus one second's worth (at
// most 2^20 for that reason), even if size is smaller; Cap reports the size
// it chose.
func NewReplayGuard(window time.Duration, size int) *ReplayGuard {
	// A second more than the window: the window includes both its ends,
	// and timestamps are rounded to milliseconds.
	byRate := ((window.Milliseconds()+1000)*MinReplayRate + 999) / 1000
	return newReplayGuard(window, max(size, int(min(byRate, maxRateCap))))
}

// newReplayGuard returns a guard whose cache holds exactly capacity
// datagrams (at least 1).
func newReplayGuard(window time.Duration, capacity int) *ReplayGuard {
	return &ReplayGuard{
		window:  window,
		cap:     max(capacity, 1),
		seed:    maphash.MakeSeed(),
		expired: math.MinInt64,
	}
}

// Len is how many datagrams the guard remembers.
func (g *ReplayGuard) Len() int { return len(g.byTime) }

// Cap is how many datagrams the guard remembers at most: when it is full,
// the window shrinks.
func (g *ReplayGuard) Cap() int { return g.cap }

// EffectiveWindow is how far back, at now, the guard still tells replays
// apart: the configured window, unless the cache is full; then only back to
// the oldest datagram it remembers, which is newer than all it forgot.
func (g *ReplayGuard) EffectiveWindow(now time.Time) time.Duration {
	return g.effective(now.UnixMilli())
}

// effective is EffectiveWindow at nowMs.
func (g *ReplayGuard) effective(nowMs int64) time.Duration {
	if len(g.byTime) < g.cap || g.byTime[0].sent < nowMs-g.window.Milliseconds() {
		return g.window
	}
	return time.Duration(max(nowMs-g.byTime[0].sent, 0)) * time.Millisecond
}

// Check accepts a datagram sent at sent, with the given nonce, received at
// now, and remembers it; or rejects it with a *ReplayError. Call it only for
// datagrams that authenticated: nothing an attacker forges may enter the
// cache. Once the cache has grown to what the traffic needs, Check does not
// allocate unless it rejects.
func (g *ReplayGuard) Check(now, sent time.Time, nonce []byte) error {
	// Compare integer milliseconds: time.Time.Sub saturates for far-away
	// timestamps, and negating a saturated Duration overflows.
	nowMs, ms, win := now.UnixMilli(), sent.UnixMilli(), g.window.Milliseconds()
	switch {
	case ms < nowMs-win:
		return g.refuse(ErrTooOld, nowMs, ms)
	case ms > nowMs+win:
		return g.refuse(ErrTooNew, nowMs, ms)
	}
	g.expire(nowMs - win)
	if len(nonce) == 0 {
		return nil // plaintext: nothing identifies a datagram; the window is all there is
	}
	sum := max(maphash.Bytes(g.seed, nonce), 1) // 0 marks an empty slot in seen
	if g.seen.has(sum) {
		return g.refuse(ErrReplay, nowMs, ms)
	}
	if ms <= g.expired {
		// Only reachable if our clock went back: the window check above
		// refuses anything this old otherwise.
		return g.refuse(ErrTooOld, nowMs, ms)
	}
	if len(g.byTime) >= g.cap {
		// Full: forget the oldest datagram to remember this one, and
		// refuse anything sent at or before the oldest, which covers
		// every datagram forgotten so far: what the cache forgets is
		// never newer than what it keeps, and it stops being full only
		// when its oldest entries expire, which raises the expiry floor
		// past all it forgot.
		if ms <= g.byTime[0].sent {
			return g.shrunk(nowMs, ms)
		}
		g.forgetOldest()
	}
	g.remember(replayEntry{sent: ms, sum: sum})
	return nil
}

// refuse returns a rejection for a clock check or a replay.
func (g *ReplayGuard) refuse(reason error, nowMs, ms int64) error {
	return &ReplayError{Reason: reason, Skew: skew(nowMs, ms), Window: g.window}
}

// shrunk returns the rejection of a datagram sent at ms that the cache can
// no longer tell apart.
func (g *ReplayGuard) shrunk(nowMs, ms int64) error {
	return &ReplayError{
		Reason:          ErrWindowShrunk,
		Skew:            skew(nowMs, ms),
		Window:          g.window,
		EffectiveWindow: g.effective(nowMs),
		Cap:             g.cap,
	}
}

// skew is nowMs-ms as a Duration, saturated instead of overflowing for
// timestamps near the ends of the int64 range.
func skew(nowMs, ms int64) time.Duration {
	const limit = math.MaxInt64 / int64(time.Millisecond)
	d := nowMs - ms
	switch {
	case ms < 0 && d < nowMs: // overflowed past MaxInt64
		d = limit
	case ms > 0 && d > nowMs: // overflowed past MinInt64
		d = -limit
	}
	return time.Duration(max(min(d, limit), -limit)) * time.Millisecond
}

// expire forgets what has left the window: the window check rejects it from
// now on. The expiry floor rises to it, so that if our clock steps back, a
// forgotten datagram is still refused. Once most of the cache has expired,
// it is reallocated smaller.
func (g *ReplayGuard) expire(horizon int64) {
	if len(g.byTime) == 0 || g.byTime[0].sent >= horizon {
		return
	}
	for len(g.byTime) > 0 && g.byTime[0].sent < horizon {
		g.expired = max(g.expired, g.byTime[0].sent)
		g.forgetOldest()
	}
	if c := cap(g.byTime); c > minAlloc && len(g.byTime) < c/4 {
		g.realloc(max(2*len(g.byTime), minAlloc))
	}
}

// realloc moves the entries to a slice of capacity n, and seen to a table
// sized for n.
func (g *ReplayGuard) realloc(n int) {
	h := make([]replayEntry, len(g.byTime), n)
	copy(h, g.byTime)
	g.byTime = h
	g.seen.reset(n)
	for _, e := range h {
		g.seen.add(e.sum)
	}
}

// forgetOldest drops the entry with the oldest timestamp.
func (g *ReplayGuard) forgetOldest() {
	h := g.byTime
	g.seen.remove(h[0].sum)
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	for i := 0; ; { // sift down
		l, small := 2*i+1, i
		if l < len(h) && h[l].sent < h[small].sent {
			small = l
		}
		if r := l + 1; r < len(h) && h[r].sent < h[small].sent {
			small = r
		}
		if small == i {
			break
		}
		h[i], h[small] = h[small], h[i]
		i = small
	}
	g.byTime = h
}

// remember adds e. The entry slice grows by doubling up to Cap, and never
// past it.
func (g *ReplayGuard) remember(e replayEntry) {
	if len(g.byTime) == cap(g.byTime) {
		g.realloc(min(max(2*cap(g.byTime), minAlloc), g.cap))
	}
	g.seen.add(e.sum)
	h := append(g.byTime, e)
	for i := len(h) - 1; i > 0; { // sift up
		parent := (i - 1) / 2
		if h[parent].sent <= h[i].sent {
			break
		}
		h[i], h[parent] = h[parent], h[i]
		i = parent
	}
	g.byTime = h
}

// hashSet is a set of nonzero 64-bit hashes: open addressing with linear
// probing, and deletion by shifting later entries back rather than leaving
// tombstones, so that its size is fixed by reset and it never allocates
// otherwise. The hashes are uniform, so their low bits pick the slot.
type hashSet struct {
	slots []uint64 // 0 is empty; a power of two long, at most 3/4 full
}

// reset empties the set and sizes it for n entries.
func (s *hashSet) reset(n int) {
	size := 8
	for size*3 < n*4 {
		size *= 2
	}
	s.slots = make([]uint64, size)
}

// has reports whether k is in the set.
func (s *hashSet) has(k uint64) bool {
	if len(s.slots) == 0 {
		return false
	}
	mask := uint64(len(s.slots) - 1)
	for i := k & mask; s.slots[i] != 0; i = (i + 1) & mask {
		if s.slots[i] == k {
			return true
		}
	}
	return false
}

// add puts k, which is not in the set, into it. The caller keeps the set
// at most 3/4 full, so a free slot is always found.
func (s *hashSet) add(k uint64) {
	mask := uint64(len(s.slots) - 1)
	i := k & mask
	for s.slots[i] != 0 {
		i = (i + 1) & mask
	}
	s.slots[i] = k
}

// remove takes k, which is in the set, out of it.
func (s *hashSet) remove(k uint64) {
	mask := uint64(len(s.slots) - 1)
	i := k & mask
	for s.slots[i] != k {
		i = (i + 1) & mask
	}
	// Close the gap: move back each later entry of the run whose home slot
	// is not between the gap and it, or a lookup would stop at the gap.
	for j := (i + 1) & mask; s.slots[j] != 0; j = (j + 1) & mask {
		home := s.slots[j] & mask
		if (j-home)&mask >= (j-i)&mask {
			s.slots[i] = s.slots[j]
			i = j
		}
	}
	s.slots[i] = 0
}
