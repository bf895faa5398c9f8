package membership

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshward/membership/metrics"
)

func TestEncryptionModeOptions(t *testing.T) {
	c := newMemCluster(t, 0)
	plain, err := New(WithName("plain"), WithTransport(c.net.NewTransport()), WithoutEncryption(), WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Shutdown()
	if plain.EncryptionMode() != EncryptionOff {
		t.Fatalf("plaintext node's mode: %v", plain.EncryptionMode())
	}
	if err := plain.SetEncryptionMode(EncryptionAcceptSealed); !errors.Is(err, ErrNoEncryption) {
		t.Fatalf("SetEncryptionMode without a keyring: %v, want ErrNoEncryption", err)
	}
	if err := plain.SetEncryptionMode(EncryptionOff); err != nil {
		t.Fatal(err)
	}
	if _, err := New(WithName("x"), WithTransport(c.net.NewTransport()), WithoutEncryption(), WithEncryptionMode(EncryptionSendSealed)); err == nil || !strings.Contains(err.Error(), "needs a keyring") {
		t.Fatalf("WithoutEncryption and send-sealed: %v", err)
	}
	if _, err := New(WithName("x"), WithTransport(c.net.NewTransport()), WithEncryptionMode(EncryptionRequired)); !errors.Is(err, ErrNoEncryption) {
		t.Fatalf("required without a keyring: %v", err)
	}
	if _, err := New(WithName("x"), WithTransport(c.net.NewTransport()), WithKeyring(newRing(t, testKey)), WithEncryptionMode(9)); err == nil {
		t.Fatal("mode 9 accepted")
	}
	keyed := c.add("keyed")
	if keyed.EncryptionMode() != EncryptionRequired {
		t.Fatalf("default mode with a keyring: %v", keyed.EncryptionMode())
	}
	off := c.add("off", WithEncryptionMode(EncryptionOff))
	if off.EncryptionMode() != EncryptionOff || off.Keyring() == nil {
		t.Fatal("a keyring held in mode off")
	}
	for _, m := range []EncryptionMode{EncryptionAcceptSealed, EncryptionSendSealed, EncryptionRequired, EncryptionOff} {
		if err := off.SetEncryptionMode(m); err != nil || off.EncryptionMode() != m {
			t.Fatalf("SetEncryptionMode(%v): %v, mode %v", m, err, off.EncryptionMode())
		}
	}
	if got := fmt.Sprint(EncryptionRequired, EncryptionSendSealed, EncryptionAcceptSealed, EncryptionOff); got != "required send-sealed accept-sealed off" {
		t.Fatalf("mode names: %s", got)
	}
}

// TestAcceptSealedJoinsPlaintextCluster: the first step of the move, for a
// cluster of WithoutEncryption nodes, is to restart each with a keyring in
// EncryptionAcceptSealed. Such a node joins the plaintext members and they
// join it, since it still sends plaintext.
func TestAcceptSealedJoinsPlaintextCluster(t *testing.T) {
	c := newMemCluster(t, 0)
	for i := range 3 {
		nd, err := New(WithName(fmt.Sprintf("plain-%d", i)), WithTransport(c.net.NewTransport()), WithoutEncryption(),
			WithProfile(ProfileLocal), WithLogger(quietLogger()))
		if err != nil {
			t.Fatal(err)
		}
		c.nodes = append(c.nodes, nd)
	}
	c.add("keyed", WithEncryptionMode(EncryptionAcceptSealed))
	c.joinAll()
	// And a plaintext node joining through the keyed one.
	late, err := New(WithName("plain-late"), WithTransport(c.net.NewTransport()), WithoutEncryption(),
		WithProfile(ProfileLocal), WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	c.nodes = append(c.nodes, late)
	if _, err := late.Join(context.Background(), c.nodes[3].Myself().Addr.String()); err != nil {
		t.Fatalf("a plaintext node joining through an accept-sealed one: %v", err)
	}
	c.everyoneSees(c.nodes, names(c.nodes), StateAlive, 10*time.Second)
}

// TestSkippedStepIsReported: a node that requires encryption while a peer
// still sends plaintext (a step skipped) reports that peer as a key
// mismatch, and the peer, which accepts only plaintext, reports the
// sealed datagrams it gets.
func TestSkippedStepIsReported(t *testing.T) {
	c := newMemCluster(t, 0)
	strict := c.add("strict")
	lagging := c.add("lagging", WithEncryptionMode(EncryptionOff))
	strictEv, laggingEv := watchMismatches(strict), watchMismatches(lagging)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := lagging.Join(ctx, strict.Myself().Addr.String()); err == nil {
		t.Fatal("a plaintext joiner got into a cluster that requires encryption")
	}
	waitFor(t, 5*time.Second, "the strict node to report plaintext", func() bool {
		ev, ok := strictEv.find(func(Event) bool { return true })
		return ok && ev.KeyMismatch.Reason == MismatchPlaintext && ev.Member.Addr == lagging.Myself().Addr
	})
	if err := strict.AddMember(ctx, lagging.Myself().Addr.String()); err == nil {
		t.Fatal("a plaintext-only node answered a sealed probe")
	}
	waitFor(t, 5*time.Second, "the lagging node to report sealed datagrams", func() bool {
		ev, ok := laggingEv.find(func(Event) bool { return true })
		return ok && ev.KeyMismatch.Reason == MismatchSealed && ev.KeyMismatch.Fingerprint == fpHex(testKey) && ev.Member.Addr == strict.Myself().Addr
	})
}

// TestLiveMigrationLosesNoMember: ten nodes on real sockets move from
// plaintext (a keyring held in EncryptionOff) to EncryptionRequired and
// back, one step at a time on every node, while every member's view is
// sampled every protocol period: no member ever goes missing or is
// declared failed, every push-pull exchange works at every step, and not
// one datagram is refused on the way.
func TestLiveMigrationLosesNoMember(t *testing.T) {
	if testing.Short() {
		t.Skip("real sockets")
	}
	const n = 10
	sink := metrics.NewInmem()
	var nodes []*Node
	t.Cleanup(func() {
		for _, nd := range nodes {
			nd.Shutdown()
		}
	})
	for i := range n {
		nd, err := New(
			WithName(fmt.Sprintf("m-%d", i)),
			WithBindAddr("127.0.0.1:0"),
			WithKeyring(newRing(t, testKey)),
			WithEncryptionMode(EncryptionOff),
			WithProfile(ProfileLocal),
			WithLogger(quietLogger()),
			WithMetrics(sink),
		)
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, nd)
	}
	for _, nd := range nodes[1:] {
		if _, err := nd.Join(context.Background(), nodes[0].Myself().Addr.String()); err != nil {
			t.Fatal(err)
		}
	}
	c := &testCluster{t: t}
	all := names(nodes)
	c.everyoneSees(nodes, all, StateAlive, 10*time.Second)

	// Sample every member's view every protocol period.
	period := 200 * time.Millisecond
	var (
		mu       sync.Mutex
		problems []string
		samples  int
	)
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for _, nd := range nodes {
				view := map[string]State{}
				for _, m := range nd.Members() {
					view[m.Name] = m.State
				}
				for _, name := range all {
					st, ok := view[name]
					if !ok || st == StateDead || st == StateLeft {
						mu.Lock()
						problems = append(problems, fmt.Sprintf("%s sees %s as %v (known: %v)", nd.Myself().Name, name, st, ok))
						mu.Unlock()
					}
				}
			}
			mu.Lock()
			samples++
			mu.Unlock()
		}
	}()

	steps := []EncryptionMode{
		EncryptionAcceptSealed, EncryptionSendSealed, EncryptionRequired, // to encryption
		EncryptionSendSealed, EncryptionAcceptSealed, EncryptionOff, // and back
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, mode := range steps {
		// One node after another, so that the cluster runs mixed for a
		// while within each step.
		for _, i := range rng.Perm(n) {
			if err := nodes[i].SetEncryptionMode(mode); err != nil {
				t.Fatal(err)
			}
			time.Sleep(period / n)
		}
		// Streams work at every step: a push-pull between two nodes.
		a, b := nodes[rng.IntN(n)], nodes[rng.IntN(n)]
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if _, err := a.Join(ctx, b.Myself().Addr.String()); err != nil && a != b {
			t.Errorf("step %v: push-pull from %s to %s: %v", mode, a.Myself().Name, b.Myself().Name, err)
		}
		cancel()
		// Hold the step for a few protocol periods of traffic.
		time.Sleep(3 * period)
	}
	close(stop)
	<-sampled

	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Fatalf("%d of %d samples saw a member missing or failed, first: %s", len(problems), samples, problems[0])
	}
	if samples < len(steps)*3 {
		t.Fatalf("only %d samples", samples)
	}
	for _, nd := range nodes {
		var refused uint64
		nd.do(func() {
			for _, r := range []metrics.DropReason{metrics.DropUnencrypted, metrics.DropMalformed, metrics.DropUnknownKey, metrics.DropAuth, metrics.DropDecode} {
				refused += nd.drops[r]
			}
		})
		if refused != 0 {
			t.Errorf("%s refused %d datagrams during the move", nd.Myself().Name, refused)
		}
		if got := nd.KeyMismatches(); len(got) != 0 {
			t.Errorf("%s reports key mismatches: %v", nd.Myself().Name, got)
		}
	}
	if v, _ := sink.Counter(metrics.EncryptionPlaintext); v == 0 {
		t.Error("no plaintext was counted in the transitional modes")
	}
}
