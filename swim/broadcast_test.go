package swim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
)

// checkBroadcastInvariants verifies the broadcast queue and the delivery
// state against their indexes and caps.
func checkBroadcastInvariants(t *testing.T, c *Core) {
	t.Helper()
	q := &c.bq
	if q.len() > c.cfg.MaxQueuedBroadcasts || q.bytes > c.cfg.MaxQueuedBroadcastBytes {
		t.Fatalf("broadcast queue over its caps: %d entries, %d bytes", q.len(), q.bytes)
	}
	if len(q.next.s) != len(q.drop.s) {
		t.Fatalf("%d entries to send, %d to drop", len(q.next.s), len(q.drop.s))
	}
	for _, h := range []*bheap{&q.next, &q.drop} {
		for i, e := range h.s {
			if int(e.pos[h.which]) != i {
				t.Fatalf("broadcast %d of heap %d stored at %d", i, h.which, e.pos[h.which])
			}
			if i > 0 && h.less(e, h.s[(i-1)/2]) {
				t.Fatalf("broadcast heap %d order broken", h.which)
			}
		}
	}
	bytes, named := 0, 0
	for _, e := range q.next.s {
		if e.pos[1] < 0 || q.drop.s[e.pos[1]] != e {
			t.Fatal("an entry to send is not among those to drop")
		}
		m := e.msg()
		if e.size != c.size(&m) || c.cfg.CompoundOverhead+e.size > c.cfg.MaxDatagram {
			t.Fatalf("broadcast of size %d recorded as %d", c.size(&m), e.size)
		}
		bytes += e.size
		if e.key != "" && q.named[bkey{e.origin, e.key}] == e {
			named++
		}
	}
	if bytes != q.bytes {
		t.Fatalf("queue bytes %d, entries add up to %d", q.bytes, bytes)
	}
	if named != len(q.named) {
		t.Fatalf("%d keyed entries indexed, %d index entries", named, len(q.named))
	}
	d := &c.dd
	if len(d.origins) > c.cfg.MaxMembers {
		t.Fatalf("%d origins held, MaxMembers %d", len(d.origins), c.cfg.MaxMembers)
	}
	marks, listed := 0, 0
	if d.origins != nil {
		for o := d.lru.next; o != &d.lru; o = o.next {
			listed++
			if d.origins[o.name] != o || o.next.prev != o {
				t.Fatalf("origin list broken at %q", o.name)
			}
			if len(o.keys) > maxOriginKeys {
				t.Fatalf("origin %q holds %d keys", o.name, len(o.keys))
			}
			marks += len(o.keys)
		}
	}
	if listed != len(d.origins) || marks != d.marks || marks > maxKeyMarks {
		t.Fatalf("origins listed %d, held %d; keys %d, counted %d", listed, len(d.origins), marks, d.marks)
	}
	if _, ok := d.origins[c.self.name]; ok {
		t.Fatal("delivery state for ourselves")
	}
}

// user returns a broadcast from origin.
func user(origin string, epoch uint64, seq uint32, key, payload string) Message {
	return Message{Kind: KindUser, From: origin, Incarnation: epoch, Seq: seq, Name: key, Payload: []byte(payload)}
}

// receive steps one datagram of msgs from member 1 into c and returns the
// broadcasts delivered, then advances.
func receive(c *Core, msgs ...Message) []Broadcast {
	c.Step(t0, testAddr(1), msgs)
	out := append([]Broadcast(nil), c.Ready().Broadcasts...)
	c.Advance()
	return out
}

// userMsgs returns the broadcasts among msgs.
func userMsgs(msgs []Message) []Message {
	var out []Message
	for _, m := range msgs {
		if m.Kind == KindUser {
			out = append(out, m)
		}
	}
	return out
}

// drainQueue ticks c until its broadcast queue is empty and returns every
// broadcast message it sent, failing after a minute of virtual time.
func drainQueue(t *testing.T, c *Core) []Message {
	t.Helper()
	var sent []Message
	for n, _ := c.BroadcastQueue(); n > 0; n, _ = c.BroadcastQueue() {
		now := c.NextDeadline()
		if now.Sub(t0) > time.Minute {
			t.Fatalf("broadcast queue still holds %d after a minute", n)
		}
		c.Tick(now)
		for _, d := range c.Ready().Datagrams {
			sent = append(sent, userMsgs(d.Msgs)...)
		}
		c.Advance()
	}
	return sent
}

func TestBroadcastErrors(t *testing.T) {
	c := newTestCore(t, 0, nil)
	know(t, c, 4)
	lim := c.MaxBroadcastPayload(3)
	if lim <= 0 || lim > c.cfg.MaxUserPayload {
		t.Fatalf("MaxBroadcastPayload(3) = %d", lim)
	}
	if err := c.Broadcast("key", make([]byte, lim)); err != nil {
		t.Fatalf("payload at the limit: %v", err)
	}
	err := c.Broadcast("key", make([]byte, lim+1))
	if !errors.Is(err, ErrBroadcastTooLarge) || !strings.Contains(err.Error(), strconv.Itoa(lim)) {
		t.Fatalf("payload over the limit: %v, want ErrBroadcastTooLarge naming %d", err, lim)
	}
	// A longer key leaves less room.
	if l2 := c.MaxBroadcastPayload(200); l2 >= lim {
		t.Fatalf("MaxBroadcastPayload(200) = %d, not below %d", l2, lim)
	}
	if err := c.Broadcast(strings.Repeat("k", MaxNameLen+1), nil); !errors.Is(err, ErrBroadcastTooLarge) ||
		!strings.Contains(err.Error(), strconv.Itoa(MaxNameLen)) {
		t.Fatalf("key over MaxNameLen: %v", err)
	}
	if c.MaxBroadcastPayload(-1) != -1 || c.MaxBroadcastPayload(MaxNameLen+1) != -1 {
		t.Fatal("MaxBroadcastPayload accepts a key length out of range")
	}
	if c.Count(CountBroadcastQueued) != 1 {
		t.Fatalf("queued %d, want 1", c.Count(CountBroadcastQueued))
	}
	c.Leave()
	if err := c.Broadcast("", nil); !errors.Is(err, ErrLeft) {
		t.Fatalf("Broadcast after Leave: %v, want ErrLeft", err)
	}
}

func TestMaxBroadcastFitsBehindLargestProbe(t *testing.T) {
	// A broadcast of the largest payload, from a member with the longest
	// name, with the longest key, leaves with the largest ping-req.
	long := strings.Repeat("n", MaxNameLen)
	c, err := New(DefaultConfig(), Member{Name: long, Addr: testAddr(0)}, rand.New(rand.NewPCG(1, 2)), t0)
	if err != nil {
		t.Fatal(err)
	}
	p := c.MaxBroadcastPayload(MaxNameLen)
	if p < 0 {
		t.Fatalf("MaxBroadcastPayload = %d", p)
	}
	b := userMsg(long, long, p)
	if got := c.cfg.CompoundOverhead + worstProbe(c.size) + c.size(&b); got > c.cfg.MaxDatagram {
		t.Fatalf("largest broadcast behind the largest probe: %d bytes > %d", got, c.cfg.MaxDatagram)
	}
	b = userMsg(long, long, p+1)
	if got := c.cfg.CompoundOverhead + worstProbe(c.size) + c.size(&b); got <= c.cfg.MaxDatagram && p < c.cfg.MaxUserPayload {
		t.Fatalf("MaxBroadcastPayload %d is not the largest: %d bytes fit", p, got)
	}
	if d := DefaultConfig(); d.MaxUserPayload != MaxUserPayloadFor(d) || d.MaxUserPayload != 553 {
		t.Fatalf("default MaxUserPayload %d, MaxUserPayloadFor %d, documented 553", d.MaxUserPayload, MaxUserPayloadFor(d))
	}
}

func TestBroadcastDeliveredOnceAndRelayed(t *testing.T) {
	a := newTestCore(t, 0, nil)
	know(t, a, 4)
	if err := a.Broadcast("", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	sent := drainQueue(t, a)
	if want := int(a.retransmitLimit()); len(sent) != want || a.Count(CountBroadcastSent) != uint64(want) {
		t.Fatalf("sent %d times (counted %d), want λ·⌈log2(n+1)⌉ = %d", len(sent), a.Count(CountBroadcastSent), want)
	}
	m := sent[0]
	if m.From != testName(0) || m.Seq != 1 || string(m.Payload) != "hello" {
		t.Fatalf("broadcast on the wire: %+v", m)
	}

	b := newTestCore(t, 2, nil)
	know(t, b, 4)
	got := receive(b, m)
	if len(got) != 1 || got[0].From != testName(0) || got[0].Key != "" || string(got[0].Payload) != "hello" {
		t.Fatalf("delivered %+v", got)
	}
	// The payload is the receiver's: changing the datagram's bytes does
	// not change it.
	m.Payload[0] = 'j'
	if string(got[0].Payload) != "hello" {
		t.Fatal("delivered payload aliases the datagram")
	}
	m.Payload[0] = 'h'
	if again := receive(b, m, m); len(again) != 0 || b.Count(CountBroadcastDuplicate) != 2 {
		t.Fatalf("a duplicate was delivered (%d) or not counted (%d)", len(again), b.Count(CountBroadcastDuplicate))
	}
	if n, _ := b.BroadcastQueue(); n != 1 || b.Count(CountBroadcastDelivered) != 1 {
		t.Fatalf("relay queue %d, delivered %d; want 1, 1", n, b.Count(CountBroadcastDelivered))
	}
	// Our own broadcast coming back is a duplicate, never delivered.
	if back := receive(a, m); len(back) != 0 || a.Count(CountBroadcastDuplicate) != 1 {
		t.Fatalf("own broadcast delivered to ourselves: %+v", back)
	}
	if n, _ := a.BroadcastQueue(); n != 0 {
		t.Fatal("own broadcast queued again on its way back")
	}
	checkBroadcastInvariants(t, a)
	checkBroadcastInvariants(t, b)
}

func TestBroadcastValidation(t *testing.T) {
	c := newTestCore(t, 0, func(cfg *Config) { cfg.MaxUserPayload = 10 })
	know(t, c, 4)
	long := strings.Repeat("x", MaxNameLen+1)
	for _, m := range []Message{
		user("", 1, 1, "", ""),
		user(long, 1, 1, "", ""),
		user("o", 1, 1, long, ""),
		user("o", 1, 1, "", "01234567890"),
	} {
		before := c.Count(CountMalformed)
		if got := receive(c, m); len(got) != 0 || c.Count(CountMalformed) != before+1 {
			t.Errorf("invalid broadcast %q/%d/%q/%d bytes: delivered %d, malformed +%d",
				m.From[:min(len(m.From), 8)], len(m.From), m.Name[:min(len(m.Name), 8)], len(m.Payload), len(got), c.Count(CountMalformed)-before)
		}
	}
	// Any epoch and sequence number is valid, and so is an origin we do
	// not know as a member.
	if got := receive(c, user("stranger", ^uint64(0), ^uint32(0), "k", "0123456789")); len(got) != 1 {
		t.Fatal("a valid broadcast from an unknown origin was not delivered")
	}
	// A direct message is the runtime's: ignored, not malformed.
	before := c.Count(CountMalformed)
	if got := receive(c, Message{Kind: KindDirect, From: "o", Payload: []byte("x")}); len(got) != 0 || c.Count(CountMalformed) != before {
		t.Fatal("a direct message was delivered or counted as malformed")
	}
	checkBroadcastInvariants(t, c)
}

func TestDedupWindow(t *testing.T) {
	c := newTestCore(t, 0, nil)
	delivered := func(seq uint32) bool { return len(receive(c, user("o", 7, seq, "", ""))) == 1 }
	steps := []struct {
		seq  uint32
		want bool
	}{
		{2000, true},
		{2000, false},
		{2000 - dedupWindow + 1, true}, // the oldest in the window
		{2000 - dedupWindow, false},    // below it: taken for a duplicate
		{1990, true},
		{1990, false},
		{2001, true},
		{5000, true}, // a jump clears the window
		{4000, true},
		{4000, false},
		{5000 - dedupWindow, false},
	}
	for i, s := range steps {
		if got := delivered(s.seq); got != s.want {
			t.Fatalf("step %d, seq %d: delivered %v, want %v", i, s.seq, got, s.want)
		}
	}
	// Serial number arithmetic (RFC 1982) across the wrap.
	wrap := []struct {
		seq  uint32
		want bool
	}{
		{^uint32(0) - 1, true},
		{^uint32(0), true},
		{0, true},
		{1, true},
		{^uint32(0) - 1, false},
		{^uint32(0) - 2, true},
		{1, false},
	}
	for i, s := range wrap {
		if got := len(receive(c, user("w", 7, s.seq, "", ""))) == 1; got != s.want {
			t.Fatalf("wrap step %d, seq %d: delivered %v, want %v", i, s.seq, got, s.want)
		}
	}
	checkBroadcastInvariants(t, c)
}

func TestEpochChange(t *testing.T) {
	// A restarted origin broadcasts under a new epoch from seq 1 again: it
	// is delivered; late broadcasts of its previous life are still
	// delivered once; a third life pushes the oldest out of memory.
	c := newTestCore(t, 0, nil)
	deliver := func(epoch uint64, seq uint32) bool { return len(receive(c, user("o", epoch, seq, "", ""))) == 1 }
	for seq := uint32(1); seq <= 3; seq++ {
		if !deliver(100, seq) {
			t.Fatalf("epoch 100 seq %d not delivered", seq)
		}
	}
	if !deliver(200, 1) || !deliver(200, 2) {
		t.Fatal("the new epoch's first broadcasts were not delivered")
	}
	if deliver(100, 2) || deliver(200, 1) {
		t.Fatal("a duplicate of either life was delivered")
	}
	if !deliver(100, 4) {
		t.Fatal("a late broadcast of the previous life was not delivered")
	}
	if !deliver(300, 1) {
		t.Fatal("a third epoch was not delivered")
	}
	// Epochs 300 and 100 (used last) are remembered, 200 is not.
	if deliver(100, 4) || deliver(300, 1) {
		t.Fatal("a duplicate of a remembered life was delivered")
	}
	if !deliver(200, 2) {
		t.Fatal("the forgotten life's state is still held")
	}
	// A new process (a new Core, with its own randomness) picks a new
	// epoch, and starts again at seq 1.
	self := Member{Name: "o", Addr: testAddr(0)}
	first, _ := New(DefaultConfig(), self, rand.New(rand.NewPCG(1, 1)), t0)
	second, _ := New(DefaultConfig(), self, rand.New(rand.NewPCG(2, 1)), t0)
	if first.bEpoch == second.bEpoch {
		t.Fatalf("two processes share the epoch %d", first.bEpoch)
	}
}

func TestKeyedReplacement(t *testing.T) {
	// At the origin: the newer broadcast replaces the queued older one.
	a := newTestCore(t, 0, nil)
	know(t, a, 4)
	for _, v := range []string{"v1", "v2"} {
		if err := a.Broadcast("cfg", []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	_ = a.Broadcast("other", []byte("o"))
	if n, _ := a.BroadcastQueue(); n != 2 || a.Count(CountBroadcastReplaced) != 1 {
		t.Fatalf("queue %d, replaced %d; want 2, 1", n, a.Count(CountBroadcastReplaced))
	}
	var v1, v2 Message
	for _, m := range drainQueue(t, a) {
		if m.Name == "cfg" && string(m.Payload) != "v2" {
			t.Fatalf("replaced broadcast sent: %+v", m)
		}
		if m.Name == "cfg" {
			v2 = m
		}
	}
	v1 = v2
	v1.Seq, v1.Payload = v2.Seq-1, []byte("v1")

	// A member that gets the newer first never delivers the older.
	b := newTestCore(t, 2, nil)
	if got := receive(b, v2); len(got) != 1 {
		t.Fatal("v2 not delivered")
	}
	if got := receive(b, v1); len(got) != 0 || b.Count(CountBroadcastStale) != 1 {
		t.Fatalf("v1 delivered after v2 (%d), stale %d", len(got), b.Count(CountBroadcastStale))
	}
	// One that gets both in order delivers both, and relays only the newer.
	c := newTestCore(t, 3, nil)
	if got := receive(c, v1); len(got) != 1 {
		t.Fatal("v1 not delivered")
	}
	if got := receive(c, v2); len(got) != 1 {
		t.Fatal("v2 not delivered")
	}
	if n, _ := c.BroadcastQueue(); n != 1 || c.Count(CountBroadcastReplaced) != 1 || string(c.bq.next.s[0].payload) != "v2" {
		t.Fatalf("relay queue holds %d (replaced %d), want v2 alone", n, c.Count(CountBroadcastReplaced))
	}
	// Keys are per origin: another origin's "cfg" is another key.
	other := v1
	other.From = "someone-else"
	if got := receive(b, other); len(got) != 1 {
		t.Fatal("another origin's broadcast under the same key was taken for stale")
	}
	checkBroadcastInvariants(t, b)
	checkBroadcastInvariants(t, c)
}

func TestBroadcastQueueBounds(t *testing.T) {
	c := newTestCore(t, 0, func(cfg *Config) { cfg.MaxQueuedBroadcasts = 8 })
	know(t, c, 4)
	for i := range 10 {
		if err := c.Broadcast("", []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := c.BroadcastQueue(); n != 8 || c.Count(CountBroadcastDropped) != 2 {
		t.Fatalf("queue %d, dropped %d; want 8, 2", n, c.Count(CountBroadcastDropped))
	}
	// Among equally sent entries the oldest went: 0 and 1.
	held := func(p string) bool {
		for _, e := range c.bq.next.s {
			if string(e.payload) == p {
				return true
			}
		}
		return false
	}
	if held("\x00") || held("\x01") || !held("\x02") || !held("\x09") {
		t.Fatal("the entries dropped are not the oldest")
	}
	// Send each once, then add one more: a most-sent entry goes (the
	// oldest of them, 2), not the new one.
	c.Tick(c.NextDeadline())
	c.Advance()
	for _, e := range c.bq.next.s {
		if e.sent != 1 {
			t.Fatalf("an entry was sent %d times, want each once", e.sent)
		}
	}
	_ = c.Broadcast("", []byte("new"))
	if !held("new") || held("\x02") || !held("\x03") || c.Count(CountBroadcastDropped) != 3 {
		t.Fatal("a full queue did not drop the oldest of the most-sent entries")
	}
	checkBroadcastInvariants(t, c)

	// The byte cap.
	d := newTestCore(t, 0, func(cfg *Config) { cfg.MaxQueuedBroadcastBytes = cfg.MaxDatagram })
	know(t, d, 4)
	for range 10 {
		_ = d.Broadcast("", make([]byte, 300))
	}
	if n, b := d.BroadcastQueue(); b > d.cfg.MaxDatagram || n != d.cfg.MaxDatagram/(300+64+len(testName(0))) {
		t.Fatalf("queue of %d broadcasts in %d bytes, cap %d", n, b, d.cfg.MaxDatagram)
	}
	checkBroadcastInvariants(t, d)
}

func TestDeliveryStateBounds(t *testing.T) {
	// At most MaxMembers origins, the least recently heard from going.
	c := newTestCore(t, 0, func(cfg *Config) { cfg.MaxMembers = 4 })
	for i := range 5 {
		receive(c, user(fmt.Sprint("o", i), 1, 1, "", ""))
	}
	if len(c.dd.origins) != 4 || c.Count(CountBroadcastOriginEvicted) != 1 || c.dd.origins["o0"] != nil {
		t.Fatalf("%d origins, evicted %d, o0 held %v", len(c.dd.origins), c.Count(CountBroadcastOriginEvicted), c.dd.origins["o0"] != nil)
	}
	// At most maxOriginKeys keys per origin, the least recently used going:
	// a stale broadcast under an evicted key is no longer recognised.
	d := newTestCore(t, 0, nil)
	receive(d, user("o", 1, 1000, "k0", ""))
	receive(d, user("o", 1, 1001, "k1", ""))
	for i := 2; i <= maxOriginKeys; i++ {
		receive(d, user("o", 1, uint32(1000+2*i), fmt.Sprint("k", i), ""))
		receive(d, user("o", 1, uint32(1001+2*i), "k1", "")) // k1 stays in use
	}
	if got := len(d.dd.origins["o"].keys); got != maxOriginKeys || d.dd.marks != maxOriginKeys {
		t.Fatalf("%d keys held (%d counted), want %d", got, d.dd.marks, maxOriginKeys)
	}
	// Both below are older than the newest under their key, unseen, and
	// within the window.
	if len(receive(d, user("o", 1, 999, "k0", ""))) != 1 {
		t.Fatal("k0 was not the key forgotten")
	}
	if len(receive(d, user("o", 1, 1002, "k1", ""))) != 0 || d.Count(CountBroadcastStale) != 1 {
		t.Fatal("k1, in use, was forgotten")
	}
	checkBroadcastInvariants(t, d)
}

func TestDeliveryStateGlobalKeyBound(t *testing.T) {
	if testing.Short() {
		t.Skip("fills the delivery state: 131,072 keys")
	}
	c := newTestCore(t, 0, func(cfg *Config) { cfg.MaxQueuedBroadcasts = 1 })
	origins := maxKeyMarks/maxOriginKeys + 1
	for o := range origins {
		name := fmt.Sprint("o", o)
		for k := range maxOriginKeys {
			c.receiveBroadcast(&Message{Kind: KindUser, From: name, Incarnation: 1, Seq: uint32(k), Name: strconv.Itoa(k)})
		}
		c.Advance()
	}
	if c.dd.marks > maxKeyMarks || c.Count(CountBroadcastOriginEvicted) != 1 || c.dd.origins["o0"] != nil {
		t.Fatalf("%d keys held, %d origins evicted, o0 held %v", c.dd.marks, c.Count(CountBroadcastOriginEvicted), c.dd.origins["o0"] != nil)
	}
	checkBroadcastInvariants(t, c)
}

func TestForgetDropsDeliveryState(t *testing.T) {
	c := newTestCore(t, 0, nil)
	know(t, c, 4)
	receive(c, user(testName(2), 1, 1, "k", ""))
	if c.dd.origins[testName(2)] == nil {
		t.Fatal("no delivery state")
	}
	if err := c.RemoveMember(testName(2)); err != nil {
		t.Fatal(err)
	}
	if c.dd.origins[testName(2)] != nil || c.dd.marks != 0 {
		t.Fatal("the forgotten member's delivery state is kept")
	}
	checkBroadcastInvariants(t, c)
}

// sizes returns the bytes of membership updates and of broadcasts in msgs.
func sizes(c *Core, msgs []Message) (updates, broadcasts int) {
	for i := range msgs {
		switch {
		case msgs[i].Kind.IsUpdate():
			updates += c.size(&msgs[i])
		case msgs[i].Kind == KindUser:
			broadcasts += c.size(&msgs[i])
		}
	}
	return
}

func TestMembershipNewsNeverStarves(t *testing.T) {
	// With both queues full, every datagram gives membership news at least
	// half its budget (less one update that did not fit), and broadcasts
	// the other half (less one broadcast); no update is carried twice.
	c := newTestCore(t, 0, nil)
	know(t, c, 4)
	for i := 10; i < 60; i++ {
		c.Step(t0, testAddr(1), []Message{{Kind: KindAlive, Name: testName(i), Addr: testAddr(i), Incarnation: 1, Payload: make([]byte, 40)}})
	}
	c.Advance()
	for i := range 50 {
		_ = c.Broadcast(strconv.Itoa(i), make([]byte, 80))
	}
	maxU := EstimateSize(&Message{Name: testName(59), Payload: make([]byte, 40)})
	maxB := EstimateSize(&Message{From: testName(0), Name: "49", Payload: make([]byte, 80)})
	checked := 0
	for range 20 {
		c.Tick(c.NextDeadline())
		for _, d := range c.Ready().Datagrams {
			budget := c.cfg.MaxDatagram - c.cfg.CompoundOverhead
			if d.Msgs[0].Kind.IsProbe() {
				budget -= c.size(&d.Msgs[0])
			}
			u, b := sizes(c, d.Msgs)
			if c.datagramSize(d.Msgs) > c.cfg.MaxDatagram {
				t.Fatalf("datagram of %d bytes", c.datagramSize(d.Msgs))
			}
			if len(c.queue) > 20 && u < budget/2-maxU {
				t.Fatalf("membership news got %d of %d bytes with its queue full", u, budget)
			}
			if nb, _ := c.BroadcastQueue(); nb > 20 && b < budget/2-maxB {
				t.Fatalf("broadcasts got %d of %d bytes with their queue full", b, budget)
			}
			seen := map[string]bool{}
			for _, m := range d.Msgs {
				if m.Kind.IsUpdate() {
					if seen[m.Name] {
						t.Fatalf("update about %s carried twice in one datagram", m.Name)
					}
					seen[m.Name] = true
				}
			}
			checked++
		}
		c.Advance()
	}
	if checked == 0 {
		t.Fatal("no datagram checked")
	}

	// Without membership news, broadcasts take the whole datagram.
	d := newTestCore(t, 0, nil)
	know(t, d, 4)
	for d.QueueLen() > 0 {
		d.Tick(d.NextDeadline())
		d.Advance()
	}
	for i := range 50 {
		_ = d.Broadcast(strconv.Itoa(i), make([]byte, 80))
	}
	d.Tick(d.NextDeadline())
	if len(d.Ready().Datagrams) == 0 {
		t.Fatal("no datagram")
	}
	for _, g := range d.Ready().Datagrams {
		budget := d.cfg.MaxDatagram - d.cfg.CompoundOverhead
		if g.Msgs[0].Kind.IsProbe() {
			budget -= d.size(&g.Msgs[0])
		}
		if _, b := sizes(d, g.Msgs); b < budget-maxB {
			t.Fatalf("broadcasts alone got %d of %d bytes", b, budget)
		}
	}
}

func TestBroadcastsFlowWhileQuiet(t *testing.T) {
	c := newTestCore(t, 0, nil)
	know(t, c, 4)
	c.health = c.cfg.QuietHealth
	if !c.quiet() {
		t.Fatal("not quiet")
	}
	_ = c.Broadcast("", []byte("x"))
	if sent := drainQueue(t, c); len(sent) == 0 {
		t.Fatal("no broadcast sent while quiet")
	}
}

func TestGossipTimerRunsForBroadcasts(t *testing.T) {
	c := newTestCore(t, 0, func(cfg *Config) { cfg.GossipInterval = 200 * time.Millisecond })
	know(t, c, 8)
	for c.QueueLen() > 0 {
		c.Tick(c.NextDeadline())
		c.Advance()
	}
	now := c.NextDeadline()
	c.Tick(now)
	c.Advance()
	idle := c.NextDeadline().Sub(now)
	_ = c.Broadcast("", []byte("x"))
	if got := c.NextDeadline().Sub(now); got > c.cfg.GossipInterval || got >= idle {
		t.Fatalf("next deadline in %v with a broadcast queued (idle: %v)", got, idle)
	}
	c.Tick(c.NextDeadline())
	gossiped := 0
	for _, d := range c.Ready().Datagrams {
		if d.Msgs[0].Kind == KindUser {
			gossiped++
		}
	}
	if gossiped == 0 {
		t.Fatal("the gossip timer sent no broadcast")
	}
	c.Advance()
	drainQueue(t, c)
	// With both queues empty (the unanswered probes make news for a while)
	// the gossip timer is off: a due gossip time does not make the next
	// deadline due.
	for i := 0; c.backlog() > 0; i++ {
		if i > 1000 {
			t.Fatal("the queues never drain")
		}
		c.Tick(c.NextDeadline())
		c.Advance()
	}
	c.nextGossip = c.now
	if next := c.NextDeadline(); !next.After(c.t0.Add(timeDur(c.now))) {
		t.Fatalf("next deadline %v: the gossip timer runs with both queues empty", next.Sub(c.t0.Add(timeDur(c.now))))
	}
}

func TestBroadcastsRespectAnswerBound(t *testing.T) {
	// A ping from a sender we cannot place gets an answer no larger than
	// the ping, broadcasts queued or not.
	c := newTestCore(t, 0, nil)
	know(t, c, 4)
	for i := range 20 {
		_ = c.Broadcast("", make([]byte, 50+i))
	}
	ping := []Message{{Kind: KindPing, Seq: 9, From: "stranger", Name: testName(0), Digest: 1},
		{Kind: KindPad, Payload: make([]byte, 120)}}
	size := c.datagramSize(ping)
	c.Step(t0, testAddr(99), ping)
	ds := datagramsTo(c.Ready(), testAddr(99))
	if len(ds) != 1 {
		t.Fatalf("%d answers", len(ds))
	}
	if got := c.datagramSize(ds[0].Msgs); got > size {
		t.Fatalf("a %d-byte ping answered with %d bytes", size, got)
	}
	if len(userMsgs(ds[0].Msgs)) == 0 {
		t.Fatal("no broadcast rode the answer, though it had room")
	}
	c.Advance()
	// A member we hold at its address gets a full datagram.
	ping[0].From = testName(1)
	c.Step(t0, testAddr(1), ping)
	ds = datagramsTo(c.Ready(), testAddr(1))
	if len(ds) != 1 || c.datagramSize(ds[0].Msgs) <= size {
		t.Fatalf("%d answers to a member, the first not larger than its ping", len(ds))
	}
}

func TestLeaveDoneIgnoresBroadcasts(t *testing.T) {
	c := newTestCore(t, 0, nil)
	know(t, c, 4)
	for i := range 200 {
		_ = c.Broadcast("", make([]byte, 300+i))
	}
	c.Leave()
	for i := 0; i < 40 && !c.LeaveDone(); i++ {
		c.Tick(c.NextDeadline())
		c.Advance()
	}
	if !c.LeaveDone() {
		t.Fatal("Leave never completes")
	}
	if n, _ := c.BroadcastQueue(); n == 0 {
		t.Fatal("the test wants broadcasts still queued at LeaveDone")
	}
}

func TestOutputBroadcasts(t *testing.T) {
	c := newTestCore(t, 0, nil)
	c.Step(t0, testAddr(1), []Message{user("o", 1, 1, "", "x")})
	o := c.Ready()
	if o.Empty() || len(o.Broadcasts) != 1 {
		t.Fatalf("output with a broadcast: empty %v, %d broadcasts", o.Empty(), len(o.Broadcasts))
	}
	p := o.Broadcasts[0].Payload
	c.Advance()
	if !c.Ready().Empty() || string(p) != "x" {
		t.Fatal("Advance kept the broadcast or changed its payload")
	}
}

// FuzzBroadcast feeds arbitrary broadcasts (valid and not, from a few
// origins and epochs, duplicated and reordered), Broadcast calls, ticks
// and answers to strangers to a core, and checks that it never panics,
// keeps its invariants and caps, delivers each (origin, epoch, seq) at most
// once, never delivers a keyed broadcast after a newer one of the same key
// and epoch, never delivers its own, and answers a sender it cannot place
// with no more bytes than it sent.
func FuzzBroadcast(f *testing.F) {
	f.Add([]byte{0, 1, 0, 1, 0, 2, 0, 1, 0, 1, 0, 2})
	f.Add([]byte{0, 2, 1, 5, 3, 0, 0, 2, 1, 4, 3, 0, 1, 0, 3, 2, 5, 4, 3, 0, 2, 9})
	f.Add([]byte{1, 0, 7, 1, 1, 9, 3, 20, 4, 1, 2, 200, 0, 3, 0, 250, 0, 7, 0, 5, 4, 0, 9})
	f.Fuzz(func(t *testing.T, data []byte) { fuzzBody(t, data) })
}

var fuzzBody = func(t *testing.T, data []byte) {
	origins := []string{"o1", "o2", testName(0), testName(1), "", strings.Repeat("x", MaxNameLen+1)}
	epochs := []uint64{1, ^uint64(0)}
	keys := []string{"", "a", "b", strings.Repeat("k", MaxNameLen), strings.Repeat("k", MaxNameLen+1)}
	type triple struct {
		origin string
		epoch  uint64
		seq    uint32
	}
	{
		c := newTestCore(t, 0, func(cfg *Config) {
			cfg.MaxQueuedBroadcasts = 6
			cfg.MaxQueuedBroadcastBytes = 1500
			cfg.MaxUserPayload = 600
			cfg.MaxPayload = 200
			cfg.MaxDatagram = 1000
			cfg.GossipInterval = 100 * time.Millisecond
		})
		know(t, c, 4)
		next := func() byte {
			if len(data) == 0 {
				return 0
			}
			b := data[0]
			data = data[1:]
			return b
		}
		now := t0
		seen := map[string]map[triple]bool{} // by origin
		newest := map[string]map[string]triple{}
		base := uint32(next()) << 24 // sequence numbers near any point of the circle
		for len(data) > 0 {
			switch op := next() % 5; op {
			case 0, 1: // a datagram of broadcasts, maybe behind a ping
				k := 1 + int(next()%4)
				var msgs []Message
				if op == 1 {
					msgs = append(msgs, Message{Kind: KindPing, Seq: 1, From: "stranger", Name: testName(0), Digest: 1},
						Message{Kind: KindPad, Payload: make([]byte, int(next())*2)})
				}
				for i := range k {
					b := next()
					m := Message{
						Kind:        KindUser,
						From:        origins[int(b)%len(origins)],
						Incarnation: epochs[int(b>>3)%len(epochs)],
						Seq:         base + uint32(next()%32) - uint32(b>>7)*dedupWindow,
						Name:        keys[int(b>>4)%len(keys)],
						Payload:     make([]byte, 1+int(next())*3),
					}
					m.Payload[0] = byte(i) // tells the deliveries apart
					if b&0x40 != 0 {
						m.Kind = KindDirect
					}
					msgs = append(msgs, m)
				}
				from := testAddr(99)
				size := c.datagramSize(msgs)
				c.Step(now, from, msgs)
				for _, d := range c.Ready().Datagrams {
					if d.To == from && c.datagramSize(d.Msgs) > max(size, c.datagramSize(d.Msgs[:1])) {
						t.Fatalf("a %d-byte datagram from a stranger answered with %d bytes", size, c.datagramSize(d.Msgs))
					}
				}
				// Which message of msgs each delivery is: the deliveries
				// come in order, told apart by their first byte.
				j := 0
				for _, got := range c.Ready().Broadcasts {
					for j < len(msgs) && (msgs[j].Kind != KindUser || len(got.Payload) == 0 || int(got.Payload[0]) != j-len(msgs)+k) {
						j++
					}
					if j == len(msgs) {
						t.Fatalf("delivered %+v, which the datagram did not hold (in order)", got)
					}
					m := msgs[j]
					j++
					if m.From != got.From || m.Name != got.Key || string(m.Payload) != string(got.Payload) {
						t.Fatalf("delivered %+v for %+v", got, m)
					}
					tr := triple{m.From, m.Incarnation, m.Seq}
					if m.From == c.self.name {
						t.Fatal("own broadcast delivered")
					}
					if seen[m.From][tr] {
						t.Fatalf("%+v delivered twice", tr)
					}
					if seen[m.From] == nil {
						seen[m.From], newest[m.From] = map[triple]bool{}, map[string]triple{}
					}
					seen[m.From][tr] = true
					if m.Name != "" {
						if old, ok := newest[m.From][m.Name]; ok && old.epoch == m.Incarnation && !serialLess(old.seq, m.Seq) {
							t.Fatalf("%+v under key %q delivered after %d", tr, m.Name, old.seq)
						}
						newest[m.From][m.Name] = tr
					}
				}
			case 2:
				_ = c.Broadcast(keys[int(next())%len(keys)], make([]byte, int(next())*3))
			case 3:
				now = now.Add(time.Duration(next()) * 20 * time.Millisecond)
				c.Tick(now)
			case 4:
				switch next() % 3 {
				case 0:
					c.Leave()
				case 1:
					_ = c.SetPayload([]byte{next()})
				case 2:
					base += uint32(next()) * dedupWindow / 4
				}
			}
			// The core forgets the delivery state of a member it forgets
			// (a tombstone an hour old): what it delivered from it may
			// come again.
			for o := range seen {
				if c.dd.origins[o] == nil {
					delete(seen, o)
					delete(newest, o)
				}
			}
			checkInvariants(t, c)
			c.Advance()
		}
	}
}

func TestBroadcastConfigValidate(t *testing.T) {
	for name, mut := range map[string]func(*Config){
		"negative MaxUserPayload":      func(c *Config) { c.MaxUserPayload = -1 },
		"MaxUserPayload above 65535":   func(c *Config) { c.MaxUserPayload = 1 << 16 },
		"no queue":                     func(c *Config) { c.MaxQueuedBroadcasts = 0 },
		"queue bytes below a datagram": func(c *Config) { c.MaxQueuedBroadcastBytes = c.MaxDatagram - 1 },
	} {
		c := DefaultConfig()
		mut(&c)
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: Validate = %v, want ErrConfig", name, err)
		}
	}
	// MaxUserPayload above what fits is valid: Broadcast's own limit
	// applies (and direct messages may use it).
	c := DefaultConfig()
	c.MaxUserPayload = 4000
	if err := c.Validate(); err != nil {
		t.Fatalf("MaxUserPayload 4000: %v", err)
	}
	core, err := New(c, Member{Name: "a", Addr: testAddr(0)}, rand.New(rand.NewPCG(1, 2)), t0)
	if err != nil {
		t.Fatal(err)
	}
	if p := core.MaxBroadcastPayload(0); p >= 4000 || p != MaxUserPayloadFor(c) {
		t.Fatalf("MaxBroadcastPayload(0) = %d with a one-byte name, want MaxUserPayloadFor = %d", p, MaxUserPayloadFor(c))
	}
	if p := core.MaxDirectPayload(); p <= core.MaxBroadcastPayload(0) || p >= 4000 {
		t.Fatalf("MaxDirectPayload = %d: not between the broadcast limit and MaxUserPayload", p)
	}
	d := Message{Kind: KindDirect, From: "a", Payload: make([]byte, core.MaxDirectPayload())}
	if got := c.CompoundOverhead + EstimateSize(&d); got > c.MaxDatagram {
		t.Fatalf("the largest direct message takes %d bytes of %d", got, c.MaxDatagram)
	}
}
