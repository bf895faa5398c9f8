package envelope

import (
	"errors"
	"fmt"
	"time"
)

// Replay errors. A ReplayGuard wraps one of them with the measured skew.
var (
	// ErrTooOld: the sender's timestamp is older than the replay window
	// (or than the oldest datagram the full cache still remembers).
	ErrTooOld = errors.New("envelope: datagram older than the replay window")
	// ErrTooNew: the sender's timestamp is further in the future than the
	// replay window: the sender's clock (or ours) is wrong.
	ErrTooNew = errors.New("envelope: datagram from the future beyond the replay window")
	// ErrReplay: a datagram with this nonce was already accepted.
	ErrReplay = errors.New("envelope: replayed datagram")
)

// ReplayError says why a datagram failed the replay check and by how much
// the sender's clock differed from ours.
type ReplayError struct {
	Reason error         // ErrTooOld, ErrTooNew or ErrReplay
	Skew   time.Duration // now minus the sender's timestamp; negative when it is ahead
}

// Error names the reason and, for the window checks, the measured skew.
func (e *ReplayError) Error() string {
	switch {
	case errors.Is(e.Reason, ErrReplay):
		return e.Reason.Error()
	case e.Skew < 0:
		return fmt.Sprintf("%v (sender's timestamp is %v ahead of our clock)", e.Reason, (-e.Skew).Round(time.Millisecond))
	}
	return fmt.Sprintf("%v (sender's timestamp is %v behind our clock)", e.Reason, e.Skew.Round(time.Millisecond))
}

// Unwrap returns Reason.
func (e *ReplayError) Unwrap() error { return e.Reason }

// ReplayGuard drops authenticated datagrams that are outside the replay
// window or that it has seen before. It remembers the nonces of accepted
// datagrams until they leave the window, in a cache of bounded size. When
// the cache is full it forgets the datagram with the oldest timestamp and
// from then on rejects anything at least that old, so a replay is never
// accepted: under a flood the window shrinks instead of opening.
//
// A ReplayGuard is not safe for concurrent use; the runtime's single
// protocol goroutine owns it.
type ReplayGuard struct {
	window time.Duration
	max    int
	floor  int64 // unix ms; reject timestamps <= floor
	seen   map[nonceKey]struct{}
	byTime []replayEntry // a min-heap by sent time
}

type nonceKey [24]byte

type replayEntry struct {
	sent  int64 // unix ms
	nonce nonceKey
}

// NewReplayGuard returns a guard with the given window (how far the sender's
// timestamp may be from ours, either way) and cache size (how many datagrams
// a window may hold before it shrinks).
func NewReplayGuard(window time.Duration, size int) *ReplayGuard {
	if size < 1 {
		size = 1
	}
	return &ReplayGuard{
		window: window,
		max:    size,
		floor:  -1 << 63,
		seen:   make(map[nonceKey]struct{}, size),
		byTime: make([]replayEntry, 0, size),
	}
}

// Len is how many nonces the guard remembers.
func (g *ReplayGuard) Len() int { return len(g.byTime) }

// Check accepts a datagram sent at sent, with the given nonce, received at
// now, and remembers it; or rejects it with a *ReplayError. Call it only for
// datagrams that authenticated: nothing an attacker forges may enter the
// cache.
func (g *ReplayGuard) Check(now, sent time.Time, nonce []byte) error {
	// Compare integer milliseconds: time.Time.Sub saturates for far-away
	// timestamps, and negating a saturated Duration overflows.
	nowMs, ms, win := now.UnixMilli(), sent.UnixMilli(), g.window.Milliseconds()
	skew := time.Duration(nowMs-ms) * time.Millisecond
	switch {
	case ms < nowMs-win:
		return &ReplayError{Reason: ErrTooOld, Skew: skew}
	case ms > nowMs+win:
		return &ReplayError{Reason: ErrTooNew, Skew: skew}
	}
	// Forget what has left the window: the window check rejects it from
	// now on. The floor rises to it, so that if our clock steps back, a
	// forgotten datagram is still refused.
	horizon := nowMs - win
	for len(g.byTime) > 0 && g.byTime[0].sent < horizon {
		g.floor = max(g.floor, g.byTime[0].sent)
		g.forgetOldest()
	}
	if len(nonce) == 0 {
		return nil // plaintext: nothing identifies a datagram; the window is all there is
	}
	var key nonceKey
	copy(key[:], nonce)
	if _, dup := g.seen[key]; dup {
		return &ReplayError{Reason: ErrReplay, Skew: skew}
	}
	if ms <= g.floor {
		return &ReplayError{Reason: ErrTooOld, Skew: skew}
	}
	if len(g.byTime) >= g.max {
		if ms <= g.byTime[0].sent {
			return &ReplayError{Reason: ErrTooOld, Skew: skew}
		}
		g.floor = g.byTime[0].sent
		g.forgetOldest()
	}
	g.seen[key] = struct{}{}
	g.push(replayEntry{sent: ms, nonce: key})
	return nil
}

// forgetOldest drops the entry with the oldest timestamp.
func (g *ReplayGuard) forgetOldest() {
	h := g.byTime
	delete(g.seen, h[0].nonce)
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

// push adds e to the heap.
func (g *ReplayGuard) push(e replayEntry) {
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
