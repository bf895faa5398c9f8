package query

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

func sample() *Query {
	return &Query{ID: 7, Origin: "a", Addr: "10.0.0.1:7946", Name: "load", Payload: []byte("?"),
		Deadline: 1000, Names: []string{"a", "b"}, Match: "^role=db", Ack: true, Relay: 2}
}

func TestRoundTrip(t *testing.T) {
	b, err := Encode([]byte{0x02}, sample())
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != 0x02 {
		t.Fatalf("Encode lost the prefix: %x", b[:4])
	}
	q, err := DecodeQuery(b[1:], 64)
	if err != nil {
		t.Fatal(err)
	}
	if q.ID != 7 || q.Origin != "a" || q.Match != "^role=db" || !q.Ack || q.Relay != 2 || !slices.Equal(q.Names, []string{"a", "b"}) {
		t.Fatalf("decoded %+v", q)
	}
	r, err := Encode(nil, &Response{ID: 7, From: "b", Payload: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := DecodeResponse(r, 64); err != nil || got.From != "b" || string(got.Payload) != "x" {
		t.Fatalf("response: %+v, %v", got, err)
	}
	rel, err := Encode(nil, &Relayed{To: "10.0.0.1:7946", Response: r})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := DecodeRelayed(rel, 1024); err != nil || got.To != "10.0.0.1:7946" {
		t.Fatalf("relayed: %+v, %v", got, err)
	}
}

func TestDecodeBounds(t *testing.T) {
	for name, q := range map[string]*Query{
		"no origin":    {Addr: "10.0.0.1:1"},
		"long name":    {Origin: "a", Addr: "10.0.0.1:1", Name: strings.Repeat("n", MaxName+1)},
		"big payload":  {Origin: "a", Addr: "10.0.0.1:1", Payload: make([]byte, 65)},
		"many names":   {Origin: "a", Addr: "10.0.0.1:1", Names: make([]string, MaxFilters+1)},
		"long regexp":  {Origin: "a", Addr: "10.0.0.1:1", Match: strings.Repeat(".", MaxRegexp+1)},
		"relay":        {Origin: "a", Addr: "10.0.0.1:1", Relay: MaxRelay + 1},
		"address":      {Origin: "a", Addr: "nowhere"},
		"zone address": {Origin: "a", Addr: "[fe80::1%eth0]"},
	} {
		b, err := Encode(nil, q)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeQuery(b, 64); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
	for _, junk := range [][]byte{nil, {0xc1}, {0xdf, 0xff, 0xff, 0xff, 0xff}, {0x81, 0xa2, 'I', 'D'}} {
		if _, err := DecodeQuery(junk, 64); !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodeQuery(%x): %v, want ErrMalformed", junk, err)
		}
	}
}

func TestMatches(t *testing.T) {
	q := &Query{Names: []string{"a"}, Match: "^role=db$"}
	if !q.Matches("a", []byte("role=db")) || q.Matches("b", []byte("role=db")) || q.Matches("a", []byte("role=web")) {
		t.Fatal("filters")
	}
	if (&Query{Match: "("}).Matches("a", nil) {
		t.Fatal("a filter that does not compile matched")
	}
	if !(&Query{}).Matches("anyone", nil) {
		t.Fatal("no filter must match everyone")
	}
}

func TestPendingRetries(t *testing.T) {
	now := time.Unix(0, 0)
	a, b := netip.MustParseAddrPort("10.0.0.1:1"), netip.MustParseAddrPort("10.0.0.2:1")
	p := NewPending(&Query{}, map[string]netip.AddrPort{"a": a, "b": b}, now, time.Second)
	if got := p.Retry(now.Add(500 * time.Millisecond)); got != nil {
		t.Fatalf("retry before its time: %v", got)
	}
	if !p.Answered("a") || p.Answered("a") {
		t.Fatal("Answered must report the first response only")
	}
	got := p.Retry(now.Add(time.Second))
	if len(got) != 1 || got["b"] != b {
		t.Fatalf("retry asks %v, want only b", got)
	}
	if p.Complete() || !slices.Equal(p.Missing(), []string{"b"}) {
		t.Fatalf("complete %v, missing %v", p.Complete(), p.Missing())
	}
	p.Acked("b")
	if got := p.Retry(now.Add(2 * time.Second)); len(got) != 0 {
		t.Fatalf("a member that acknowledged is asked again: %v", got)
	}
	for i := 3; i < 3+MaxTries; i++ {
		p.Retry(now.Add(time.Duration(i) * time.Second))
	}
	if got := p.Retry(now.Add(time.Hour)); got != nil || !p.NextTry().IsZero() {
		t.Fatalf("retries past MaxTries: %v", got)
	}
	p.Answered("b")
	if !p.Complete() {
		t.Fatal("not complete after every member answered")
	}
}

func TestSeen(t *testing.T) {
	now := time.Unix(100, 0)
	s := NewSeen(2)
	if !s.First("a", 1, now.Add(time.Second), now) || s.First("a", 1, now.Add(time.Second), now) {
		t.Fatal("First must report a query once")
	}
	if s.First("a", 2, now, now) {
		t.Fatal("a query past its deadline is new")
	}
	if !s.Answer("a", 1, []byte("r")) || s.Answer("a", 1, []byte("again")) || string(s.Response("a", 1)) != "r" {
		t.Fatal("Answer must keep the first response")
	}
	s.First("b", 1, now.Add(3*time.Second), now)
	s.First("c", 1, now.Add(2*time.Second), now)
	if s.Len() != 2 || s.Response("a", 1) != nil {
		t.Fatalf("bounded to 2, forgetting the nearest deadline first: %d entries", s.Len())
	}
	s.First("d", 1, now.Add(10*time.Second), now.Add(5*time.Second))
	if s.Len() != 1 {
		t.Fatalf("expired entries kept: %d", s.Len())
	}
}

// FuzzDecode: no decoder panics, and whatever DecodeQuery accepts respects
// its bounds.
func FuzzDecode(f *testing.F) {
	for _, v := range []any{sample(), &Response{ID: 1, From: "b", Payload: []byte("x")}, &Relayed{To: "10.0.0.1:1", Response: []byte{3, 4}}} {
		b, err := Encode(nil, v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		if q, err := DecodeQuery(b, 64); err == nil {
			if len(q.Payload) > 64 || len(q.Names) > MaxFilters || len(q.Match) > MaxRegexp || q.Origin == "" {
				t.Fatalf("accepted out of bounds: %+v", q)
			}
			q.Matches("x", []byte("y"))
		}
		if r, err := DecodeResponse(b, 64); err == nil && (len(r.Payload) > 64 || r.From == "") {
			t.Fatalf("accepted out of bounds: %+v", r)
		}
		DecodeRelayed(b, 64)
		var a struct{ Err string }
		Decode(b, &a)
	})
}
