package membership

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/meshward/membership/internal/envelope"
	"github.com/meshward/membership/swim"
)

// Names are unique in a cluster, and nothing but the rule below enforces
// it: a member is its name (SWIM §4.2 orders news about a name by its
// incarnation, which only that member raises). A second process that
// starts with a live member's name would take its place in every view, and
// the two would refute each other for ever.
//
// The rule: a name belongs to the live member that holds it. When a joiner
// claims a name that a seed knows as alive or suspect at another address,
// the seed probes that address; if a member answers there under the name,
// the seed does not merge the joiner's state and ends the stream with a
// sealed refusal that names the address, and the joiner's Join fails with
// a *NameConflictError (it is not retried). If nothing answers there, the
// old address belonged to an earlier life of the joiner (a restart on a new
// address): the join goes ahead at once, and the joiner refutes its old
// entry (SWIM §4.2) without waiting for failure detection. Both sides count
// the conflict, log it at a limited rate and emit EventNameConflict.

// ErrNameConflict: another live member holds the name. Join wraps it in a
// *NameConflictError.
var ErrNameConflict = errors.New("membership: name already held by a live member")

// NameConflictError says which name is held, and where.
type NameConflictError struct {
	// Name is the contested name.
	Name string
	// Addr is where the live member that holds it answers.
	Addr netip.AddrPort
}

// Error names the member and its address.
func (e *NameConflictError) Error() string {
	return fmt.Sprintf("%v: %q answers at %v; give this node another name (WithName)", ErrNameConflict, e.Name, e.Addr)
}

// Unwrap returns ErrNameConflict.
func (e *NameConflictError) Unwrap() error { return ErrNameConflict }

// heldElsewhere reports where a live member holds name in our view, when
// that is not at addr. It reports ours when name is ours.
func (n *Node) heldElsewhere(name string, addr netip.AddrPort) (netip.AddrPort, bool) {
	var m swim.Member
	var ok bool
	n.do(func() { m, ok = n.core.Member(name) })
	if !ok || m.Addr == addr || (m.State != swim.StateAlive && m.State != swim.StateSuspect) {
		return netip.AddrPort{}, false
	}
	return m.Addr, true
}

// answersAs probes addr and reports whether a member named name answers
// there within a protocol period.
func (n *Node) answersAs(ctx context.Context, addr netip.AddrPort, name string) bool {
	if addr == n.tr.LocalAddr() {
		return n.cfg.name == name
	}
	r, err := n.probeAddr(ctx, addr, (*swim.Core).Probe)
	return err == nil && r.Name == name
}

// claimOf returns the address a snapshot's sender claims for itself.
func claimOf(s *swim.Snapshot) (netip.AddrPort, bool) {
	for i := range s.Members {
		if s.Members[i].Name == s.From {
			return s.Members[i].Addr, true
		}
	}
	return netip.AddrPort{}, false
}

// joinConflict checks, on a seed, a joiner's claim to its name; it reports
// the address of the live member that holds it, if there is one.
func (n *Node) joinConflict(ctx context.Context, peer *swim.Snapshot) (netip.AddrPort, bool) {
	claim, ok := claimOf(peer)
	if !ok || !peer.Join {
		return netip.AddrPort{}, false
	}
	held, ok := n.heldElsewhere(peer.From, claim)
	if !ok || !n.answersAs(ctx, held, peer.From) {
		return netip.AddrPort{}, false
	}
	n.nameConflict(peer.From, held, claim)
	return held, true
}

// refuseNameConflict starts the reason of a seed's refusal of a joiner
// whose name a live member holds; the address follows.
const refuseNameConflict = "name_conflict "

// refusal turns a seed's refusal record into the error Join returns, or
// returns nil if err is not a refusal.
func (n *Node) refusal(err error) error {
	var re *envelope.RefusalError
	if !errors.As(err, &re) {
		return nil
	}
	if a, ok := strings.CutPrefix(re.Reason, refuseNameConflict); ok {
		if held, perr := netip.ParseAddrPort(a); perr == nil {
			n.nameConflict(n.cfg.name, held, n.tr.LocalAddr())
			return &NameConflictError{Name: n.cfg.name, Addr: held}
		}
	}
	return fmt.Errorf("membership: %w", re)
}

// nameConflict counts, logs and reports a name held at held and claimed
// from claim.
func (n *Node) nameConflict(name string, held, claim netip.AddrPort) {
	n.met.NameConflict()
	if ok, suppressed := n.limiter.allow("name-conflict", time.Now()); ok {
		n.log.Warn("two processes claim one member name: the joiner is refused", "member", name, "held_at", held, "claimed_from", claim, "suppressed", suppressed)
	}
	n.deliver(Event{Kind: EventNameConflict, Member: Member{Name: name, Addr: held, State: StateAlive}, ConflictAddr: claim})
}
