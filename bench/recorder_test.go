package bench

import (
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"time"
)

// payloadSize is the size of every application broadcast in the
// comparison: an 8-byte identifier and filler.
const payloadSize = 64

// newPayload returns a broadcast payload carrying id. The filler is
// pseudo-random, so that it does not compress: memberlist compresses its
// datagrams by default (EnableCompression), and a filler of one repeated
// byte would shrink its bytes on the wire below what an application's
// (say, a hash or a token) would take.
func newPayload(id uint64) []byte {
	p := make([]byte, payloadSize)
	binary.BigEndian.PutUint64(p, id)
	var seed [32]byte
	binary.BigEndian.PutUint64(seed[:], id)
	rand.NewChaCha8(seed).Read(p[8:])
	return p
}

// payloadID returns the identifier newPayload put in p.
func payloadID(p []byte) (uint64, bool) {
	if len(p) != payloadSize {
		return 0, false
	}
	return binary.BigEndian.Uint64(p), true
}

// recorder notes when each node first received each broadcast. Every node
// of a cluster reports to the cluster's one recorder, keyed by node name.
type recorder struct {
	mu     sync.Mutex
	origin map[uint64]string
	got    map[uint64]map[string]time.Time
	dups   int // receipts of a broadcast the node already had
}

func newRecorder() *recorder {
	return &recorder{origin: map[uint64]string{}, got: map[uint64]map[string]time.Time{}}
}

// sending notes that origin is about to broadcast id, so that the
// broadcast coming back to its origin is neither a receipt nor relayed.
func (r *recorder) sending(id uint64, origin string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.origin[id] = origin
}

// arrived notes that node received id at t, and reports whether it is the
// node's first receipt of id (not counting the origin's own broadcast).
func (r *recorder) arrived(id uint64, node string, t time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.origin[id] == node {
		return false
	}
	m := r.got[id]
	if m == nil {
		m = map[string]time.Time{}
		r.got[id] = m
	}
	if _, ok := m[node]; ok {
		r.dups++
		return false
	}
	m[node] = t
	return true
}

// complete reports whether each of receivers has every one of ids.
func (r *recorder) complete(ids []uint64, receivers []string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ids {
		m := r.got[id]
		for _, nm := range receivers {
			if _, ok := m[nm]; !ok {
				return false
			}
		}
	}
	return true
}

// completion returns, for each receiver that has every one of ids, how
// long after t0 it had the last of them, and how many receivers miss at
// least one.
func (r *recorder) completion(ids []uint64, receivers []string, t0 time.Time) (times []time.Duration, missing int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, nm := range receivers {
		var last time.Time
		ok := true
		for _, id := range ids {
			at, has := r.got[id][nm]
			if !has {
				ok = false
				break
			}
			if at.After(last) {
				last = at
			}
		}
		if !ok {
			missing++
			continue
		}
		times = append(times, last.Sub(t0))
	}
	return times, missing
}

// lastPerID returns, for each of ids, how long after t0 the last of
// receivers got it (0 when one never did).
func (r *recorder) lastPerID(ids []uint64, receivers []string, t0 time.Time) []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]time.Duration, len(ids))
	for i, id := range ids {
		var last time.Time
		for _, nm := range receivers {
			at, ok := r.got[id][nm]
			if !ok {
				last = time.Time{}
				break
			}
			if at.After(last) {
				last = at
			}
		}
		if !last.IsZero() {
			out[i] = last.Sub(t0)
		}
	}
	return out
}

// duplicates returns how many receipts repeated one the node already had.
func (r *recorder) duplicates() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dups
}
