package membership

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/meshward/membership/internal/envelope"
	"github.com/meshward/membership/swim"
)

// countingConn counts the bytes written to it.
type countingConn struct {
	net.Conn
	n atomic.Int64
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.n.Add(int64(len(b)))
	return c.Conn.Write(b)
}

// snapshotOf is a view of n members named and addressed as the bench
// module's, with incarnations as a node starts them (seconds since 2020).
func snapshotOf(n int) *swim.Snapshot {
	s := &swim.Snapshot{From: "node-00"}
	for i := range n {
		s.Members = append(s.Members, swim.MemberState{
			Name:        fmt.Sprintf("node-%02d", i),
			Addr:        netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(40000+i)),
			Incarnation: initialIncarnation(),
		})
	}
	return s
}

// oneWayBytes is what one side of a push-pull sends with sealer s: its
// hello, its snapshot's records and the final record, as writeExchange
// writes them; the other side reads it back with readExchange, which must
// give the same members.
func oneWayBytes(t *testing.T, s envelope.Sealer, snap *swim.Snapshot) int64 {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	ca := &countingConn{Conn: a}
	type result struct {
		snap swim.Snapshot
		err  error
	}
	done := make(chan result, 1)
	reader := &Node{pcfg: swim.DefaultConfig(), cfg: config{maxState: 1 << 20}}
	go func() {
		st, err := envelope.Handshake(b, false, s, nil, 1<<20)
		if err != nil {
			done <- result{err: err}
			return
		}
		first, fin, err := st.ReadRecord()
		if err != nil {
			done <- result{err: err}
			return
		}
		got, _, err := reader.readExchange(st, first, fin)
		done <- result{snap: got, err: err}
		io.Copy(io.Discard, b)
	}()
	st, err := envelope.Handshake(ca, true, s, nil, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := (&Node{}).writeExchange(st, snap, nil); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || len(r.snap.Members) != len(snap.Members) {
		t.Fatalf("read back %d members, %v", len(r.snap.Members), r.err)
	}
	return ca.n.Load()
}

// TestPushPullBytes measures what one direction of a push-pull costs: a
// fixed part per stream (hello, record framing, snapshot header) and a part
// per member entry, from snapshots of 16 and 64 members. The figures are
// byte counts, quoted in docs/codec.md.
func TestPushPullBytes(t *testing.T) {
	ring := newRing(t, testKey)
	for _, c := range []struct {
		name   string
		legacy bool
		want16 int64 // bytes at 16 members
	}{{"default wire", false, 500}, {"legacy wire", true, 518}} {
		m := envelope.NewModal(ring, envelope.ModeRequired)
		m.SetLegacy(c.legacy)
		b16 := oneWayBytes(t, m, snapshotOf(16))
		b64 := oneWayBytes(t, m, snapshotOf(64))
		per := float64(b64-b16) / 48
		fixed := float64(b16) - 16*per
		t.Logf("%-12s one direction: %d bytes at 16 members, %d at 64: %.1f per member entry, %.0f per stream",
			c.name, b16, b64, per, fixed)
		// 24 bytes an entry: fixarray 1, name 1+7, address 2+6,
		// incarnation 5, state 1, payload (nil) 1.
		if b16 != c.want16 || per != 24 {
			t.Errorf("%s: %d bytes at 16 members and %.1f per entry, want %d and 24", c.name, b16, per, c.want16)
		}
	}
}
