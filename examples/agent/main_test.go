package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshward/membership"
	"github.com/meshward/membership/keyring"
)

// agentEnv, set in the environment of a re-executed test binary, makes it
// run the agent's main instead of the tests: the tests that need the agent
// as a real process (signals) run it so, without a separate go build.
const agentEnv = "MEMBERSHIP_AGENT_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(agentEnv) == "1" {
		main() // exits
	}
	os.Exit(m.Run())
}

func TestKeygenPrintsAKey(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-keygen"}, nil, &stdout, &stderr, nil); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(stdout.String()))
	if err != nil || len(key) != 32 {
		t.Fatalf("printed %q: want a base64 32-byte key (%v)", stdout.String(), err)
	}
	if _, err := keyring.New(key); err != nil {
		t.Fatalf("printed key does not make a keyring: %v", err)
	}
}

func TestKeygenWritesAKeyFile(t *testing.T) {
	for _, suite := range []keyring.Suite{keyring.XChaCha20Poly1305, keyring.AESGCM} {
		path := filepath.Join(t.TempDir(), "cluster.key")
		var stdout, stderr bytes.Buffer
		if code := run([]string{"-keygen", "-suite", suite.String(), "-keyfile", path}, nil, &stdout, &stderr, nil); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
		if stdout.Len() != 0 {
			t.Errorf("the key was printed although it went to a file: %q", stdout.String())
		}
		ring, err := keyring.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if ring.Suite() != suite {
			t.Errorf("suite %v, want %v", ring.Suite(), suite)
		}
		if key := base64.StdEncoding.EncodeToString(ring.Keys()[0]); strings.Contains(stderr.String(), key) {
			t.Errorf("the key went to stderr: %q", stderr.String())
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
		}
	}
}

func TestErrorsExitNonZero(t *testing.T) {
	keyfile := filepath.Join(t.TempDir(), "k")
	if code := run([]string{"-keygen", "-keyfile", keyfile}, nil, io.Discard, io.Discard, nil); code != 0 {
		t.Fatal("keygen failed")
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-name", "x"}, "no -keyfile"},
		{[]string{"-keyfile", keyfile, "-plaintext"}, "contradict"},
		{[]string{"-keyfile", filepath.Join(t.TempDir(), "missing")}, "no such file"},
		{[]string{"-plaintext", "-profile", "moon"}, "-profile"},
		{[]string{"-plaintext", "-log-level", "loud"}, "-log-level"},
		{[]string{"-plaintext", "-statsd", "nocolon"}, "-statsd"},
		{[]string{"-plaintext", "-statsd", "127.0.0.1:8125", "-statsd-format", "graphite"}, "-statsd-format"},
		{[]string{"-plaintext", "-statsd", "nocolon", "-statsd-format", "statsd"}, "-statsd"},
		{[]string{"-plaintext", "-bind", "300.1.1.1:1"}, "300.1.1.1"},
		{[]string{"-plaintext", "-label", "bad\nlabel"}, "WithLabel"},
		{[]string{"-keygen", "-suite", "rot13"}, "rot13"},
		{[]string{"-nosuchflag"}, "nosuchflag"},
		{[]string{"-plaintext", "stray"}, "unexpected arguments"},
		{[]string{"-plaintext", "-force"}, "-force only applies"},
		{[]string{"-keygen", "-force"}, "-force only applies"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(tc.args, nil, &stdout, &stderr, nil)
		if code == 0 {
			t.Errorf("%v: exit 0, want an error", tc.args)
			continue
		}
		if !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: stderr %q does not mention %q", tc.args, stderr.String(), tc.want)
		}
		if stdout.Len() != 0 {
			t.Errorf("%v: printed %q on stdout", tc.args, stdout.String())
		}
	}
}

// inProcess is the agent's run function running in a goroutine, fed
// through pipes.
type inProcess struct {
	t     *testing.T
	stdin io.Writer
	sigs  chan os.Signal
	lines chan line
	exit  chan int
}

// runInProcess starts run with args, -profile local and -log-level error.
func runInProcess(t *testing.T, args ...string) *inProcess {
	t.Helper()
	outR, outW := io.Pipe()
	inR, inW := io.Pipe()
	p := &inProcess{t: t, stdin: inW, sigs: make(chan os.Signal, 1), lines: make(chan line, 16), exit: make(chan int, 1)}
	args = append([]string{"-profile", "local", "-log-level", "error"}, args...)
	go func() {
		code := run(args, inR, outW, io.Discard, p.sigs)
		outW.Close()
		p.exit <- code
	}()
	t.Cleanup(func() { inW.Close() })
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			var l line
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Errorf("not a JSON line: %q: %v", sc.Text(), err)
				continue
			}
			p.lines <- l
		}
	}()
	return p
}

// next returns the next line the agent printed.
func (p *inProcess) next() line {
	p.t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			p.t.Fatal("output ended early")
		}
		return l
	case <-time.After(10 * time.Second):
		p.t.Fatal("no output line within 10s")
	}
	return line{}
}

// command writes cmd and a newline to the agent's stdin.
func (p *inProcess) command(cmd string) {
	p.t.Helper()
	if _, err := io.WriteString(p.stdin, cmd+"\n"); err != nil {
		p.t.Fatal(err)
	}
}

// stop sends SIGTERM and checks that the agent leaves, shuts down and
// exits 0.
func (p *inProcess) stop() {
	p.t.Helper()
	p.sigs <- syscall.SIGTERM
	if l := p.next(); l.Event != "leave" || l.Error != "" || l.Signal != "terminated" {
		p.t.Fatalf("after SIGTERM: %+v, want a clean leave on signal terminated", l)
	}
	if l := p.next(); l.Event != "shutdown" {
		p.t.Fatalf("after leave: %+v, want shutdown", l)
	}
	select {
	case code := <-p.exit:
		if code != 0 {
			p.t.Fatalf("exit %d", code)
		}
	case <-time.After(10 * time.Second):
		p.t.Fatal("run did not return after shutdown")
	}
}

// TestRunReadyCommandsAndGracefulExit runs the agent in-process: it prints
// the ready line with the real port, answers the members command, and on a
// signal leaves, shuts down and exits 0.
func TestRunReadyCommandsAndGracefulExit(t *testing.T) {
	keyfile := filepath.Join(t.TempDir(), "k")
	if code := run([]string{"-keygen", "-keyfile", keyfile}, nil, io.Discard, io.Discard, nil); code != 0 {
		t.Fatal("keygen failed")
	}
	p := runInProcess(t, "-name", "solo", "-keyfile", keyfile, "-payload", "role=test")
	ready := p.next()
	if ready.Event != "ready" || ready.Name != "solo" || ready.Payload != "role=test" {
		t.Fatalf("first line %+v, want the ready line", ready)
	}
	ap, err := netip.ParseAddrPort(ready.Addr)
	if err != nil || ap.Port() == 0 || !ap.Addr().IsLoopback() {
		t.Fatalf("ready addr %q: want loopback with the real port (%v)", ready.Addr, err)
	}
	if _, err := time.Parse(time.RFC3339Nano, ready.Time); err != nil {
		t.Errorf("time %q: %v", ready.Time, err)
	}

	p.command("members")
	ms := p.next()
	if ms.Event != "members" || len(ms.Members) != 1 || ms.Members[0].Name != "solo" || ms.Members[0].Payload != "role=test" {
		t.Fatalf("members line %+v: want solo alone", ms)
	}
	p.stop()
}

// TestPayloadCommandAnswers: "payload TEXT" answers with a line, the node
// as it now is on success and an error when the payload is refused; it
// used to print nothing on success.
func TestPayloadCommandAnswers(t *testing.T) {
	p := runInProcess(t, "-plaintext", "-name", "solo", "-payload", "role=test")
	ready := p.next()
	if ready.Event != "ready" {
		t.Fatalf("first line %+v, want the ready line", ready)
	}

	p.command("payload role=changed")
	p.command("members")
	l := p.next()
	if l.Event != "payload" || l.Error != "" || l.Name != "solo" || l.Payload != "role=changed" || l.Incarnation <= ready.Incarnation {
		t.Fatalf("after payload: %+v, want a payload line with the new payload and a higher incarnation than %d", l, ready.Incarnation)
	}
	if ms := p.next(); ms.Event != "members" || len(ms.Members) != 1 || ms.Members[0].Payload != "role=changed" {
		t.Fatalf("members line %+v: want solo with the new payload", ms)
	}

	p.command("payload " + strings.Repeat("x", 513)) // the default cap is 512 bytes
	l = p.next()
	if l.Event != "payload" || !strings.Contains(l.Error, "exceeds MaxPayload") || l.Payload != "" {
		t.Fatalf("after an oversized payload: %+v, want a payload line with the error", l)
	}
	p.command("members")
	if ms := p.next(); ms.Event != "members" || len(ms.Members) != 1 || ms.Members[0].Payload != "role=changed" {
		t.Fatalf("members line %+v: the refused payload replaced the old one", ms)
	}
	p.stop()
}

func TestMemberOfPayloadEncoding(t *testing.T) {
	text := memberOf(membership.Member{Name: "a", Payload: []byte("hello")})
	if text.Payload != "hello" || text.PayloadBase64 != "" {
		t.Errorf("text payload printed as %+v", text)
	}
	bin := memberOf(membership.Member{Name: "a", Payload: []byte{0xff, 0x00}})
	if bin.Payload != "" || bin.PayloadBase64 != "/wA=" {
		t.Errorf("binary payload printed as %+v", bin)
	}
}

func TestSplitSeeds(t *testing.T) {
	got := splitSeeds(" 127.0.0.1:1, ,127.0.0.1:2,")
	if len(got) != 2 || got[0] != "127.0.0.1:1" || got[1] != "127.0.0.1:2" {
		t.Errorf("splitSeeds = %q", got)
	}
	if splitSeeds("") != nil {
		t.Error("empty -join gives seeds")
	}
}

// The JSON line the agent prints for one event.
func Example_eventLine() {
	l := eventLine(membership.Event{
		Kind: membership.EventJoined,
		Member: membership.Member{
			Name:        "node-1",
			Addr:        netip.MustParseAddrPort("127.0.0.1:7946"),
			State:       membership.StateAlive,
			Incarnation: 7,
			Payload:     []byte("role=api"),
		},
	})
	l.Time = "2026-01-02T03:04:05Z" // print sets the current time
	json.NewEncoder(os.Stdout).Encode(l)
	// Output:
	// {"time":"2026-01-02T03:04:05Z","event":"joined","name":"node-1","addr":"127.0.0.1:7946","state":"alive","incarnation":7,"payload":"role=api"}
}

// TestSignalCutsJoinShort: a signal while a seed holds the join open ends
// the join at once, and the agent still leaves and exits 0.
func TestSignalCutsJoinShort(t *testing.T) {
	// A "seed" that accepts TCP connections and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	outR, outW := io.Pipe()
	sigs := make(chan os.Signal, 1)
	exit := make(chan int, 1)
	go func() {
		code := run([]string{"-plaintext", "-name", "joiner", "-profile", "local", "-log-level", "error",
			"-join", ln.Addr().String(), "-join-timeout", "1h"}, nil, outW, io.Discard, sigs)
		outW.Close()
		exit <- code
	}()
	sc := bufio.NewScanner(outR)
	var events []string
	for sc.Scan() {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		events = append(events, l.Event)
		if l.Event == "ready" {
			sigs <- syscall.SIGINT
		}
		if l.Event == "join" && l.Error == "" {
			t.Errorf("join through a silent seed succeeded: %+v", l)
		}
	}
	select {
	case code := <-exit:
		if code != 0 {
			t.Errorf("exit %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the agent did not exit after the signal")
	}
	if want := []string{"ready", "join", "leave", "shutdown"}; !slices.Equal(events, want) {
		t.Errorf("lines %v, want %v", events, want)
	}
}

// TestKeygenRefusesToOverwrite: -keygen -keyfile leaves an existing file
// alone and says how to replace it; with -force it replaces it, still mode
// 0600, leaving no temporary file behind. It used to overwrite silently.
func TestKeygenRefusesToOverwrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cluster.key")
	if code := run([]string{"-keygen", "-keyfile", path}, nil, io.Discard, io.Discard, nil); code != 0 {
		t.Fatal("keygen failed")
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	var stdout, stderr bytes.Buffer
	if code := run([]string{"-keygen", "-keyfile", path}, nil, &stdout, &stderr, nil); code == 0 {
		t.Fatal("keygen over an existing key file exited 0")
	}
	if msg := stderr.String(); !strings.Contains(msg, path) || !strings.Contains(msg, "-force") {
		t.Errorf("stderr %q: want the file named and -force suggested", msg)
	}
	if stdout.Len() != 0 {
		t.Errorf("printed %q on stdout", stdout.String())
	}
	if after, err := os.ReadFile(path); err != nil || !bytes.Equal(after, before) {
		t.Fatalf("the refused keygen changed the key file (%v)", err)
	}

	// A dangling symlink is refused too: writing through it, or replacing
	// it, is not what the user asked for without -force.
	link := filepath.Join(dir, "link.key")
	if err := os.Symlink(filepath.Join(dir, "nowhere"), link); err != nil {
		t.Fatal(err)
	}
	if code := run([]string{"-keygen", "-keyfile", link}, nil, io.Discard, io.Discard, nil); code == 0 {
		t.Error("keygen over a dangling symlink exited 0")
	}
	if _, err := os.Lstat(filepath.Join(dir, "nowhere")); err == nil {
		t.Error("keygen wrote through a dangling symlink")
	}
	os.Remove(link)

	stderr.Reset()
	if code := run([]string{"-keygen", "-keyfile", path, "-force"}, nil, io.Discard, &stderr, nil); code != 0 {
		t.Fatalf("keygen -force: exit %d: %s", code, stderr.String())
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(after, before) {
		t.Error("keygen -force left the old key in place")
	}
	if _, err := keyring.Load(path); err != nil {
		t.Errorf("the replaced key file does not load: %v", err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("replaced key file: %v, %v; want mode 0600", fi.Mode().Perm(), err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %q, want only cluster.key", names)
	}
}

// agentProcess is the agent as a real process: this test binary, run
// again with agentEnv set.
type agentProcess struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer // read only after exited is closed
	lines  chan line    // closed at the end of stdout
	exited chan struct{}
	err    error // the exit status, set before exited is closed
}

// startProcess starts the agent with args. With prefix, the command is
// prefix followed by the agent, which prefix must exec in place (as nohup
// does), so that signals reach the agent.
func startProcess(t *testing.T, prefix []string, args ...string) *agentProcess {
	t.Helper()
	argv := append(append(prefix, os.Args[0]), args...)
	p := &agentProcess{cmd: exec.Command(argv[0], argv[1:]...), lines: make(chan line, 64), exited: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), agentEnv+"=1")
	p.cmd.Stderr = &p.stderr
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	// Stdin stays open (and empty) while the agent runs: the agent serves
	// commands until it ends.
	stdin, err := p.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.exited)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var l line
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Errorf("not a JSON line: %q: %v", sc.Text(), err)
				continue
			}
			p.lines <- l
		}
		close(p.lines)
		p.err = p.cmd.Wait()
	}()
	t.Cleanup(func() {
		stdin.Close()
		p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("agent stderr:\n%s", p.stderr.String())
		}
	})
	return p
}

// next returns the next line the agent printed, or fails the test if
// there is none within 10s.
func (p *agentProcess) next(t *testing.T) line {
	t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			t.Fatal("output ended early")
		}
		return l
	case <-time.After(10 * time.Second):
		t.Fatal("no output line within 10s")
	}
	return line{}
}

// drain returns the lines the agent prints until its stdout ends.
func (p *agentProcess) drain(t *testing.T) []line {
	t.Helper()
	var ls []line
	deadline := time.After(15 * time.Second)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				return ls
			}
			ls = append(ls, l)
		case <-deadline:
			t.Fatalf("the agent's output did not end within 15s; so far %+v", ls)
		}
	}
}

// wait waits for the agent to exit and returns its exit status.
func (p *agentProcess) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-p.exited:
		return p.err
	case <-time.After(10 * time.Second):
		t.Fatal("the agent did not exit within 10s")
	}
	return nil
}

// TestSIGHUPLeavesGracefully: SIGHUP makes the agent leave like SIGTERM,
// so a peer sees it left, not failed, and the agent exits 0. It used to
// die of the signal. The agent runs with debug logs, which must not hold
// the key.
func TestSIGHUPLeavesGracefully(t *testing.T) {
	keyfile := filepath.Join(t.TempDir(), "cluster.key")
	if code := run([]string{"-keygen", "-keyfile", keyfile}, nil, io.Discard, io.Discard, nil); code != 0 {
		t.Fatal("keygen failed")
	}
	ring, err := keyring.Load(keyfile)
	if err != nil {
		t.Fatal(err)
	}
	p := startProcess(t, nil, "-name", "agent", "-keyfile", keyfile, "-profile", "local", "-log-level", "debug")
	ready := p.next(t)
	if ready.Event != "ready" {
		t.Fatalf("first line %+v, want ready", ready)
	}

	peer, err := membership.New(
		membership.WithName("peer"),
		membership.WithBindAddr("127.0.0.1:0"),
		membership.WithProfile(membership.ProfileLocal),
		membership.WithKeyring(ring),
		membership.WithLogger(slog.New(slog.DiscardHandler)),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := peer.Join(ctx, ready.Addr); err != nil {
		t.Fatal(err)
	}
	// The agent knows the peer, so its leave reaches it.
	for l := p.next(t); l.Event != "joined" || l.Name != "peer"; l = p.next(t) {
	}

	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	rest := p.drain(t)
	if err := p.wait(t); err != nil {
		t.Fatalf("after SIGHUP the agent exited with %v, want exit 0; lines %+v", err, rest)
	}
	if len(rest) < 2 || rest[len(rest)-2].Event != "leave" || rest[len(rest)-1].Event != "shutdown" {
		t.Fatalf("after SIGHUP: lines %+v, want leave then shutdown", rest)
	}
	if l := rest[len(rest)-2]; l.Error != "" || l.Signal != "hangup" {
		t.Errorf("leave line %+v, want a clean leave on signal hangup", l)
	}

	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-peer.Events():
			if ev.Member.Name != "agent" {
				continue
			}
			switch ev.Kind {
			case membership.EventLeft:
				if key := base64.StdEncoding.EncodeToString(ring.Keys()[0]); strings.Contains(p.stderr.String(), key) {
					t.Error("the agent logged its key")
				}
				return
			case membership.EventFailed:
				t.Fatalf("the peer saw the agent %v, want left", ev.Kind)
			}
		case <-deadline:
			t.Fatal("the peer did not see the agent leave within 10s")
		}
	}
}

// TestSIGHUPIgnoredUnderNohup: started under nohup, the agent keeps SIGHUP
// ignored, as nohup asked, and still leaves on the SIGTERM that follows.
// Were SIGHUP handled, it would be the signal the agent left on: the
// kernel delivers the lower-numbered of two pending signals first.
func TestSIGHUPIgnoredUnderNohup(t *testing.T) {
	nohup, err := exec.LookPath("nohup")
	if err != nil {
		t.Skipf("no nohup: %v", err)
	}
	p := startProcess(t, []string{nohup}, "-plaintext", "-name", "agent", "-profile", "local", "-log-level", "error")
	if l := p.next(t); l.Event != "ready" {
		t.Fatalf("first line %+v, want ready", l)
	}
	for _, sig := range []os.Signal{syscall.SIGHUP, syscall.SIGTERM} {
		if err := p.cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
	}
	var events []string
	for _, l := range p.drain(t) {
		events = append(events, l.Event)
		if l.Event == "leave" && l.Signal != "terminated" {
			t.Errorf("leave line %+v, want signal terminated: SIGHUP was not ignored", l)
		}
	}
	if err := p.wait(t); err != nil {
		t.Errorf("exit %v, want 0", err)
	}
	if want := []string{"leave", "shutdown"}; !slices.Equal(events, want) {
		t.Errorf("lines %v, want %v", events, want)
	}
}

// TestDocsNameEveryFlag: the README's agent section and the package doc
// name every flag the agent has.
func TestDocsNameEveryFlag(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## The agent\n")
	if !ok {
		t.Fatal("README.md has no \"## The agent\" section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	pkgDoc, _, _ := strings.Cut(string(src), "\npackage main")

	var o options
	newFlagSet(&o).VisitAll(func(f *flag.Flag) {
		if !strings.Contains(section, "`-"+f.Name) {
			t.Errorf("README.md, The agent: no `-%s`", f.Name)
		}
		if !strings.Contains(pkgDoc, "//\t-"+f.Name+" ") {
			t.Errorf("main.go package doc: -%s is not in the flag list", f.Name)
		}
	})
}
