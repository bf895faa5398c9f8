// Package query keeps the books of queries (Serf's queries, done our way):
// the wire bodies of a query, its responses and acknowledgements, encoded
// with go-msgpack and bounded on decode; the querier's record of whom it
// expects to hear from and whom to ask again; and the responder's memory of
// the queries it has seen and what it answered. It does no I/O and reads no
// clock: the runtime passes the time in and sends what it is told to.
package query

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"time"

	msgpack "github.com/hashicorp/go-msgpack/v2/codec"
)

// Bounds on what a query carries.
const (
	MaxName    = 255 // query name, bytes
	MaxFilters = 256 // names in a name filter
	MaxRegexp  = 256 // payload filter, bytes
	MaxRelay   = 5   // relays per response
)

// ErrMalformed: a body did not decode, or broke a bound.
var ErrMalformed = errors.New("query: malformed body")

// Query is a query as it travels (broadcast, and sent again to members
// that have not answered).
type Query struct {
	ID       uint64
	Origin   string // the querier's member name
	Addr     string // where responses go, "ip:port"
	Name     string
	Payload  []byte
	Deadline int64    // unix milliseconds
	Names    []string // only these members answer, if not empty
	Match    string   // only members whose payload matches this regexp answer, if not empty
	Ack      bool     // acknowledge delivery before answering
	Relay    uint8    // also send each response through this many other members
}

// Response is a response or a delivery acknowledgement.
type Response struct {
	ID      uint64
	From    string
	Ack     bool // an acknowledgement: no payload
	Payload []byte
}

// Relayed is a response to forward to To.
type Relayed struct {
	To       string
	Response []byte // the encoded response datagram payload, as the querier gets it
}

var handle = &msgpack.MsgpackHandle{}

// decodeHandle bounds what a decoder allocates up front: no allocation in
// proportion to lengths the input claims.
var decodeHandle = func() *msgpack.MsgpackHandle {
	h := &msgpack.MsgpackHandle{}
	h.MaxInitLen = 1024
	return h
}()

// Encode appends v's msgpack encoding to dst.
func Encode(dst []byte, v any) ([]byte, error) {
	var b []byte // the encoder writes from the start of its buffer
	if err := msgpack.NewEncoderBytes(&b, handle).Encode(v); err != nil {
		return dst, fmt.Errorf("query: encode: %w", err)
	}
	return append(dst, b...), nil
}

// DecodeQuery decodes and checks a query body; maxPayload bounds its
// payload.
func DecodeQuery(b []byte, maxPayload int) (*Query, error) {
	var q Query
	if err := decode(b, &q); err != nil {
		return nil, err
	}
	switch {
	case q.Origin == "" || len(q.Origin) > MaxName || len(q.Name) > MaxName:
		return nil, fmt.Errorf("%w: origin or name", ErrMalformed)
	case len(q.Payload) > maxPayload:
		return nil, fmt.Errorf("%w: payload of %d bytes, at most %d", ErrMalformed, len(q.Payload), maxPayload)
	case len(q.Names) > MaxFilters || len(q.Match) > MaxRegexp || q.Relay > MaxRelay:
		return nil, fmt.Errorf("%w: filters", ErrMalformed)
	}
	if _, err := netip.ParseAddrPort(q.Addr); err != nil {
		return nil, fmt.Errorf("%w: address %q", ErrMalformed, q.Addr)
	}
	return &q, nil
}

// DecodeResponse decodes and checks a response body.
func DecodeResponse(b []byte, maxPayload int) (*Response, error) {
	var r Response
	if err := decode(b, &r); err != nil {
		return nil, err
	}
	if r.From == "" || len(r.From) > MaxName || len(r.Payload) > maxPayload {
		return nil, fmt.Errorf("%w: response", ErrMalformed)
	}
	return &r, nil
}

// DecodeRelayed decodes and checks a relay request.
func DecodeRelayed(b []byte, maxLen int) (*Relayed, error) {
	var r Relayed
	if err := decode(b, &r); err != nil {
		return nil, err
	}
	if len(r.Response) > maxLen {
		return nil, fmt.Errorf("%w: relayed response", ErrMalformed)
	}
	if _, err := netip.ParseAddrPort(r.To); err != nil {
		return nil, fmt.Errorf("%w: relay address %q", ErrMalformed, r.To)
	}
	return &r, nil
}

// Decode decodes a msgpack body into v (a pointer), without panicking and
// without allocating in proportion to lengths the input claims.
func Decode(b []byte, v any) error { return decode(b, v) }

func decode(b []byte, v any) (err error) {
	defer func() {
		if p := recover(); p != nil { // the library must not take the node down
			err = fmt.Errorf("%w: %v", ErrMalformed, p)
		}
	}()
	if err := msgpack.NewDecoderBytes(b, decodeHandle).Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return nil
}

// Matches reports whether a member named name with payload is one the query
// asks. A payload filter that does not compile matches nothing.
func (q *Query) Matches(name string, payload []byte) bool {
	if len(q.Names) > 0 && !slices.Contains(q.Names, name) {
		return false
	}
	if q.Match != "" {
		re, err := regexp.Compile(q.Match)
		if err != nil || !re.Match(payload) {
			return false
		}
	}
	return true
}

// Pending is the querier's record of one query.
type Pending struct {
	Query    *Query
	expected map[string]netip.AddrPort // whom we expect an answer from
	acked    map[string]bool
	answered map[string]bool
	nextTry  time.Time
	tries    int
	every    time.Duration
}

// NewPending records a query sent at now to the expected members (name →
// address), to be asked again every `every` until they answer, at most
// maxTries times.
func NewPending(q *Query, expected map[string]netip.AddrPort, now time.Time, every time.Duration) *Pending {
	return &Pending{
		Query: q, expected: expected,
		acked: map[string]bool{}, answered: map[string]bool{},
		nextTry: now.Add(every), every: every,
	}
}

// MaxTries bounds how often a querier asks a member again.
const MaxTries = 6

// Expected is how many members the querier expects to hear from.
func (p *Pending) Expected() int { return len(p.expected) }

// Answered records a response from name and reports whether it is the
// first from it (duplicates, through relays or retries, are not).
func (p *Pending) Answered(name string) bool {
	if p.answered[name] {
		return false
	}
	p.answered[name] = true
	return true
}

// Acked records an acknowledgement from name and reports whether it is the
// first.
func (p *Pending) Acked(name string) bool {
	if p.acked[name] {
		return false
	}
	p.acked[name] = true
	return true
}

// Complete reports whether every expected member answered (and, for a
// query that asked for acknowledgements, acknowledged).
func (p *Pending) Complete() bool {
	for name := range p.expected {
		if !p.answered[name] || (p.Query.Ack && !p.acked[name]) {
			return false
		}
	}
	return true
}

// Missing lists the expected members that have not answered, sorted.
func (p *Pending) Missing() []string {
	var out []string
	for name := range p.expected {
		if !p.answered[name] {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// Retry returns the members to ask again at now, with their addresses, if
// it is time, and schedules the next round; nil otherwise. A member that
// acknowledged but has not answered is not asked again: its application is
// still thinking, or will not answer.
func (p *Pending) Retry(now time.Time) map[string]netip.AddrPort {
	if now.Before(p.nextTry) || p.tries >= MaxTries {
		return nil
	}
	p.tries++
	p.nextTry = now.Add(p.every)
	out := map[string]netip.AddrPort{}
	for name, addr := range p.expected {
		if !p.answered[name] && !p.acked[name] {
			out[name] = addr
		}
	}
	return out
}

// NextTry is when Retry next has something to do, or the zero time.
func (p *Pending) NextTry() time.Time {
	if p.tries >= MaxTries {
		return time.Time{}
	}
	return p.nextTry
}

// Seen is the responder's memory of recent queries: which it delivered, and
// what it answered, until their deadlines pass. It holds at most max
// queries; beyond, it forgets those closest to their deadline first.
type Seen struct {
	max     int
	entries map[seenKey]*seenEntry
}

type seenKey struct {
	origin string
	id     uint64
}

type seenEntry struct {
	deadline time.Time
	response []byte // the encoded response datagram payload, once answered
}

// NewSeen returns a Seen that remembers at most max queries.
func NewSeen(max int) *Seen {
	return &Seen{max: max, entries: map[seenKey]*seenEntry{}}
}

// First records query (origin, id) with its deadline and reports whether it
// is new. A query already past its deadline is not new.
func (s *Seen) First(origin string, id uint64, deadline, now time.Time) bool {
	k := seenKey{origin, id}
	if _, ok := s.entries[k]; ok || !now.Before(deadline) {
		return false
	}
	s.expire(now)
	if len(s.entries) >= s.max {
		var victim seenKey
		var first time.Time
		for k, e := range s.entries {
			if first.IsZero() || e.deadline.Before(first) {
				victim, first = k, e.deadline
			}
		}
		delete(s.entries, victim)
	}
	s.entries[k] = &seenEntry{deadline: deadline}
	return true
}

// Answer remembers the response sent for (origin, id), so that a querier
// that asks again gets it again. It reports false if the query is unknown
// or already answered.
func (s *Seen) Answer(origin string, id uint64, response []byte) bool {
	e, ok := s.entries[seenKey{origin, id}]
	if !ok || e.response != nil {
		return false
	}
	e.response = response
	return true
}

// Response returns what we answered to (origin, id), if anything.
func (s *Seen) Response(origin string, id uint64) []byte {
	if e, ok := s.entries[seenKey{origin, id}]; ok {
		return e.response
	}
	return nil
}

// Len is how many queries are remembered.
func (s *Seen) Len() int { return len(s.entries) }

func (s *Seen) expire(now time.Time) {
	for k, e := range s.entries {
		if !now.Before(e.deadline) {
			delete(s.entries, k)
		}
	}
}
