package swim_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/meshward/membership/swim"
)

// A runtime's whole job, for two members in one process: carry datagrams
// and push-pull exchanges between the cores, and call Tick at NextDeadline.
func Example() {
	cfg := swim.DefaultConfig()
	now := time.Unix(1_700_000_000, 0)
	addrs := map[string]netip.AddrPort{
		"a": netip.MustParseAddrPort("10.0.0.1:7946"),
		"b": netip.MustParseAddrPort("10.0.0.2:7946"),
	}
	cores := map[netip.AddrPort]*swim.Core{}
	for i, name := range []string{"a", "b"} {
		c, err := swim.New(cfg, swim.Member{Name: name, Addr: addrs[name]}, rand.New(rand.NewPCG(uint64(i), 0)), now)
		if err != nil {
			panic(err)
		}
		cores[addrs[name]] = c
	}
	a, b := cores[addrs["a"]], cores[addrs["b"]]
	b.Join([]netip.AddrPort{addrs["a"]})

	// drain acts on one core's output, as the runtime does.
	drain := func(self netip.AddrPort, c *swim.Core) {
		out := c.Ready()
		for _, d := range out.Datagrams {
			// A real runtime encodes, seals and sends d.Msgs here.
			if peer := cores[d.To]; peer != nil {
				peer.Step(now, self, d.Msgs)
			}
		}
		for _, p := range out.PushPulls {
			mine := c.Snapshot()
			mine.Join = p.Join
			theirs := cores[p.To].Snapshot()
			_ = cores[p.To].Merge(now, &mine)
			_ = c.Merge(now, &theirs)
		}
		for _, ev := range out.Events {
			fmt.Printf("%s sees %s %s\n", c.Myself().Name, ev.Member.Name, ev.Kind)
		}
		c.Advance()
	}
	for range 20 {
		drain(addrs["b"], b)
		drain(addrs["a"], a)
		now = now.Add(100 * time.Millisecond)
		for _, c := range []*swim.Core{a, b} {
			if !now.Before(c.NextDeadline()) {
				c.Tick(now)
			}
		}
	}
	m, _ := a.Member("b")
	fmt.Println("a holds b", m.State, "at incarnation", m.Incarnation)
	// Output:
	// b sees a joined
	// a sees b joined
	// a holds b alive at incarnation 0
}
