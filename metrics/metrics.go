package metrics

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gometrics "github.com/armon/go-metrics"
)

// Label is a metric label (name and value), as go-metrics defines it.
type Label = gometrics.Label

// MetricSink is the go-metrics sink interface that Metrics writes to:
// statsd, statsite, Prometheus, datadog, InmemSink, or a fanout of several.
type MetricSink = gometrics.MetricSink

// ShutdownSink is a MetricSink with a Shutdown method that flushes and
// stops it, as go-metrics defines it.
type ShutdownSink = gometrics.ShutdownSink

// maxCachedLabelSets bounds the cache of label slices, so label values that
// vary without bound (a bug in a caller) cost allocations, not memory.
const maxCachedLabelSets = 1024

// maxBatched bounds the summed counters (one per name and label set), for
// the same reason: beyond it, a count goes to the sink at once.
const maxBatched = maxCachedLabelSets

// keys holds the go-metrics key of every known name, split on dots once.
// Each is clipped (len == cap): go-metrics' statsd sink appends label values
// to the key slice it is given, which must not write into a shared array.
var keys = func() map[string][]string {
	m := make(map[string][]string, len(allNames))
	for _, n := range allNames {
		m[n] = slices.Clip(strings.Split(n, "."))
	}
	return m
}()

func keyOf(name string) []string {
	if k, ok := keys[name]; ok {
		return k
	}
	return slices.Clip(strings.Split(name, "."))
}

// Metrics emits the library's metrics to one sink, with base labels (such as
// the node's name) added to every metric. It writes to the sink it is given,
// never to go-metrics' process-global one, so two nodes in one process
// report separately.
//
// The counters counted per message or per datagram (MessageSent,
// MessageReceived, WireSent, WireReceived, UserMessage) are summed here, in
// one atomic counter per name and label set, and reach the sink only when
// Flush is called, as one IncrCounterWithLabels per counter that moved: a
// sink formats every call (and a statsd sink sends a line per call), too
// much CPU to spend per datagram (docs/metrics.md). The node calls Flush
// once a second and at Shutdown; whoever calls those methods on a Metrics
// of their own must call Flush too. Every other metric goes to the sink at
// once.
//
// A nil *Metrics is valid and emits nothing, so the runtime can call its
// methods unconditionally. All methods are safe for concurrent use; the
// typed helpers do not allocate once a label value has been seen (label
// slices are cached), so they are cheap enough for the per-message path.
type Metrics struct {
	sink MetricSink
	base []Label

	mu    sync.RWMutex
	cache map[labelKey][]Label

	// batch holds the summed counters. It is replaced whole, under
	// batchMu, when a counter is added, so that counting reads it
	// without a lock.
	batch   atomic.Pointer[batchSet]
	batchMu sync.Mutex
}

// labelKey identifies a cached label slice: up to two labels, plus base.
type labelKey struct{ n1, v1, n2, v2 string }

// batchKey identifies a summed counter: its name and label set.
type batchKey struct {
	name string
	labelKey
}

// batched is one summed counter: what was added since the last Flush.
type batched struct {
	key    []string
	labels []Label
	n      atomic.Uint64
}

// batchSet is the set of summed counters. It is never modified once
// published: adding a counter publishes a new one.
type batchSet struct {
	byKey map[batchKey]*batched
	all   []*batched // in the order added, so that Flush emits in that order
}

// New returns a Metrics writing to sink, adding base labels to every metric
// (for example Label{Name: LabelNode, Value: "api-7"}). A nil sink yields a
// nil *Metrics, which emits nothing.
func New(sink MetricSink, base ...Label) *Metrics {
	if sink == nil {
		return nil
	}
	m := &Metrics{
		sink:  sink,
		base:  slices.Clip(slices.Clone(base)),
		cache: make(map[labelKey][]Label),
	}
	m.batch.Store(&batchSet{byKey: map[batchKey]*batched{}})
	return m
}

// Flush emits what the summed counters (MessageSent, MessageReceived,
// WireSent, WireReceived, UserMessage) counted since the last Flush: one
// IncrCounterWithLabels per name and label set that moved, with the sum.
// Counts made while it runs reach the sink now or with the next Flush,
// never twice. Sums are kept as integers and handed over as float32, as
// go-metrics takes them (exact up to 2^24 per counter and Flush). It is
// safe to call concurrently and on a nil Metrics.
func (m *Metrics) Flush() {
	if m == nil {
		return
	}
	for _, c := range m.batch.Load().all {
		if d := c.n.Swap(0); d > 0 {
			m.sink.IncrCounterWithLabels(c.key, float32(d), c.labels)
		}
	}
}

// add adds val to the summed counter name with up to two labels plus the
// base labels, for the next Flush. Once the counter exists this is a map
// read and an atomic add.
func (m *Metrics) add(name string, val uint64, n1, v1, n2, v2 string) {
	k := batchKey{name, labelKey{n1, v1, n2, v2}}
	if c := m.batch.Load().byKey[k]; c != nil {
		c.n.Add(val)
		return
	}
	m.addNew(k, val)
}

// addNew adds a summed counter for k, unless there are maxBatched already:
// then val goes to the sink at once.
func (m *Metrics) addNew(k batchKey, val uint64) {
	m.batchMu.Lock()
	cur := m.batch.Load()
	c := cur.byKey[k]
	if c == nil && len(cur.all) < maxBatched {
		c = &batched{key: keyOf(k.name), labels: m.labels(k.n1, k.v1, k.n2, k.v2)}
		next := &batchSet{byKey: maps.Clone(cur.byKey), all: append(slices.Clip(cur.all), c)}
		next.byKey[k] = c
		m.batch.Store(next)
	}
	m.batchMu.Unlock()
	if c == nil {
		m.sink.IncrCounterWithLabels(keyOf(k.name), float32(val), m.labels(k.n1, k.v1, k.n2, k.v2))
		return
	}
	c.n.Add(val)
}

// Sink returns the sink metrics are written to (nil for a nil Metrics).
func (m *Metrics) Sink() MetricSink {
	if m == nil {
		return nil
	}
	return m.sink
}

// labels returns the label slice for up to two labels plus the base labels,
// cached so the hot path does not allocate. Specific labels come first and
// base labels last, as go-metrics orders its own host label.
func (m *Metrics) labels(n1, v1, n2, v2 string) []Label {
	k := labelKey{n1, v1, n2, v2}
	m.mu.RLock()
	l, ok := m.cache[k]
	m.mu.RUnlock()
	if ok {
		return l
	}
	l = make([]Label, 0, 2+len(m.base))
	if n1 != "" {
		l = append(l, Label{Name: n1, Value: v1})
	}
	if n2 != "" {
		l = append(l, Label{Name: n2, Value: v2})
	}
	l = slices.Clip(append(l, m.base...))
	m.mu.Lock()
	if len(m.cache) < maxCachedLabelSets {
		m.cache[k] = l
	}
	m.mu.Unlock()
	return l
}

func (m *Metrics) withBase(labels []Label) []Label {
	if len(m.base) == 0 {
		return labels
	}
	return slices.Clip(append(slices.Clip(labels), m.base...))
}

// IncrCounter adds val to the counter name, with labels and the base labels.
// The typed helpers below cover every metric in names.go; this is for
// callers extending the set.
func (m *Metrics) IncrCounter(name string, val float32, labels ...Label) {
	if m == nil {
		return
	}
	m.sink.IncrCounterWithLabels(keyOf(name), val, m.withBase(labels))
}

// SetGauge sets the gauge name to val, with labels and the base labels.
func (m *Metrics) SetGauge(name string, val float32, labels ...Label) {
	if m == nil {
		return
	}
	m.sink.SetGaugeWithLabels(keyOf(name), val, m.withBase(labels))
}

// AddSample adds one sample of val to name, with labels and the base labels.
func (m *Metrics) AddSample(name string, val float32, labels ...Label) {
	if m == nil {
		return
	}
	m.sink.AddSampleWithLabels(keyOf(name), val, m.withBase(labels))
}

// MeasureSince samples the time since start in milliseconds, as go-metrics
// does, under name.
func (m *Metrics) MeasureSince(name string, start time.Time, labels ...Label) {
	if m == nil {
		return
	}
	m.AddSample(name, ms(time.Since(start)), labels...)
}

func ms(d time.Duration) float32 { return float32(d) / float32(time.Millisecond) }

func (m *Metrics) incr(name string, val float32, n1, v1, n2, v2 string) {
	m.sink.IncrCounterWithLabels(keys[name], val, m.labels(n1, v1, n2, v2))
}

// MessageSent counts one message of type typ sent, of size bytes encoded.
// typ is the message type's name ("ping", "ack", "ping-req", "alive", ...).
// The counts reach the sink at the next Flush.
func (m *Metrics) MessageSent(typ string, bytes int) {
	if m == nil {
		return
	}
	m.add(MessagesSent, 1, LabelType, typ, "", "")
	m.add(BytesSent, uint64(max(bytes, 0)), LabelType, typ, "", "")
}

// MessageReceived counts one message of type typ received, of size bytes.
// The counts reach the sink at the next Flush.
func (m *Metrics) MessageReceived(typ string, bytes int) {
	if m == nil {
		return
	}
	m.add(MessagesReceived, 1, LabelType, typ, "", "")
	m.add(BytesReceived, uint64(max(bytes, 0)), LabelType, typ, "", "")
}

// WireSent counts n sealed bytes sent over channel c: a whole datagram
// as handed to the socket, or what one write to a stream carried. The
// count reaches the sink at the next Flush.
func (m *Metrics) WireSent(c Channel, n int) {
	if m == nil {
		return
	}
	m.add(WireBytesSent, uint64(max(n, 0)), LabelChannel, string(c), "", "")
}

// WireReceived counts n sealed bytes received over channel c: a whole
// datagram, or what one read from a stream returned. The count reaches
// the sink at the next Flush.
func (m *Metrics) WireReceived(c Channel, n int) {
	if m == nil {
		return
	}
	m.add(WireBytesReceived, uint64(max(n, 0)), LabelChannel, string(c), "", "")
}

// Probe counts one completed probe with its outcome (SWIM §3.1).
func (m *Metrics) Probe(r ProbeResult) {
	if m == nil {
		return
	}
	m.incr(Probes, 1, LabelResult, string(r), "", "")
}

// StreamProbe counts one stream ping of the fallback probe with its
// result (StreamProbeOK, StreamProbeFailed, StreamProbeSkipped).
func (m *Metrics) StreamProbe(result string) {
	if m == nil {
		return
	}
	m.incr(StreamProbes, 1, LabelResult, result, "", "")
}

// Nack counts one nack from an indirect probe helper (Lifeguard §4.3).
func (m *Metrics) Nack() {
	if m == nil {
		return
	}
	m.incr(Nacks, 1, "", "", "", "")
}

// RTT samples one probe round-trip time.
func (m *Metrics) RTT(p Path, d time.Duration) {
	if m == nil {
		return
	}
	m.sink.AddSampleWithLabels(keys[ProbeRTT], ms(d), m.labels(LabelPath, string(p), "", ""))
}

// Suspicion counts one member marked suspect (SWIM §4.2).
func (m *Metrics) Suspicion() {
	if m == nil {
		return
	}
	m.incr(Suspicions, 1, "", "", "", "")
}

// Refutation counts one refutation of a suspicion about this node.
func (m *Metrics) Refutation() {
	if m == nil {
		return
	}
	m.incr(Refutations, 1, "", "", "", "")
}

// UserMessage counts one application message of type typ ("broadcast",
// "direct", "reliable", "reliable_sent") with its result. It is called per
// message, so the count reaches the sink at the next Flush.
func (m *Metrics) UserMessage(typ, result string) {
	if m == nil {
		return
	}
	m.add(UserMessages, 1, LabelType, typ, LabelResult, result)
}

// UserBroadcasts adds n to the application broadcasts with result.
func (m *Metrics) UserBroadcasts(result string, n uint64) {
	if m == nil || n == 0 {
		return
	}
	m.incr(UserBroadcasts, float32(n), LabelResult, result, "", "")
}

// UserBroadcastQueue sets the broadcast queue's depth and bytes.
func (m *Metrics) UserBroadcastQueue(n, bytes int) {
	if m == nil {
		return
	}
	m.sink.SetGaugeWithLabels(keys[UserBroadcastQueue], float32(n), m.labels("", "", "", ""))
	m.sink.SetGaugeWithLabels(keys[UserBroadcastQueueBytes], float32(bytes), m.labels("", "", "", ""))
}

// UserQuery counts one query event with result.
func (m *Metrics) UserQuery(result string) {
	if m == nil {
		return
	}
	m.incr(UserQueries, 1, LabelResult, result, "", "")
}

// NameConflict counts one name claimed by two processes.
func (m *Metrics) NameConflict() {
	if m == nil {
		return
	}
	m.incr(NameConflicts, 1, "", "", "", "")
}

// Death counts one member declared failed.
func (m *Metrics) Death() {
	if m == nil {
		return
	}
	m.incr(Deaths, 1, "", "", "", "")
}

// Leave counts one member that left gracefully.
func (m *Metrics) Leave() {
	if m == nil {
		return
	}
	m.incr(Leaves, 1, "", "", "", "")
}

// MemberCounts sets the Members gauge for each state.
func (m *Metrics) MemberCounts(alive, suspect, dead, left int) {
	if m == nil {
		return
	}
	k := keys[Members]
	m.sink.SetGaugeWithLabels(k, float32(alive), m.labels(LabelState, StateAlive, "", ""))
	m.sink.SetGaugeWithLabels(k, float32(suspect), m.labels(LabelState, StateSuspect, "", ""))
	m.sink.SetGaugeWithLabels(k, float32(dead), m.labels(LabelState, StateDead, "", ""))
	m.sink.SetGaugeWithLabels(k, float32(left), m.labels(LabelState, StateLeft, "", ""))
}

// HealthScore sets the local health multiplier score (Lifeguard §4.1).
func (m *Metrics) HealthScore(score int) {
	if m == nil {
		return
	}
	m.sink.SetGaugeWithLabels(keys[Health], float32(score), m.labels("", "", "", ""))
}

// GossipQueueDepth sets the number of updates waiting to be disseminated.
func (m *Metrics) GossipQueueDepth(n int) {
	if m == nil {
		return
	}
	m.sink.SetGaugeWithLabels(keys[GossipQueue], float32(n), m.labels("", "", "", ""))
}

// PushPull counts one push-pull exchange and samples its duration; err nil
// means it completed.
func (m *Metrics) PushPull(dir Direction, d time.Duration, err error) {
	if m == nil {
		return
	}
	res := ResultOK
	if err != nil {
		res = ResultError
	}
	m.incr(PushPulls, 1, LabelDirection, string(dir), LabelResult, res)
	m.sink.AddSampleWithLabels(keys[PushPullDuration], ms(d), m.labels(LabelDirection, string(dir), "", ""))
}

// Drop counts one received datagram or frame dropped for reason r.
func (m *Metrics) Drop(r DropReason) {
	if m == nil {
		return
	}
	m.incr(Dropped, 1, LabelReason, string(r), "", "")
}

// AESGCMSealed counts n AES-GCM seals with the key whose fingerprint (hex)
// is given. Call it per seal (n = 1) or with the increase of a counter the
// keyring keeps.
func (m *Metrics) AESGCMSealed(fingerprint string, n uint64) {
	if m == nil || n == 0 {
		return
	}
	m.incr(AESGCMSeals, float32(n), LabelKey, fingerprint, "", "")
}

// EventOverflow counts n events dropped because the event channel was full.
func (m *Metrics) EventOverflow(n uint64) {
	if m == nil || n == 0 {
		return
	}
	m.incr(EventsDropped, float32(n), "", "", "", "")
}

// TransportDrop counts n datagrams or streams the transport dropped for
// reason r. The runtime passes the increase of the transport's Stats
// counters since its last report.
func (m *Metrics) TransportDrop(r TransportDropReason, n uint64) {
	if m == nil || n == 0 {
		return
	}
	m.incr(TransportDropped, float32(n), LabelReason, string(r), "", "")
}

// NewStatsd returns go-metrics' plain statsd sink, sending to addr
// ("host:port", UDP) every 100ms. Plain statsd has no labels: the sink
// appends each label value to the name as a further segment
// (membership.probes.ack.api-7), so a server cannot aggregate by label
// without a mapping of its own. Prefer NewDogStatsd for any server that
// reads DogStatsD tags (statsd_exporter, Datadog, Telegraf); keep this one
// for servers that read none (Etsy statsd, Graphite's).
//
// Call its Shutdown method to stop it, after every node that writes to it
// has shut down: go-metrics' sink panics when written to after Shutdown,
// and drops what it buffered. It fails only for an address that is not
// host:port; an unreachable statsd loses metrics, never blocks the caller.
func NewStatsd(addr string) (*gometrics.StatsdSink, error) {
	if err := checkHostPort(addr); err != nil {
		return nil, err
	}
	return gometrics.NewStatsdSink(addr)
}
