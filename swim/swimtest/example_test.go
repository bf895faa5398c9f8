package swimtest_test

import (
	"fmt"
	"time"

	"github.com/meshward/membership/swim"
	"github.com/meshward/membership/swim/swimtest"
)

// Capacity planning: what does a 64-member cluster on a lossy LAN send, and
// how soon does everyone know of a crash?
func Example() {
	s, err := swimtest.New(swimtest.Options{
		Nodes:  64,
		Seed:   1,
		Config: swim.DefaultConfig(),
		Link:   swimtest.Link{Loss: 0.02, LatencyMin: time.Millisecond, LatencyMax: 10 * time.Millisecond},
	})
	if err != nil {
		panic(err)
	}
	s.Run(100 * s.Period())
	t := s.Totals()
	fmt.Printf("%.1f datagrams per member and period\n", float64(t.Datagrams)/64/100)

	s.Crash(7)
	known := s.RunWhile(time.Minute, func() bool { return !s.Knows(s.Node(7), swim.StateDead) })
	d, _ := s.Detection(7)
	fmt.Println("crash known everywhere within a minute:", known)
	fmt.Println("first suspicion within 5 periods:", d.FirstAccused.Sub(d.CrashedAt) < 5*s.Period())
	fmt.Println("false deaths:", s.FalseDeaths)
	// Output:
	// 2.5 datagrams per member and period
	// crash known everywhere within a minute: true
	// first suspicion within 5 periods: true
	// false deaths: 0
}
