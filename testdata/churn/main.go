// Command churn is the attacker of TestJoinUnderConnectionChurn: it opens
// idle TCP connections to an address as fast as it can, up to a rate,
// never sending a byte and holding the newest of them open, until it has
// run for a duration; then it prints how many it made. It is a process of
// its own, built without the race detector, so that the test's attacker
// keeps its rate when the test runs under -race.
//
//	go run ./testdata/churn -target 127.0.0.1:7946 -rate 15000 -for 3s
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	target := flag.String("target", "", "address to connect to (loopback only)")
	rate := flag.Int("rate", 15000, "connections per second at most")
	hold := flag.Int("hold", 2000, "connections held open at once")
	workers := flag.Int("workers", 16, "dialing goroutines")
	dur := flag.Duration("for", 3*time.Second, "how long to run")
	flag.Parse()
	if host, _, err := net.SplitHostPort(*target); err != nil || !net.ParseIP(host).IsLoopback() {
		fmt.Fprintln(os.Stderr, "churn: -target must be a loopback address")
		os.Exit(2)
	}
	tokens := make(chan struct{}, *workers)
	stop := time.After(*dur)
	go func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				close(tokens)
				return
			case <-tick.C:
				for range max(1, *rate/1000) {
					select {
					case tokens <- struct{}{}:
					default:
					}
				}
			}
		}
	}()
	var made atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			held := make([]net.Conn, 0, *hold / *workers + 1)
			defer func() {
				for _, c := range held {
					c.Close()
				}
			}()
			d := net.Dialer{Timeout: time.Second}
			for range tokens {
				c, err := d.Dial("tcp", *target)
				if err != nil {
					continue
				}
				made.Add(1)
				if len(held) == cap(held) {
					held[0].Close()
					held = append(held[:0], held[1:]...)
				}
				held = append(held, c)
			}
		}()
	}
	wg.Wait()
	fmt.Printf("%d %f\n", made.Load(), time.Since(start).Seconds())
}
