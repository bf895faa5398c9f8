// Command statsd starts a three-node encrypted cluster on loopback whose
// metrics go to statsd, and shows the statsd traffic.
//
//	go run ./examples/statsd
//
// With no flags it also plays the statsd server: it listens on a loopback
// UDP port, prints every metric line it receives while the cluster runs
// (counters "|c", gauges "|g", timings "|ms"), then one node leaves, and the
// program ends with a summary of the metric names seen. It needs no setup
// and ends by itself in a few seconds.
//
// Lines are in the DogStatsD format, labels as tags:
// membership.members:3|g|#state:alive,node:demo-0 is node demo-0's count of
// alive members. With -format statsd they are plain statsd lines, label
// values glued into the name (membership.members.alive.demo-0), for a
// server that reads no tags.
//
// To send to a real statsd server (prometheus/statsd_exporter, the Datadog
// agent, Telegraf's statsd input with datadog_extensions = true) instead:
//
//	go run ./examples/statsd -statsd 127.0.0.1:8125 -duration 30s
//
// The metric names are documented in docs/metrics.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/meshward/membership"
	"github.com/meshward/membership/keyring"
	"github.com/meshward/membership/metrics"
)

func main() {
	var cfg config
	flag.StringVar(&cfg.statsd, "statsd", "", "send metrics to this statsd host:port instead of the built-in receiver")
	flag.DurationVar(&cfg.duration, "duration", 3*time.Second, "how long the cluster runs before a node leaves and it shuts down")
	flag.BoolVar(&cfg.quiet, "quiet", false, "print only the summary, not every metric line")
	flag.StringVar(&cfg.format, "format", "dogstatsd", "line format: dogstatsd (labels as tags) or statsd (label values in the name)")
	flag.Parse()
	if err := run(cfg, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "statsd: %v\n", err)
		os.Exit(1)
	}
}

type config struct {
	statsd   string
	duration time.Duration
	quiet    bool
	format   string
}

// nodes is the size of the demo cluster.
const nodes = 3

// lockedWriter serialises the receiver's lines and the program's own.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func run(cfg config, out, stderr io.Writer) error {
	stdout := &lockedWriter{w: out}
	if cfg.duration <= 0 || cfg.duration > 10*time.Minute {
		return fmt.Errorf("-duration %v: want a positive duration of at most 10m", cfg.duration)
	}
	addr := cfg.statsd
	var recv *receiver
	var err error
	if addr == "" {
		if recv, err = listen(stdout, cfg.quiet); err != nil {
			return err
		}
		addr = recv.addr()
		fmt.Fprintf(stdout, "statsd receiver listening on udp %s\n", addr)
	}
	var sink metrics.ShutdownSink
	switch cfg.format {
	case "dogstatsd", "":
		sink, err = metrics.NewDogStatsd(addr)
	case "statsd":
		sink, err = metrics.NewStatsd(addr)
	default:
		err = fmt.Errorf("-format %q: want dogstatsd or statsd", cfg.format)
	}
	if err != nil {
		return err
	}
	// The sink must outlive the nodes (a metric sent to a shut-down
	// go-metrics statsd sink panics): it is shut down after them.
	shutdownSink := sync.OnceFunc(sink.Shutdown)
	defer shutdownSink()

	key, err := keyring.Generate(keyring.XChaCha20Poly1305)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var cluster []*membership.Node
	defer func() {
		for _, n := range cluster {
			n.Shutdown()
		}
	}()
	for i := range nodes {
		ring, err := keyring.New(key)
		if err != nil {
			return err
		}
		n, err := membership.New(
			membership.WithName(fmt.Sprintf("demo-%d", i)),
			membership.WithBindAddr("127.0.0.1:0"),
			membership.WithKeyring(ring),
			membership.WithProfile(membership.ProfileLocal),
			membership.WithMetrics(sink),
			membership.WithLogger(log),
		)
		if err != nil {
			return err
		}
		cluster = append(cluster, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	seed := cluster[0].Myself().Addr.String()
	for _, n := range cluster[1:] {
		if _, err := n.Join(ctx, seed); err != nil {
			return err
		}
	}
	if err := converged(ctx, cluster); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "cluster of %d nodes up (seed %s); sending metrics to %s for %v\n", nodes, seed, addr, cfg.duration)

	time.Sleep(cfg.duration) // the demo's running time: metrics flow meanwhile

	leaver := cluster[nodes-1]
	if err := leaver.Leave(ctx); err != nil {
		return err
	}
	if err := leftEverywhere(ctx, cluster[:nodes-1], leaver.Myself().Name); err != nil {
		return err
	}
	// Let the once-a-second report publish the leave in the survivors'
	// gauges, then shut everything down.
	fmt.Fprintf(stdout, "%s left the cluster\n", leaver.Myself().Name)
	time.Sleep(1200 * time.Millisecond)
	for _, n := range cluster {
		n.Shutdown()
	}
	shutdownSink()
	cluster = nil
	if recv != nil {
		recv.drain(200 * time.Millisecond)
		recv.summary(stdout)
		if recv.lines() == 0 {
			return errors.New("no metric line arrived")
		}
	}
	return nil
}

// converged waits until every node sees every node alive.
func converged(ctx context.Context, cluster []*membership.Node) error {
	return poll(ctx, "the cluster to converge", func() bool {
		for _, n := range cluster {
			alive := 0
			for _, m := range n.Members() {
				if m.State == membership.StateAlive {
					alive++
				}
			}
			if alive != len(cluster) {
				return false
			}
		}
		return true
	})
}

// leftEverywhere waits until every node in cluster sees name as left.
func leftEverywhere(ctx context.Context, cluster []*membership.Node, name string) error {
	return poll(ctx, name+" to be seen as left", func() bool {
		for _, n := range cluster {
			if m, ok := n.Member(name); !ok || m.State != membership.StateLeft {
				return false
			}
		}
		return true
	})
}

func poll(ctx context.Context, what string, cond func() bool) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-tick.C:
		}
	}
	return nil
}

// receiver is a minimal statsd server: it reads UDP datagrams of
// newline-separated "name:value|type" lines and prints them.
type receiver struct {
	conn  *net.UDPConn
	out   io.Writer
	quiet bool
	done  chan struct{}

	mu    sync.Mutex
	count int
	names map[string]int // metric name (before the colon) -> lines
}

func listen(out io.Writer, quiet bool) (*receiver, error) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, fmt.Errorf("statsd receiver: %w", err)
	}
	r := &receiver{conn: conn, out: out, quiet: quiet, done: make(chan struct{}), names: make(map[string]int)}
	go r.serve()
	return r, nil
}

func (r *receiver) addr() string { return r.conn.LocalAddr().String() }

func (r *receiver) serve() {
	defer close(r.done)
	buf := make([]byte, 64<<10)
	for {
		n, _, err := r.conn.ReadFromUDP(buf)
		if err != nil {
			return // closed, or the drain deadline passed
		}
		for l := range strings.SplitSeq(strings.TrimRight(string(buf[:n]), "\n"), "\n") {
			name, _, ok := strings.Cut(l, ":")
			if !ok {
				continue
			}
			r.mu.Lock()
			r.count++
			r.names[name]++
			r.mu.Unlock()
			if !r.quiet {
				fmt.Fprintf(r.out, "statsd <- %s\n", l)
			}
		}
	}
}

// drain reads what is still in flight for d, then stops.
func (r *receiver) drain(d time.Duration) {
	_ = r.conn.SetReadDeadline(time.Now().Add(d))
	<-r.done
	r.conn.Close()
}

func (r *receiver) lines() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count
}

// summary prints how many lines arrived and the distinct metric families,
// with the label values that plain statsd appends to the names stripped.
func (r *receiver) summary(out io.Writer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	families := make(map[string]int)
	for name, n := range r.names {
		families[family(name)] += n
	}
	keys := make([]string, 0, len(families))
	for k := range families {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	fmt.Fprintf(out, "received %d metric lines, %d distinct names, in %d families:\n", r.count, len(r.names), len(families))
	for _, k := range keys {
		fmt.Fprintf(out, "  %-36s %6d lines\n", k, families[k])
	}
}

// family maps a statsd name onto the metric name it came from: the name
// itself in the DogStatsD format, and in plain statsd, where label values
// follow the name, the longest name of metrics/names.go that prefixes it.
func family(name string) string {
	best := ""
	for _, m := range metricNames {
		if (name == m || strings.HasPrefix(name, m+".")) && len(m) > len(best) {
			best = m
		}
	}
	if best == "" {
		return name
	}
	return best
}

var metricNames = []string{
	metrics.MessagesSent, metrics.MessagesReceived, metrics.BytesSent, metrics.BytesReceived,
	metrics.WireBytesSent, metrics.WireBytesReceived,
	metrics.Probes, metrics.Nacks, metrics.ProbeRTT,
	metrics.Suspicions, metrics.Refutations, metrics.Deaths, metrics.Leaves, metrics.Members,
	metrics.Protocol, metrics.Health, metrics.GossipQueue,
	metrics.PushPulls, metrics.PushPullDuration,
	metrics.Dropped, metrics.AESGCMSeals, metrics.EventsDropped, metrics.TransportDropped,
	metrics.NameConflicts, metrics.ReplayWindow,
}
