package metrics

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// DogStatsD sink limits. The sink never holds more than
// (DogStatsdQueue+1)*DogStatsdMaxPacket bytes of unsent metrics (about
// 91 KiB): the datagram being filled and DogStatsdQueue waiting.
const (
	// DogStatsdMaxPacket is the largest datagram the sink sends: what fits
	// an Ethernet frame without fragmentation, Datadog's default.
	DogStatsdMaxPacket = 1432
	// DogStatsdQueue is how many datagrams may wait to be sent; lines that
	// find every one full are dropped and counted.
	DogStatsdQueue = 64
	// DogStatsdFlush is how often a partly filled datagram is sent.
	DogStatsdFlush = 100 * time.Millisecond
)

// redialEvery bounds how often the sink retries resolving and dialing its
// address after a failure.
const redialEvery = time.Second

// DogStatsd is a go-metrics sink that sends metrics to a statsd server over
// UDP in the DogStatsD format, labels as tags:
//
//	membership.probes:1|c|#result:ack,node:api-7
//	membership.members:4|g|#state:alive,node:api-7
//	membership.probes.rtt:0.42|ms|#path:direct,node:api-7
//
// The metric name stays the name, so a server can aggregate over any label.
// prometheus/statsd_exporter (turning them into Prometheus labels), the
// Datadog agent and Telegraf's statsd input (with datadog_extensions =
// true) read this format; a server that does not is better served by
// NewStatsd. Samples are sent as timers ("|ms"), as go-metrics' own statsd
// sink does; statsd_exporter converts them to seconds.
//
// Writing a metric never blocks and, once a label set has been seen by
// Metrics, does not allocate: the line is formatted into a datagram buffer
// under a short lock, and one goroutine sends full datagrams, and partly
// filled ones every DogStatsdFlush. At most DogStatsdQueue datagrams wait;
// a line that finds no room, a datagram the socket refuses (no server
// listening, an unresolvable name) and anything written after Shutdown are
// dropped and counted (Dropped). The address is resolved and dialed by the
// sending goroutine, again at most once a second after a failure, so a
// server that starts later, or a name that resolves later, is picked up.
//
// Characters that would break a line are replaced by '_': in names and tag
// keys anything but ASCII letters, digits, '.', '_' and '-'; in tag values
// '|', ',', '#', control characters and invalid UTF-8. A label with an
// empty value is left out, as Prometheus treats it.
type DogStatsd struct {
	addr  string
	flush time.Duration
	dial  func() (io.Writer, error) // the sending goroutine's only way out

	mu     sync.Mutex
	cur    []byte // the datagram being filled; nil when no buffer was free
	closed bool

	// The sink owns DogStatsdQueue+1 buffers: the current one and
	// DogStatsdQueue more. Each channel can hold them all, so moving a
	// buffer into one never blocks.
	free chan []byte // empty buffers
	full chan []byte // datagrams to send, oldest first

	dropped atomic.Uint64
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// NewDogStatsd returns a sink sending to addr ("host:port", UDP) in the
// DogStatsD format. It fails only for an address that is not host:port;
// call Shutdown to send what is buffered and stop, after every node that
// writes to it has shut down.
func NewDogStatsd(addr string) (*DogStatsd, error) {
	if err := checkHostPort(addr); err != nil {
		return nil, err
	}
	return newDogStatsd(addr, DogStatsdFlush, func() (io.Writer, error) {
		return net.Dial("udp", addr)
	}), nil
}

// checkHostPort reports whether addr is a non-empty host and port.
func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("statsd address %q: %w", addr, err)
	}
	if host == "" || port == "" {
		return fmt.Errorf("statsd address %q: want host:port", addr)
	}
	return nil
}

func newDogStatsd(addr string, flush time.Duration, dial func() (io.Writer, error)) *DogStatsd {
	s := &DogStatsd{
		addr:  addr,
		flush: flush,
		dial:  dial,
		free:  make(chan []byte, DogStatsdQueue+1),
		full:  make(chan []byte, DogStatsdQueue+1),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	s.cur = make([]byte, 0, DogStatsdMaxPacket)
	for range DogStatsdQueue {
		s.free <- make([]byte, 0, DogStatsdMaxPacket)
	}
	go s.run()
	return s
}

// Dropped returns how many metric lines were dropped: no buffer free, the
// socket refused the datagram, a line longer than a datagram, a value that
// is not finite, or a write after Shutdown.
func (s *DogStatsd) Dropped() uint64 { return s.dropped.Load() }

// SetGauge sets a gauge.
func (s *DogStatsd) SetGauge(key []string, val float32) { s.SetGaugeWithLabels(key, val, nil) }

// SetGaugeWithLabels sets a gauge with labels. A negative value is sent as
// a reset to 0 followed by the value, in one datagram: statsd reads a
// leading '-' as a decrement.
func (s *DogStatsd) SetGaugeWithLabels(key []string, val float32, labels []Label) {
	s.write(key, val, "g", labels)
}

// EmitKey sends a key/value pair, as a gauge: DogStatsD has no key/value
// type.
func (s *DogStatsd) EmitKey(key []string, val float32) { s.write(key, val, "g", nil) }

// IncrCounter adds to a counter.
func (s *DogStatsd) IncrCounter(key []string, val float32) { s.IncrCounterWithLabels(key, val, nil) }

// IncrCounterWithLabels adds to a counter with labels.
func (s *DogStatsd) IncrCounterWithLabels(key []string, val float32, labels []Label) {
	s.write(key, val, "c", labels)
}

// AddSample adds a sample, sent as a timer in milliseconds.
func (s *DogStatsd) AddSample(key []string, val float32) { s.AddSampleWithLabels(key, val, nil) }

// AddSampleWithLabels adds a sample with labels, sent as a timer.
func (s *DogStatsd) AddSampleWithLabels(key []string, val float32, labels []Label) {
	s.write(key, val, "ms", labels)
}

// Shutdown sends what is buffered, closes the socket and stops the sending
// goroutine, waiting for it. Later writes are dropped and counted. It is
// safe to call more than once.
func (s *DogStatsd) Shutdown() {
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		if len(s.cur) > 0 {
			s.full <- s.cur // never blocks: full holds every buffer there is
		}
		s.cur = nil
		s.mu.Unlock()
		close(s.stop)
	})
	<-s.done
}

// write formats one metric into the current datagram.
func (s *DogStatsd) write(key []string, val float32, typ string, labels []Label) {
	v := float64(val)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		s.dropped.Add(1)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		s.dropped.Add(1)
		return
	}
	if s.cur == nil && !s.fresh() {
		s.dropped.Add(1)
		return
	}
	start := len(s.cur)
	b := s.cur
	if typ == "g" && v < 0 {
		b = appendLine(b, key, 0, typ, labels)
	}
	b = appendLine(b, key, v, typ, labels)
	if len(b) <= DogStatsdMaxPacket {
		s.cur = b
		return
	}
	// The line does not fit: it starts the next datagram.
	line := b[start:]
	if start == 0 || len(line) > DogStatsdMaxPacket {
		s.cur = b[:start] // no datagram can carry it
		s.dropped.Add(1)
		return
	}
	prev := b[:start]
	var next []byte
	select {
	case next = <-s.free:
	default:
		s.cur = prev // nowhere to put it: keep the full datagram, drop the line
		s.dropped.Add(1)
		return
	}
	next = append(next[:0], line...)
	s.full <- prev // never blocks: full holds every buffer there is
	s.cur = next
}

// fresh takes a free buffer as the current datagram, if there is one.
func (s *DogStatsd) fresh() bool {
	select {
	case b := <-s.free:
		s.cur = b[:0]
		return true
	default:
		return false
	}
}

// appendLine appends "name:value|type|#k:v,k:v\n".
func appendLine(b []byte, key []string, v float64, typ string, labels []Label) []byte {
	for i, part := range key {
		if i > 0 {
			b = append(b, '.')
		}
		b = appendName(b, part)
	}
	b = append(b, ':')
	b = strconv.AppendFloat(b, v, 'f', -1, 32)
	b = append(b, '|')
	b = append(b, typ...)
	first := true
	for _, l := range labels {
		if l.Value == "" {
			continue
		}
		if first {
			b = append(b, "|#"...)
			first = false
		} else {
			b = append(b, ',')
		}
		b = appendName(b, l.Name)
		b = append(b, ':')
		b = appendTagValue(b, l.Value)
	}
	return append(b, '\n')
}

// appendName appends s with every byte but [A-Za-z0-9._-] replaced by '_'.
func appendName(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
			b = append(b, c)
		default:
			b = append(b, '_')
		}
	}
	return b
}

// appendTagValue appends s with the characters that would end a tag, a
// tag section or a line, and invalid UTF-8, replaced by '_'.
func appendTagValue(b []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f || c == '|' || c == ',' || c == '#' {
				c = '_'
			}
			b = append(b, c)
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, '_')
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return b
}

// run sends full datagrams as they come and the current one every flush
// interval, until Shutdown.
func (s *DogStatsd) run() {
	defer close(s.done)
	tick := time.NewTicker(s.flush)
	defer tick.Stop()
	var (
		w        io.Writer
		lastDial time.Time
	)
	send := func(b []byte) {
		if w == nil && (lastDial.IsZero() || time.Since(lastDial) >= redialEvery) {
			lastDial = time.Now()
			w, _ = s.dial() // a failure drops and counts below; retried later
		}
		if w == nil {
			s.dropped.Add(uint64(bytes.Count(b, []byte{'\n'})))
		} else if _, err := w.Write(b); err != nil {
			// UDP: the server is not listening (yet), or the network is
			// down. The socket stays; the next datagram may get through.
			s.dropped.Add(uint64(bytes.Count(b, []byte{'\n'})))
		}
		s.free <- b[:0] // never blocks: free holds every buffer there is
	}
	for {
		select {
		case b := <-s.full:
			send(b)
		case <-tick.C:
			s.mu.Lock()
			var b []byte
			if len(s.cur) > 0 {
				b = s.cur
				s.cur = nil
				s.fresh()
			}
			s.mu.Unlock()
			if b != nil {
				send(b)
			}
		case <-s.stop:
			for {
				select {
				case b := <-s.full:
					send(b)
				default:
					if c, ok := w.(io.Closer); ok {
						c.Close()
					}
					return
				}
			}
		}
	}
}
