// Command prometheus starts a three-node encrypted cluster on loopback whose
// metrics go to go-metrics' Prometheus sink, and serves them at /metrics for
// Prometheus to scrape:
//
//	cd examples/prometheus
//	go run . -listen 127.0.0.1:9464 &
//	curl -s 127.0.0.1:9464/metrics | grep '^membership_members'
//
// It runs until interrupted, or for -duration. The metric names are those
// of docs/metrics.md with dots turned into underscores, labels kept as
// labels (membership_members{node="demo-0",state="alive"} 3); samples are
// summaries in milliseconds.
//
// This example is a Go module of its own, with a replace directive pointing
// at the library, so that prometheus/client_golang stays out of the
// library's go.mod: only a program that wants Prometheus pays for it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"time"

	gmprom "github.com/armon/go-metrics/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/meshward/membership"
	"github.com/meshward/membership/keyring"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9464", "address to serve /metrics on")
	duration := flag.Duration("duration", 0, "how long to run (0: until interrupted)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	if err := run(ctx, *listen, os.Stdout, nil); err != nil {
		fmt.Fprintf(os.Stderr, "prometheus: %v\n", err)
		os.Exit(1)
	}
}

// nodes is the size of the demo cluster.
const nodes = 3

// run serves the cluster's metrics on listen until ctx ends; ready, if not
// nil, is called with the address /metrics is served on once the cluster
// has converged.
func run(ctx context.Context, listen string, out io.Writer, ready func(addr string)) error {
	// One sink, in a registry of our own, serves every node of the
	// process: the node label tells them apart. Expiration 0 keeps every
	// series: their number is bounded (no label names a peer).
	reg := prometheus.NewRegistry()
	sink, err := gmprom.NewPrometheusSinkFrom(gmprom.PrometheusOpts{Registerer: reg, Expiration: 0})
	if err != nil {
		return fmt.Errorf("prometheus sink: %w", err)
	}

	key, err := keyring.Generate(keyring.XChaCha20Poly1305)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
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
	seed := cluster[0].Myself().Addr.String()
	for _, n := range cluster[1:] {
		if _, err := n.Join(ctx, seed); err != nil {
			return err
		}
	}

	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(out, "cluster of %d nodes up (seed %s); metrics at http://%s/metrics\n", nodes, seed, ln.Addr())
	if ready != nil {
		ready(ln.Addr().String())
	}

	select {
	case <-ctx.Done():
	case err := <-served:
		return err
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
