// Command gossip runs four encrypted members on loopback in one process and
// shows the application's own gossip: a broadcast to everyone, a keyed
// broadcast replaced by a newer one, a datagram to one member, a reliable
// message to another, and a query whose answers come back to the asker. It
// prints what arrived where, needs no flags and ends by itself in a few
// seconds.
//
//	go run ./examples/gossip
package main

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/meshward/membership"
	"github.com/meshward/membership/keyring"
)

func main() {
	key, err := keyring.Generate(keyring.XChaCha20Poly1305)
	if err != nil {
		log.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var nodes []*membership.Node
	for i := range 4 {
		ring, err := keyring.New(key)
		if err != nil {
			log.Fatal(err)
		}
		n, err := membership.New(
			membership.WithName(fmt.Sprintf("node-%d", i)),
			membership.WithBindAddr("127.0.0.1:0"),
			membership.WithKeyring(ring),
			membership.WithProfile(membership.ProfileLocal),
			membership.WithLogger(logger),
		)
		if err != nil {
			log.Fatal(err)
		}
		defer n.Shutdown()
		nodes = append(nodes, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, n := range nodes[1:] {
		if _, err := n.Join(ctx, nodes[0].Myself().Addr.String()); err != nil {
			log.Fatal(err)
		}
	}
	for _, n := range nodes {
		for len(n.Members()) < len(nodes) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	fmt.Println("4 members joined")

	// Every member prints what reaches it, and answers queries.
	var mu sync.Mutex
	var lines []string
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			me := n.Myself().Name
			for m := range n.Messages() {
				if m.Kind == membership.MessageQuery {
					m.Respond([]byte("load 0.4 on " + me))
				}
				mu.Lock()
				lines = append(lines, fmt.Sprintf("  %s got a %s from %s: %q %s", me, m.Kind, m.From, m.Payload, keyOf(m)))
				mu.Unlock()
			}
		}()
	}

	if err := nodes[0].Broadcast("", []byte("hello, everyone")); err != nil {
		log.Fatal(err)
	}
	if err := nodes[1].Broadcast("config", []byte("version 2")); err != nil {
		log.Fatal(err)
	}
	if err := nodes[2].SendTo("node-3", []byte("a datagram, best effort")); err != nil {
		log.Fatal(err)
	}
	if err := nodes[3].SendReliable(ctx, "node-0", []byte("a message that surely arrived")); err != nil {
		log.Fatal(err)
	}
	res, err := nodes[0].Query(ctx, "load", nil, &membership.QueryParams{Ack: true})
	if err != nil {
		log.Fatal(err)
	}
	var answers []string
	for r := range res.Responses() {
		answers = append(answers, fmt.Sprintf("  %s answered %q", r.From, r.Payload))
	}
	time.Sleep(time.Second) // let the broadcasts finish spreading, to print them
	for _, n := range nodes {
		n.Shutdown()
	}
	wg.Wait()
	sort.Strings(lines)
	sort.Strings(answers)
	fmt.Println("what arrived:")
	for _, l := range lines {
		fmt.Println(l)
	}
	fmt.Printf("the query to %d members:\n", res.Expected())
	for _, a := range answers {
		fmt.Println(a)
	}
}

func keyOf(m membership.Message) string {
	switch {
	case m.Kind == membership.MessageQuery:
		return "(query " + m.Key + ")"
	case m.Key != "":
		return "(key " + m.Key + ")"
	}
	return ""
}
