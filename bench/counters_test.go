package bench

import (
	"net"
	"sync/atomic"
)

// counters add up what every node of one cluster sends: UDP datagrams and
// their payload bytes (sealed, as written to the socket), and bytes written
// on TCP streams in either direction (join and push-pull state exchange).
type counters struct {
	udpPackets atomic.Int64
	udpBytes   atomic.Int64
	tcpBytes   atomic.Int64
}

type snapshot struct {
	udpPackets, udpBytes, tcpBytes int64
}

func (c *counters) snapshot() snapshot {
	return snapshot{c.udpPackets.Load(), c.udpBytes.Load(), c.tcpBytes.Load()}
}

func (c *counters) datagram(n int) {
	c.udpPackets.Add(1)
	c.udpBytes.Add(int64(n))
}

// countingConn counts the bytes written on a stream.
type countingConn struct {
	net.Conn
	c *counters
}

func (cc countingConn) Write(b []byte) (int, error) {
	n, err := cc.Conn.Write(b)
	cc.c.tcpBytes.Add(int64(n))
	return n, err
}

// forwardStreams relays inbound streams from in to a new unbuffered
// channel, wrapped to count their bytes, until in is closed or done is. It
// never drops a stream: while the consumer is busy it holds the one it has
// and stops taking more from in, so the transport underneath behaves as it
// does without the relay (memberlist's NetTransport blocks its accept loop
// on an unbuffered channel and the kernel's accept queue holds the rest;
// our transport.Net queues up to its StreamQueue and closes the rest). A
// relay that closed streams when its own buffer was full would refuse
// joiners that the library alone would have served.
//
// The relay closes its channel when in is closed (our transport's
// contract) but not when done is: memberlist reads its stream channel
// without checking for closure and would take a closed one for a nil
// stream. When done is closed it closes the stream it holds, if any. A
// wrapper must close done only after the transport's own shutdown has
// returned: memberlist's NetTransport.Shutdown waits for its accept loop,
// which may be blocked handing a stream to the relay.
func forwardStreams(in <-chan net.Conn, c *counters, done <-chan struct{}) <-chan net.Conn {
	out := make(chan net.Conn)
	go func() {
		for {
			var conn net.Conn
			select {
			case cn, ok := <-in:
				if !ok {
					close(out)
					return
				}
				conn = cn
			case <-done:
				return
			}
			select {
			case out <- countingConn{conn, c}:
			case <-done:
				conn.Close()
				return
			}
		}
	}()
	return out
}
