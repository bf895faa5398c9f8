package integration

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Deadlines for conditions: generous next to what ProfileLocal needs (a
// 200 ms period; a crash is declared within the longest suspicion timeout,
// 3.6 s at five members), so that a loaded machine does not make the test
// flaky. The figures the run measured are logged.
const (
	startDeadline  = 15 * time.Second
	detectDeadline = 20 * time.Second
)

const label = "itest"

// TestAgents runs five agent processes with ProfileLocal on loopback, joins
// them, and then, one scenario after another on the same cluster: kills one
// with SIGKILL, pauses one past the suspicion timeout with SIGSTOP, stops one
// with SIGTERM; all along, two outsiders (another key, another label) try to
// get in. Every assertion reads the agents' JSON event streams.
func TestAgents(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test: skipped with -short")
	}
	bin := agentBin(t)
	dir := t.TempDir()
	keyfile, otherKey := filepath.Join(dir, "cluster.key"), filepath.Join(dir, "other.key")
	for _, path := range []string{keyfile, otherKey} {
		if out, err := exec.Command(bin, "-keygen", "-keyfile", path).CombinedOutput(); err != nil {
			t.Fatalf("agent -keygen -keyfile %s: %v\n%s", path, err, out)
		}
	}

	h := newHub()
	const n = 5
	nodes := make([]*proc, n)
	began := time.Now()
	nodes[0] = start(t, h, bin, "node-0", "-keyfile", keyfile, "-label", label, "-payload", "n=0")
	seed := nodes[0].addr
	for i := 1; i < n; i++ {
		name := fmt.Sprintf("node-%d", i)
		nodes[i] = start(t, h, bin, name, "-keyfile", keyfile, "-label", label, "-payload", "n="+name[5:], "-join", seed)
	}

	// (a) Every agent sees every other joined, with its payload.
	h.waitFor(t, startDeadline, "every agent to see every other joined", func() bool {
		for _, p := range nodes {
			for _, q := range nodes {
				if p != q && p.eventAbout("joined", q.name, time.Time{}) == nil {
					return false
				}
			}
		}
		return true
	})
	t.Logf("(a) %d agents started and saw each other joined %v after the first was started", n, time.Since(began).Round(time.Millisecond))
	for _, p := range nodes {
		for j, q := range nodes {
			if p == q {
				continue
			}
			r := p.firstAbout("joined", q.name)
			if want := fmt.Sprintf("n=%d", j); r.Payload != want || r.Addr != q.addr || r.State != "alive" {
				t.Errorf("%s saw %s join as %+v, want payload %q at %s, alive", p.name, q.name, *r, want, q.addr)
			}
		}
	}
	for _, p := range nodes[1:] {
		if r := p.first("join"); r == nil || r.Error != "" || r.Answered != 1 {
			t.Errorf("%s: join line %+v, want one seed answered", p.name, r)
		}
	}

	// (e), first half: two outsiders try to join and to be added, in
	// both directions over UDP.
	wrongKey := start(t, h, bin, "wrong-key", "-keyfile", otherKey, "-label", label, "-join", seed)
	wrongLabel := start(t, h, bin, "wrong-label", "-keyfile", keyfile, "-label", "another-cluster", "-join", seed)
	outsiders := []*proc{wrongKey, wrongLabel}
	for _, o := range outsiders {
		h.waitFor(t, startDeadline, o.name+" to finish joining", func() bool { return o.eventAbout("join", "", time.Time{}) != nil })
		if r := o.firstAbout("join", ""); r.Error == "" || r.Answered != 0 {
			t.Errorf("%s joined the cluster: %+v", o.name, *r)
		}
		o.command("add %s", nodes[1].addr)
		nodes[1].command("add %s", o.addr)
	}
	h.waitFor(t, startDeadline, "every add to finish", func() bool {
		return wrongKey.count("add") == 1 && wrongLabel.count("add") == 1 && nodes[1].count("add") == 2
	})
	h.mu.Lock()
	for _, p := range []*proc{wrongKey, wrongLabel, nodes[1]} {
		for _, r := range p.records {
			if r.Event == "add" && r.Error == "" {
				t.Errorf("%s added %s across keys or labels", p.name, r.Addr)
			}
		}
	}
	h.mu.Unlock()

	// (b) SIGKILL: every survivor reports the victim failed.
	survivors := nodes[:4]
	killed := nodes[4]
	at := killed.signal(syscall.SIGKILL)
	h.waitFor(t, detectDeadline, "every survivor to report "+killed.name+" failed", func() bool {
		return everyone(survivors, "failed", killed.name, at)
	})
	t.Logf("(b) kill -9 %s: %s", killed.name, detection(h, survivors, killed.name, at, "suspected", "failed"))

	// (c) SIGSTOP past the suspicion timeout: failed everywhere; after
	// SIGCONT it refutes and is alive everywhere, at a higher incarnation.
	paused := nodes[3]
	others := nodes[:3]
	before := others[0].members()[paused.name].Incarnation
	at = paused.signal(syscall.SIGSTOP)
	h.waitFor(t, detectDeadline, "every other agent to report the paused "+paused.name+" failed", func() bool {
		return everyone(others, "failed", paused.name, at)
	})
	t.Logf("(c) SIGSTOP %s: %s", paused.name, detection(h, others, paused.name, at, "suspected", "failed"))
	at = paused.signal(syscall.SIGCONT)
	h.waitFor(t, detectDeadline, "every other agent to report "+paused.name+" alive again", func() bool {
		return everyone(others, "alive", paused.name, at)
	})
	t.Logf("(c) SIGCONT %s: %s", paused.name, detection(h, others, paused.name, at, "alive"))
	h.mu.Lock()
	for _, p := range others {
		if r := p.eventAbout("alive", paused.name, at); r.Incarnation <= before {
			t.Errorf("%s sees %s alive again at incarnation %d, not above %d: no refutation", p.name, paused.name, r.Incarnation, before)
		}
	}
	h.mu.Unlock()
	// The resumed agent's own view recovers too: its peers are alive.
	waitMembers(t, paused, detectDeadline, func(ms map[string]record) bool {
		for _, p := range others {
			if ms[p.name].State != "alive" {
				return false
			}
		}
		return ms[killed.name].State == "dead"
	})

	// (d) SIGTERM: the agent leaves gracefully, exits 0, and the others
	// report it left, not failed.
	leaver := nodes[2]
	remaining := nodes[:2]
	remaining = append(remaining, paused)
	at = leaver.signal(syscall.SIGTERM)
	leftAt := at
	h.waitFor(t, detectDeadline, "every remaining agent to report "+leaver.name+" left", func() bool {
		return everyone(remaining, "left", leaver.name, at)
	})
	t.Logf("(d) SIGTERM %s: %s", leaver.name, detection(h, remaining, leaver.name, at, "left"))
	h.waitFor(t, detectDeadline, leaver.name+" to exit", func() bool { return leaver.exited })
	if err := leaver.exitError(); err != nil {
		t.Errorf("%s exited with %v after SIGTERM, want 0", leaver.name, err)
	}
	if r := leaver.first("leave"); r == nil || r.Error != "" {
		t.Errorf("%s: leave line %+v, want a complete leave", leaver.name, r)
	}
	if leaver.first("shutdown") == nil {
		t.Errorf("%s exited without its shutdown line", leaver.name)
	}

	// (f) The agent killed in (b) restarts under the same name, on a new
	// port: its new incarnation (or a refutation above its tombstone)
	// brings it back, at its new address, everywhere.
	at = time.Now()
	reborn := start(t, h, bin, killed.name, "-keyfile", keyfile, "-label", label, "-payload", "n=4 again", "-join", seed)
	h.waitFor(t, detectDeadline, "every remaining agent to see "+killed.name+" back", func() bool {
		for _, p := range remaining {
			if r := backAbout(p, killed.name, at); r == nil || r.Addr != reborn.addr {
				return false
			}
		}
		return true
	})
	h.mu.Lock()
	var came []string
	for _, p := range remaining {
		r := backAbout(p, killed.name, at)
		came = append(came, fmt.Sprintf("%s: %s after %v", p.name, r.Event, r.Time.Sub(at).Round(time.Millisecond)))
		if r.Payload != "n=4 again" {
			t.Errorf("%s sees the restarted %s with payload %q", p.name, killed.name, r.Payload)
		}
	}
	h.mu.Unlock()
	t.Logf("(f) restart %s on a new port: %s", killed.name, strings.Join(came, ", "))
	remaining = append(remaining, reborn)

	// (e), second half, and what must never have happened: each remaining
	// agent's view (after the whole run) holds the members as the run left
	// them and no outsider; no event anywhere ever named an outsider; the
	// one that left was never reported failed.
	for _, p := range remaining {
		ms := p.members()
		want := map[string]string{
			"node-0": "alive", "node-1": "alive", "node-2": "left", "node-3": "alive", "node-4": "alive",
		}
		if p == reborn {
			// A newcomer does not adopt the tombstone of a member that
			// left before it joined (swim learns "left" only about
			// members it knows), so it may not know node-2 at all.
			if _, ok := ms["node-2"]; !ok {
				delete(want, "node-2")
			}
		}
		for name, state := range want {
			if ms[name].State != state {
				t.Errorf("%s sees %s as %q, want %s", p.name, name, ms[name].State, state)
			}
		}
		if len(ms) != len(want) {
			t.Errorf("%s knows %d members, want %d: %v", p.name, len(ms), len(want), keys(ms))
		}
	}
	for _, o := range outsiders {
		if ms := o.members(); len(ms) != 1 {
			t.Errorf("%s knows %v, want only itself", o.name, keys(ms))
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range append(nodes, reborn) {
		for _, r := range p.records {
			if strings.HasPrefix(r.Name, "wrong-") {
				t.Errorf("%s printed an event about outsider %s: %+v", p.name, r.Name, r)
			}
			// Only from the SIGTERM on: before it, the paused agent may
			// have suspected it on waking (its probe in flight timed out
			// while it was stopped), and that is (c)'s business.
			if r.Name == leaver.name && (r.Event == "failed" || r.Event == "suspected") && !r.read.Before(leftAt) {
				t.Errorf("%s reported %s %s after it was told to leave, which it did gracefully", p.name, leaver.name, r.Event)
			}
		}
	}
	for _, o := range outsiders {
		for _, r := range o.records {
			if strings.HasPrefix(r.Name, "node-") {
				t.Errorf("outsider %s printed an event about %s: %+v", o.name, r.Name, r)
			}
		}
	}
	t.Logf("whole run: %v", time.Since(began).Round(time.Millisecond))
}

// everyone reports whether every agent in ps printed event about name after
// from; call with hub.mu held.
func everyone(ps []*proc, event, name string, from time.Time) bool {
	for _, p := range ps {
		if p.eventAbout(event, name, from) == nil {
			return false
		}
	}
	return true
}

// backAbout returns the first record, after from, saying that name is
// back: joined, or alive again; call with hub.mu held.
func backAbout(p *proc, name string, from time.Time) *record {
	for i := range p.records {
		r := &p.records[i]
		if (r.Event == "joined" || r.Event == "alive") && r.Name == name && !r.read.Before(from) {
			return r
		}
	}
	return nil
}

// detection describes, for each event kind, how long after from the first
// and the last of ps printed it about name (by the agents' own clocks).
func detection(h *hub, ps []*proc, name string, from time.Time, events ...string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var parts []string
	for _, ev := range events {
		var ds []time.Duration
		for _, p := range ps {
			if r := p.eventAbout(ev, name, from); r != nil {
				ds = append(ds, r.Time.Sub(from))
			}
		}
		if len(ds) == 0 {
			parts = append(parts, ev+" by none")
			continue
		}
		slices.Sort(ds)
		parts = append(parts, fmt.Sprintf("%s by %d/%d after %v..%v", ev, len(ds), len(ps),
			ds[0].Round(time.Millisecond), ds[len(ds)-1].Round(time.Millisecond)))
	}
	return strings.Join(parts, ", ")
}

// waitMembers asks p for its members until cond holds or timeout passes.
func waitMembers(t *testing.T, p *proc, timeout time.Duration, cond func(map[string]record) bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ms := p.members()
		if cond(ms) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s's view never reached the expected state; last: %+v", p.name, ms)
		}
		// Wait for the next line from anyone (an event may change the
		// view) or a protocol period, whichever is first.
		p.hub.mu.Lock()
		ch := p.hub.changed
		p.hub.mu.Unlock()
		select {
		case <-ch:
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func keys(ms map[string]record) []string {
	var out []string
	for k := range ms {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
