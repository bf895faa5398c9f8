package integration

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshward/membership/keyring"
)

// keysCommand sends "keys ARGS" to p and waits for its report line.
func keysCommand(t *testing.T, p *proc, args string) record {
	t.Helper()
	p.hub.mu.Lock()
	before := len(p.records)
	p.hub.mu.Unlock()
	p.command("keys %s", args)
	var got record
	p.hub.waitFor(t, 2*time.Minute, p.name+" to report keys "+args, func() bool {
		for i := before; i < len(p.records); i++ {
			if p.records[i].Event == "keys" {
				got = p.records[i]
				return true
			}
		}
		return false
	})
	return got
}

// TestAgentKeys: the agent's keys commands rotate a running cluster of real
// processes: list, install, use and remove act on every member and report
// per key; rotate does all of it; the agents save it to their key file, so
// one restarted from the file afterwards joins under the new key.
func TestAgentKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test: skipped with -short")
	}
	bin := agentBin(t)
	keyfile := filepath.Join(t.TempDir(), "cluster.key")
	if out, err := exec.Command(bin, "-keygen", "-keyfile", keyfile).CombinedOutput(); err != nil {
		t.Fatalf("agent -keygen: %v\n%s", err, out)
	}
	ring, err := keyring.Load(keyfile)
	if err != nil {
		t.Fatal(err)
	}
	oldFP := fmt.Sprintf("%x", keyring.Fingerprint(ring.Primary()))
	h := newHub()
	nodes := []*proc{start(t, h, bin, "k0", "-keyfile", keyfile)}
	for i := 1; i < 3; i++ {
		nodes = append(nodes, start(t, h, bin, fmt.Sprintf("k%d", i), "-keyfile", keyfile, "-join", nodes[0].addr))
	}
	h.waitFor(t, 20*time.Second, "every agent to see the others", func() bool {
		for _, p := range nodes {
			for _, q := range nodes {
				if p != q && p.eventAbout("joined", q.name, time.Time{}) == nil {
					return false
				}
			}
		}
		return true
	})

	r := keysCommand(t, nodes[1], "list")
	if r.Error != "" || r.Report == nil || r.Report.Asked != 3 || r.Report.Keys[oldFP] != 3 || r.Report.Primary[oldFP] != 3 {
		t.Fatalf("keys list: %+v %+v", r, r.Report)
	}
	newKey, err := keyring.Generate(keyring.XChaCha20Poly1305)
	if err != nil {
		t.Fatal(err)
	}
	newFP := fmt.Sprintf("%x", keyring.Fingerprint(newKey))
	text := base64.StdEncoding.EncodeToString(newKey)
	if r := keysCommand(t, nodes[0], "install "+text); r.Error != "" || r.Report.Answered != 3 {
		t.Fatalf("keys install: %+v", r)
	}
	if r := keysCommand(t, nodes[2], "remove "+text); r.Error != "" {
		t.Fatalf("keys remove of an installed, unused key: %+v", r)
	}
	r = keysCommand(t, nodes[0], "rotate "+text)
	if r.Error != "" || !r.Done || r.Report.Keys[newFP] != 3 || len(r.Report.Keys) != 1 {
		t.Fatalf("keys rotate: %+v %+v", r, r.Report)
	}
	// Removing the primary is refused, member by member.
	r = keysCommand(t, nodes[0], "remove "+text)
	if r.Error == "" || len(r.Report.Errors) != 3 || !strings.Contains(r.Report.Errors["k2"], "primary") {
		t.Fatalf("keys remove of the primary: %+v %+v", r, r.Report)
	}
	// The cluster still works under the new key.
	for _, p := range nodes {
		if got := p.members(); len(got) != 3 {
			t.Fatalf("%s sees %d members after the rotation", p.name, len(got))
		}
	}
	if bytes.Equal(newKey, ring.Primary()) {
		t.Fatal("the generated key equals the old one")
	}
	// The agents saved the rotation to their key file: one restarted from
	// it speaks the new key and joins.
	saved, err := keyring.Load(keyfile)
	if err != nil || !bytes.Equal(saved.Primary(), newKey) || len(saved.Keys()) != 1 {
		t.Fatalf("the key file after the rotation: %v", err)
	}
	nodes[2].cmd.Process.Kill()
	again := start(t, h, bin, "k3", "-keyfile", keyfile, "-join", nodes[0].addr)
	h.waitFor(t, 20*time.Second, "the restarted agent to join under the new key", func() bool {
		return nodes[0].eventAbout("joined", "k3", time.Time{}) != nil && again.eventAbout("joined", "k0", time.Time{}) != nil
	})
}
