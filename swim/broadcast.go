package swim

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Application broadcasts (KindUser) ride the protocol's datagrams like
// membership news (SWIM §4.1, infection style): every member that holds one
// transmits it λ·⌈log2(n+1)⌉ times, least-sent first, and hands it to its
// application the first time it arrives. This file holds the queue that
// disseminates them and the state that delivers each one once.

// ErrBroadcastTooLarge is returned by Broadcast for a payload longer than
// MaxBroadcastPayload, or a key longer than MaxNameLen. The error's text
// says the limit.
var ErrBroadcastTooLarge = errors.New("swim: broadcast too large")

// Broadcast is an application broadcast received for the first time.
type Broadcast struct {
	// From is the name of the member that broadcast it (the origin).
	From string
	// Key is the broadcast's key, or empty. A newer broadcast with the same
	// key from the same origin replaces this one in the queues that still
	// hold it, and an older one is not delivered after it.
	Key string
	// Payload is the data. It is owned by the receiver: the core copied it
	// from the datagram and keeps no reference to this slice.
	Payload []byte
}

// Bounds of the delivery state (see dedup).
const (
	// dedupWindow is how many sequence numbers below the highest one seen
	// from an origin are remembered, one bit each. A broadcast further
	// behind counts as a duplicate: an origin that sends more than
	// dedupWindow broadcasts while one of them is still spreading may see
	// that one dropped as a duplicate by members that saw the newer ones
	// first.
	dedupWindow = 1024
	// maxOriginKeys bounds the keys remembered per origin (the key → newest
	// sequence number map that keeps a replaced broadcast from being
	// delivered after its replacement); the least recently used goes.
	maxOriginKeys = 256
	// maxKeyMarks bounds the keys remembered over all origins; beyond it
	// the origins heard from least recently are forgotten.
	maxKeyMarks = 1 << 17
)

// serialLess reports whether a is before b in serial number arithmetic
// (RFC 1982) on 32 bits. Numbers exactly 2^31 apart are not ordered; a is
// then taken as not before b.
func serialLess(a, b uint32) bool { return int32(a-b) < 0 }

// ---- the broadcast queue ----

// bcast is one queued broadcast, ours or one we relay.
type bcast struct {
	origin  string
	key     string
	epoch   uint64
	seq     uint32
	payload []byte // owned by the queue
	size    int    // encoded size in a datagram (Config.MessageSize)
	sent    uint16 // transmissions so far
	order   uint64 // queue order: older first among equally sent
	// Positions in bqueue.next and bqueue.drop; the first is -1 while the
	// entry is being packed.
	pos [2]int32
}

func (e *bcast) msg() Message {
	return Message{Kind: KindUser, From: e.origin, Name: e.key, Incarnation: e.epoch, Seq: e.seq, Payload: e.payload}
}

type bkey struct{ origin, key string }

// nextFirst orders the sending heap: least sent first, and among equals
// the oldest first, so that under load every broadcast makes progress.
func nextFirst(a, b *bcast) bool {
	if a.sent != b.sent {
		return a.sent < b.sent
	}
	return a.order < b.order
}

// dropFirst orders the dropping heap: most sent first, and among equals
// the oldest first.
func dropFirst(a, b *bcast) bool {
	if a.sent != b.sent {
		return a.sent > b.sent
	}
	return a.order < b.order
}

// bheap is a binary heap of queued broadcasts that keeps each entry's
// position in it (bcast.pos[which]), for O(log n) removal and update.
type bheap struct {
	s     []*bcast
	which int
	less  func(a, b *bcast) bool
}

func (h *bheap) swap(i, j int) {
	h.s[i], h.s[j] = h.s[j], h.s[i]
	h.s[i].pos[h.which] = int32(i)
	h.s[j].pos[h.which] = int32(j)
}

func (h *bheap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(h.s[i], h.s[p]) {
			return
		}
		h.swap(i, p)
		i = p
	}
}

func (h *bheap) down(i int) bool {
	start, n := i, len(h.s)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		j := l
		if r := l + 1; r < n && h.less(h.s[r], h.s[l]) {
			j = r
		}
		if !h.less(h.s[j], h.s[i]) {
			break
		}
		h.swap(i, j)
		i = j
	}
	return i > start
}

func (h *bheap) fix(e *bcast) {
	if i := int(e.pos[h.which]); !h.down(i) {
		h.up(i)
	}
}

func (h *bheap) push(e *bcast) {
	e.pos[h.which] = int32(len(h.s))
	h.s = append(h.s, e)
	h.up(len(h.s) - 1)
}

func (h *bheap) remove(e *bcast) {
	i, last := int(e.pos[h.which]), len(h.s)-1
	if i != last {
		h.swap(i, last)
	}
	h.s[last] = nil
	h.s = h.s[:last]
	e.pos[h.which] = -1
	if i != last {
		h.fix(h.s[i])
	}
}

// bqueue is the broadcast queue: every entry is in two heaps, one that
// says what to send next (nextFirst) and one that says what to drop when
// the queue is full (dropFirst), and the keyed entries are indexed by
// (origin, key) for replacement.
type bqueue struct {
	next    bheap
	drop    bheap
	named   map[bkey]*bcast
	bytes   int
	order   uint64
	scratch []*bcast
}

func (q *bqueue) init() {
	q.next = bheap{which: 0, less: nextFirst}
	q.drop = bheap{which: 1, less: dropFirst}
}

// len is the number of queued entries.
func (q *bqueue) len() int { return len(q.drop.s) }

// add queues e, whose accounting is the caller's.
func (q *bqueue) add(e *bcast) {
	q.next.push(e)
	q.drop.push(e)
}

// remove takes e out of the queue: out of both heaps (out of the sending
// heap already while it is being packed), its bytes and its index entry.
func (q *bqueue) remove(e *bcast) {
	if e.pos[0] >= 0 {
		q.next.remove(e)
	}
	q.drop.remove(e)
	q.bytes -= e.size
	if e.key != "" && q.named[bkey{e.origin, e.key}] == e {
		delete(q.named, bkey{e.origin, e.key})
	}
}

// victim returns the entry to drop when the queue is full: the one sent
// most often, the oldest among those, other than keep; or nil if keep is
// alone.
func (q *bqueue) victim(keep *bcast) *bcast {
	h := q.drop.s
	if len(h) == 0 || h[0] != keep {
		if len(h) == 0 {
			return nil
		}
		return h[0]
	}
	// keep is the root: the next is one of its children.
	switch {
	case len(h) == 1:
		return nil
	case len(h) == 2 || dropFirst(h[1], h[2]):
		return h[1]
	}
	return h[2]
}

// Broadcast queues payload (copied) for dissemination to every member,
// with an optional key: a newer broadcast with the same key from the same
// origin replaces the older one still queued, here and at every member
// that relays it, and a member that received both in order never delivers
// the older after the newer. It returns ErrBroadcastTooLarge (wrapped with
// the limit in the message) when payload is longer than
// MaxBroadcastPayload(len(key)) or the key longer than MaxNameLen, and
// ErrLeft after Leave. The broadcast is not delivered to ourselves.
//
// Delivery is best effort, like membership news: each member that holds
// the broadcast sends it λ·⌈log2(n+1)⌉ times, which reaches every member
// with high probability (SWIM §4.1); a full queue drops the entry sent most
// often (CountBroadcastDropped).
func (c *Core) Broadcast(key string, payload []byte) error {
	if c.leaving {
		return ErrLeft
	}
	if len(key) > MaxNameLen {
		return fmt.Errorf("%w: key of %d bytes, the limit is %d bytes", ErrBroadcastTooLarge, len(key), MaxNameLen)
	}
	if lim := c.MaxBroadcastPayload(len(key)); len(payload) > lim {
		if lim < 0 {
			return fmt.Errorf("%w: a datagram of %d bytes has no room for a broadcast from %q with a key of %d bytes",
				ErrBroadcastTooLarge, c.cfg.MaxDatagram, c.self.name, len(key))
		}
		return fmt.Errorf("%w: payload of %d bytes, the limit is %d bytes with a key of %d bytes",
			ErrBroadcastTooLarge, len(payload), lim, len(key))
	}
	c.bSeq++
	c.count[CountBroadcastQueued]++
	c.bqPush(c.self.name, key, c.bEpoch, c.bSeq, slices.Clone(payload))
	return nil
}

// MaxBroadcastPayload is the largest payload a broadcast with a key of
// keyLen bytes may carry: it must fit one datagram (MaxDatagram −
// CompoundOverhead) behind the largest probe message, with our own name as
// origin, and be at most Config.MaxUserPayload. It is -1 when keyLen is
// out of range or no payload fits.
func (c *Core) MaxBroadcastPayload(keyLen int) int {
	if keyLen < 0 || keyLen > MaxNameLen {
		return -1
	}
	return min(fitPayload(c.size, c.userRoom, c.self.name, longName[:keyLen]), c.cfg.MaxUserPayload)
}

// MaxDirectPayload is the largest payload of a direct message (KindDirect)
// from us that fits one datagram on its own and is at most
// Config.MaxUserPayload, for a runtime that sends one. It is -1 when none
// fits.
func (c *Core) MaxDirectPayload() int {
	room := c.cfg.MaxDatagram - c.cfg.CompoundOverhead
	fits := func(p int) bool {
		m := Message{Kind: KindDirect, From: c.self.name, Payload: zeros[:p:p]}
		return c.size(&m) <= room
	}
	if !fits(0) {
		return -1
	}
	return min(largestFit(fits, maxUserPayload), c.cfg.MaxUserPayload)
}

// BroadcastQueue reports how many broadcasts wait in the queue and their
// encoded bytes.
func (c *Core) BroadcastQueue() (n, bytes int) { return c.bq.len(), c.bq.bytes }

// bqPush queues a broadcast that we send or relay. A keyed one replaces
// the queued entry with the same origin and key from the same epoch if it
// is newer, and is dropped if it is older. When the queue is full, the
// entries sent most often make room.
func (c *Core) bqPush(origin, key string, epoch uint64, seq uint32, payload []byte) {
	q := &c.bq
	m := Message{Kind: KindUser, From: origin, Name: key, Incarnation: epoch, Seq: seq, Payload: payload}
	size := c.size(&m)
	if c.tooLarge(size) {
		return
	}
	q.order++
	var old *bcast
	k := bkey{origin, key}
	if key != "" {
		old = q.named[k]
	}
	if old != nil && old.epoch == epoch {
		if !serialLess(old.seq, seq) {
			return // what we queued is newer
		}
		c.count[CountBroadcastReplaced]++
		q.bytes += size - old.size
		old.seq, old.payload, old.size, old.sent, old.order = seq, payload, size, 0, q.order
		q.next.fix(old)
		q.drop.fix(old)
		c.bqTrim(old)
		return
	}
	e := &bcast{origin: origin, key: key, epoch: epoch, seq: seq, payload: payload, size: size, order: q.order}
	if key != "" {
		// A broadcast from another life of the origin is not ordered with
		// the one queued: both stay, and the index holds the newest
		// arrival.
		if q.named == nil {
			q.named = make(map[bkey]*bcast)
		}
		q.named[k] = e
	}
	q.add(e)
	q.bytes += e.size
	c.bqTrim(e)
}

// bqTrim drops the entries sent most often, never keep, until the queue
// is within its caps.
func (c *Core) bqTrim(keep *bcast) {
	q := &c.bq
	for q.len() > c.cfg.MaxQueuedBroadcasts || q.bytes > c.cfg.MaxQueuedBroadcastBytes {
		v := q.victim(keep)
		if v == nil {
			return // keep alone, which fits: MaxQueuedBroadcastBytes ≥ MaxDatagram
		}
		q.remove(v)
		c.count[CountBroadcastDropped]++
	}
}

// packBroadcasts appends queued broadcasts to the datagram being built,
// least-sent first, while they fit budget, and returns how many it added.
// An entry sent λ·⌈log2(n+1)⌉ times leaves the queue.
func (c *Core) packBroadcasts(budget *int) int {
	q := &c.bq
	limit := c.retransmitLimit()
	q.scratch = q.scratch[:0]
	n, skips := 0, 0
	for pops := 0; len(q.next.s) > 0 && pops < maxPackPops && skips < maxPackSkips && *budget > 0; pops++ {
		e := q.next.s[0]
		q.next.remove(e)
		q.scratch = append(q.scratch, e)
		if e.size > *budget {
			skips++
			continue
		}
		c.arena = append(c.arena, e.msg())
		*budget -= e.size
		e.sent++
		n++
	}
	for _, e := range q.scratch {
		if e.sent < limit {
			q.next.push(e)
			q.drop.fix(e)
		} else {
			q.remove(e)
		}
	}
	clear(q.scratch)
	q.scratch = q.scratch[:0]
	c.count[CountBroadcastSent] += uint64(n)
	return n
}

// ---- receiving: validation, exactly-once delivery, relay ----

// receiveBroadcast handles a received broadcast: it delivers it to the
// application and queues it for relay the first time it arrives, and
// counts it otherwise.
func (c *Core) receiveBroadcast(m *Message) {
	if !c.validName(m.From) || len(m.Name) > MaxNameLen || len(m.Payload) > c.cfg.MaxUserPayload {
		c.count[CountMalformed]++
		return
	}
	if m.From == c.self.name {
		// Ours, coming back (or a previous life's): never delivered to
		// ourselves.
		c.count[CountBroadcastDuplicate]++
		return
	}
	o := c.dd.origin(c, m.From)
	if !o.see(m.Incarnation, m.Seq) {
		c.count[CountBroadcastDuplicate]++
		return
	}
	if m.Name != "" && !c.dd.newerKey(c, o, c.keyHash(m.Name), m.Incarnation, m.Seq) {
		c.count[CountBroadcastStale]++
		return
	}
	c.count[CountBroadcastDelivered]++
	c.out.Broadcasts = append(c.out.Broadcasts, Broadcast{From: o.name, Key: strings.Clone(m.Name), Payload: slices.Clone(m.Payload)})
	key := c.out.Broadcasts[len(c.out.Broadcasts)-1].Key
	c.bqPush(o.name, key, m.Incarnation, m.Seq, slices.Clone(m.Payload))
}

// keyHash is a 64-bit hash of a broadcast key, salted per process: the
// delivery state remembers keys by hash, so that their memory is fixed. Two
// keys of one origin with the same hash (one pair in 2^64) would make the
// older of two broadcasts under them look stale.
func (c *Core) keyHash(key string) uint64 {
	h := uint64(14695981039346656037) ^ c.keySalt
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= 1099511628211
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

// dedup is the delivery state: per origin, which sequence numbers of its
// last two epochs were seen, and the newest sequence number delivered per
// key. It holds at most MaxMembers origins, the least recently heard from
// going first, and at most maxKeyMarks keys in all.
type dedup struct {
	origins map[string]*originState
	lru     originState // sentinel: lru.next is the most recent
	marks   int         // keys remembered over all origins
	tick    uint64      // use counter for the keys' LRU
}

// originState is what we remember of one origin.
type originState struct {
	name       string
	lives      [2]life // the epochs heard from most recently, most recent first
	keys       []keyMark
	prev, next *originState
}

// life is the dedup window of one epoch of an origin: bit s%dedupWindow
// says whether sequence number s was seen, for s in (top−dedupWindow, top].
type life struct {
	used  bool
	epoch uint64
	top   uint32
	bits  [dedupWindow / 64]uint64
}

// keyMark is the newest broadcast delivered under one key of an origin.
type keyMark struct {
	hash  uint64
	epoch uint64
	seq   uint32
	used  uint64
}

func (l *life) bit(s uint32) (word int, mask uint64) {
	i := s % dedupWindow
	return int(i / 64), 1 << (i % 64)
}

// see records seq and reports whether it is new: not seen before and not
// below the window.
func (l *life) see(seq uint32) bool {
	d := int32(seq - l.top)
	switch {
	case d > 0:
		if d >= dedupWindow {
			clear(l.bits[:])
		} else {
			for s := l.top + 1; s != seq; s++ {
				w, m := l.bit(s)
				l.bits[w] &^= m
			}
		}
		l.top = seq
		w, m := l.bit(seq)
		l.bits[w] |= m
		return true
	case d <= -dedupWindow:
		return false
	}
	w, m := l.bit(seq)
	if l.bits[w]&m != 0 {
		return false
	}
	l.bits[w] |= m
	return true
}

// see records broadcast (epoch, seq) of o and reports whether it is new.
// A third epoch pushes out the one heard from least recently.
func (o *originState) see(epoch uint64, seq uint32) bool {
	if o.lives[0].used && o.lives[0].epoch == epoch {
		return o.lives[0].see(seq)
	}
	if o.lives[1].used && o.lives[1].epoch == epoch {
		o.lives[0], o.lives[1] = o.lives[1], o.lives[0]
		return o.lives[0].see(seq)
	}
	o.lives[1] = o.lives[0]
	o.lives[0] = life{used: true, epoch: epoch, top: seq}
	w, m := o.lives[0].bit(seq)
	o.lives[0].bits[w] = m
	return true
}

func (d *dedup) unlink(o *originState) {
	o.prev.next = o.next
	o.next.prev = o.prev
	o.prev, o.next = nil, nil
}

func (d *dedup) pushFront(o *originState) {
	o.prev = &d.lru
	o.next = d.lru.next
	d.lru.next.prev = o
	d.lru.next = o
}

// origin returns the state of the named origin, most recently used from
// now on, creating it (and forgetting the least recently used origin if
// MaxMembers are held) if needed.
func (d *dedup) origin(c *Core, name string) *originState {
	if d.origins == nil {
		d.origins = make(map[string]*originState)
		d.lru.next, d.lru.prev = &d.lru, &d.lru
	}
	if o := d.origins[name]; o != nil {
		d.unlink(o)
		d.pushFront(o)
		return o
	}
	if len(d.origins) >= c.cfg.MaxMembers {
		d.remove(d.lru.prev)
		c.count[CountBroadcastOriginEvicted]++
	}
	o := &originState{name: strings.Clone(name)}
	d.origins[o.name] = o
	d.pushFront(o)
	return o
}

func (d *dedup) remove(o *originState) {
	d.marks -= len(o.keys)
	delete(d.origins, o.name)
	d.unlink(o)
}

// forget drops what we remember of the named origin (a member that the
// core forgets).
func (d *dedup) forget(name string) {
	if o := d.origins[name]; o != nil {
		d.remove(o)
	}
}

// newerKey reports whether broadcast (epoch, seq) under the key with hash
// h is newer than the newest one delivered under it from o, and records it
// if so. Broadcasts of two epochs (two lives of the origin) are not
// ordered: the later arrival counts as newer.
func (d *dedup) newerKey(c *Core, o *originState, h, epoch uint64, seq uint32) bool {
	d.tick++
	for i := range o.keys {
		k := &o.keys[i]
		if k.hash != h {
			continue
		}
		k.used = d.tick
		if k.epoch == epoch && !serialLess(k.seq, seq) {
			return false
		}
		k.epoch, k.seq = epoch, seq
		return true
	}
	mark := keyMark{hash: h, epoch: epoch, seq: seq, used: d.tick}
	if len(o.keys) >= maxOriginKeys {
		lru := 0
		for i := range o.keys {
			if o.keys[i].used < o.keys[lru].used {
				lru = i
			}
		}
		o.keys[lru] = mark
		return true
	}
	for d.marks >= maxKeyMarks && d.lru.prev != o {
		d.remove(d.lru.prev)
		c.count[CountBroadcastOriginEvicted]++
	}
	o.keys = append(o.keys, mark)
	d.marks++
	return true
}
