package main

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestScrape runs the example and scrapes it until the cluster's metrics
// are there, labelled, with their types.
func TestScrape(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, "127.0.0.1:0", io.Discard, func(a string) { addr <- a }) }()
	var url string
	select {
	case a := <-addr:
		url = "http://" + a + "/metrics"
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the cluster did not come up in 30s")
	}

	want := []*regexp.Regexp{
		regexp.MustCompile(`(?m)^# TYPE membership_members gauge$`),
		regexp.MustCompile(`(?m)^membership_members\{node="demo-0",state="alive"\} 3$`),
		regexp.MustCompile(`(?m)^# TYPE membership_probes counter$`),
		regexp.MustCompile(`(?m)^membership_probes\{node="demo-1",result="ack"\} [0-9]+$`),
		regexp.MustCompile(`(?m)^# TYPE membership_probes_rtt summary$`),
		regexp.MustCompile(`(?m)^membership_probes_rtt_count\{node="demo-2",path="direct"\} [0-9]+$`),
		regexp.MustCompile(`(?m)^membership_wire_bytes_sent\{channel="stream",node="demo-1"\} [0-9]+$`),
		// demo-0 is the seed: it serves both joins, then the joiners'
		// catch-up exchanges (docs/joinstorm.md) and periodic push-pulls,
		// so at least 2 by the time the cluster is up.
		regexp.MustCompile(`(?m)^membership_pushpull\{direction="inbound",node="demo-0",result="ok"\} ([2-9]|[1-9][0-9]+)$`),
	}
	deadline := time.Now().Add(20 * time.Second) // gauges come once a second
	var body string
	for {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		body = string(b)
		var missing []string
		for _, re := range want {
			if !re.MatchString(body) {
				missing = append(missing, re.String())
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 20s, /metrics lacks %q; membership lines:\n%s", missing, grep(body, "membership_"))
		}
		time.Sleep(200 * time.Millisecond) // poll the server; nothing to wait on
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
