//go:build linux

package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPartitionNetns splits four agents into two halves and heals the
// split. It runs only with MEMBERSHIP_NETNS=1, as root, because it creates
// a network namespace of its own: the agents bind 127.0.0.1 to 127.0.0.4 on
// that namespace's loopback, and the partition is a set of iptables rules
// inside it, so nothing outside the namespace is touched. The namespace is
// deleted at the end.
func TestPartitionNetns(t *testing.T) {
	if os.Getenv("MEMBERSHIP_NETNS") != "1" {
		t.Skip("set MEMBERSHIP_NETNS=1 (as root) to run the network namespace partition test")
	}
	if testing.Short() {
		t.Skip("multi-process test: skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	ns := fmt.Sprintf("membership-it-%d", os.Getpid())
	sh := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	sh("ip", "netns", "add", ns)
	t.Cleanup(func() { // runs after the agents were killed
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v\n%s", ns, err, out)
		}
	})
	sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
	inNS := func(args ...string) { t.Helper(); sh(append([]string{"ip", "netns", "exec", ns}, args...)...) }

	bin := agentBin(t)
	keyfile := filepath.Join(t.TempDir(), "cluster.key")
	if out, err := exec.Command(bin, "-keygen", "-keyfile", keyfile).CombinedOutput(); err != nil {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	h := newHub()
	ips := []string{"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"}
	var all []*proc
	for i, ip := range ips {
		args := []string{"-keyfile", keyfile, "-label", label}
		if i > 0 {
			args = append(args, "-join", ips[0]+":7946")
		}
		all = append(all, startIn(t, h, ns, bin, fmt.Sprintf("ns-%d", i), ip+":7946", args...))
	}
	h.waitFor(t, startDeadline, "every agent to see every other joined", func() bool {
		return sees(all, all, "joined", time.Time{})
	})
	sideA, sideB := all[:2], all[2:]

	// Partition: drop everything, UDP and TCP, between the halves.
	at := time.Now()
	for _, a := range ips[:2] {
		for _, b := range ips[2:] {
			inNS("iptables", "-A", "INPUT", "-s", a, "-d", b, "-j", "DROP")
			inNS("iptables", "-A", "INPUT", "-s", b, "-d", a, "-j", "DROP")
		}
	}
	h.waitFor(t, detectDeadline, "each half to report the other failed", func() bool {
		return sees(sideA, sideB, "failed", at) && sees(sideB, sideA, "failed", at)
	})
	t.Logf("partition: %s", detectionAll(h, sideA, sideB, at, "failed"))

	// Heal: each half learns the other is alive again (tombstone probes,
	// anti-entropy), and each member refutes its death.
	at = time.Now()
	inNS("iptables", "-F", "INPUT")
	h.waitFor(t, 30*time.Second, "the halves to see each other alive again", func() bool {
		return sees(sideA, sideB, "alive", at) && sees(sideB, sideA, "alive", at)
	})
	t.Logf("heal: %s", detectionAll(h, sideA, sideB, at, "alive"))
	for _, p := range all {
		waitMembers(t, p, detectDeadline, func(ms map[string]record) bool {
			for _, q := range all {
				if ms[q.name].State != "alive" {
					return false
				}
			}
			return len(ms) == len(all)
		})
	}

	// While split, each half kept its own members alive. After the heal,
	// a member may briefly be reported failed by its own side: the other
	// half's "dead" rumours about it are still being gossiped, and a dead
	// message is authoritative (SWIM §4.2) until the member refutes it.
	// That is logged, not failed on.
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, side := range [][]*proc{sideA, sideB} {
		for _, p := range side {
			for _, q := range side {
				for i := range p.records {
					r := &p.records[i]
					if r.Event != "failed" || r.Name != q.name {
						continue
					}
					if r.read.Before(at) {
						t.Errorf("%s reported %s, on its own side of the partition, failed while split", p.name, q.name)
					} else {
						t.Logf("after the heal, %s reported %s (its own side) failed %v after the heal, from the other half's rumours", p.name, q.name, r.Time.Sub(at).Round(time.Millisecond))
					}
				}
			}
		}
	}
}

// sees reports whether every agent in ps printed event about every agent
// in qs (but itself) after from; call with hub.mu held.
func sees(ps, qs []*proc, event string, from time.Time) bool {
	for _, p := range ps {
		for _, q := range qs {
			if p != q && p.eventAbout(event, q.name, from) == nil {
				return false
			}
		}
	}
	return true
}

// detectionAll is detection over every pair of an agent in ps and one in
// qs, in both directions.
func detectionAll(h *hub, ps, qs []*proc, from time.Time, event string) string {
	var parts []string
	for _, q := range qs {
		parts = append(parts, q.name+": "+detection(h, ps, q.name, from, event))
	}
	for _, p := range ps {
		parts = append(parts, p.name+": "+detection(h, qs, p.name, from, event))
	}
	return strings.Join(parts, "; ")
}
