package membership

import (
	"fmt"
	"time"
)

// Application state in push-pull (memberlist's LocalState and
// MergeRemoteState): data that must converge, not just be announced, rides
// the full-state exchange that a join and the periodic anti-entropy make
// with one member at a time, sealed like the rest of the stream. The
// initiator sends its state after its membership snapshot; the responder
// merges it, then answers with its own.

// DefaultMaxState is the largest application state exchanged in one
// push-pull, either way.
const DefaultMaxState = 1 << 20

// AppState lets an application take part in push-pull: Local returns what to
// send, Merge takes what the peer sent. join is true for the exchange that
// a joining member makes with its seed, on both sides. Both are called on
// a goroutine of the node's (never the protocol's), possibly concurrently
// for different peers; they must not block for long, since the exchange
// waits for them.
type AppState interface {
	// Local returns the state to send, at most the WithState limit
	// (longer is not sent, and logged). Nil or empty sends nothing.
	Local(join bool) []byte
	// Merge receives the peer's state; it is not called when the peer
	// sent none. remote is the receiver's to keep.
	Merge(remote []byte, join bool)
}

// WithState makes the node exchange the application's state in every
// push-pull (at join and then every push-pull interval, with one random
// member), up to max bytes each way (0 means DefaultMaxState, 1 MiB; at
// most 32 MiB). A peer that sends more fails the exchange, counted as
// stream_too_large. Default: none.
func WithState(s AppState, max int) Option {
	return func(c *config) error {
		if s == nil {
			return fmt.Errorf("WithState: nil AppState")
		}
		if max == 0 {
			max = DefaultMaxState
		}
		if max < 0 || max > 32<<20 {
			return fmt.Errorf("WithState: limit %d not in [1, %d]", max, 32<<20)
		}
		c.state, c.maxState = s, max
		return nil
	}
}

// localState asks the application for its state.
func (n *Node) localState(join bool) []byte {
	if n.cfg.state == nil {
		return nil
	}
	b := n.cfg.state.Local(join)
	if len(b) > n.cfg.maxState {
		if ok, suppressed := n.limiter.allow("state-size", time.Now()); ok {
			n.log.Error("application state above the WithState limit: not sent", "size", len(b), "limit", n.cfg.maxState, "suppressed", suppressed)
		}
		return nil
	}
	return b
}

// mergeState hands the peer's state to the application.
func (n *Node) mergeState(remote []byte, join bool) {
	if n.cfg.state == nil || len(remote) == 0 {
		return
	}
	n.cfg.state.Merge(remote, join)
}
