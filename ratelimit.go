package membership

import (
	"sync"
	"time"
)

// logInterval is the least time between two log lines of one kind that a
// remote peer can trigger.
const logInterval = 10 * time.Second

// rateLimiter lets one log line per key through per logInterval and counts
// the ones it held back, so a flood of bad datagrams cannot flood the log.
type rateLimiter struct {
	mu   sync.Mutex
	last map[string]time.Time
	held map[string]int
}

// allow reports whether a line of kind key may be logged now, and how many
// were suppressed since the last one.
func (r *rateLimiter) allow(key string, now time.Time) (bool, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil {
		r.last, r.held = make(map[string]time.Time), make(map[string]int)
	}
	if t, ok := r.last[key]; ok && now.Sub(t) < logInterval {
		r.held[key]++
		return false, 0
	}
	r.last[key] = now
	n := r.held[key]
	r.held[key] = 0
	return true, n
}
