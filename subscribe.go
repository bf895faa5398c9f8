package membership

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Subscription is one consumer's stream of membership events, independent
// of every other: it has its own bounded buffer and its own count of
// events dropped when that buffer was full. The node never waits for a
// subscriber, so a slow one loses events (Members is still the truth) but
// delays neither the others nor the protocol. Get one with Subscribe; end
// it with Close.
type Subscription struct {
	ch      chan Event
	kinds   []EventKind // empty: every kind
	dropped atomic.Uint64
	set     *subscribers
}

// Events returns the subscription's channel. It is closed by Close and by
// the node's Shutdown; events already buffered can still be read.
func (s *Subscription) Events() <-chan Event { return s.ch }

// Dropped returns how many events this subscription lost because its
// buffer was full.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Close ends the subscription: once it returns, no event is sent to it,
// and its channel is closed. Calling it again does nothing.
func (s *Subscription) Close() { s.set.remove(s) }

// wants reports whether the subscription asked for events of kind k.
func (s *Subscription) wants(k EventKind) bool {
	return len(s.kinds) == 0 || slices.Contains(s.kinds, k)
}

// subscribers is a node's set of subscriptions.
type subscribers struct {
	mu      sync.RWMutex
	subs    []*Subscription // guarded by mu
	closed  bool            // set by Shutdown; guarded by mu
	dropped atomic.Uint64   // drops of every subscription, for the metric
}

// Subscribe starts a new subscription to membership events, with a buffer
// of the given capacity (DefaultEventBuffer when buffer is below 1). With
// kinds, only events of those kinds are delivered to it; without, every
// event is. Any number of subscriptions may run at once, each receiving
// every event from the moment it starts (each gets its own copy of the
// member's payload). After Shutdown it returns a subscription whose
// channel is already closed.
//
// Events (the node's default channel) keeps working alongside; a program
// that uses only subscriptions passes WithEventBuffer(0), so that the
// default channel does not fill up and count drops.
func (n *Node) Subscribe(buffer int, kinds ...EventKind) *Subscription {
	if buffer < 1 {
		buffer = DefaultEventBuffer
	}
	s := &Subscription{ch: make(chan Event, buffer), kinds: slices.Clone(kinds), set: &n.subs}
	n.subs.mu.Lock()
	defer n.subs.mu.Unlock()
	if n.subs.closed {
		close(s.ch)
		return s
	}
	n.subs.subs = append(n.subs.subs, s)
	return s
}

// publish hands ev to every subscription that wants it, without waiting,
// and reports how many dropped it. It is safe to call from any goroutine.
func (set *subscribers) publish(ev Event) (dropped int) {
	set.mu.RLock()
	defer set.mu.RUnlock()
	for _, s := range set.subs {
		if !s.wants(ev.Kind) {
			continue
		}
		own := ev
		own.Member.Payload = slices.Clone(ev.Member.Payload)
		select {
		case s.ch <- own:
		default:
			s.dropped.Add(1)
			set.dropped.Add(1)
			dropped++
		}
	}
	return dropped
}

// remove ends one subscription.
func (set *subscribers) remove(s *Subscription) {
	set.mu.Lock()
	defer set.mu.Unlock()
	if i := slices.Index(set.subs, s); i >= 0 {
		set.subs = slices.Delete(set.subs, i, i+1)
		close(s.ch)
	}
}

// closeAll ends every subscription, and every later one at once: Shutdown
// calls it.
func (set *subscribers) closeAll() {
	set.mu.Lock()
	defer set.mu.Unlock()
	for _, s := range set.subs {
		close(s.ch)
	}
	set.subs, set.closed = nil, true
}

// publish hands ev to the subscriptions and logs, at a limited rate, when
// some were too slow for it.
func (n *Node) publish(ev Event) {
	if dropped := n.subs.publish(ev); dropped > 0 {
		if ok, suppressed := n.limiter.allow("subscriptions", time.Now()); ok {
			n.log.Warn("subscription buffer full: events dropped for a slow subscriber; Members() is still the truth",
				"subscribers", dropped, "suppressed", suppressed, "dropped_total", n.subs.dropped.Load())
		}
	}
}

// closedEvents is what Events returns when the default channel is off
// (WithEventBuffer(0)).
var closedEvents = func() chan Event {
	ch := make(chan Event)
	close(ch)
	return ch
}()
