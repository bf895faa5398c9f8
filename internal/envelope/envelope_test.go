package envelope

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshward/membership/keyring"
)

func testRing(t testing.TB) *keyring.Keyring {
	t.Helper()
	key := bytes.Repeat([]byte{7}, 32)
	r, err := keyring.New(key)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var label = []byte("prod-eu")

func TestDatagramRoundTrip(t *testing.T) {
	r := testRing(t)
	now := time.UnixMilli(1_790_000_000_123)
	pt := append(make([]byte, TimestampLen), "messages"...)
	dg, err := SealDatagram(r, label, nil, pt, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(dg) != len("messages")+37 || SentOverhead(r) != 37 || Overhead(r) != 54 {
		t.Fatalf("datagram is %d bytes, want %d; overhead %d sent, %d at most", len(dg), len("messages")+37, SentOverhead(r), Overhead(r))
	}
	sent, body, _, err := OpenDatagram(r, label, nil, dg)
	if err != nil {
		t.Fatal(err)
	}
	if !sent.Equal(now) || string(body) != "messages" {
		t.Fatalf("OpenDatagram = %v, %q; want %v, %q", sent, body, now, "messages")
	}
	if n := Nonce(r, dg); !bytes.Equal(n, dg[5:5+16]) {
		t.Fatalf("Nonce = %x", n)
	}
	// The full layout, for a cluster held to the legacy wire.
	lm := legacyModal(r)
	full, err := SealDatagram(lm, label, nil, pt, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(full) != len("messages")+54 || SentOverhead(lm) != 54 || full[0] != keyring.Version {
		t.Fatalf("legacy datagram is %d bytes (version %#x), want %d", len(full), full[0], len("messages")+54)
	}
	if n := Nonce(r, full); !bytes.Equal(n, full[6:6+24]) {
		t.Fatalf("Nonce = %x", n)
	}
	for _, ring := range []Sealer{r, lm, NewModal(r, ModeSendSealed)} {
		sent, body, _, err := OpenDatagram(ring, label, nil, full)
		if err != nil || !sent.Equal(now) || string(body) != "messages" {
			t.Fatalf("%T: the full layout: %v, %q, %v", ring, sent, body, err)
		}
		if sent, body, _, err = OpenDatagram(ring, label, nil, dg); err != nil || !sent.Equal(now) || string(body) != "messages" {
			t.Fatalf("%T: the compact layout: %v, %q, %v", ring, sent, body, err)
		}
	}
	if _, err := SealDatagram(r, label, nil, make([]byte, 3), now); err == nil {
		t.Fatal("SealDatagram without room for the timestamp succeeded")
	}
	short, _ := r.Seal(nil, []byte{1, 2, 3}, label)
	if _, _, _, err := OpenDatagram(r, label, nil, short); !errors.Is(err, ErrMalformed) {
		t.Fatalf("authenticated datagram without timestamp: err = %v, want ErrMalformed", err)
	}
	if _, _, _, err := OpenDatagram(r, []byte("other"), nil, dg); !errors.Is(err, keyring.ErrAuthFailed) {
		t.Fatalf("wrong label: %v", err)
	}
}

func TestCheckLabel(t *testing.T) {
	for _, ok := range []string{"", "prod-eu", "ünïcode", strings.Repeat("x", MaxLabelLen)} {
		if err := CheckLabel([]byte(ok)); err != nil {
			t.Errorf("CheckLabel(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"\x00stream", "tab\there", "del\x7f", strings.Repeat("x", MaxLabelLen+1)} {
		if err := CheckLabel([]byte(bad)); !errors.Is(err, ErrLabel) {
			t.Errorf("CheckLabel(%q) = %v, want ErrLabel", bad, err)
		}
	}
}

func TestReplayGuard(t *testing.T) {
	g := NewReplayGuard(5*time.Minute, 100)
	now := time.Unix(1_800_000_000, 0)
	nonce := func(i int) []byte { return bytes.Repeat([]byte{byte(i), byte(i >> 8)}, 12) }

	if err := g.Check(now, now.Add(-time.Second), nonce(1)); err != nil {
		t.Fatal(err)
	}
	err := g.Check(now.Add(time.Second), now.Add(-time.Second), nonce(1))
	if !errors.Is(err, ErrReplay) {
		t.Fatalf("duplicate: err = %v, want ErrReplay", err)
	}
	err = g.Check(now, now.Add(-6*time.Minute), nonce(2))
	var re *ReplayError
	if !errors.Is(err, ErrTooOld) || !errors.As(err, &re) || re.Skew != 6*time.Minute || !strings.Contains(err.Error(), "6m0s behind") {
		t.Fatalf("old: err = %v, want ErrTooOld naming a 6m skew", err)
	}
	err = g.Check(now, now.Add(6*time.Minute), nonce(3))
	if !errors.Is(err, ErrTooNew) || !errors.As(err, &re) || re.Skew != -6*time.Minute || !strings.Contains(err.Error(), "6m0s ahead") {
		t.Fatalf("future: err = %v, want ErrTooNew with -6m skew", err)
	}
	// Once the first datagram leaves the window it is forgotten, and a
	// replay of it is rejected by the window alone.
	later := now.Add(5*time.Minute + 2*time.Second)
	if err := g.Check(later, later, nonce(4)); err != nil {
		t.Fatal(err)
	}
	if g.Len() != 1 {
		t.Fatalf("guard remembers %d nonces, want 1 (the expired one forgotten)", g.Len())
	}
	if err := g.Check(later, now.Add(-time.Second), nonce(1)); !errors.Is(err, ErrTooOld) {
		t.Fatalf("replay after expiry: err = %v, want ErrTooOld", err)
	}
}

// TestReplayGuardFull: when the cache is full the window shrinks, and a
// replay of a forgotten datagram is still rejected, as a shrunk window (the
// cache is the cause, not the clock).
func TestReplayGuardFull(t *testing.T) {
	g := newReplayGuard(time.Minute, 3)
	now := time.Unix(1_800_000_000, 0)
	n := func(i byte) []byte { return bytes.Repeat([]byte{i}, 24) }
	for i := byte(1); i <= 3; i++ {
		if err := g.Check(now, now.Add(-time.Duration(10-i)*time.Second), n(i)); err != nil {
			t.Fatal(err)
		}
	}
	// Full. A datagram older than everything remembered cannot be
	// remembered, so it is refused.
	if err := g.Check(now, now.Add(-20*time.Second), n(9)); !errors.Is(err, ErrWindowShrunk) {
		t.Fatalf("older than the full cache: err = %v, want ErrWindowShrunk", err)
	}
	// A newer one evicts the oldest (nonce 1, sent at now-9s)...
	if err := g.Check(now, now.Add(-time.Second), n(4)); err != nil {
		t.Fatal(err)
	}
	if g.Len() != 3 {
		t.Fatalf("Len = %d, want 3", g.Len())
	}
	// ...and a replay of nonce 1 is still refused.
	if err := g.Check(now, now.Add(-9*time.Second), n(1)); !errors.Is(err, ErrWindowShrunk) {
		t.Fatalf("replay of an evicted datagram: err = %v, want ErrWindowShrunk", err)
	}
}

// TestReplayGuardNeverAcceptsTwice drives the guard with random traffic full
// of replays and checks the one property that matters.
func TestReplayGuardNeverAcceptsTwice(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	g := newReplayGuard(30*time.Second, 64)
	now := time.Unix(1_800_000_000, 0)
	type sentDatagram struct {
		sent  time.Time
		nonce []byte
	}
	var history []sentDatagram
	accepted := map[string]bool{}
	acceptedCount := 0
	for i := 0; i < 20000; i++ {
		now = now.Add(time.Duration(rng.IntN(50)) * time.Millisecond)
		var d sentDatagram
		if len(history) > 0 && rng.IntN(3) == 0 {
			d = history[rng.IntN(len(history))] // a replay
		} else {
			nonce := make([]byte, 24)
			for j := range nonce {
				nonce[j] = byte(rng.Uint32())
			}
			d = sentDatagram{sent: now.Add(time.Duration(rng.IntN(4000)-2000) * time.Millisecond), nonce: nonce}
			history = append(history, d)
		}
		if g.Check(now, d.sent, d.nonce) == nil {
			if accepted[string(d.nonce)] {
				t.Fatalf("step %d: nonce accepted twice", i)
			}
			accepted[string(d.nonce)] = true
			acceptedCount++
		}
		if g.Len() > 64 {
			t.Fatalf("guard holds %d entries, cap 64", g.Len())
		}
	}
	if acceptedCount < 5000 {
		t.Fatalf("only %d datagrams accepted: the guard is refusing fresh traffic", acceptedCount)
	}
}

// pipePair runs a handshake over net.Pipe and returns both ends.
func pipePair(t *testing.T, limit int64) (initiator, responder *Stream, ci, cr net.Conn) {
	t.Helper()
	ci, cr = net.Pipe()
	r := testRing(t)
	var wg sync.WaitGroup
	var rerr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		responder, rerr = Handshake(cr, false, r, label, limit)
	}()
	initiator, err := Handshake(ci, true, r, label, limit)
	wg.Wait()
	if err != nil || rerr != nil {
		t.Fatalf("handshake: %v / %v", err, rerr)
	}
	t.Cleanup(func() { ci.Close(); cr.Close() })
	return initiator, responder, ci, cr
}

func TestStreamRoundTrip(t *testing.T) {
	a, b, _, _ := pipePair(t, 0)
	records := [][]byte{[]byte("header"), bytes.Repeat([]byte{1}, MaxRecord), nil, []byte("last")}
	errc := make(chan error, 1)
	go func() {
		for i, rec := range records {
			if err := a.WriteRecord(rec, i == len(records)-1); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for i, want := range records {
		got, final, err := b.ReadRecord()
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if !bytes.Equal(got, want) || final != (i == len(records)-1) {
			t.Fatalf("record %d: %d bytes final=%v, want %d bytes", i, len(got), final, len(want))
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.ReadRecord(); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after final: %v", err)
	}
	if err := a.WriteRecord(nil, false); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after final: %v", err)
	}
	if err := a.WriteRecord(make([]byte, MaxRecord+1), false); err == nil {
		t.Fatal("oversized record written")
	}
	// The other direction works independently.
	go func() { errc <- b.WriteRecord([]byte("reply"), true) }()
	got, final, err := a.ReadRecord()
	if err != nil || string(got) != "reply" || !final {
		t.Fatalf("reply: %q %v %v", got, final, err)
	}
	<-errc
}

// capture records what one side writes after the hellos.
type capture struct {
	r io.Reader
	w bytes.Buffer
}

func (c *capture) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *capture) Write(p []byte) (int, error) { return c.w.Write(p) }

// recordedStream runs an initiator against a responder over in-memory
// buffers, sending the given records, and returns the initiator's hello and
// the raw bytes of each record as written.
func recordedStream(t testing.TB, records ...string) (hello []byte, raw [][]byte, responderHello []byte) {
	t.Helper()
	r := testRing(t)
	// Make a responder hello by running a responder against a fixed
	// initiator hello.
	var respOut bytes.Buffer
	fakeInitHello := append([]byte{StreamVersion}, bytes.Repeat([]byte{9}, 16)...)
	if _, err := Handshake(rw(bytes.NewReader(fakeInitHello), &respOut), false, r, label, 0); err != nil {
		t.Fatal(err)
	}
	responderHello = respOut.Bytes()
	c := &capture{r: bytes.NewReader(responderHello)}
	s, err := Handshake(c, true, r, label, 0)
	if err != nil {
		t.Fatal(err)
	}
	hello = bytes.Clone(c.w.Bytes()[:helloLen])
	c.w.Reset()
	for i, rec := range records {
		if err := s.WriteRecord([]byte(rec), i == len(records)-1); err != nil {
			t.Fatal(err)
		}
		raw = append(raw, bytes.Clone(c.w.Bytes()))
		c.w.Reset()
	}
	return hello, raw, responderHello
}

// feedResponder plays initiator bytes to a fresh responder whose own nonce
// is the one in responderHello (so the records can be valid), and returns
// what reading gives.
func feedResponder(t testing.TB, hello []byte, records ...[]byte) (got []string, err error) {
	t.Helper()
	in := bytes.NewBuffer(bytes.Clone(hello))
	for _, rec := range records {
		in.Write(rec)
	}
	s, err := Handshake(rw(in, io.Discard), false, testRing(t), label, 0)
	if err != nil {
		return nil, err
	}
	return readAll(s)
}

// TestStreamAttacks replays, reorders, drops, truncates and reflects
// records. Each must fail; nothing may be read past the point of attack.
func TestStreamAttacks(t *testing.T) {
	hello, raw, _ := recordedStream(t, "one", "two", "three")
	// The responder picks a fresh nonce, so a whole recorded stream
	// replayed to it fails at the first record.
	got, err := feedResponder(t, hello, raw...)
	if !errors.Is(err, keyring.ErrAuthFailed) || len(got) != 0 {
		t.Fatalf("replayed stream: read %q, err %v; want nothing and ErrAuthFailed", got, err)
	}

	// Within one live stream: reorder, drop, repeat, truncate.
	cases := map[string]struct {
		order []int
		want  error
	}{
		"in order": {[]int{0, 1, 2}, nil}, // the control: the harness itself works
		"reorder":  {[]int{1, 0, 2}, keyring.ErrAuthFailed},
		"drop":     {[]int{0, 2}, keyring.ErrAuthFailed},
		"repeat":   {[]int{0, 0, 1, 2}, keyring.ErrAuthFailed},
		"truncate": {[]int{0, 1}, ErrTruncated},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := liveStream(t, c.order)
			if !errors.Is(err, c.want) {
				t.Fatalf("read %q, err %v; want %v", got, err, c.want)
			}
			if c.want == nil && strings.Join(got, ",") != "r0,r1,r2" {
				t.Fatalf("in order: read %q", got)
			}
		})
	}
	t.Run("reflect", func(t *testing.T) {
		a, _, _, cb := pipePair(t, 0)
		// What a sends, fed back to a as if the responder had sent it.
		go func() { a.WriteRecord([]byte("mine"), true) }()
		buf := make([]byte, 1024)
		n, err := cb.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		go cb.Write(buf[:n])
		if _, _, err := a.ReadRecord(); !errors.Is(err, keyring.ErrAuthFailed) {
			t.Fatalf("reflected record: %v, want ErrAuthFailed", err)
		}
	})
}

// liveStream sends "r0", "r1", "r2" (the last final) from an initiator over a
// pipe, lets a man in the middle deliver them to the responder in the given
// order, and returns what the responder read.
func liveStream(t *testing.T, order []int) ([]string, error) {
	t.Helper()
	ci, mitmI := net.Pipe()
	mitmR, cr := net.Pipe()
	defer ci.Close()
	defer cr.Close()
	defer mitmI.Close()
	defer mitmR.Close()
	r := testRing(t)
	go func() { // hellos pass unchanged
		h := make([]byte, helloLen)
		io.ReadFull(mitmI, h)
		mitmR.Write(h)
		io.ReadFull(mitmR, h)
		mitmI.Write(h)
		// Collect the three records, then deliver in order.
		var recs [][]byte
		for range 3 {
			var l [4]byte
			if _, err := io.ReadFull(mitmI, l[:]); err != nil {
				return
			}
			body := make([]byte, int(l[0])<<24|int(l[1])<<16|int(l[2])<<8|int(l[3]))
			io.ReadFull(mitmI, body)
			recs = append(recs, append(l[:], body...))
		}
		for _, i := range order {
			mitmR.Write(recs[i])
		}
		mitmR.Close()
	}()
	go func() {
		s, err := Handshake(ci, true, r, label, 0)
		if err != nil {
			return
		}
		for i := range 3 {
			s.WriteRecord([]byte{'r', byte('0' + i)}, i == 2)
		}
	}()
	s, err := Handshake(cr, false, r, label, 0)
	if err != nil {
		return nil, err
	}
	return readAll(s)
}

func TestStreamLimits(t *testing.T) {
	r := testRing(t)
	hello := append([]byte{StreamVersion}, bytes.Repeat([]byte{3}, 16)...)
	responder := func(in []byte, limit int64) *Stream {
		s, err := Handshake(rw(bytes.NewReader(in), io.Discard), false, r, label, limit)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// A length prefix beyond the record bound is refused before reading.
	huge := append(bytes.Clone(hello), 0x7f, 0xff, 0xff, 0xff)
	if _, _, err := responder(huge, 0).ReadRecord(); !errors.Is(err, ErrRecordTooLarge) {
		t.Fatalf("huge record: %v", err)
	}
	// The total limit counts length prefixes before reading bodies.
	big := append(bytes.Clone(hello), 0, 0, 4, 0)
	if _, _, err := responder(big, 1000).ReadRecord(); !errors.Is(err, ErrStreamTooLarge) {
		t.Fatalf("over the limit: %v", err)
	}
	// A stream that ends inside a record is truncated.
	cut := append(bytes.Clone(hello), 0, 0, 0, 100, 1, 2, 3)
	if _, _, err := responder(cut, 0).ReadRecord(); !errors.Is(err, ErrTruncated) {
		t.Fatalf("cut record: %v", err)
	}
	// A hello with another version is refused.
	bad := append([]byte{2}, bytes.Repeat([]byte{3}, 16)...)
	if _, err := Handshake(rw(bytes.NewReader(bad), io.Discard), false, r, label, 0); !errors.Is(err, ErrBadHello) {
		t.Fatalf("bad hello: %v", err)
	}
}

// TestDomainSeparation: a datagram never opens as a stream record, and a
// stream record never opens as a datagram, even under the same key and
// label.
func TestDomainSeparation(t *testing.T) {
	r := testRing(t)
	_, raw, _ := recordedStream(t, "record")
	record := raw[0][4:] // strip the length prefix
	if _, _, _, err := OpenDatagram(r, label, nil, record); !errors.Is(err, keyring.ErrAuthFailed) {
		t.Fatalf("record opened as a datagram: %v", err)
	}
	hello, _, _ := recordedStream(t, "x")
	dg, _ := SealDatagram(r, label, nil, make([]byte, TimestampLen+5), time.Now())
	framed := append([]byte{0, 0, 0, byte(len(dg))}, dg...)
	if got, err := feedResponder(t, hello, framed); !errors.Is(err, keyring.ErrAuthFailed) {
		t.Fatalf("datagram read as a record: %q, %v", got, err)
	}
}

func TestReplayGuardAllocs(t *testing.T) {
	g := NewReplayGuard(time.Minute, 1024)
	now := time.Unix(1_800_000_000, 0)
	nonce := make([]byte, 24)
	i := 0
	check := func() {
		i++
		nonce[0], nonce[1], nonce[2] = byte(i), byte(i>>8), byte(i>>16)
		now = now.Add(100 * time.Millisecond)
		if err := g.Check(now, now, nonce); err != nil {
			t.Fatal(err)
		}
	}
	for range 5000 { // reach the steady state: entries expire as fast as they come
		check()
	}
	if n := testing.AllocsPerRun(1000, check); n != 0 {
		t.Fatalf("Check allocates %v times per datagram in steady state", n)
	}
}

// TestLongestLabelFitsStreams: the longest label CheckLabel allows still
// fits the keyring's associated-data bound inside a stream record.
func TestLongestLabelFitsStreams(t *testing.T) {
	long := bytes.Repeat([]byte("l"), MaxLabelLen)
	r := testRing(t)
	var out bytes.Buffer
	hello := append([]byte{StreamVersion}, bytes.Repeat([]byte{5}, 16)...)
	s, err := Handshake(rw(bytes.NewReader(hello), &out), false, r, long, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WriteRecord([]byte("fits"), true); err != nil {
		t.Fatalf("record with the longest label: %v", err)
	}
	if _, err := Handshake(rw(bytes.NewReader(hello), &out), false, r, append(long, 'x'), 0); err == nil {
		t.Fatal("a label one byte too long was accepted")
	}
}

// readAll reads records up to the final one or the first error.
func readAll(s *Stream) (got []string, err error) {
	for {
		data, final, err := s.ReadRecord()
		if err != nil {
			return got, err
		}
		got = append(got, string(data))
		if final {
			return got, nil
		}
	}
}

// rw joins a reader and a writer into the io.ReadWriter Handshake takes.
func rw(r io.Reader, w io.Writer) io.ReadWriter {
	return struct {
		io.Reader
		io.Writer
	}{r, w}
}

func TestPlaintext(t *testing.T) {
	var p Plaintext
	now := time.UnixMilli(1_800_000_000_000)
	dg, err := SealDatagram(p, nil, nil, append(make([]byte, TimestampLen), "body"...), now)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dg[:6], []byte{keyring.Version, 0, 0, 0, 0, 0}) || len(dg) != 6+TimestampLen+4 {
		t.Fatalf("plaintext datagram = %x", dg)
	}
	sent, body, _, err := OpenDatagram(p, nil, nil, dg)
	if err != nil || !sent.Equal(now) || string(body) != "body" {
		t.Fatalf("OpenDatagram = %v %q %v", sent, body, err)
	}
	if Nonce(p, dg) != nil {
		t.Fatal("plaintext datagram has a nonce")
	}
	// A keyring never accepts plaintext, and plaintext never accepts sealed.
	if _, _, _, err := OpenDatagram(testRing(t), nil, nil, dg); !errors.Is(err, keyring.ErrUnknownSuite) {
		t.Fatalf("keyring opened plaintext: %v", err)
	}
	sealed, _ := SealDatagram(testRing(t), nil, nil, make([]byte, TimestampLen), now)
	if _, _, _, err := OpenDatagram(p, nil, nil, sealed); !errors.Is(err, ErrNotPlaintext) {
		t.Fatalf("plaintext opened a sealed datagram: %v", err)
	}
	// The replay window still applies; duplicates cannot be told apart.
	g := NewReplayGuard(time.Minute, 8)
	if err := g.Check(now, now, nil); err != nil {
		t.Fatal(err)
	}
	if err := g.Check(now, now.Add(-2*time.Minute), nil); !errors.Is(err, ErrTooOld) {
		t.Fatalf("old plaintext datagram: %v", err)
	}
	// Streams work over plaintext too.
	var out bytes.Buffer
	hello := append([]byte{StreamVersion}, bytes.Repeat([]byte{1}, 16)...)
	s, err := Handshake(rw(bytes.NewReader(hello), &out), false, p, label, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WriteRecord([]byte("plain"), true); err != nil {
		t.Fatal(err)
	}
}

// TestReplayGuardClockStepsBack: a datagram forgotten because it left the
// window must stay refused when our clock steps back.
func TestReplayGuardClockStepsBack(t *testing.T) {
	g := NewReplayGuard(5*time.Minute, 100)
	t0 := time.Unix(1_800_000_000, 0)
	nonce := bytes.Repeat([]byte{1}, 24)
	if err := g.Check(t0, t0, nonce); err != nil {
		t.Fatal(err)
	}
	later := t0.Add(5*time.Minute + time.Second)
	if err := g.Check(later, later, bytes.Repeat([]byte{2}, 24)); err != nil {
		t.Fatal(err)
	}
	if g.Len() != 1 {
		t.Fatalf("Len = %d: the first datagram was not forgotten", g.Len())
	}
	stepped := later.Add(-2 * time.Minute) // NTP steps our clock back
	if err := g.Check(stepped, t0, nonce); !errors.Is(err, ErrTooOld) {
		t.Fatalf("replay after the clock stepped back: err = %v, want ErrTooOld", err)
	}
}

// TestReplayGuardFarFuture: timestamps at the ends of the int64 range are
// refused, not accepted through an overflow.
func TestReplayGuardFarFuture(t *testing.T) {
	g := NewReplayGuard(5*time.Minute, 100)
	now := time.Unix(1_800_000_000, 0)
	for _, ms := range []int64{1<<63 - 1, -1 << 63, 1 << 62} {
		err := g.Check(now, time.UnixMilli(ms), bytes.Repeat([]byte{byte(ms)}, 24))
		if err == nil {
			t.Fatalf("timestamp %d ms accepted", ms)
		}
	}
	if g.Len() != 0 {
		t.Fatalf("far timestamps entered the cache: Len = %d", g.Len())
	}
}

// TestRefuseSaysBusy: a responder that refuses in place of its hello, or
// after it in place of a record, makes the initiator fail with ErrBusy, not
// with a bare end of stream.
func TestRefuseSaysBusy(t *testing.T) {
	r := testRing(t)
	var refusal bytes.Buffer
	if err := Refuse(&refusal); err != nil {
		t.Fatal(err)
	}
	if _, err := Handshake(rw(bytes.NewReader(refusal.Bytes()), io.Discard), true, r, nil, 0); !errors.Is(err, ErrBusy) {
		t.Fatalf("Handshake against a refusal: %v, want ErrBusy", err)
	}
	// A hello, then a refusal where the first record's length would be.
	var in bytes.Buffer
	in.Write(append([]byte{StreamVersion}, make([]byte, streamNonceLen)...))
	in.Write(refusal.Bytes())
	s, err := Handshake(rw(&in, io.Discard), true, r, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ReadRecord(); !errors.Is(err, ErrBusy) {
		t.Fatalf("ReadRecord of a refusal: %v, want ErrBusy", err)
	}
	// ReadHello, then Accept, is the responder's side of Handshake.
	ci, cr := net.Pipe()
	defer ci.Close()
	defer cr.Close()
	done := make(chan error, 1)
	go func() {
		h, err := ReadHello(cr)
		if err == nil {
			_, err = h.Accept(cr, r, nil, 0)
		}
		done <- err
	}()
	if _, err := Handshake(ci, true, r, nil, 0); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestStreamRecordLayouts: a stream seals its records in the compact layout
// unless its Modal is held to the legacy wire, 9 bytes shorter each, and a
// reader opens both, whichever it sends itself.
func TestStreamRecordLayouts(t *testing.T) {
	r := testRing(t)
	size := map[bool]int{}
	for _, legacy := range []bool{false, true} {
		m, other := NewModal(r, ModeRequired), NewModal(r, ModeRequired)
		m.SetLegacy(legacy)
		other.SetLegacy(!legacy)
		ca, cb := net.Pipe()
		t.Cleanup(func() { ca.Close(); cb.Close() })
		c := &tee{Conn: ca}
		type res struct {
			s   *Stream
			err error
		}
		done := make(chan res, 1)
		go func() {
			s, err := Handshake(cb, false, other, label, 0)
			done <- res{s, err}
		}()
		a, err := Handshake(c, true, m, label, 0)
		if err != nil {
			t.Fatal(err)
		}
		rb := <-done
		if rb.err != nil {
			t.Fatal(rb.err)
		}
		c.mu.Lock()
		c.w.Reset()
		c.mu.Unlock()
		go func() { done <- res{err: a.WriteRecord([]byte("record"), true)} }()
		got, final, err := rb.s.ReadRecord()
		if err != nil || string(got) != "record" || !final {
			t.Fatalf("legacy=%v: read %q %v, %v", legacy, got, final, err)
		}
		if w := <-done; w.err != nil {
			t.Fatal(w.err)
		}
		c.mu.Lock()
		rec := bytes.Clone(c.w.Bytes())
		c.mu.Unlock()
		size[legacy] = len(rec)
		if want := map[bool]byte{false: 0x22, true: keyring.Version}[legacy]; rec[4] != want {
			t.Fatalf("legacy=%v: record starts with %#x, want %#x", legacy, rec[4], want)
		}
	}
	if size[true]-size[false] != 9 {
		t.Fatalf("records of %d (full) and %d (compact) bytes, want 9 apart", size[true], size[false])
	}
}

// tee is a connection that keeps a copy of what is written to it.
type tee struct {
	net.Conn
	mu sync.Mutex
	w  bytes.Buffer
}

func (c *tee) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.w.Write(p)
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// TestStreamResponderMirrorsLayout: the initiator's SetFull picks the
// layout of its records, and the responder answers in the layout it read.
func TestStreamResponderMirrorsLayout(t *testing.T) {
	for _, full := range []bool{false, true} {
		a, b, _, _ := pipePair(t, 0)
		a.SetFull(full)
		errc := make(chan error, 1)
		go func() { errc <- a.WriteRecord([]byte("ours"), true) }()
		if _, _, err := b.ReadRecord(); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if b.PeerCompact() == full {
			t.Fatalf("SetFull(%v): the responder read a record with PeerCompact %v", full, b.PeerCompact())
		}
		go func() { errc <- b.WriteRecord([]byte("theirs"), true) }()
		if _, _, err := a.ReadRecord(); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if a.PeerCompact() == full {
			t.Fatalf("SetFull(%v): the answer came with PeerCompact %v", full, a.PeerCompact())
		}
	}
}
