package membership

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshward/membership/codec"
	"github.com/meshward/membership/internal/envelope"
	"github.com/meshward/membership/internal/query"
	"github.com/meshward/membership/keyring"
	"github.com/meshward/membership/metrics"
	"github.com/meshward/membership/swim"
	"github.com/meshward/membership/transport"
)

// Errors that callers branch on.
var (
	// ErrNoEncryption: New was called without WithKeyring or
	// WithoutEncryption.
	ErrNoEncryption = errors.New("membership: no keyring: pass WithKeyring(ring), or WithoutEncryption() to run in plaintext on purpose")
	// ErrShutdown: the node was shut down.
	ErrShutdown = errors.New("membership: node is shut down")
	// ErrNoAck: a probe got no ack in time.
	ErrNoAck = errors.New("no ack within a protocol period")
	// ErrNoSeed: Join reached none of the seeds.
	ErrNoSeed = errors.New("membership: no seed answered")
)

// Node is one member of the group. One goroutine owns the protocol state and
// drives it from the transport and timers; every method is safe for
// concurrent use, and none of them is ever called back by the node, so an
// event consumer may call any of them.
type Node struct {
	cfg    config
	log    *slog.Logger
	met    *metrics.Metrics
	tr     transport.Transport
	sealer envelope.Sealer
	ring   *keyring.Keyring
	label  []byte
	events chan Event

	messages   chan Message
	msgDropped atomic.Uint64 // messages dropped because the channel was full
	msgWaiting atomic.Int32  // reliable messages waiting for room on the channel
	sendMu     sync.Mutex
	sendLocks  map[string]*sync.Mutex // one reliable send at a time per member

	pcfg       swim.Config
	ctx        context.Context // ends at Shutdown
	cancel     context.CancelFunc
	cmds       chan func()
	stop       chan struct{}
	loopDone   chan struct{}
	stopOnce   sync.Once
	bg         sync.WaitGroup // stream goroutines
	streamMu   sync.Mutex
	streams    map[*streamConn]struct{} // open streams, closed on Shutdown
	inPending  int                      // inbound streams not authenticated yet; guarded by streamMu
	inAuthed   int                      // authenticated inbound streams; guarded by streamMu
	inBySource map[netip.Addr]int       // inPending by source address; guarded by streamMu
	refusing   chan struct{}            // a slot per goroutine telling a refused initiator why
	slotFree   chan struct{}            // closed when an authenticated slot frees; guarded by streamMu
	dropped    atomic.Uint64            // events dropped because the channel was full
	limiter    rateLimiter
	subs       subscribers                // Subscribe
	clock      clockState                 // members' clock offsets (clock.go)
	allow      atomic.Pointer[allowState] // the allow-list in force, or nil (allowlist.go)
	catchUp    atomic.Bool                // a catch-up exchange after our join is planned (joinstorm.go)

	// Owned by the loop goroutine (and by whoever holds afterMu once the
	// loop has exited).
	afterMu          sync.Mutex
	core             *swim.Core
	dec              *codec.Decoder
	msgs             []swim.Message
	openBuf          []byte
	plainBuf         []byte
	sendBuf          []byte
	replay           *envelope.ReplayGuard
	waiters          map[uint64]chan swim.ProbeResult
	leaveWait        []chan struct{}
	outbound         int
	streamProbes     int // stream pings in flight (streamprobe.go)
	seen             [swim.NumCounters]uint64
	lastTr           transport.Stats
	lastSeals        map[[4]byte]uint64
	lastDrops        uint64
	drops            map[metrics.DropReason]uint64 // rejected datagrams by reason, every reason present
	lastDropped      map[metrics.DropReason]uint64 // drops as of the last report
	sealWarn         bool
	discoveries      map[uint64]*discovery // Discover calls by probe token (discovery.go)
	reportBuf        []swim.Member
	queries          map[uint64]*originQuery // our queries still collecting
	maxDirectPayload int                     // the largest SendTo payload; set at New
	gossipHold       time.Time               // Tick waits until then: a burst of Broadcast calls leaves together (gossip.go)
	seenQueries      *query.Seen             // queries we received, and our answers

	keys nodeKeys // key file, key mismatches, encryption mode (keyfile.go, mismatch.go, encryption.go)

	legacyWire atomic.Bool // send the wire forms older versions read (legacywire.go)
	wire       peerWire    // addresses heard reading the compact forms (legacywire.go)
}

// New starts a node: it binds the transport, and from then on answers
// probes and probes others. It does not contact anyone: call Join. It fails
// fast with an error that says what is wrong (a port in use, an advertise
// address it cannot choose, a missing keyring, an invalid option).
//
// A transport given with WithTransport belongs to the node from then on:
// Shutdown closes it, and so does New when it fails.
func New(opts ...Option) (n *Node, err error) {
	cfg := defaultConfig()
	defer func() {
		if err != nil && cfg.transport != nil {
			cfg.transport.Close()
		}
	}()
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, fmt.Errorf("membership: %w", err)
		}
	}
	if err := cfg.openKeyFile(); err != nil { // keyfile.go
		return nil, fmt.Errorf("membership: %w", err)
	}
	if cfg.ring == nil && !cfg.plaintext {
		return nil, ErrNoEncryption
	}
	if err := cfg.checkEncryption(); err != nil { // encryption.go
		return nil, fmt.Errorf("membership: %w", err)
	}
	if cfg.ring != nil && cfg.plaintext {
		return nil, errors.New("membership: WithKeyring and WithoutEncryption contradict each other")
	}
	if cfg.name == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			return nil, fmt.Errorf("membership: no name given and the host name is unavailable (%v): use WithName", err)
		}
		cfg.name = host
		if len(cfg.name) > swim.MaxNameLen {
			cfg.name = cfg.name[:swim.MaxNameLen]
		}
	}
	n = &Node{
		cfg:         cfg,
		log:         cfg.logger,
		events:      make(chan Event, cfg.eventBuffer),
		messages:    make(chan Message, cfg.messageBuffer),
		sendLocks:   make(map[string]*sync.Mutex),
		queries:     make(map[uint64]*originQuery),
		seenQueries: query.NewSeen(4096),
		cmds:        make(chan func()),
		stop:        make(chan struct{}),
		loopDone:    make(chan struct{}),
		streams:     make(map[*streamConn]struct{}),
		inBySource:  make(map[netip.Addr]int),
		refusing:    make(chan struct{}, maxRefusing),
		label:       []byte(cfg.label),
		waiters:     make(map[uint64]chan swim.ProbeResult),
		lastSeals:   make(map[[4]byte]uint64),
		drops:       make(map[metrics.DropReason]uint64, len(metrics.DropReasons)),
		lastDropped: make(map[metrics.DropReason]uint64, len(metrics.DropReasons)),
	}
	for _, r := range metrics.DropReasons {
		n.drops[r] = 0 // present, so that counting never grows the map
	}
	if n.log == nil {
		n.log = slog.Default()
	}
	n.log = n.log.With("node", cfg.name)
	n.met = cfg.metrics
	if n.met == nil && cfg.sink != nil {
		n.met = metrics.New(cfg.sink, metrics.Label{Name: metrics.LabelNode, Value: cfg.name})
	}
	n.ring = cfg.ring
	n.legacyWire.Store(cfg.legacyWire)
	n.sealer = n.newSealer() // encryption.go

	pcfg := cfg.profile.protocol()
	for _, f := range cfg.tweaks {
		f(&pcfg)
	}
	// Periodic exchanges with members whose view equals ours carry
	// nothing, unless the application's own state rides on them.
	pcfg.PushPullAgreed = pcfg.PushPullAgreed || cfg.state != nil
	pcfg.CompoundOverhead = codec.HeaderSize
	pcfg.MessageSize = codec.MessageSize
	widest := pcfg
	widest.MaxDatagram = transport.MaxDatagram - envelope.TimestampLen - n.sealer.Overhead()
	if err := widest.Validate(); err != nil {
		return nil, fmt.Errorf("membership: %w", err)
	}
	if least := minDatagram(pcfg, n.sealer.Overhead()); cfg.maxDatagram < least {
		return nil, fmt.Errorf("membership: WithMaxDatagramSize(%d): too small for %s with a %d-byte payload cap (WithMaxPayload): at least %d bytes",
			cfg.maxDatagram, n.suiteName(), pcfg.MaxPayload, least)
	}
	pcfg.MaxDatagram = cfg.maxDatagram - envelope.TimestampLen - n.sealer.Overhead()
	if err := pcfg.Validate(); err != nil {
		return nil, fmt.Errorf("membership: %w", err)
	}
	if pcfg.MaxPayload > codec.MaxPayloadLimit {
		return nil, fmt.Errorf("membership: payload cap %d above the wire limit %d", pcfg.MaxPayload, codec.MaxPayloadLimit)
	}
	if len(cfg.payload) > pcfg.MaxPayload {
		return nil, fmt.Errorf("membership: WithPayload: %d bytes, the cap is %d (WithMaxPayload)", len(cfg.payload), pcfg.MaxPayload)
	}
	// Application payloads may fill what a datagram of ours holds; a
	// member configured alike accepts as much.
	pcfg.MaxUserPayload = max(0, swim.MaxUserPayloadFor(pcfg))
	dec, err := codec.NewDecoder(codec.Limits{MaxPayload: pcfg.MaxPayload, MaxMembers: pcfg.MaxMembers, MaxUserPayload: pcfg.MaxUserPayload})
	if err != nil {
		return nil, fmt.Errorf("membership: %w", err)
	}
	n.dec = dec

	n.tr = cfg.transport
	if n.tr == nil {
		tr, err := transport.NewNet(transport.Config{
			BindAddr:      cfg.bind,
			AdvertiseAddr: cfg.advertise,
			MaxPacketSize: max(transport.DefaultMaxPacketSize, cfg.maxDatagram),
		})
		if err != nil {
			return nil, fmt.Errorf("membership: %w", err)
		}
		n.tr = tr
		cfg.transport = tr // closed by the deferred cleanup if New fails below
	}
	self := swim.Member{Name: cfg.name, Addr: n.tr.LocalAddr(), Payload: cfg.payload, Incarnation: initialIncarnation()}
	seed := rand.Uint64()
	core, err := swim.New(pcfg, self, rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), time.Now())
	if err != nil {
		return nil, fmt.Errorf("membership: %w", err)
	}
	n.core, n.pcfg = core, pcfg
	n.maxDirectPayload = core.MaxDirectPayload() - 1 // the first byte says what it is (gossip.go)
	n.initAllow()
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.replay = envelope.NewReplayGuard(cfg.replayWindow, cfg.replayCache)
	n.plainBuf = make([]byte, 0, cfg.maxDatagram)
	n.sendBuf = make([]byte, 0, cfg.maxDatagram+64)
	n.openBuf = make([]byte, 0, transport.DefaultMaxPacketSize)
	n.bg.Add(1)
	go n.acceptStreams()
	n.startKeyFile() // keyfile.go
	go n.loop()
	n.startDiscovery()
	n.log.Info("started", "addr", self.Addr, "profile", cfg.profile, "encrypted", n.ring != nil, "encryption", n.EncryptionMode().String())
	return n, nil
}

// minDatagram is the smallest sealed datagram with which the protocol
// configuration validates: room for the largest probe message and the
// largest update behind it, plus the timestamp and the sealing overhead.
// It returns the largest UDP payload plus one when none does.
func minDatagram(pcfg swim.Config, overhead int) int {
	fits := func(size int) bool {
		c := pcfg
		c.MaxDatagram = size - envelope.TimestampLen - overhead
		return c.MaxDatagram > 0 && c.Validate() == nil
	}
	lo, hi := 0, transport.MaxDatagram+1 // !fits(lo); fits(hi), or nothing does
	if !fits(transport.MaxDatagram) {
		return hi
	}
	for hi-lo > 1 {
		if mid := lo + (hi-lo)/2; fits(mid) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi
}

// suiteName names the sealing in error messages.
func (n *Node) suiteName() string {
	if n.ring == nil {
		return "plaintext"
	}
	return n.ring.Suite().String()
}

// initialIncarnation starts a node's incarnation from the clock (seconds
// since 2020), so that a restarted member is almost always above what the
// cluster remembers of its previous life and comes back at once. If the
// cluster remembers more, the member refutes above it (SWIM §4.2).
func initialIncarnation() uint64 {
	const epoch2020 = 1577836800
	if s := time.Now().Unix() - epoch2020; s > 0 {
		return uint64(s)
	}
	return 0
}

// loop is the goroutine that owns the protocol state.
func (n *Node) loop() {
	defer close(n.loopDone)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	report := time.NewTicker(time.Second)
	defer report.Stop()
	queryTimer := time.NewTimer(time.Hour)
	defer queryTimer.Stop()
	packets := n.tr.Packets()
	for {
		n.flush()
		timer.Reset(max(time.Until(n.core.NextDeadline()), time.Until(n.gossipHold), 0))
		if len(n.queries) > 0 {
			if next := n.queryTick(time.Now()); !next.IsZero() {
				queryTimer.Reset(max(time.Until(next), 0))
			}
		}
		select {
		case <-queryTimer.C:
			// queryTick runs at the top of the loop.
		case p, ok := <-packets:
			if !ok {
				packets = nil
				continue
			}
			n.receive(&p)
			p.Release()
		case f := <-n.cmds:
			f()
		case now := <-timer.C:
			n.core.Tick(now)
		case <-report.C:
			n.report()
		case <-n.stop:
			return
		}
	}
}

// do runs f on the loop goroutine and waits for it. After Shutdown it runs f
// directly, serialised by a mutex, so that Members and friends keep working.
func (n *Node) do(f func()) {
	done := make(chan struct{})
	select {
	case n.cmds <- func() { f(); close(done) }:
		<-done
	case <-n.loopDone:
		n.afterMu.Lock()
		defer n.afterMu.Unlock()
		f()
	}
}

// running reports whether the loop still runs.
func (n *Node) running() bool {
	select {
	case <-n.loopDone:
		return false
	default:
		return true
	}
}

// receive opens, checks, decodes and steps one datagram.
func (n *Node) receive(p *transport.Packet) {
	if !n.admitDatagram(p.From) {
		return
	}
	sent, body, plain, f := envelope.OpenDatagramDetail(n.sealer, n.label, n.openBuf[:0], p.Data)
	if f.Failed() {
		n.dropFailure(f, p.From)
		return
	}
	n.openBuf = plain[:0]
	if err := n.replay.Check(n.wall(p.At), sent, envelope.Nonce(n.sealer, p.Data)); err != nil {
		n.drop(dropReason(err), p.From, err)
		return
	}
	n.keys.mm.clear(p.From)           // its keys match ours (mismatch.go)
	n.learnWire(p.From, p.Data, body) // legacywire.go
	msgs, err := n.dec.Decode(n.msgs[:0], body)
	n.msgs = msgs[:0]
	if err != nil {
		n.drop(metrics.DropDecode, p.From, err)
		return
	}
	if n.met != nil {
		n.met.WireReceived(metrics.ChannelDatagram, len(p.Data))
		for i := range msgs {
			n.met.MessageReceived(msgs[i].Kind.String(), codec.MessageSize(&msgs[i]))
		}
	}
	for i := range msgs {
		if msgs[i].Kind == swim.KindDirect {
			n.onDirect(p.From, &msgs[i])
		}
	}
	mark := n.clockMark()
	n.core.Step(p.At, p.From, msgs)
	n.clockStepped(mark, p.From, sent, p.At)
}

// dropReason maps a rejection onto its metric label.
func dropReason(err error) metrics.DropReason {
	switch {
	case errors.Is(err, keyring.ErrUnknownKey):
		return metrics.DropUnknownKey
	case errors.Is(err, keyring.ErrAuthFailed):
		return metrics.DropAuth
	case errors.Is(err, envelope.ErrReplay):
		return metrics.DropReplay
	case errors.Is(err, envelope.ErrWindowShrunk):
		return metrics.DropWindowShrunk
	case errors.Is(err, envelope.ErrTooOld):
		return metrics.DropTooOld
	case errors.Is(err, envelope.ErrTooNew):
		return metrics.DropTooNew
	case errors.Is(err, envelope.ErrNotPlaintext):
		return metrics.DropMalformed
	case errors.Is(err, keyring.ErrUnknownSuite):
		var oe *keyring.OpenError
		if errors.As(err, &oe) && oe.Suite == 0 {
			return metrics.DropUnencrypted
		}
	}
	return metrics.DropMalformed
}

// openDropReason maps a datagram that did not open onto its metric label.
func openDropReason(r envelope.Reason) metrics.DropReason {
	switch r {
	case envelope.ReasonUnknownKey:
		return metrics.DropUnknownKey
	case envelope.ReasonAuthFailed:
		return metrics.DropAuth
	case envelope.ReasonUnencrypted:
		return metrics.DropUnencrypted
	}
	return metrics.DropMalformed
}

// dropFailure counts a datagram that did not open, building the error only
// for the rare line that is logged: rejecting a forgery allocates nothing.
func (n *Node) dropFailure(f envelope.Failure, from netip.AddrPort) {
	reason := openDropReason(f.Reason())
	n.drops[reason]++
	now := time.Now()
	if n.keyMismatch(f, from, now) { // reported as a key mismatch (mismatch.go)
		return
	}
	if ok, suppressed := n.limiter.allow(string(reason), now); ok {
		n.log.Warn("dropped datagram", "reason", string(reason), "from", from, "err", f.Err(), "suppressed", suppressed)
	}
}

// drop counts a rejected datagram and logs it at a limited rate. The count
// reaches the metrics sink with the next report, so that a flood of forged
// datagrams costs no allocation here, whatever the sink does.
func (n *Node) drop(reason metrics.DropReason, from netip.AddrPort, err error) {
	n.drops[reason]++
	if ok, suppressed := n.limiter.allow(string(reason), time.Now()); ok {
		n.log.Warn("dropped datagram", append([]any{"reason", string(reason), "from", from, "err", err, "suppressed", suppressed}, n.clockLogAttrs(reason, from)...)...)
	}
}

// flush carries out what the core asked for.
func (n *Node) flush() {
	out := n.core.Ready()
	if out.Empty() {
		n.checkLeave()
		return
	}
	now := n.wall(time.Now())
	for i := range out.Datagrams {
		n.sendDatagram(&out.Datagrams[i], now)
	}
	for _, pp := range out.PushPulls {
		n.startPushPull(pp)
	}
	for _, sp := range out.StreamProbes {
		n.startStreamProbe(sp) // streamprobe.go
	}
	for i := range out.Events {
		n.emit(&out.Events[i])
	}
	for i := range out.Broadcasts {
		n.deliverBroadcast(&out.Broadcasts[i])
	}
	for _, p := range out.Probes {
		n.probeMetrics(p)
	}
	for _, r := range out.ProbeResults {
		if n.discoveryResult(r) {
			continue
		}
		if ch, ok := n.waiters[r.Token]; ok {
			ch <- r // buffered, one result per token
			delete(n.waiters, r.Token)
		}
	}
	n.core.Advance()
	n.checkLeave()
}

// sendDatagram encodes, seals and sends one datagram; errors are logged
// and returned (the core's own datagrams ignore them: SWIM tolerates loss).
func (n *Node) sendDatagram(d *swim.Datagram, now time.Time) error {
	compact := n.sendsCompact(d.To) // legacywire.go
	plain, err := n.appendDatagram(n.plainBuf[:envelope.TimestampLen], d.Msgs, compact)
	if err != nil {
		// The core built a message the codec refuses: a bug, not input.
		n.log.Error("cannot encode datagram", "to", d.To, "err", err)
		return err
	}
	n.plainBuf = plain[:0]
	sealed, err := n.sealDatagram(compact, n.sendBuf[:0], plain, now)
	if err != nil {
		n.log.Error("cannot seal datagram", "to", d.To, "err", err)
		return err
	}
	n.sendBuf = sealed[:0]
	if len(sealed) > n.cfg.maxDatagram {
		n.log.Error("datagram above the size limit", "size", len(sealed), "limit", n.cfg.maxDatagram)
	}
	if err := n.tr.WriteTo(sealed, d.To); err != nil {
		if ok, _ := n.limiter.allow("send", now); ok {
			n.log.Warn("send failed", "to", d.To, "err", err)
		}
		return err
	}
	if n.met != nil {
		n.met.WireSent(metrics.ChannelDatagram, len(sealed))
		for i := range d.Msgs {
			n.met.MessageSent(d.Msgs[i].Kind.String(), codec.MessageSize(&d.Msgs[i]))
		}
	}
	return nil
}

// probeMetrics records how a periodic probe ended.
func (n *Node) probeMetrics(p swim.ProbeOutcome) {
	if n.met == nil {
		return
	}
	switch p.Result {
	case swim.ProbeDirect:
		n.met.Probe(metrics.ProbeAck)
		n.met.RTT(metrics.PathDirect, p.RTT)
	case swim.ProbeIndirect:
		n.met.Probe(metrics.ProbeIndirectAck)
		n.met.RTT(metrics.PathIndirect, p.RTT)
	case swim.ProbeFailed:
		n.met.Probe(metrics.ProbeFailed)
	case swim.ProbeStream:
		n.met.Probe(metrics.ProbeStreamAck)
	}
	for range p.Nacks {
		n.met.Nack()
	}
}

// emit hands an event to the subscriber without ever waiting.
func (n *Node) emit(e *swim.Event) {
	switch e.Kind {
	case swim.EventSuspected:
		n.met.Suspicion()
	case swim.EventFailed:
		n.met.Death()
	case swim.EventLeft:
		n.met.Leave()
	}
	if e.Kind == swim.EventStreamOnly {
		n.logUDPBroken(e) // streamprobe.go
	}
	if e.Kind == swim.EventNameConflict {
		// Gossip shows two processes taking turns under one name
		// (swim's detection); the member that joined second was not
		// stopped at its join (a seed of an older version, say).
		n.met.NameConflict()
		if ok, suppressed := n.limiter.allow("name-conflict-gossip", time.Now()); ok {
			n.log.Warn("two processes claim one member name: give one of them another name", "member", e.Member.Name, "addr", e.Member.Addr, "other_addr", e.Addr, "suppressed", suppressed)
		}
	}
	n.deliver(Event{Kind: eventKindOf(e.Kind), Member: memberOf(e.Member), ConflictAddr: e.Addr})
}

// deliver hands an event to the subscriber without ever waiting.
func (n *Node) deliver(ev Event) {
	n.log.Debug("event", "kind", ev.Kind.String(), "member", ev.Member.Name, "addr", ev.Member.Addr)
	ev.Member.Clock = n.clockEvent(ev)
	n.publish(ev)
	if n.cfg.eventBuffer == 0 {
		return // the default channel is off: Subscribe only
	}
	select {
	case n.events <- ev:
	default:
		n.dropped.Add(1)
		if ok, suppressed := n.limiter.allow("events", time.Now()); ok {
			n.log.Warn("event channel full: events dropped; Members() is still the truth", "suppressed", suppressed, "dropped_total", n.dropped.Load())
		}
	}
}

// checkLeave wakes Leave callers once our left message is out.
func (n *Node) checkLeave() {
	if len(n.leaveWait) > 0 && n.core.LeaveDone() {
		for _, ch := range n.leaveWait {
			close(ch)
		}
		n.leaveWait = nil
	}
}

// Leave tells the group that we are leaving and waits until the news has
// been sent as often as any update is, or until ctx ends. Others then
// report us as left, not failed, and stop probing us. The node keeps
// running (answering probes, spreading the news) until Shutdown.
func (n *Node) Leave(ctx context.Context) error {
	if !n.running() {
		return ErrShutdown
	}
	wait := make(chan struct{})
	n.do(func() {
		n.core.Leave()
		n.leaveWait = append(n.leaveWait, wait)
		n.checkLeave()
	})
	select {
	case <-wait:
		n.log.Info("left the group")
		return nil
	case <-ctx.Done():
		return fmt.Errorf("membership: leave: %w", ctx.Err())
	case <-n.loopDone:
		return ErrShutdown
	}
}

// Shutdown stops the node without leaving: the group sees a crash and
// declares us failed. Call Leave first for a graceful exit. It closes the
// transport and the Events channel, and returns once every goroutine of
// the node has stopped. Calling it again does nothing.
func (n *Node) Shutdown() error {
	var err error
	n.stopOnce.Do(func() {
		n.cancel()
		close(n.stop)
		<-n.loopDone
		err = n.tr.Close()
		n.streamMu.Lock()
		for s := range n.streams {
			s.conn.Close()
		}
		n.streamMu.Unlock()
		n.bg.Wait()
		close(n.events)
		close(n.messages)
		n.subs.closeAll()
		n.afterMu.Lock()
		for _, oq := range n.queries {
			n.endQuery(oq, time.Now())
		}
		n.afterMu.Unlock()
		// Every datagram and stream has ended: hand the sink the last
		// of the summed counters.
		n.met.Flush()
		n.log.Info("shut down")
	})
	return err
}

// Members returns every member we know, in any state, ourselves included,
// sorted by name. It is always the current truth, whatever happened to
// events.
func (n *Node) Members() []Member {
	var ms []swim.Member
	n.do(func() { ms = n.core.AppendMembers(make([]swim.Member, 0, n.core.NumMembers())) })
	out := make([]Member, len(ms))
	for i, m := range ms {
		out[i] = memberOf(m)
	}
	n.clock.fill(out)
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Member returns the named member, if we know it.
func (n *Node) Member(name string) (Member, bool) {
	var (
		m  swim.Member
		ok bool
	)
	n.do(func() { m, ok = n.core.Member(name) })
	if !ok {
		return Member{}, false
	}
	return n.withClock(memberOf(m)), true
}

// Myself returns our own entry: the address others reach us at (with the
// real port when we bound port 0), our incarnation and payload.
func (n *Node) Myself() Member {
	var m swim.Member
	n.do(func() { m = n.core.Myself() })
	return memberOf(m)
}

// SetPayload replaces our payload. It raises our incarnation so that the
// change overrides what others hold, and spreads it by gossip. Above the
// payload cap it fails with ErrPayloadTooLarge.
func (n *Node) SetPayload(p []byte) error {
	if !n.running() {
		return ErrShutdown
	}
	if len(p) > n.pcfg.MaxPayload {
		return fmt.Errorf("membership: set payload: %w: %d bytes exceeds MaxPayload %d (WithMaxPayload)", ErrPayloadTooLarge, len(p), n.pcfg.MaxPayload)
	}
	var err error
	n.do(func() { err = n.core.SetPayload(p) })
	if err != nil {
		return fmt.Errorf("membership: set payload: %w", err)
	}
	return nil
}

// Probe pings addr once, member or not, and returns the round-trip time, or
// ErrNoAck if no ack came within one protocol period. addr is "ip:port",
// an IP (port 7946), a go-sockaddr template or "host:port", resolved with
// ctx; a host name with several addresses pings each at once and returns
// the first answer's round trip.
func (n *Node) Probe(ctx context.Context, addr string) (time.Duration, error) {
	r, err := n.probe(ctx, addr, (*swim.Core).Probe, false)
	if err != nil {
		return 0, err
	}
	return r.RTT, nil
}

// AddMember probes addr, a member we do not know yet; its ack introduces it
// and it joins our view, from where gossip spreads it. addr takes the
// forms Probe takes; a host name with several addresses probes each at
// once and adds every member that answers, succeeding if one did.
//
// Tarantool's add_member puts an address in the table as alive at once,
// and failure detection sorts it out later. AddMember adds only a member
// that answers, and otherwise fails with ErrNoAck: a member here is known
// by its name, which only its ack tells us, and an entry that nobody
// vouched for would be probed, suspected and declared dead by the whole
// cluster, for a member that may never have existed. For one that is not
// up yet, call AddMember again, or Join it, which retries until ctx ends.
func (n *Node) AddMember(ctx context.Context, addr string) error {
	_, err := n.probe(ctx, addr, (*swim.Core).AddMember, true)
	return err
}

func (n *Node) probeAddr(ctx context.Context, a netip.AddrPort, start func(*swim.Core, netip.AddrPort) (uint64, error)) (swim.ProbeResult, error) {
	var err error
	ch := make(chan swim.ProbeResult, 1)
	var tok uint64
	n.do(func() {
		tok, err = start(n.core, a)
		if err == nil {
			n.waiters[tok] = ch
		}
	})
	if err != nil {
		return swim.ProbeResult{}, fmt.Errorf("membership: probe %v: %w", a, err)
	}
	select {
	case r := <-ch:
		if !r.OK {
			return r, fmt.Errorf("membership: probe %v: %w", a, ErrNoAck)
		}
		return r, nil
	case <-ctx.Done():
		n.do(func() { delete(n.waiters, tok) })
		return swim.ProbeResult{}, fmt.Errorf("membership: probe %v: %w", a, ctx.Err())
	case <-n.loopDone:
		return swim.ProbeResult{}, ErrShutdown
	}
}

// Events returns the channel of membership changes. It is bounded (see
// WithEventBuffer): when the consumer is slow, events are dropped and
// counted, never queued without bound, and the protocol never waits. It is
// closed by Shutdown.
//
// It is the node's default subscription, there from New on so that no
// event is missed before the first read; Subscribe adds independent ones.
// With WithEventBuffer(0) it is off, and Events returns a closed channel.
func (n *Node) Events() <-chan Event {
	if n.cfg.eventBuffer == 0 {
		return closedEvents
	}
	return n.events
}

// Keyring returns the node's keyring, for rotation (Install, Use, Remove),
// or nil when the node was started WithoutEncryption. With WithKeyringFile,
// every change made on it is saved to the file.
func (n *Node) Keyring() *keyring.Keyring { return n.ring }

// EventsDropped returns how many events were dropped because the Events
// channel was full.
func (n *Node) EventsDropped() uint64 { return n.dropped.Load() }
