package bench

import (
	"io"
	"log"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// closeRecorder is a stream that records whether it was closed.
type closeRecorder struct {
	net.Conn
	closed atomic.Bool
}

func (c *closeRecorder) Close() error {
	c.closed.Store(true)
	return nil
}

// The relay must hand on every stream the transport accepted, in order,
// however far the consumer falls behind: memberlist's transport never
// closes a stream for want of room, and a relay that did refused joiners
// memberlist alone would have served.
func TestRelayNeverDropsStreams(t *testing.T) {
	const streams = 40 // more than the 32 slots the relay used to have
	in := make(chan net.Conn, streams)
	conns := make([]*closeRecorder, streams)
	for i := range conns {
		conns[i] = &closeRecorder{}
		in <- conns[i]
	}
	close(in)
	out := forwardStreams(in, &counters{}, nil)

	// Nobody has read yet: by now the old relay had closed what did not
	// fit its buffer. Read everything, with a deadline in case the relay
	// stalls.
	var got []net.Conn
	deadline := time.After(10 * time.Second)
	for done := false; !done; {
		select {
		case c, ok := <-out:
			if !ok {
				done = true
				break
			}
			got = append(got, c.(countingConn).Conn)
		case <-deadline:
			t.Fatalf("relay stalled after %d of %d streams", len(got), streams)
		}
	}
	closed := 0
	for _, c := range conns {
		if c.closed.Load() {
			closed++
		}
	}
	if len(got) != streams || closed != 0 {
		t.Fatalf("relay delivered %d of %d streams and closed %d; want all delivered, none closed", len(got), streams, closed)
	}
	for i, c := range got {
		if c != conns[i] {
			t.Fatalf("stream %d delivered out of order", i)
		}
	}
}

// memberlist shuts its transport down before it stops reading the stream
// channel, and NetTransport.Shutdown waits for its accept loop, which may
// be blocked handing a stream to the relay. If the relay stopped first,
// Shutdown hung forever. Streams arrive without pause while it shuts down
// (the race needs the accept loop to be mid-handoff), and it is tried a few
// times, since a single try can miss the window.
func TestRelayShutdownDoesNotHang(t *testing.T) {
	for try := 0; try < 5; try++ {
		shutdownUnderStreams(t)
	}
}

func shutdownUnderStreams(t *testing.T) {
	t.Helper()
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{"127.0.0.1"},
		Logger:    log.New(io.Discard, "", 0),
	})
	if err != nil {
		t.Fatal(err)
	}
	tr := newMLCounting(nt, &counters{})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(nt.GetAutoBindPort()))

	// A reader like memberlist's streamListen: it reads until its own
	// shutdown, which memberlist signals after the transport's Shutdown
	// has returned.
	stopReader := make(chan struct{})
	var read atomic.Int64
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			select {
			case c := <-tr.StreamCh():
				c.Close()
				read.Add(1)
			case <-stopReader:
				return
			}
		}
	}()
	stopDialer := make(chan struct{})
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stopDialer:
				return
			default:
			}
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				c.Close()
			}
		}
	}()
	defer func() {
		close(stopDialer)
		close(stopReader)
		wg.Wait()
	}()
	waitFor(t, 10*time.Second, "the reader to get streams", func() bool { return read.Load() >= 20 })

	returned := make(chan struct{})
	go func() {
		tr.Shutdown()
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("NetTransport.Shutdown through the counting wrapper did not return within 10 s")
	}
}
