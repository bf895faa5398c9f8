// Command cluster runs a 5-node encrypted membership cluster on loopback in
// one process and walks through a node's life: the cluster forms, one node
// crashes and is detected, the key is rotated on every node while the
// cluster runs, and a node leaves gracefully. It needs no flags and ends by
// itself in well under a minute.
//
//	go run ./examples/cluster
package main

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/meshward/membership"
	"github.com/meshward/membership/keyring"
)

const size = 5

var start = time.Now()

func say(format string, args ...any) {
	fmt.Printf("[%5.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
}

func main() {
	key, err := keyring.Generate(keyring.XChaCha20Poly1305)
	if err != nil {
		log.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	// 1. Start five nodes on loopback, each with its own copy of the key.
	var nodes []*membership.Node
	for i := 0; i < size; i++ {
		ring, err := keyring.New(key)
		if err != nil {
			log.Fatal(err)
		}
		n, err := membership.New(
			membership.WithName(fmt.Sprintf("node-%d", i)),
			membership.WithBindAddr("127.0.0.1:0"), // a free port
			membership.WithKeyring(ring),
			membership.WithLabel("example-cluster"),
			membership.WithPayload([]byte(fmt.Sprintf(`{"shard":%d}`, i%3))),
			membership.WithProfile(membership.ProfileLocal),
			membership.WithLogger(logger),
		)
		if err != nil {
			log.Fatal(err)
		}
		defer n.Shutdown()
		nodes = append(nodes, n)
	}
	observer := nodes[0]
	go func() {
		for ev := range observer.Events() {
			say("node-0 sees: %-9s %s (incarnation %d)", ev.Kind, ev.Member.Name, ev.Member.Incarnation)
		}
	}()

	say("joining %d nodes through %s", size, observer.Myself().Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, n := range nodes[1:] {
		if _, err := n.Join(ctx, observer.Myself().Addr.String()); err != nil {
			log.Fatal(err)
		}
	}
	waitUntil(nodes, "every node sees 5 alive members", func(n *membership.Node) bool {
		return count(n, membership.StateAlive) == size
	})
	table(observer)

	// 2. Crash node-4: no goodbye. The others suspect it, then declare it
	// failed once the suspicion timeout passes without a refutation.
	crashed := nodes[4]
	say("crashing node-4 (Shutdown without Leave)")
	crashed.Shutdown()
	t0 := time.Now()
	live := nodes[:4]
	waitUntil(live, "every survivor marks node-4 failed", func(n *membership.Node) bool {
		m, ok := n.Member("node-4")
		return ok && m.State == membership.StateDead
	})
	say("node-4 declared failed everywhere %.1fs after the crash", time.Since(t0).Seconds())
	table(observer)

	// 3. Rotate the key on every running node: install everywhere, use
	// everywhere, remove the old key everywhere. Traffic never stops.
	newKey, err := keyring.Generate(keyring.XChaCha20Poly1305)
	if err != nil {
		log.Fatal(err)
	}
	say("rotating the key %x -> %x", keyring.Fingerprint(key), keyring.Fingerprint(newKey))
	for _, step := range []struct {
		name string
		do   func(*keyring.Keyring) error
	}{
		{"install", func(r *keyring.Keyring) error { return r.Install(newKey) }},
		{"use", func(r *keyring.Keyring) error { return r.Use(newKey) }},
		{"remove old", func(r *keyring.Keyring) error { return r.Remove(key) }},
	} {
		for _, n := range live {
			if err := step.do(n.Keyring()); err != nil {
				log.Fatal(err)
			}
		}
		say("  %s: done on %d nodes", step.name, len(live))
	}
	// Prove the cluster still talks under the new key only.
	for _, n := range live[1:] {
		rtt, err := observer.Probe(ctx, n.Myself().Addr.String())
		if err != nil {
			log.Fatalf("probe after rotation: %v", err)
		}
		say("  node-0 probes %s under the new key: rtt %v", n.Myself().Name, rtt.Round(time.Microsecond))
	}

	// 4. node-3 leaves gracefully: the others report it left, not failed.
	say("node-3 leaves gracefully")
	if err := nodes[3].Leave(ctx); err != nil {
		log.Fatal(err)
	}
	nodes[3].Shutdown()
	waitUntil(live[:3], "every remaining node marks node-3 left", func(n *membership.Node) bool {
		m, ok := n.Member("node-3")
		return ok && m.State == membership.StateLeft
	})
	table(observer)
	say("done")
}

// waitUntil polls until cond holds on every node, or exits after 30 s.
func waitUntil(nodes []*membership.Node, what string, cond func(*membership.Node) bool) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok := true
		for _, n := range nodes {
			if !cond(n) {
				ok = false
				break
			}
		}
		if ok {
			say("%s", what)
			return
		}
		if time.Now().After(deadline) {
			log.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func count(n *membership.Node, s membership.State) int {
	c := 0
	for _, m := range n.Members() {
		if m.State == s {
			c++
		}
	}
	return c
}

// table prints node-0's view of the cluster.
func table(n *membership.Node) {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "  NAME\tADDRESS\tSTATE\tINCARNATION\tPAYLOAD")
	for _, m := range n.Members() {
		fmt.Fprintf(w, "  %s\t%v\t%s\t%d\t%s\n", m.Name, m.Addr, m.State, m.Incarnation, m.Payload)
	}
	w.Flush()
	fmt.Printf("  -- %s's view --\n%s", n.Myself().Name, b.String())
}
