package membership

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshward/membership/keyring"
	"github.com/meshward/membership/transport"
)

func fpOf(key []byte) string { return fmt.Sprintf("%x", keyring.Fingerprint(key)) }

func TestKeyOperations(t *testing.T) {
	c, _ := joinedCluster(t, 5)
	ctx := context.Background()
	newKey := bytes.Repeat([]byte{42}, 32)
	r, err := c.nodes[2].InstallKey(ctx, newKey)
	if err != nil || len(r.Asked) != 5 || len(r.Answered) != 5 {
		t.Fatalf("InstallKey: %v\n%v", err, r)
	}
	r, err = c.nodes[0].ListKeys(ctx)
	if err != nil || r.Keys[fpOf(newKey)] != 5 || r.Primary[fpOf(testKey)] != 5 {
		t.Fatalf("ListKeys after install: %v\n%v", err, r)
	}
	// Removing the primary is refused by every member, which says why.
	r, err = c.nodes[0].RemoveKey(ctx, testKey)
	if !errors.Is(err, ErrKeyOpIncomplete) || len(r.Errors) != 5 || !strings.Contains(r.Errors["node-3"], "primary") {
		t.Fatalf("RemoveKey of the primary: %v\n%v", err, r)
	}
	// Using a key nobody holds is refused too.
	if _, err := c.nodes[0].UseKey(ctx, bytes.Repeat([]byte{43}, 32)); !errors.Is(err, ErrKeyOpIncomplete) {
		t.Fatalf("UseKey of a key nobody holds: %v", err)
	}
	if _, err := c.nodes[0].UseKey(ctx, newKey); err != nil {
		t.Fatal(err)
	}
	if _, err := c.nodes[0].RemoveKey(ctx, testKey); err != nil {
		t.Fatal(err)
	}
	r, err = c.nodes[4].ListKeys(ctx)
	if err != nil || len(r.Keys) != 1 || r.Primary[fpOf(newKey)] != 5 {
		t.Fatalf("ListKeys after the rotation by hand: %v\n%v", err, r)
	}
	for _, nd := range c.nodes {
		if keys := nd.Keyring().Keys(); len(keys) != 1 || !bytes.Equal(keys[0], newKey) {
			t.Fatalf("%s holds %d keys after the rotation", nd.Myself().Name, len(keys))
		}
	}
	// The application never sees the runtime's queries, and may not send
	// one.
	if _, err := c.nodes[0].Query(ctx, keysQuery, nil, nil); err == nil {
		t.Fatal("the application sent a query under the runtime's name")
	}
}

// TestRotateKeyWhileRunning: RotateKey several times while the cluster
// runs, loses datagrams and broadcasts: nobody is ever missing from anybody's
// view (sampled every protocol period), nobody is declared failed, and every
// keyring ends with exactly the newest key. 20 members at 5 % loss and
// three rotations with MEMBERSHIP_LONG=1; 6 members and one rotation
// otherwise.
func TestRotateKeyWhileRunning(t *testing.T) {
	size, loss, rotations := 6, 0.0, 1
	if os.Getenv("MEMBERSHIP_LONG") != "" {
		size, loss, rotations = 20, 0.05, 3
	}
	c, _ := joinedCluster(t, size)
	c.net.SetDefaultLink(transport.LinkConfig{Loss: loss})
	stop := make(chan struct{})
	sampled := make(chan error, 1)
	go func() { // sample every protocol period (200 ms with ProfileLocal)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				sampled <- nil
				return
			case <-tick.C:
			}
			for _, nd := range c.nodes {
				for _, m := range nd.Members() {
					if m.State == StateDead || m.State == StateLeft {
						sampled <- fmt.Errorf("%s sees %s as %v", nd.Myself().Name, m.Name, m.State)
						return
					}
				}
				if k := len(nd.Members()); k != size {
					sampled <- fmt.Errorf("%s sees %d members, want %d", nd.Myself().Name, k, size)
					return
				}
			}
			c.nodes[0].Broadcast("tick", []byte(time.Now().String()))
		}
	}()
	var key []byte
	for i := range rotations {
		key = bytes.Repeat([]byte{byte(100 + i)}, 32)
		rep, err := c.nodes[i%size].RotateKey(context.Background(), key)
		if err != nil || !rep.Done {
			t.Fatalf("rotation %d: %v", i, err)
		}
	}
	close(stop)
	if err := <-sampled; err != nil {
		t.Fatal(err)
	}
	for _, nd := range c.nodes {
		if keys := nd.Keyring().Keys(); len(keys) != 1 || !bytes.Equal(keys[0], key) {
			t.Fatalf("%s ends with %d keys, want only the newest", nd.Myself().Name, len(keys))
		}
	}
}

// TestRotateKeyStopsAtAPartition: a member cut off during a rotation stops
// it before anything could cut it off for good, the error names it, and
// running RotateKey again once it is back finishes.
func TestRotateKeyStopsAtAPartition(t *testing.T) {
	t.Parallel()
	c, _ := joinedCluster(t, 5)
	cut := c.nodes[4]
	others := make([]netip.AddrPort, 0, 4)
	for _, nd := range c.nodes[:4] {
		others = append(others, nd.Myself().Addr)
	}
	c.net.Partition(others, []netip.AddrPort{cut.Myself().Addr})
	// node-0 suspects node-4 a probe round or two after the cut (0.2 to
	// 0.7 s), and a suspect member is asked like an alive one
	// (TestRotateKeyWaitsForASuspect), so the rotation below stops at
	// node-4 unless node-0 has already declared it dead, which it cannot
	// do sooner than the shortest suspicion timeout after suspecting it,
	// α·max(1, log10 5)·period = 1 s with ProfileLocal (α = 5).
	newKey := bytes.Repeat([]byte{77}, 32)
	rep, err := c.nodes[0].RotateKey(context.Background(), newKey)
	if !errors.Is(err, ErrKeyOpIncomplete) || rep.Done || !strings.Contains(err.Error(), "node-4") {
		t.Fatalf("RotateKey with node-4 cut off: %v, want an incomplete rotation naming node-4", err)
	}
	for _, nd := range c.nodes[:4] {
		if !bytes.Equal(nd.Keyring().Primary(), testKey) {
			t.Fatalf("%s switched keys though node-4 could not follow", nd.Myself().Name)
		}
	}
	c.net.Heal()
	c.everyoneSees(c.nodes, names(c.nodes), StateAlive, 30*time.Second)
	if rep, err = c.nodes[0].RotateKey(context.Background(), newKey); err != nil || !rep.Done {
		t.Fatalf("RotateKey again after the partition healed: %v", err)
	}
}

// TestRotateKeyWaitsForASuspect: a member that is only suspected may still
// be running (Lifeguard §4.2), so a key operation waits for it as for an
// alive one: RotateKey started while node-4 is cut off and suspected stops
// at the install, naming it, instead of going on without it and cutting it
// off for good.
func TestRotateKeyWaitsForASuspect(t *testing.T) {
	t.Parallel()
	// node-4 must stay suspect, not dead, from when node-0 suspects it
	// until the install has given up on it (one query timeout), however
	// long a loaded host stalls this goroutine in between: make the
	// shortest suspicion timeout, α·max(1, log10 5)·period = α·period, 30 s.
	period := ProfileLocal.protocol().ProbeInterval
	alpha := float64(30*time.Second) / float64(period)
	c, _ := joinedCluster(t, 5, WithSuspicionMult(alpha, 1))
	cut := c.nodes[4]
	others := make([]netip.AddrPort, 0, 4)
	for _, nd := range c.nodes[:4] {
		others = append(others, nd.Myself().Addr)
	}
	c.net.Partition(others, []netip.AddrPort{cut.Myself().Addr})
	c.everyoneSees(c.nodes[:1], []string{"node-4"}, StateSuspect, 10*time.Second)
	rep, err := c.nodes[0].RotateKey(context.Background(), bytes.Repeat([]byte{78}, 32))
	if !errors.Is(err, ErrKeyOpIncomplete) || rep.Done || len(rep.Steps) != 1 ||
		!slices.Contains(rep.Steps[0].Asked, "node-4") || !slices.Equal(rep.Steps[0].Missing, []string{"node-4"}) {
		t.Fatalf("RotateKey with node-4 suspected: %v, steps %v; want it asked, missing, and the rotation stopped at the install", err, rep.Steps)
	}
	for _, nd := range c.nodes[:4] {
		if !bytes.Equal(nd.Keyring().Primary(), testKey) {
			t.Fatalf("%s switched keys though node-4 could not follow", nd.Myself().Name)
		}
	}
}
