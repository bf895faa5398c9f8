package membership

import (
	"net"

	"github.com/meshward/membership/metrics"
)

// countConn returns c wrapped so that every byte read from or written to
// it, sealed as it crosses the socket, is counted in the wire metrics
// (channel "stream"); c itself when metrics are off.
func countConn(c net.Conn, m *metrics.Metrics) net.Conn {
	if m == nil {
		return c
	}
	return &countedConn{Conn: c, met: m}
}

// countedConn counts a stream's bytes in the wire metrics.
type countedConn struct {
	net.Conn
	met *metrics.Metrics
}

func (c *countedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.met.WireReceived(metrics.ChannelStream, n)
	}
	return n, err
}

func (c *countedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.met.WireSent(metrics.ChannelStream, n)
	}
	return n, err
}
