package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// record is one JSON line an agent printed (examples/agent), with the time
// the test read it.
type record struct {
	Time        time.Time `json:"time"`
	Event       string    `json:"event"`
	Name        string    `json:"name"`
	Addr        string    `json:"addr"`
	State       string    `json:"state"`
	Incarnation uint64    `json:"incarnation"`
	Payload     string    `json:"payload"`
	Answered    int       `json:"answered"`
	Error       string    `json:"error"`
	Members     []record  `json:"members"`
	Op          string    `json:"op"`
	Done        bool      `json:"done"`
	Report      *struct {
		Asked    int               `json:"asked"`
		Answered int               `json:"answered"`
		Missing  []string          `json:"missing"`
		Errors   map[string]string `json:"errors"`
		Keys     map[string]int    `json:"keys"`
		Primary  map[string]int    `json:"primary"`
	} `json:"report"`

	read time.Time // when the test read the line
}

// hub is the synchronized event log of every agent of a test: each agent's
// reader goroutine appends under mu and wakes every waiter.
type hub struct {
	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every change
}

func newHub() *hub { return &hub{changed: make(chan struct{})} }

// update runs f under the lock and wakes the waiters.
func (h *hub) update(f func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f()
	close(h.changed)
	h.changed = make(chan struct{})
}

// waitFor waits until cond, called under the lock, holds, or fails the
// test after timeout. It returns how long it waited. cond must not take
// the lock (no proc methods but eventAbout) nor fail the test.
func (h *hub) waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		h.mu.Lock()
		ok := cond()
		ch := h.changed
		h.mu.Unlock()
		if ok {
			return time.Since(start)
		}
		select {
		case <-ch:
		case <-timer.C:
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
	}
}

// proc is one agent process.
type proc struct {
	t      testing.TB
	hub    *hub
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	errLog string // path of the stderr file
	addr   string // the address from the ready line

	// Guarded by hub.mu.
	records []record
	exited  bool
	exitErr error
}

// agentBin builds examples/agent once per test into a temporary directory,
// without the race detector (it affects only the test binary).
func agentBin(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to build the agent: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "agent")
	cmd := exec.Command(gobin, "build", "-o", bin, "./examples/agent")
	cmd.Dir = ".." // the module root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./examples/agent: %v\n%s", err, out)
	}
	return bin
}

// start runs the agent on 127.0.0.1, port 0, with ProfileLocal and args,
// reads its JSON lines into the hub and waits for its ready line. The
// process is killed in t.Cleanup.
func start(t *testing.T, h *hub, bin, name string, args ...string) *proc {
	t.Helper()
	return startIn(t, h, "", bin, name, "127.0.0.1:0", args...)
}

// startIn is start in network namespace ns (none if empty), bound to bind.
func startIn(t *testing.T, h *hub, ns, bin, name, bind string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, hub: h, name: name, errLog: filepath.Join(t.TempDir(), name+".stderr")}
	errFile, err := os.Create(p.errLog)
	if err != nil {
		t.Fatal(err)
	}
	defer errFile.Close() // the child holds its own descriptor
	argv := append([]string{bin, "-name", name, "-bind", bind, "-profile", "local"}, args...)
	if ns != "" {
		// ip netns exec execs the agent in place: the process we signal
		// is the agent itself.
		argv = append([]string{"ip", "netns", "exec", ns}, argv...)
	}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Stderr = errFile
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		if !p.hasExited() {
			p.cmd.Process.Kill() // SIGKILL also ends a stopped process
		}
		h.waitFor(t, 10*time.Second, name+" to exit after SIGKILL", func() bool { return p.exited })
		if t.Failed() {
			if b, err := os.ReadFile(p.errLog); err == nil {
				t.Logf("stderr of %s:\n%s", name, tail(string(b), 40))
			}
		}
	})
	go p.read(stdout)
	h.waitFor(t, 10*time.Second, name+" to print its ready line", func() bool {
		return p.exited || len(p.records) > 0
	})
	r := p.first("ready")
	if r == nil {
		t.Fatalf("%s did not start: %v", name, p.exitError())
	}
	p.addr = r.Addr
	return p
}

// read appends every line of stdout to the log, then reaps the process.
func (p *proc) read(stdout io.Reader) {
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			p.t.Errorf("%s printed a line that is not JSON: %q: %v", p.name, sc.Text(), err)
			continue
		}
		r.read = time.Now()
		p.hub.update(func() { p.records = append(p.records, r) })
	}
	err := p.cmd.Wait()
	p.hub.update(func() { p.exited, p.exitErr = true, err })
}

func (p *proc) hasExited() bool {
	p.hub.mu.Lock()
	defer p.hub.mu.Unlock()
	return p.exited
}

func (p *proc) exitError() error {
	p.hub.mu.Lock()
	defer p.hub.mu.Unlock()
	return p.exitErr
}

// first returns the first record of the given event, or nil.
func (p *proc) first(event string) *record {
	p.hub.mu.Lock()
	defer p.hub.mu.Unlock()
	for i := range p.records {
		if p.records[i].Event == event {
			r := p.records[i]
			return &r
		}
	}
	return nil
}

// signal sends sig to the process and returns when it was sent.
func (p *proc) signal(sig syscall.Signal) time.Time {
	p.t.Helper()
	at := time.Now()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v to %s: %v", sig, p.name, err)
	}
	return at
}

// command writes one stdin command line.
func (p *proc) command(format string, args ...any) {
	p.t.Helper()
	if _, err := fmt.Fprintf(p.stdin, format+"\n", args...); err != nil {
		p.t.Fatalf("command to %s: %v", p.name, err)
	}
}

// members asks the agent for its view and waits for the answer.
func (p *proc) members() map[string]record {
	p.t.Helper()
	p.hub.mu.Lock()
	before := len(p.records)
	p.hub.mu.Unlock()
	p.command("members")
	var got *record
	p.hub.waitFor(p.t, 10*time.Second, p.name+" to print its members", func() bool {
		for i := before; i < len(p.records); i++ {
			if p.records[i].Event == "members" {
				got = &p.records[i]
				return true
			}
		}
		return false
	})
	out := make(map[string]record)
	for _, m := range got.Members {
		out[m.Name] = m
	}
	return out
}

// firstAbout returns a copy of the first record of event about name, or
// nil.
func (p *proc) firstAbout(event, name string) *record {
	p.hub.mu.Lock()
	defer p.hub.mu.Unlock()
	if r := p.eventAbout(event, name, time.Time{}); r != nil {
		c := *r
		return &c
	}
	return nil
}

// count returns how many records of event p printed; call with hub.mu
// held.
func (p *proc) count(event string) int {
	n := 0
	for i := range p.records {
		if p.records[i].Event == event {
			n++
		}
	}
	return n
}

// eventAbout returns the first record, at or after from, of event about
// member name; call with hub.mu held.
func (p *proc) eventAbout(event, name string, from time.Time) *record {
	for i := range p.records {
		r := &p.records[i]
		if r.Event == event && r.Name == name && !r.read.Before(from) {
			return r
		}
	}
	return nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
