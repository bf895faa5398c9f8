// Command keyring shows the keyring at work between two processes' worth of
// sockets on loopback: every datagram is sealed, sent over real UDP, and
// opened; then the key is rotated while traffic flows (install everywhere,
// use everywhere, remove everywhere) and a datagram under the retired key,
// one under another cluster's label, and a tampered one are all rejected with
// errors that say why.
//
//	go run ./examples/keyring
package main

import (
	"errors"
	"fmt"
	"log"
	"net"
	"time"

	"github.com/meshward/membership/keyring"
)

const label = "demo-cluster"

type node struct {
	name string
	ring *keyring.Keyring
	conn *net.UDPConn
}

func newNode(name string, key []byte) *node {
	ring, err := keyring.New(key)
	if err != nil {
		log.Fatalf("%s: %v", name, err)
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		log.Fatalf("%s: %v", name, err)
	}
	return &node{name: name, ring: ring, conn: conn}
}

// send seals msg with the node's primary key and sends it to peer.
func (n *node) send(peer *node, msg string) []byte {
	dg, err := n.ring.Seal(nil, []byte(msg), []byte(label))
	if err != nil {
		log.Fatalf("%s: seal: %v", n.name, err)
	}
	n.sendRaw(peer, dg)
	return dg
}

func (n *node) sendRaw(peer *node, dg []byte) {
	if _, err := n.conn.WriteToUDP(dg, peer.conn.LocalAddr().(*net.UDPAddr)); err != nil {
		log.Fatalf("%s: send: %v", n.name, err)
	}
}

// receive reads one datagram and reports what opening it gave.
func (n *node) receive() {
	buf := make([]byte, 2048)
	if err := n.conn.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
		log.Fatal(err)
	}
	size, from, err := n.conn.ReadFromUDP(buf)
	if err != nil {
		log.Fatalf("%s: receive: %v", n.name, err)
	}
	dg := buf[:size]
	pt, err := n.ring.Open(nil, dg, []byte(label))
	var oe *keyring.OpenError
	switch {
	case err == nil:
		fmt.Printf("  %s <- %v: %q (key %x, %d bytes on the wire)\n", n.name, from.Port, pt, dg[2:6], size)
	case errors.As(err, &oe):
		fmt.Printf("  %s <- %v: REJECTED: %v\n", n.name, from.Port, err)
	default:
		log.Fatalf("%s: open: %v", n.name, err)
	}
}

func fingerprints(r *keyring.Keyring) []string {
	var out []string
	for _, st := range r.Stats() {
		mark := ""
		if st.Primary {
			mark = "*"
		}
		out = append(out, fmt.Sprintf("%x%s", st.Fingerprint, mark))
	}
	return out
}

func main() {
	oldKey, err := keyring.Generate(keyring.XChaCha20Poly1305)
	if err != nil {
		log.Fatal(err)
	}
	newKey, _ := keyring.Generate(keyring.XChaCha20Poly1305)
	a, b := newNode("a", oldKey), newNode("b", oldKey)
	defer a.conn.Close()
	defer b.conn.Close()
	nodes := []*node{a, b}
	show := func(step string) {
		fmt.Printf("%s\n  keys (primary*): a %v, b %v\n", step, fingerprints(a.ring), fingerprints(b.ring))
	}

	show("1. both nodes share one key")
	a.send(b, "ping from a")
	b.receive()
	stale := b.send(a, "ack from b")
	a.receive()

	for _, n := range nodes {
		if err := n.ring.Install(newKey); err != nil {
			log.Fatal(err)
		}
	}
	show("2. install the new key everywhere (decrypt-only)")
	a.send(b, "still sealed with the old key")
	b.receive()

	if err := a.ring.Use(newKey); err != nil {
		log.Fatal(err)
	}
	show("3. use it on a first: b already opens it")
	a.send(b, "sealed with the new key")
	b.receive()
	b.send(a, "b still seals with the old key, a still opens it")
	a.receive()
	if err := b.ring.Use(newKey); err != nil {
		log.Fatal(err)
	}

	for _, n := range nodes {
		if err := n.ring.Remove(oldKey); err != nil {
			log.Fatal(err)
		}
	}
	show("4. use everywhere, then remove the old key everywhere")
	a.send(b, "after rotation")
	b.receive()
	fmt.Println("5. what is rejected, and why")
	b.sendRaw(a, stale) // sealed under the retired key
	a.receive()
	other, _ := b.ring.Seal(nil, []byte("from another cluster"), []byte("other-cluster"))
	b.sendRaw(a, other)
	a.receive()
	tampered, _ := b.ring.Seal(nil, []byte("tampered"), []byte(label))
	tampered[len(tampered)-1] ^= 1
	b.sendRaw(a, tampered)
	a.receive()
	fmt.Printf("done: a sealed %d datagrams under the new key\n", a.ring.Stats()[0].Seals)
}
