//go:build linux

package integration

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshward/membership"
	"github.com/meshward/membership/keyring"
)

// TestDiscoveryNetns checks LAN discovery on a real link: two network
// namespaces joined by a veth pair, one node in each, bound to the
// wildcard address on the same port, with the same key and label and no
// seed. Each node is this test binary run again inside its namespace
// (TestDiscoveryNetnsChild), with WithDiscovery. They must find each other
// within two seconds of the later one starting: over the IPv4 broadcast
// address of the link, and over the IPv6 all-nodes group. Like
// TestPartitionNetns it runs only with MEMBERSHIP_NETNS=1, as root; the
// namespaces (and with them the veth pair) are deleted at the end.
func TestDiscoveryNetns(t *testing.T) {
	if os.Getenv("MEMBERSHIP_NETNS") != "1" {
		t.Skip("set MEMBERSHIP_NETNS=1 (as root) to run the network namespace discovery test")
	}
	if testing.Short() {
		t.Skip("multi-process test: skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	for _, tool := range []string{"ip", "sysctl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	for _, tc := range []struct {
		name, bind string
		addrs      [2]string
	}{
		{"ipv4", "0.0.0.0:7946", [2]string{"10.77.0.1/24", "10.77.0.2/24"}},
		{"ipv6", "[::]:7946", [2]string{"fd77::1/64", "fd77::2/64"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := [2]string{
				fmt.Sprintf("membership-disc-a-%d", os.Getpid()),
				fmt.Sprintf("membership-disc-b-%d", os.Getpid()),
			}
			sh := func(args ...string) {
				t.Helper()
				if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
					t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
				}
			}
			for _, n := range ns {
				sh("ip", "netns", "add", n)
				t.Cleanup(func() { // runs after the children were killed
					if out, err := exec.Command("ip", "netns", "del", n).CombinedOutput(); err != nil {
						t.Errorf("ip netns del %s: %v\n%s", n, err, out)
					}
				})
				// No duplicate address detection: the addresses are
				// usable at once instead of after a second or two.
				for _, conf := range []string{"all", "default"} {
					sh("ip", "netns", "exec", n, "sysctl", "-qw", "net.ipv6.conf."+conf+".accept_dad=0")
				}
			}
			sh("ip", "link", "add", "veth-a", "netns", ns[0], "type", "veth", "peer", "name", "veth-b", "netns", ns[1])
			for i, n := range ns {
				dev := []string{"veth-a", "veth-b"}[i]
				sh("ip", "netns", "exec", n, "ip", "addr", "add", tc.addrs[i], "dev", dev)
				sh("ip", "netns", "exec", n, "ip", "link", "set", dev, "up")
				sh("ip", "netns", "exec", n, "ip", "link", "set", "lo", "up")
			}
			// The link is usable once both ends report a carrier.
			for i, n := range ns {
				dev := []string{"veth-a", "veth-b"}[i]
				for deadline := time.Now().Add(10 * time.Second); ; {
					out, _ := exec.Command("ip", "-n", n, "link", "show", "dev", dev).Output()
					if strings.Contains(string(out), "LOWER_UP") {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("%s has no carrier after 10 s:\n%s", dev, out)
					}
					time.Sleep(10 * time.Millisecond) // polling the link state
				}
			}

			found := make(chan string, 2)
			ready := make(chan time.Time, 2)
			for i, n := range ns {
				name := fmt.Sprintf("node-%c", 'a'+i)
				cmd := exec.Command("ip", "netns", "exec", n, self, "-test.run=^TestDiscoveryNetnsChild$", "-test.v")
				cmd.Env = append(os.Environ(),
					"MEMBERSHIP_DISCOVERY_CHILD="+name,
					"MEMBERSHIP_DISCOVERY_BIND="+tc.bind,
					"MEMBERSHIP_DISCOVERY_KEY="+hex.EncodeToString(key))
				cmd.Stderr = &prefixWriter{t: t, prefix: name}
				stdout, err := cmd.StdoutPipe()
				if err != nil {
					t.Fatal(err)
				}
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				var wg sync.WaitGroup
				wg.Add(1)
				t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); wg.Wait() })
				go func() {
					defer wg.Done()
					readChild(stdout, name, ready, found, cmd.Stderr.(*prefixWriter))
				}()
			}
			// Both must have started; then both must find each other
			// within two seconds of the later start.
			var last time.Time
			for range 2 {
				select {
				case at := <-ready:
					if at.After(last) {
						last = at
					}
				case <-time.After(30 * time.Second):
					t.Fatal("a node did not start within 30 s")
				}
			}
			deadline := time.NewTimer(time.Until(last.Add(2 * time.Second)))
			defer deadline.Stop()
			for range 2 {
				select {
				case f := <-found:
					t.Logf("%s, %v after both started", f, time.Since(last).Round(time.Millisecond))
				case <-deadline.C:
					t.Fatal("the nodes did not find each other within two seconds")
				}
			}
		})
	}
}

// readChild reads a child's stdout, logging every line: "discovery-ready"
// when its node has started, "discovery-found NAME@ADDR" when it sees
// another member alive.
func readChild(r io.Reader, name string, ready chan<- time.Time, found chan<- string, log io.Writer) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		fmt.Fprintln(log, sc.Text())
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 1 && f[0] == "discovery-ready":
			ready <- time.Now()
		case len(f) == 2 && f[0] == "discovery-found":
			found <- name + " found " + f[1]
		}
	}
}

// prefixWriter logs a child's stderr line by line.
type prefixWriter struct {
	t      *testing.T
	prefix string
	mu     sync.Mutex
}

func (w *prefixWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		w.t.Log(w.prefix + ": " + line)
	}
	return len(b), nil
}

// TestDiscoveryNetnsChild is one node of TestDiscoveryNetns, inside its
// namespace; it does nothing unless that test started it.
func TestDiscoveryNetnsChild(t *testing.T) {
	name := os.Getenv("MEMBERSHIP_DISCOVERY_CHILD")
	if name == "" {
		t.Skip("run by TestDiscoveryNetns")
	}
	key, err := hex.DecodeString(os.Getenv("MEMBERSHIP_DISCOVERY_KEY"))
	if err != nil {
		t.Fatal(err)
	}
	ring, err := keyring.New(key)
	if err != nil {
		t.Fatal(err)
	}
	nd, err := membership.New(
		membership.WithName(name),
		membership.WithBindAddr(os.Getenv("MEMBERSHIP_DISCOVERY_BIND")),
		membership.WithKeyring(ring),
		membership.WithLabel(label),
		membership.WithDiscovery(250*time.Millisecond),
		membership.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer nd.Shutdown()
	fmt.Println("discovery-ready")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		for _, m := range nd.Members() {
			if m.Name != name && m.State == membership.StateAlive {
				fmt.Println("discovery-found", m.Name+"@"+m.Addr.String())
				// Stay up a little so that the other side can find us
				// too, however late it started.
				select {
				case <-ctx.Done():
				case <-time.After(3 * time.Second):
				}
				return
			}
		}
		time.Sleep(10 * time.Millisecond) // polling the view
	}
	t.Fatal("found nobody")
}
