package membership

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/meshward/membership/internal/envelope"
	"github.com/meshward/membership/keyring"
	"github.com/meshward/membership/metrics"
	"github.com/meshward/membership/swim"
)

// A key mismatch is traffic from a peer that holds other keys than ours:
// datagrams or stream records sealed under a key we do not hold, that fail
// authentication, sealed with another suite, or sent in plaintext where we
// require encryption (and the reverse). Failure detection treats such a
// peer as it treats a silent one: we cannot read its acks, so we suspect it
// and declare it failed as usual (docs/keys.md). The mismatch report says
// why: an event per address (EventKeyMismatch), a view (KeyMismatches), a
// log line and a metric, each naming the fingerprint of the key the peer
// used, never a key.
//
// Anyone can send a datagram whose header names any fingerprint, so the
// bookkeeping is bounded: a fixed table of mismatchSlots addresses, filled
// on the receive path without allocating; at most one event and log line
// per address per mismatchRepeat, and at most mismatchBudget of them per
// mismatchRepeat in all; and a metric label of its own only for the
// fingerprints (at most mismatchLabels) seen from the addresses of known
// members, "other" for the rest.

// KeyMismatchReason says what a peer sent that we could not open.
type KeyMismatchReason uint8

// The reasons.
const (
	// MismatchUnknownKey: sealed under a key we do not hold
	// (keyring.ErrUnknownKey): the peer missed a rotation step, or we did.
	MismatchUnknownKey KeyMismatchReason = iota + 1
	// MismatchAuthFailed: sealed under a key whose fingerprint we hold, but
	// authentication failed (keyring.ErrAuthFailed): another cluster label
	// (WithLabel), another key with the same fingerprint, or a forgery.
	MismatchAuthFailed
	// MismatchSuite: sealed with another AEAD suite than our keyring's.
	MismatchSuite
	// MismatchPlaintext: plaintext, and we require encryption
	// (EncryptionRequired).
	MismatchPlaintext
	// MismatchSealed: sealed, and we accept only plaintext
	// (WithoutEncryption, or EncryptionOff).
	MismatchSealed

	numMismatchReasons = iota + 1
)

// String returns "unknown_key", "auth_failed", "suite", "plaintext" or
// "sealed", the values of the reason label of membership.key.mismatches.
func (r KeyMismatchReason) String() string {
	switch r {
	case MismatchUnknownKey:
		return "unknown_key"
	case MismatchAuthFailed:
		return "auth_failed"
	case MismatchSuite:
		return "suite"
	case MismatchPlaintext:
		return "plaintext"
	case MismatchSealed:
		return "sealed"
	}
	return fmt.Sprintf("mismatch(%d)", uint8(r))
}

// KeyMismatch describes a peer whose datagrams or streams we cannot open
// for a reason that is about keys, as KeyMismatches lists them and
// EventKeyMismatch reports them. It never holds key material.
type KeyMismatch struct {
	// Addr is where the traffic came from: the peer's member address, or,
	// for a stream from an address that no member has, the connection's
	// source address.
	Addr netip.AddrPort
	// Member names the member at Addr in our view, "" if none.
	Member string
	// Reason says what was wrong.
	Reason KeyMismatchReason
	// Fingerprint is the fingerprint of the key the peer sealed with, in
	// hex (8 digits), or "" when it sent plaintext or the fingerprint is
	// unknown (a record our plaintext side refused).
	Fingerprint string
	// Suite is the suite the peer sealed with, for MismatchSuite.
	Suite keyring.Suite
	// Stream is true when the last mismatch came on a stream (a push-pull
	// or Join), false for a datagram.
	Stream bool
	// Count is how many datagrams and streams from Addr did not open since
	// First.
	Count uint64
	// First and Last are when the first and the last of them arrived.
	First, Last time.Time
}

// String says what happened in one line, for example "node at
// 10.0.0.7:7946 speaks key 3fa1c2d9, which we do not hold".
func (m KeyMismatch) String() string {
	who := "node at " + m.Addr.String()
	if m.Member != "" {
		who += " (member " + m.Member + ")"
	}
	switch m.Reason {
	case MismatchUnknownKey:
		return fmt.Sprintf("%s speaks key %s, which we do not hold", who, m.Fingerprint)
	case MismatchAuthFailed:
		return fmt.Sprintf("%s speaks key %s, which we hold, but what it sends fails authentication: another cluster label (WithLabel), or forged", who, m.Fingerprint)
	case MismatchSuite:
		return fmt.Sprintf("%s seals with %v (key %s), and our keyring uses another suite", who, m.Suite, m.Fingerprint)
	case MismatchPlaintext:
		return who + " sends plaintext, which we refuse (encryption required)"
	case MismatchSealed:
		if m.Fingerprint == "" {
			return who + " sends sealed records, and we accept only plaintext (encryption off)"
		}
		return fmt.Sprintf("%s seals with key %s, and we accept only plaintext (encryption off)", who, m.Fingerprint)
	}
	return who + " sends what we cannot open (" + m.Reason.String() + ")"
}

// Bounds of the key mismatch bookkeeping.
const (
	// mismatchSlots is how many addresses the table tracks at once.
	mismatchSlots = 64
	// mismatchRepeat is the least time between two reports (event and log
	// line) of one address, unless what it sends changes.
	mismatchRepeat = time.Minute
	// mismatchExpire is how long an address stays in KeyMismatches after
	// its last mismatch. Datagrams from the address that open take it out
	// at once.
	mismatchExpire = 2 * time.Minute
	// mismatchBudget bounds the reports per mismatchRepeat, all addresses
	// together, so that a flood of forgeries from many source addresses
	// cannot fill the Events channel or the log.
	mismatchBudget = 64
	// mismatchLabels bounds the fingerprints with a metric label value of
	// their own.
	mismatchLabels = 16
)

// mismatchSlot is one address of the table.
type mismatchSlot struct {
	addr     netip.AddrPort
	reason   KeyMismatchReason
	fp       [4]byte
	hasFP    bool
	suite    byte
	stream   bool
	n        uint64 // mismatches since first
	count    uint64 // mismatches counted for the metric
	reported uint64 // count as of the last metric report
	first    time.Time
	last     time.Time
	emitted  time.Time // last report; zero: never, or what it sends changed
	used     bool
	cleared  bool // a datagram from addr opened, or it expired: not listed
	member   bool // addr was a known member's when last looked up
}

// mismatchTable tracks the addresses that send what we cannot open. It is
// owned by the loop goroutine, and noting a mismatch allocates nothing.
type mismatchTable struct {
	slots   [mismatchSlots]mismatchSlot
	active  int // slots used and not cleared
	spent   int // reports in the current window
	window  time.Time
	lost    [numMismatchReasons]uint64 // counts of evicted slots, not yet published
	labels  map[[4]byte]string         // fingerprints with a label value of their own
	scratch []swim.Member
}

// find returns the slot of addr, or nil.
func (t *mismatchTable) find(addr netip.AddrPort) *mismatchSlot {
	for i := range t.slots {
		if s := &t.slots[i]; s.used && s.addr == addr {
			return s
		}
	}
	return nil
}

// victim returns the slot to reuse for a new address: a free one, else a
// cleared one, else the one that mismatched longest ago, sparing the
// addresses of members.
func (t *mismatchTable) victim() *mismatchSlot {
	var cleared, stranger, any *mismatchSlot
	for i := range t.slots {
		s := &t.slots[i]
		switch {
		case !s.used:
			return s
		case s.cleared:
			if cleared == nil {
				cleared = s
			}
		case !s.member && (stranger == nil || s.last.Before(stranger.last)):
			stranger = s
		case any == nil || s.last.Before(any.last):
			any = s
		}
	}
	switch {
	case cleared != nil:
		return cleared
	case stranger != nil:
		return stranger
	}
	return any
}

// note records one mismatch from addr and reports whether to tell the
// application about it now (reportMismatch), which the budget and the
// per-address interval allow. It allocates nothing.
func (t *mismatchTable) note(addr netip.AddrPort, reason KeyMismatchReason, fp [4]byte, hasFP bool, suite byte, stream bool, now time.Time) (*mismatchSlot, bool) {
	s := t.find(addr)
	switch {
	case s == nil:
		s = t.victim()
		if s.used {
			t.lost[s.reason] += s.count - s.reported
			if !s.cleared {
				t.active--
			}
		}
		*s = mismatchSlot{addr: addr, used: true, cleared: true}
		fallthrough
	case s.cleared:
		// A new episode; the last report's time is kept, so that an
		// address whose mismatches come and go is reported once per
		// mismatchRepeat.
		s.cleared, s.n, s.first = false, 0, now
		t.active++
	}
	if s.reason != reason || s.fp != fp || s.hasFP != hasFP {
		if s.reason != 0 {
			// It speaks something else now: report at once, and count
			// what was not published under the old reason as "other".
			t.lost[s.reason] += s.count - s.reported
			s.reported = s.count
			s.emitted = time.Time{}
		}
		s.reason, s.fp, s.hasFP = reason, fp, hasFP
	}
	s.suite, s.stream = suite, stream
	s.n++
	s.count++
	s.last = now
	if !s.emitted.IsZero() && now.Sub(s.emitted) < mismatchRepeat {
		return s, false
	}
	if now.Sub(t.window) >= mismatchRepeat {
		t.window, t.spent = now, 0
	}
	if t.spent >= mismatchBudget {
		return s, false
	}
	t.spent++
	s.emitted = now
	return s, true
}

// clear takes addr out of the list: a datagram from it opened.
func (t *mismatchTable) clear(addr netip.AddrPort) {
	if t.active == 0 {
		return
	}
	if s := t.find(addr); s != nil && !s.cleared {
		s.cleared = true
		t.active--
	}
}

// expire takes out the addresses that sent nothing we could not open for
// mismatchExpire.
func (t *mismatchTable) expire(now time.Time) {
	for i := range t.slots {
		if s := &t.slots[i]; s.used && !s.cleared && now.Sub(s.last) >= mismatchExpire {
			s.cleared = true
			t.active--
		}
	}
}

// label is the value of the key label for s: its fingerprint if it came
// from a member's address and the label set has room, "none" without a
// fingerprint, and "other" otherwise.
func (t *mismatchTable) label(s *mismatchSlot) string {
	if !s.hasFP {
		return "none"
	}
	if !s.member {
		return "other"
	}
	if l, ok := t.labels[s.fp]; ok {
		return l
	}
	if len(t.labels) >= mismatchLabels {
		return "other"
	}
	if t.labels == nil {
		t.labels = make(map[[4]byte]string, mismatchLabels)
	}
	l := fmt.Sprintf("%x", s.fp)
	t.labels[s.fp] = l
	return l
}

// view describes s as the application sees it.
func (s *mismatchSlot) view(member string) KeyMismatch {
	m := KeyMismatch{
		Addr:   s.addr,
		Member: member,
		Reason: s.reason,
		Stream: s.stream,
		Count:  s.n,
		First:  s.first,
		Last:   s.last,
	}
	if s.hasFP {
		m.Fingerprint = fmt.Sprintf("%x", s.fp)
		m.Suite = keyring.Suite(s.suite)
	}
	return m
}

// mismatchOf says whether a datagram's rejection is a key mismatch, and
// which.
func mismatchOf(f envelope.Failure) (KeyMismatchReason, keyring.OpenFailure) {
	d := f.Detail()
	switch f.Reason() {
	case envelope.ReasonUnknownKey:
		return MismatchUnknownKey, d
	case envelope.ReasonAuthFailed:
		return MismatchAuthFailed, d
	case envelope.ReasonUnencrypted:
		return MismatchPlaintext, d
	case envelope.ReasonUnknownSuite:
		if knownSuite(d.Suite) {
			return MismatchSuite, d
		}
	case envelope.ReasonNotPlaintext:
		// A Plaintext sealer refuses anything that is not plaintext;
		// only a well-formed sealed header is a peer with keys.
		if d.HasFingerprint && (d.Version == keyring.Version || d.Version == keyring.CompactVersion) && knownSuite(d.Suite) {
			return MismatchSealed, d
		}
	}
	return 0, d
}

func knownSuite(b byte) bool {
	return keyring.Suite(b) == keyring.AESGCM || keyring.Suite(b) == keyring.XChaCha20Poly1305
}

// keyMismatch records a datagram from from that did not open, if the
// reason is a key mismatch, and reports whether it was one. It allocates
// only when it reports (at most once per address per mismatchRepeat).
func (n *Node) keyMismatch(f envelope.Failure, from netip.AddrPort, now time.Time) bool {
	reason, d := mismatchOf(f)
	if reason == 0 {
		return false
	}
	if s, report := n.keys.mm.note(from, reason, d.Fingerprint, d.HasFingerprint, d.Suite, false, now); report {
		n.reportMismatch(s)
	}
	return true
}

// streamKeyMismatch records a stream from (or to) from whose records did
// not open, if err says that is a key mismatch. dialed says that we dialed
// from, a member's address; otherwise it is a connection's source address,
// which names a member only through its IP.
func (n *Node) streamKeyMismatch(from netip.AddrPort, dialed bool, err error) {
	var (
		reason KeyMismatchReason
		fp     [4]byte
		hasFP  bool
		suite  byte
		oe     *keyring.OpenError
	)
	switch {
	case errors.As(err, &oe):
		fp, hasFP, suite = oe.Fingerprint, oe.HasFingerprint, oe.Suite
		switch {
		case errors.Is(oe.Reason, keyring.ErrUnknownKey):
			reason = MismatchUnknownKey
		case errors.Is(oe.Reason, keyring.ErrAuthFailed):
			reason = MismatchAuthFailed
		case errors.Is(oe.Reason, keyring.ErrUnknownSuite) && oe.Suite == 0:
			reason = MismatchPlaintext
		case errors.Is(oe.Reason, keyring.ErrUnknownSuite) && knownSuite(oe.Suite):
			reason = MismatchSuite
		}
	case errors.Is(err, envelope.ErrNotPlaintext):
		reason = MismatchSealed
	}
	if reason == 0 || !from.IsValid() {
		return
	}
	now := time.Now()
	n.do(func() {
		addr := from
		if !dialed {
			addr = n.placeStream(from)
		}
		if s, report := n.keys.mm.note(addr, reason, fp, hasFP, suite, true, now); report {
			n.reportMismatch(s)
		}
	})
}

// addrPortOf converts a connection's address.
func addrPortOf(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		ap := t.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

// mismatchMembers fills the table's scratch with our view. Loop goroutine
// only.
func (n *Node) mismatchMembers() []swim.Member {
	n.keys.mm.scratch = n.core.AppendMembers(n.keys.mm.scratch[:0])
	return n.keys.mm.scratch
}

// memberAt returns the member at addr in our view, preferring a live one.
func memberAt(ms []swim.Member, addr netip.AddrPort) (swim.Member, bool) {
	var found swim.Member
	ok := false
	for _, m := range ms {
		if m.Addr != addr {
			continue
		}
		if m.State == swim.StateAlive || m.State == swim.StateSuspect {
			return m, true
		}
		found, ok = m, true
	}
	return found, ok
}

// placeStream maps a stream's source address to the member it comes from:
// the member at that very address, else the only member with its IP.
// Without one, it returns the source address.
func (n *Node) placeStream(from netip.AddrPort) netip.AddrPort {
	ms := n.mismatchMembers()
	if _, ok := memberAt(ms, from); ok {
		return from
	}
	var at netip.AddrPort
	for _, m := range ms {
		if m.Addr.Addr() != from.Addr() || m.Name == n.cfg.name {
			continue
		}
		if at.IsValid() && at != m.Addr {
			return from // several members on that IP
		}
		at = m.Addr
	}
	if at.IsValid() {
		return at
	}
	return from
}

// reportMismatch tells the application and the log about s: an
// EventKeyMismatch and a warning that names the fingerprint.
func (n *Node) reportMismatch(s *mismatchSlot) {
	m, ok := memberAt(n.mismatchMembers(), s.addr)
	s.member = ok
	km := s.view(m.Name)
	ev := Event{Kind: EventKeyMismatch, Member: Member{Addr: s.addr}, KeyMismatch: km}
	if ok {
		ev.Member = memberOf(m)
	}
	n.log.Warn(km.String(), "addr", km.Addr, "member", km.Member, "key", km.Fingerprint,
		"reason", km.Reason.String(), "stream", km.Stream, "count", km.Count)
	n.deliver(ev)
}

// reportMismatches expires old entries, looks up which addresses are
// members', and publishes the counts since the last report. Loop goroutine
// only, once a second.
func (n *Node) reportMismatches(now time.Time) {
	t := &n.keys.mm
	t.expire(now)
	if t.active > 0 {
		ms := n.mismatchMembers()
		for i := range t.slots {
			if s := &t.slots[i]; s.used && !s.cleared {
				_, s.member = memberAt(ms, s.addr)
			}
		}
	}
	for i := range t.slots {
		s := &t.slots[i]
		if !s.used || s.count == s.reported {
			continue
		}
		if n.met != nil {
			n.met.IncrCounter(metrics.KeyMismatches, float32(s.count-s.reported),
				metrics.Label{Name: metrics.LabelKey, Value: t.label(s)},
				metrics.Label{Name: metrics.LabelReason, Value: s.reason.String()})
		}
		s.reported = s.count
	}
	for r, c := range t.lost {
		if c == 0 {
			continue
		}
		if n.met != nil {
			n.met.IncrCounter(metrics.KeyMismatches, float32(c),
				metrics.Label{Name: metrics.LabelKey, Value: "other"},
				metrics.Label{Name: metrics.LabelReason, Value: KeyMismatchReason(r).String()})
		}
		t.lost[r] = 0
	}
	if n.met != nil {
		n.met.SetGauge(metrics.KeyMismatchAddrs, float32(t.active))
	}
}

// KeyMismatches lists the addresses that sent us, within the last two
// minutes, datagrams or streams we could not open for a reason that is
// about keys (KeyMismatchReason), with the member at each address when we
// know it, sorted by address. An address leaves the list as soon as a
// datagram from it opens. The list holds at most 64 addresses; under a
// flood of forgeries from many source addresses, the addresses of members
// are kept first. It is the truth whatever happened to events: a member in
// it is the one Tarantool's membership would show as "non-decryptable".
func (n *Node) KeyMismatches() []KeyMismatch {
	var out []KeyMismatch
	n.do(func() {
		t := &n.keys.mm
		t.expire(time.Now())
		if t.active == 0 {
			return
		}
		ms := n.mismatchMembers()
		for i := range t.slots {
			s := &t.slots[i]
			if !s.used || s.cleared {
				continue
			}
			m, _ := memberAt(ms, s.addr)
			out = append(out, s.view(m.Name))
		}
	})
	slices.SortFunc(out, func(a, b KeyMismatch) int { return a.Addr.Compare(b.Addr) })
	return out
}
