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

// forwardStreams relays inbound streams from in to a new channel of the
// given capacity, wrapped to count their bytes, until in is closed or done
// is. A stream that finds the channel full is closed, as the transports do.
// The relay closes its channel when in is closed (our transport's contract)
// but not when done is: memberlist reads its stream channel without
// checking for closure and would take a closed one for a nil stream.
func forwardStreams(in <-chan net.Conn, capacity int, c *counters, done <-chan struct{}) <-chan net.Conn {
	out := make(chan net.Conn, capacity)
	go func() {
		for {
			select {
			case conn, ok := <-in:
				if !ok {
					close(out)
					return
				}
				select {
				case out <- countingConn{conn, c}:
				default:
					conn.Close()
				}
			case <-done:
				return
			}
		}
	}()
	return out
}
