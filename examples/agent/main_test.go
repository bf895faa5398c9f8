package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshward/membership"
	"github.com/meshward/membership/keyring"
)

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
		{[]string{"-plaintext", "-bind", "300.1.1.1:1"}, "300.1.1.1"},
		{[]string{"-plaintext", "-label", "bad\nlabel"}, "WithLabel"},
		{[]string{"-keygen", "-suite", "rot13"}, "rot13"},
		{[]string{"-nosuchflag"}, "nosuchflag"},
		{[]string{"-plaintext", "stray"}, "unexpected arguments"},
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

// TestRunReadyCommandsAndGracefulExit runs the agent in-process: it prints
// the ready line with the real port, answers the members command, and on a
// signal leaves, shuts down and exits 0.
func TestRunReadyCommandsAndGracefulExit(t *testing.T) {
	keyfile := filepath.Join(t.TempDir(), "k")
	if code := run([]string{"-keygen", "-keyfile", keyfile}, nil, io.Discard, io.Discard, nil); code != 0 {
		t.Fatal("keygen failed")
	}
	outR, outW := io.Pipe()
	inR, inW := io.Pipe()
	sigs := make(chan os.Signal, 1)
	exit := make(chan int, 1)
	go func() {
		code := run([]string{"-name", "solo", "-keyfile", keyfile, "-profile", "local", "-payload", "role=test", "-log-level", "error"},
			inR, outW, io.Discard, sigs)
		outW.Close()
		exit <- code
	}()
	t.Cleanup(func() { inW.Close() })
	lines := make(chan line, 16)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			var l line
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Errorf("not a JSON line: %q: %v", sc.Text(), err)
				continue
			}
			lines <- l
		}
	}()
	next := func() line {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("output ended early")
			}
			return l
		case <-time.After(10 * time.Second):
			t.Fatal("no output line within 10s")
		}
		return line{}
	}

	ready := next()
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

	if _, err := io.WriteString(inW, "payload role=changed\nmembers\n"); err != nil {
		t.Fatal(err)
	}
	ms := next()
	if ms.Event != "members" || len(ms.Members) != 1 || ms.Members[0].Name != "solo" || ms.Members[0].Payload != "role=changed" {
		t.Fatalf("members line %+v: want solo alone with the new payload", ms)
	}

	sigs <- syscall.SIGTERM
	if l := next(); l.Event != "leave" || l.Error != "" {
		t.Fatalf("after SIGTERM: %+v, want a clean leave", l)
	}
	if l := next(); l.Event != "shutdown" {
		t.Fatalf("after leave: %+v, want shutdown", l)
	}
	select {
	case code := <-exit:
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after shutdown")
	}
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
