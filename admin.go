package membership

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Operator controls over other members: announce that one has left
// (MarkLeft), or forget one locally (RemoveMember). See docs/operator.md.

// Errors of the operator controls, for callers to branch on.
var (
	// ErrUnknownMember: the named member is not in our view (never heard
	// of, forgotten, or outside the allow-list).
	ErrUnknownMember = errors.New("membership: no such member")
	// ErrSelf: the operation is for other members; for ourselves, use
	// Leave (instead of MarkLeft) or Shutdown.
	ErrSelf = errors.New("membership: not for this node itself")
)

// markLeftPoll is how often MarkLeft checks whether its news is out.
const markLeftPoll = 20 * time.Millisecond

// MarkLeft announces that the named member has left the group, as if it
// had called Leave: for a member an operator expelled, or one that is gone
// for good and should not be reported failed for the next hour. Our view
// marks it left at once (emitting EventLeft), and the news is disseminated
// like a real leave, so that every member reports it left and stops
// probing it; left members are forgotten everywhere after the tombstone
// timeout (swim.Config.TombstoneTimeout, 1 h by default).
//
// MarkLeft waits until the news has been sent as often as any update is
// (λ·⌈log2(n+1)⌉ times, SWIM §4.1), or there is nobody to tell, so that
// an operator tool may exit after it; if ctx ends first, it returns ctx's
// error, and the news goes on spreading as long as the node runs.
//
// Stop the member before marking it: a member that is still running hears
// the news and refutes it (SWIM §4.2), and everyone then reports it joined
// again. MarkLeft refuses our own name with ErrSelf (use Leave), and a name
// we do not know with ErrUnknownMember; a member already left is left
// alone.
func (n *Node) MarkLeft(ctx context.Context, name string) error {
	if !n.running() {
		return ErrShutdown
	}
	var err error
	n.do(func() {
		if name == n.cfg.name {
			err = fmt.Errorf("membership: mark left %q: %w: use Leave", name, ErrSelf)
			return
		}
		if _, ok := n.core.Member(name); !ok {
			err = fmt.Errorf("membership: mark left %q: %w", name, ErrUnknownMember)
			return
		}
		if cerr := n.core.MarkLeft(name); cerr != nil {
			err = fmt.Errorf("membership: mark left %q: %w", name, cerr)
		}
	})
	if err != nil {
		return err
	}
	n.log.Info("marked a member left", "member", name)
	tick := time.NewTicker(markLeftPoll)
	defer tick.Stop()
	for {
		var spreading bool
		n.do(func() { spreading = n.core.Disseminating(name) })
		if !spreading {
			return nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("membership: mark left %q: news still spreading: %w", name, ctx.Err())
		case <-n.loopDone:
			return ErrShutdown
		}
	}
}

// RemoveMember forgets the named member in our view only, at once and
// without telling anyone or emitting an event: Members no longer lists it
// and we stop probing it.
//
// It does not keep the member out. If it is alive, it comes back (as
// EventJoined) as soon as news of it reaches us: its next probe of us,
// gossip from any member that holds it, or the next push-pull exchange,
// within seconds. Forgetting a dead or left member also drops its
// tombstone, which is what lets us recognise late news about it as stale
// (SWIM §4.2): a push-pull from a member that still holds it dead brings
// the tombstone back, and stale gossip that it is alive may make it
// reappear as joined until it fails again. To make the whole group forget
// a member, stop it and use MarkLeft; to keep a member out for good, use
// an allow-list (SetAllowList).
//
// RemoveMember refuses our own name with ErrSelf and a name we do not
// know with ErrUnknownMember.
func (n *Node) RemoveMember(name string) error {
	if !n.running() {
		return ErrShutdown
	}
	var err error
	n.do(func() {
		if name == n.cfg.name {
			err = fmt.Errorf("membership: remove %q: %w", name, ErrSelf)
			return
		}
		if _, ok := n.core.Member(name); !ok {
			err = fmt.Errorf("membership: remove %q: %w", name, ErrUnknownMember)
			return
		}
		if cerr := n.core.RemoveMember(name); cerr != nil {
			err = fmt.Errorf("membership: remove %q: %w", name, cerr)
		}
	})
	if err == nil {
		n.log.Info("removed a member from the local view", "member", name)
	}
	return err
}
