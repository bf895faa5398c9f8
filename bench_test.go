package membership

import (
	"context"
	"fmt"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshward/membership/transport"
)

// countingTransport counts what a node writes, for traffic figures.
type countingTransport struct {
	transport.Transport
	datagrams, bytes *atomic.Int64
}

func (c countingTransport) WriteTo(b []byte, to netip.AddrPort) error {
	c.datagrams.Add(1)
	c.bytes.Add(int64(len(b)))
	return c.Transport.WriteTo(b, to)
}

// BenchmarkIdleTraffic measures what an idle, converged cluster sends per
// member per protocol period, sealed bytes on the wire (UDP payload), for
// comparison with memberlist (≈2 packets and ≈124 B per node per second at
// its LAN defaults, PEERS.md). It runs on the in-memory network with the
// Local profile (200 ms periods); per period the figures do not depend on
// the profile. One iteration is one protocol period of the whole cluster.
func BenchmarkIdleTraffic(b *testing.B) {
	for _, n := range []int{16, 64} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			c := newMemCluster(b, 0)
			var datagrams, bytes atomic.Int64
			for i := 0; i < n; i++ {
				c.add(fmt.Sprintf("node-%02d", i), WithTransport(countingTransport{c.net.NewTransport(), &datagrams, &bytes}))
			}
			seed := c.nodes[0].Myself().Addr.String()
			for _, nd := range c.nodes[1:] {
				if _, err := nd.Join(context.Background(), seed); err != nil {
					b.Fatal(err)
				}
			}
			c.everyoneSees(c.nodes, names(c.nodes), StateAlive, 30*time.Second)
			// Let join news drain from the gossip queues before measuring.
			waitFor(b, 30*time.Second, "gossip queues to drain", func() bool {
				for _, nd := range c.nodes {
					q := 0
					nd.do(func() { q = nd.core.QueueLen() })
					if q > 0 {
						return false
					}
				}
				return true
			})
			period := ProfileLocal.protocol().ProbeInterval
			datagrams.Store(0)
			bytes.Store(0)
			b.ResetTimer()
			start := time.Now()
			time.Sleep(time.Duration(b.N) * period)
			elapsed := time.Since(start)
			b.StopTimer()
			periods := float64(elapsed) / float64(period)
			b.ReportMetric(float64(datagrams.Load())/periods/float64(n), "datagrams/member/period")
			b.ReportMetric(float64(bytes.Load())/periods/float64(n), "bytes/member/period")
			b.ReportMetric(float64(bytes.Load())/float64(max(datagrams.Load(), 1)), "bytes/datagram")
		})
	}
}
