package main

import (
	"bytes"
	"io"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/meshward/membership/metrics"
)

// TestBuiltInReceiver runs the demo with its own statsd receiver and checks
// that the metrics of a running cluster, and of the leave, arrived.
func TestBuiltInReceiver(t *testing.T) {
	t.Parallel() // each runs its own cluster on its own ports
	var out bytes.Buffer
	if err := run(config{duration: 300 * time.Millisecond}, &out, io.Discard); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	s := out.String()
	// The node sums the messages it sends and hands the sum to the sink
	// once a second and at Shutdown: one line, whatever the count.
	if re := regexp.MustCompile(`(?m)statsd <- ` + regexp.QuoteMeta(metrics.MessagesSent) + `:[1-9][0-9]*\|c\|#type:ping,node:demo-0$`); !re.MatchString(s) {
		t.Errorf("output lacks a line matching %q", re)
	}
	for _, want := range []string{
		"statsd <- " + metrics.Members + ":1|g|#state:left,node:demo-0",
		"statsd <- " + metrics.Leaves + ":1|c|#node:demo-0",
		"statsd <- " + metrics.PushPulls + ":1|c|#direction:inbound,result:ok,node:demo-0",
		"demo-2 left the cluster",
		"received ",
		"  " + metrics.Members + " ",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestPlainStatsd: -format statsd sends go-metrics' plain statsd lines,
// label values glued into the name.
func TestPlainStatsd(t *testing.T) {
	t.Parallel() // each runs its own cluster on its own ports
	var out bytes.Buffer
	if err := run(config{duration: 300 * time.Millisecond, format: "statsd"}, &out, io.Discard); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	s := out.String()
	for _, want := range []string{
		"statsd <- " + metrics.MessagesSent + ".ping.demo-0:",
		"statsd <- " + metrics.Members + ".left.demo-0:1.000000|g",
		"statsd <- " + metrics.Leaves + ".demo-0:1.000000|c",
		"statsd <- " + metrics.PushPulls + ".inbound.ok.demo-0:",
		"  " + metrics.Members + " ",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestExternalStatsd sends to a statsd address given with -statsd: here a
// UDP socket of the test's own.
func TestExternalStatsd(t *testing.T) {
	t.Parallel() // each runs its own cluster on its own ports
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	got := make(chan string, 1024)
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, _, err := conn.ReadFromUDP(buf)
			if err != nil {
				close(got)
				return
			}
			got <- string(buf[:n])
		}
	}()
	var out bytes.Buffer
	if err := run(config{statsd: conn.LocalAddr().String(), duration: 300 * time.Millisecond}, &out, io.Discard); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if strings.Contains(out.String(), "statsd <-") {
		t.Error("printed received lines although statsd is external")
	}
	conn.SetReadDeadline(time.Now().Add(time.Second))
	var all strings.Builder
	for s := range got {
		all.WriteString(s)
	}
	if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(metrics.Members) + `:[0-9]+\|g\|#state:alive,node:demo-1$`).MatchString(all.String()) {
		t.Errorf("the external statsd got no members gauge; got %d bytes", all.Len())
	}
}

func TestBadFlags(t *testing.T) {
	if err := run(config{duration: 0}, io.Discard, io.Discard); err == nil {
		t.Error("a zero duration was accepted")
	}
	if err := run(config{duration: time.Second, format: "graphite"}, io.Discard, io.Discard); err == nil {
		t.Error("an unknown format was accepted")
	}
}

func TestFamily(t *testing.T) {
	for name, want := range map[string]string{
		"membership.pushpull.duration.inbound.demo-0": metrics.PushPullDuration,
		"membership.pushpull.inbound.ok.demo-0":       metrics.PushPulls,
		"membership.members.alive.demo-1":             metrics.Members,
		"membership.members":                          metrics.Members,
		"membership.wire.bytes.sent.stream.demo-1":    metrics.WireBytesSent,
		"something.else":                              "something.else",
	} {
		if got := family(name); got != want {
			t.Errorf("family(%q) = %q, want %q", name, got, want)
		}
	}
}
