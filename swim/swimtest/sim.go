// Package swimtest is a deterministic discrete-event simulator of many
// swim.Core members over a virtual network in virtual time. It is how the
// swim package checks the SWIM and Lifeguard papers' numbers, and users can
// run it for capacity planning: how many messages and bytes a member sends
// per period, how fast a failure is detected and known everywhere, how many
// false suspicions a given loss rate causes.
//
// The network has per-link loss, a uniform latency range (which also
// reorders), duplication, partitions and one-way links. Members can crash,
// resume, restart with a lost incarnation, and be slowed (delayed message
// handling, the fault Lifeguard was measured against). The same seed gives
// the same run: every random choice comes from seeded generators and events
// at equal times run in the order they were scheduled.
//
// Push-pull exchanges are carried out at once (as if TCP took one round
// trip) when both ends are up and the network lets both directions through.
//
// Stream pings (the core's fallback probe, swim.Config.StreamFallback) are
// modelled only with Options.Streams: a stream is not subject to datagram
// loss (TCP retransmits what is lost) but is cut by partitions and Block,
// fails when the target is crashed, and takes three round trips of the
// link's latency (connect, hellos, ping and ack), plus the target's Slow
// delay. Without Options.Streams every stream ping fails, as if the
// runtime had no stream transport, so that the statistical tests of the
// papers' formulas keep their meaning.
//
// Application broadcasts go out with Broadcast, and every member's
// deliveries are kept with their virtual time (Node.Delivered), so that a
// test can check that each member got each broadcast once, and when.
package swimtest

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/meshward/membership/swim"
)

// Link describes the network from one member to another.
type Link struct {
	// Loss is the probability that a datagram is lost.
	Loss float64
	// Duplicate is the probability that a delivered datagram is
	// delivered twice.
	Duplicate float64
	// LatencyMin and LatencyMax bound the one-way delay, drawn uniformly;
	// a range reorders datagrams.
	LatencyMin, LatencyMax time.Duration
}

// Options configures a simulation.
type Options struct {
	// Nodes is the number of members at the start.
	Nodes int
	// Seed makes the run reproducible.
	Seed uint64
	// Config is every member's protocol configuration.
	Config swim.Config
	// Link is the default link between any two members.
	Link Link
	// ViewSize, when positive, starts every member knowing only that many
	// random others, and the members that picked it (about twice as many
	// in all), instead of everyone (full views of n members cost n²
	// entries; at n = 10,000 that is 10⁸). Members learn the rest only
	// from gossip and push-pull.
	ViewSize int
	// Payload is every member's payload at the start.
	Payload []byte
	// ClockIncarnation starts every member, and every restarted one, at
	// the virtual time in whole seconds since Start as its incarnation,
	// the way the node runtime takes its first incarnation from the
	// clock, instead of at 0. A restarted member is then above its
	// previous life, and a process started later than another under the
	// same name is above it.
	ClockIncarnation bool
	// Streams models the runtime's stream transport for the cores' stream
	// pings (swim.Output.StreamProbes): see the package comment. Off,
	// every stream ping fails and the run is the same as without
	// Config.StreamFallback.
	Streams bool
}

// Stats counts what a member sent and received.
type Stats struct {
	Datagrams uint64 // datagrams sent
	Messages  uint64 // messages sent, probe messages and updates
	Bytes     uint64 // bytes sent: compound overhead plus message sizes
	Received  uint64 // datagrams handled
	PushPulls uint64 // state exchanges started
	// StreamProbes counts stream pings asked for (swim.Config.StreamFallback),
	// carried out only with Options.Streams.
	StreamProbes uint64
}

// Add adds o to s.
func (s *Stats) Add(o Stats) {
	s.Datagrams += o.Datagrams
	s.Messages += o.Messages
	s.Bytes += o.Bytes
	s.Received += o.Received
	s.PushPulls += o.PushPulls
	s.StreamProbes += o.StreamProbes
}

// Delivery is one application broadcast delivered to a member.
type Delivery struct {
	swim.Broadcast
	// At is when the member delivered it.
	At time.Time
}

// Node is one simulated member.
type Node struct {
	Index int
	Name  string
	Addr  netip.AddrPort
	Core  *swim.Core
	// Up is false while the member is crashed.
	Up bool
	// Slow delays the handling of every received datagram by a time drawn
	// uniformly from [Slow/2, 3·Slow/2] (Lifeguard §5's fault).
	Slow  time.Duration
	Stats Stats
	// Delivered lists the broadcasts the member delivered, in order, over
	// all its lives.
	Delivered []Delivery

	tickAt   int64
	downAt   int64
	restarts int
}

// Detection is what the simulator observed about one crash.
type Detection struct {
	// CrashedAt is when the member crashed.
	CrashedAt time.Time
	// FirstAccused is when an up member first suspected it (or declared
	// it dead, with suspicion off); zero if nobody did yet.
	FirstAccused time.Time
	// AllKnow is when every up member held it dead; zero if not yet.
	AllKnow time.Time
}

type eventKind uint8

const (
	evTick eventKind = iota + 1
	evDeliver
	evHandle // a delivered datagram whose handling a slow member delays
	evPushPull
	evStreamProbe
)

type event struct {
	at   int64
	seq  uint64
	kind eventKind
	node int32
	join bool
	pseq uint32 // evStreamProbe: the probe's sequence number
	name string // evStreamProbe: the target's name
	from netip.AddrPort
	to   netip.AddrPort
	msgs []swim.Message
}

// Sim is a running simulation.
type Sim struct {
	opts   Options
	rng    *rand.Rand
	t0     time.Time
	now    int64
	nodes  []*Node
	byAddr map[netip.AddrPort]*Node
	names  map[string]*Node
	events []event
	evSeq  uint64
	free   [][]swim.Message
	size   func(*swim.Message) int

	links   map[[2]int]Link
	blocked map[[2]int]bool
	group   []int

	detect map[int]*Detection

	// OnEvent, when set, sees every membership event of every up member.
	OnEvent func(n *Node, ev swim.Event)
	// OnProbeResult, when set, sees every probe result.
	OnProbeResult func(n *Node, r swim.ProbeResult)
	// OnBroadcast, when set, sees every broadcast delivered to a member,
	// besides its Node.Delivered.
	OnBroadcast func(n *Node, b swim.Broadcast)

	// FalseSuspicions counts Suspected events about members that were up,
	// FalseDeaths Failed events about members that were up, and
	// FalseDeathsHealthy those about up members that were not slow. Each
	// observing member's event counts: one false suspicion that reaches
	// the whole cluster of n counts n−1 times.
	FalseSuspicions, FalseDeaths, FalseDeathsHealthy uint64
	// StreamAcks counts stream pings that were acked (Options.Streams).
	StreamAcks uint64
	// Dropped counts datagrams lost, blocked or sent to nobody.
	Dropped uint64
	// Oversized counts datagrams whose encoded size (as
	// Config.MessageSize counts it) exceeded Config.MaxDatagram: always
	// zero unless the core breaks its byte budget.
	Oversized uint64
}

// Start is the virtual time at which every simulation starts.
var Start = time.Unix(1_700_000_000, 0)

// New builds a simulation of opts.Nodes members that all know each other
// (or ViewSize random others), alive at incarnation 0.
func New(opts Options) (*Sim, error) {
	if err := opts.Config.Validate(); err != nil {
		return nil, err
	}
	s := &Sim{
		opts:    opts,
		rng:     rand.New(rand.NewPCG(opts.Seed, 0x5eed)),
		t0:      Start,
		byAddr:  make(map[netip.AddrPort]*Node, opts.Nodes),
		names:   make(map[string]*Node, opts.Nodes),
		links:   make(map[[2]int]Link),
		blocked: make(map[[2]int]bool),
		detect:  make(map[int]*Detection),
		size:    opts.Config.MessageSize,
	}
	if s.size == nil {
		s.size = swim.EstimateSize
	}
	for i := 0; i < opts.Nodes; i++ {
		if _, err := s.newNode(""); err != nil {
			return nil, err
		}
	}
	if opts.ViewSize <= 0 || opts.ViewSize >= opts.Nodes-1 {
		snap := swim.Snapshot{From: "swimtest-bootstrap", Members: make([]swim.MemberState, 0, len(s.nodes))}
		for _, n := range s.nodes {
			snap.Members = append(snap.Members, swim.MemberState{Name: n.Name, Addr: n.Addr, Payload: opts.Payload})
		}
		for _, n := range s.nodes {
			_ = n.Core.Merge(s.Now(), &snap)
			n.Core.Advance()
		}
	} else {
		// Views are symmetric: a member also knows those that picked it,
		// so that whoever pings a member is known to it, as in a real
		// cluster, where push-pull makes views full (an answer to a
		// sender the receiver cannot place carries no gossip beyond the
		// size of the ping; see swim's answerLimit).
		views := make([][]int32, len(s.nodes))
		for i := range s.nodes {
			for k := 0; k < opts.ViewSize; {
				o := s.rng.IntN(len(s.nodes))
				if o != i {
					views[i] = append(views[i], int32(o))
					views[o] = append(views[o], int32(i))
					k++
				}
			}
		}
		snap := swim.Snapshot{From: "swimtest-bootstrap", Members: make([]swim.MemberState, 0, 2*opts.ViewSize)}
		for i, n := range s.nodes {
			snap.Members = snap.Members[:0]
			for _, o := range views[i] {
				snap.Members = append(snap.Members, swim.MemberState{Name: s.nodes[o].Name, Addr: s.nodes[o].Addr, Payload: opts.Payload})
			}
			views[i] = nil
			_ = n.Core.Merge(s.Now(), &snap)
			n.Core.Advance()
		}
	}
	for _, n := range s.nodes {
		s.schedule(n)
	}
	return s, nil
}

func (s *Sim) newNode(name string) (*Node, error) {
	i := len(s.nodes)
	if name == "" {
		name = fmt.Sprintf("node-%05d", i)
	}
	n := &Node{Index: i, Name: name, Addr: addrOf(i, 0), Up: true, tickAt: -1}
	if err := s.boot(n); err != nil {
		return nil, err
	}
	s.nodes = append(s.nodes, n)
	s.group = append(s.group, 0)
	s.byAddr[n.Addr] = n
	if s.names[n.Name] == nil {
		s.names[n.Name] = n
	}
	return n, nil
}

func (s *Sim) boot(n *Node) error {
	var inc uint64
	if s.opts.ClockIncarnation {
		inc = uint64(s.now / int64(time.Second))
	}
	core, err := swim.New(s.opts.Config, swim.Member{Name: n.Name, Addr: n.Addr, Payload: s.opts.Payload, Incarnation: inc},
		rand.New(rand.NewPCG(s.opts.Seed, uint64(n.Index)<<16|uint64(n.restarts))), s.Now())
	if err != nil {
		return err
	}
	n.Core = core
	return nil
}

func addrOf(i, gen int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(gen), byte(i >> 8), byte(i)}), uint16(7946+i>>16))
}

// Now returns the virtual time.
func (s *Sim) Now() time.Time { return s.t0.Add(time.Duration(s.now)) }

// Nodes returns every member ever created, crashed ones included.
func (s *Sim) Nodes() []*Node { return s.nodes }

// Node returns member i.
func (s *Sim) Node(i int) *Node { return s.nodes[i] }

// Period returns the configured protocol period.
func (s *Sim) Period() time.Duration { return s.opts.Config.ProbeInterval }

// ---- faults ----

// SetLink overrides the link from member a to member b.
func (s *Sim) SetLink(a, b int, l Link) { s.links[[2]int{a, b}] = l }

// Block cuts the link from a to b (one way).
func (s *Sim) Block(a, b int) { s.blocked[[2]int{a, b}] = true }

// Unblock restores the link from a to b.
func (s *Sim) Unblock(a, b int) { delete(s.blocked, [2]int{a, b}) }

// Partition splits the members into the given groups; members in no group
// form one more group. Members in different groups cannot reach each other.
func (s *Sim) Partition(groups ...[]int) {
	for i := range s.group {
		s.group[i] = 0
	}
	for g, members := range groups {
		for _, i := range members {
			s.group[i] = g + 1
		}
	}
}

// Heal ends every partition.
func (s *Sim) Heal() {
	for i := range s.group {
		s.group[i] = 0
	}
}

// Crash stops member i: it receives nothing and its timers stop.
func (s *Sim) Crash(i int) {
	n := s.nodes[i]
	if !n.Up {
		return
	}
	n.Up = false
	n.downAt = s.now
	s.detect[i] = &Detection{CrashedAt: s.Now()}
}

// Resume brings a crashed member back with its state as it was (a pause).
func (s *Sim) Resume(i int) {
	n := s.nodes[i]
	if n.Up {
		return
	}
	n.Up = true
	delete(s.detect, i)
	n.tickAt = -1
	s.schedule(n)
}

// Restart brings a crashed member back as a new process: same name,
// incarnation 0 (the old one is lost) or the clock's (ClockIncarnation),
// at a new address when newAddr is set, joining through up to three random
// up members.
func (s *Sim) Restart(i int, newAddr bool) error {
	n := s.nodes[i]
	n.Up = false
	n.restarts++
	if newAddr {
		delete(s.byAddr, n.Addr)
		n.Addr = addrOf(i, n.restarts)
		s.byAddr[n.Addr] = n
	}
	if err := s.boot(n); err != nil {
		return err
	}
	n.Up = true
	delete(s.detect, i)
	n.Core.Join(s.seeds(n, 3))
	s.drain(n)
	return nil
}

// Add creates a new member that joins through up to three random up
// members, and returns it.
func (s *Sim) Add() (*Node, error) { return s.AddNamed("") }

// AddNamed is Add with the new member's name. The name may be a member's
// that exists already: that is a second process started under one name by
// mistake, at its own address (which the members report with
// swim.EventNameConflict). Knows and the detection statistics go by the
// first member of a name.
func (s *Sim) AddNamed(name string) (*Node, error) {
	n, err := s.newNode(name)
	if err != nil {
		return nil, err
	}
	n.Core.Join(s.seeds(n, 3))
	s.drain(n)
	return n, nil
}

func (s *Sim) seeds(self *Node, k int) []netip.AddrPort {
	var out []netip.AddrPort
	for tries := 0; len(out) < k && tries < 10*k; tries++ {
		o := s.nodes[s.rng.IntN(len(s.nodes))]
		if o != self && o.Up {
			out = append(out, o.Addr)
		}
	}
	return out
}

// Do calls f with member i's core (to call Leave, SetPayload, Probe, ...)
// and then acts on the core's output.
func (s *Sim) Do(i int, f func(c *swim.Core)) {
	n := s.nodes[i]
	f(n.Core)
	s.drain(n)
}

// Broadcast calls Broadcast on member i's core and acts on its output.
func (s *Sim) Broadcast(i int, key string, payload []byte) error {
	n := s.nodes[i]
	err := n.Core.Broadcast(key, payload)
	s.drain(n)
	return err
}

// Converged reports whether every up member holds every other up member
// alive (and so, with no crashed members, whether the views agree).
func (s *Sim) Converged() bool {
	for _, subj := range s.nodes {
		if subj.Up && !s.Knows(subj, swim.StateAlive) {
			return false
		}
	}
	return true
}

// Detection returns what was observed about the crash of member i.
func (s *Sim) Detection(i int) (Detection, bool) {
	d, ok := s.detect[i]
	if !ok {
		return Detection{}, false
	}
	return *d, true
}

// ---- running ----

// Run advances virtual time by d, handling every event due.
func (s *Sim) Run(d time.Duration) { s.RunUntil(s.Now().Add(d)) }

// RunUntil handles every event due up to t and sets the clock to t.
func (s *Sim) RunUntil(t time.Time) {
	end := int64(t.Sub(s.t0))
	for len(s.events) > 0 && s.events[0].at <= end {
		e := s.pop()
		s.now = e.at
		s.handle(&e)
	}
	if end > s.now {
		s.now = end
	}
}

// RunWhile runs until cond returns false or max has passed, checking cond
// after each event, and reports whether cond became false.
func (s *Sim) RunWhile(max time.Duration, cond func() bool) bool {
	end := s.now + int64(max)
	for cond() {
		if len(s.events) == 0 || s.events[0].at > end {
			s.now = end
			return !cond()
		}
		e := s.pop()
		s.now = e.at
		s.handle(&e)
	}
	return true
}

func (s *Sim) handle(e *event) {
	n := s.nodes[e.node]
	switch e.kind {
	case evTick:
		if !n.Up || e.at != n.tickAt {
			return
		}
		n.tickAt = -1
		n.Core.Tick(s.Now())
		s.drain(n)
	case evDeliver, evHandle:
		if !n.Up || n.Addr != e.to {
			s.recycle(e.msgs)
			return
		}
		if e.kind == evDeliver && n.Slow > 0 {
			d := int64(n.Slow)/2 + s.rng.Int64N(int64(n.Slow)+1)
			s.push(event{at: s.now + d, kind: evHandle, node: e.node, from: e.from, to: e.to, msgs: e.msgs})
			return
		}
		n.Stats.Received++
		n.Core.Step(s.Now(), e.from, e.msgs)
		s.recycle(e.msgs)
		s.drain(n)
	case evPushPull:
		s.pushPull(n, e.to, e.join)
	case evStreamProbe:
		s.streamProbe(n, e)
	}
}

func (s *Sim) pushPull(a *Node, to netip.AddrPort, join bool) {
	b := s.byAddr[to]
	if !a.Up || b == nil || !b.Up || b == a || !s.reachable(a, b) || !s.reachable(b, a) {
		return
	}
	sa := a.Core.Snapshot()
	sa.Join = join
	sb := b.Core.Snapshot()
	_ = b.Core.Merge(s.Now(), &sa)
	_ = a.Core.Merge(s.Now(), &sb)
	s.drain(b)
	s.drain(a)
}

// streamProbe ends a stream ping from a: acked when the target is up at
// the address, under the name, and the network lets both directions
// through. Loss does not apply: a stream retransmits.
func (s *Sim) streamProbe(a *Node, e *event) {
	if !a.Up {
		return
	}
	b := s.byAddr[e.to]
	ok := b != nil && b != a && b.Up && b.Name == e.name && s.reachable(a, b) && s.reachable(b, a)
	if ok {
		s.StreamAcks++
	}
	a.Core.StreamProbeResult(s.Now(), e.name, e.pseq, ok)
	s.drain(a)
}

func (s *Sim) reachable(a, b *Node) bool {
	return s.group[a.Index] == s.group[b.Index] && !s.blocked[[2]int{a.Index, b.Index}]
}

func (s *Sim) link(a, b *Node) Link {
	if l, ok := s.links[[2]int{a.Index, b.Index}]; ok {
		return l
	}
	return s.opts.Link
}

func (s *Sim) latency(l Link) int64 {
	d := int64(l.LatencyMin)
	if l.LatencyMax > l.LatencyMin {
		d += s.rng.Int64N(int64(l.LatencyMax-l.LatencyMin) + 1)
	}
	return max(d, 1)
}

// drain acts on a member's output and schedules its next tick.
func (s *Sim) drain(n *Node) {
	out := n.Core.Ready()
	for i := range out.Datagrams {
		d := &out.Datagrams[i]
		n.Stats.Datagrams++
		n.Stats.Messages += uint64(len(d.Msgs))
		bytes := s.opts.Config.CompoundOverhead
		for j := range d.Msgs {
			bytes += s.size(&d.Msgs[j])
		}
		n.Stats.Bytes += uint64(bytes)
		if bytes > s.opts.Config.MaxDatagram {
			s.Oversized++
		}
		s.route(n, d)
	}
	for _, p := range out.PushPulls {
		n.Stats.PushPulls++
		b := s.byAddr[p.To]
		rtt := 2 * s.latency(s.opts.Link)
		if b != nil {
			rtt = 2 * s.latency(s.link(n, b))
		}
		s.push(event{at: s.now + rtt, kind: evPushPull, node: int32(n.Index), to: p.To, join: p.Join})
	}
	for _, sp := range out.StreamProbes {
		n.Stats.StreamProbes++
		if !s.opts.Streams {
			continue // no stream transport: the ping fails, which changes nothing in the core
		}
		b := s.byAddr[sp.To]
		l := s.opts.Link
		if b != nil {
			l = s.link(n, b)
		}
		d := 6 * s.latency(l)
		if b != nil && b.Slow > 0 {
			d += int64(b.Slow)/2 + s.rng.Int64N(int64(b.Slow)+1)
		}
		if at := int64(sp.Deadline.Sub(s.t0)); s.now+d > at {
			continue // too late: the runtime gives up at the deadline
		}
		s.push(event{at: s.now + d, kind: evStreamProbe, node: int32(n.Index), to: sp.To, pseq: sp.Seq, name: sp.Name})
	}
	for _, ev := range out.Events {
		s.observe(n, ev)
	}
	if s.OnProbeResult != nil {
		for _, r := range out.ProbeResults {
			s.OnProbeResult(n, r)
		}
	}
	for _, b := range out.Broadcasts {
		n.Delivered = append(n.Delivered, Delivery{Broadcast: b, At: s.Now()})
		if s.OnBroadcast != nil {
			s.OnBroadcast(n, b)
		}
	}
	n.Core.Advance()
	s.schedule(n)
}

func (s *Sim) route(from *Node, d *swim.Datagram) {
	to := s.byAddr[d.To]
	if to == nil || !s.reachable(from, to) {
		s.Dropped++
		return
	}
	l := s.link(from, to)
	if l.Loss > 0 && s.rng.Float64() < l.Loss {
		s.Dropped++
		return
	}
	copies := 1
	if l.Duplicate > 0 && s.rng.Float64() < l.Duplicate {
		copies = 2
	}
	for range copies {
		msgs := s.alloc(len(d.Msgs))
		copy(msgs, d.Msgs)
		s.push(event{at: s.now + s.latency(l), kind: evDeliver, node: int32(to.Index), from: from.Addr, to: to.Addr, msgs: msgs})
	}
}

func (s *Sim) observe(n *Node, ev swim.Event) {
	if s.OnEvent != nil {
		s.OnEvent(n, ev)
	}
	subj := s.byName(ev.Member.Name)
	if subj == nil {
		return
	}
	switch ev.Kind {
	case swim.EventSuspected, swim.EventFailed:
		if subj.Up {
			if ev.Kind == swim.EventSuspected {
				s.FalseSuspicions++
			} else {
				s.FalseDeaths++
				if subj.Slow == 0 {
					s.FalseDeathsHealthy++
				}
			}
			return
		}
		if d := s.detect[subj.Index]; d != nil {
			if d.FirstAccused.IsZero() {
				d.FirstAccused = s.Now()
			}
			if ev.Kind == swim.EventFailed && d.AllKnow.IsZero() && s.allHoldDead(subj) {
				d.AllKnow = s.Now()
			}
		}
	}
}

func (s *Sim) allHoldDead(subj *Node) bool {
	for _, o := range s.nodes {
		if !o.Up || o == subj {
			continue
		}
		m, ok := o.Core.Member(subj.Name)
		if ok && (m.State == swim.StateAlive || m.State == swim.StateSuspect) {
			return false
		}
	}
	return true
}

func (s *Sim) byName(name string) *Node { return s.names[name] }

func (s *Sim) schedule(n *Node) {
	if !n.Up {
		return
	}
	at := max(int64(n.Core.NextDeadline().Sub(s.t0)), s.now+1)
	if at == n.tickAt {
		return
	}
	n.tickAt = at
	s.push(event{at: at, kind: evTick, node: int32(n.Index)})
}

// Totals sums the statistics of every member.
func (s *Sim) Totals() Stats {
	var t Stats
	for _, n := range s.nodes {
		t.Add(n.Stats)
	}
	return t
}

// Knows reports whether every up member other than subj holds subj in one
// of the given states.
func (s *Sim) Knows(subj *Node, states ...swim.State) bool {
	for _, o := range s.nodes {
		if !o.Up || o == subj {
			continue
		}
		m, ok := o.Core.Member(subj.Name)
		if !ok {
			return false
		}
		found := false
		for _, st := range states {
			if m.State == st {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// ---- event heap and message buffers ----

func (s *Sim) alloc(n int) []swim.Message {
	if k := len(s.free); k > 0 {
		b := s.free[k-1]
		s.free = s.free[:k-1]
		if cap(b) >= n {
			return b[:n]
		}
	}
	return make([]swim.Message, n, max(n, 8))
}

func (s *Sim) recycle(b []swim.Message) {
	clear(b)
	s.free = append(s.free, b[:0])
}

func (s *Sim) less(i, j int) bool {
	a, b := &s.events[i], &s.events[j]
	if a.at != b.at {
		return a.at < b.at
	}
	return a.seq < b.seq
}

func (s *Sim) push(e event) {
	s.evSeq++
	e.seq = s.evSeq
	s.events = append(s.events, e)
	i := len(s.events) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !s.less(i, p) {
			break
		}
		s.events[i], s.events[p] = s.events[p], s.events[i]
		i = p
	}
}

func (s *Sim) pop() event {
	e := s.events[0]
	last := len(s.events) - 1
	s.events[0] = s.events[last]
	s.events[last] = event{}
	s.events = s.events[:last]
	i, n := 0, last
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		j := l
		if r := l + 1; r < n && s.less(r, l) {
			j = r
		}
		if !s.less(j, i) {
			break
		}
		s.events[i], s.events[j] = s.events[j], s.events[i]
		i = j
	}
	return e
}
