package metrics_test

import (
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/meshward/membership/metrics"
)

// Metrics writes to the sink it is given, with the node's name on every
// metric; an in-memory sink lets a test read back what was emitted. The
// per-message counters (here MessageSent) are summed and reach the sink
// on Flush, which a node calls once a second.
func ExampleMetrics() {
	sink := metrics.NewInmem()
	m := metrics.New(sink, metrics.Label{Name: metrics.LabelNode, Value: "api-7"})

	m.MessageSent("ping", 64)
	m.MessageSent("ping", 64)
	m.Probe(metrics.ProbeAck)
	m.RTT(metrics.PathDirect, 2*time.Millisecond)
	m.MemberCounts(4, 1, 0, 0)
	m.Drop(metrics.DropReplay)
	m.Flush()

	pings, _ := sink.Counter(metrics.MessagesSent, metrics.Label{Name: metrics.LabelType, Value: "ping"})
	bytes, _ := sink.Counter(metrics.BytesSent)
	alive, _ := sink.Gauge(metrics.Members, metrics.Label{Name: metrics.LabelState, Value: metrics.StateAlive})
	n, sum, _, _ := sink.Samples(metrics.ProbeRTT)
	replays, _ := sink.Counter(metrics.Dropped, metrics.Label{Name: metrics.LabelReason, Value: string(metrics.DropReplay)})
	fmt.Println("pings sent:", pings, "bytes:", bytes)
	fmt.Println("alive members:", alive)
	fmt.Println("rtt samples:", n, "total ms:", sum)
	fmt.Println("replays dropped:", replays)
	// Output:
	// pings sent: 2 bytes: 128
	// alive members: 4
	// rtt samples: 1 total ms: 2
	// replays dropped: 1
}

// A nil *Metrics is the no-op default: the runtime calls it unconditionally.
func ExampleNew_nil() {
	var m *metrics.Metrics = metrics.New(nil)
	m.Probe(metrics.ProbeFailed) // does nothing
	fmt.Println(m == nil)
	// Output: true
}

// Export to statsd. Here the statsd server is a UDP socket on loopback that
// prints what it receives; label values become name segments.
func ExampleNewStatsd() {
	server, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer server.Close()

	sink, err := metrics.NewStatsd(server.LocalAddr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sink.Shutdown()
	m := metrics.New(sink, metrics.Label{Name: metrics.LabelNode, Value: "api-7"})
	m.Probe(metrics.ProbeAck)
	m.HealthScore(1)

	var lines []string
	buf := make([]byte, 1500)
	server.SetReadDeadline(time.Now().Add(5 * time.Second))
	for len(lines) < 2 {
		n, _, err := server.ReadFrom(buf)
		if err != nil {
			fmt.Println(err)
			return
		}
		lines = append(lines, strings.Fields(string(buf[:n]))...)
	}
	sort.Strings(lines)
	fmt.Println(strings.Join(lines, "\n"))
	// Output:
	// membership.health.api-7:1.000000|g
	// membership.probes.ack.api-7:1.000000|c
}

// Export to a statsd server that reads DogStatsD tags (statsd_exporter,
// Datadog, Telegraf): labels travel as tags, so the server can aggregate
// by node, state, reason or type. Here the server is a UDP socket on
// loopback that prints what it receives.
func ExampleNewDogStatsd() {
	server, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer server.Close()

	sink, err := metrics.NewDogStatsd(server.LocalAddr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sink.Shutdown()
	m := metrics.New(sink, metrics.Label{Name: metrics.LabelNode, Value: "api-7"})
	m.Probe(metrics.ProbeAck)
	m.Drop(metrics.DropUnknownKey)

	var lines []string
	buf := make([]byte, 1500)
	server.SetReadDeadline(time.Now().Add(5 * time.Second))
	for len(lines) < 2 {
		n, _, err := server.ReadFrom(buf)
		if err != nil {
			fmt.Println(err)
			return
		}
		lines = append(lines, strings.Fields(string(buf[:n]))...)
	}
	fmt.Println(strings.Join(lines, "\n"))
	// Output:
	// membership.probes:1|c|#result:ack,node:api-7
	// membership.dropped:1|c|#reason:unknown_key,node:api-7
}
