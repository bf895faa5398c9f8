package membership

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/meshward/membership/internal/envelope"
	"github.com/meshward/membership/keyring"
	"github.com/meshward/membership/metrics"
	"github.com/meshward/membership/swim"
	"github.com/meshward/membership/transport"
)

// Option configures New. Each option's comment gives its default and the
// reason for it.
type Option func(*config) error

// Profile is a preset of protocol timings for a kind of network.
type Profile uint8

// The profiles.
const (
	// ProfileLAN is the default: a 1 s protocol period and a 500 ms ack
	// timeout (adaptive between 200 and 800 ms), memberlist's LAN values,
	// and a suspicion timeout with α = 2 (memberlist's is 4). A crash is
	// noticed in about 1.6 s and declared after the suspicion timeout,
	// 2–12 s depending on cluster size and confirmations: at n = 16 every
	// member holds it dead about 4.7 s after the crash.
	ProfileLAN Profile = iota
	// ProfileWAN is for members across data centres: a 5 s period, a 3 s
	// ack timeout (α = 4), and longer anti-entropy intervals.
	ProfileWAN
	// ProfileLocal is for a single host (loopback, tests, demos): a 200 ms
	// period and a 100 ms ack timeout, so that everything happens five
	// times faster than on a LAN, with α = 5 so that a stall of a period,
	// common on a loaded host, is rarely taken for a death.
	ProfileLocal
)

// String returns "lan", "wan" or "local".
func (p Profile) String() string {
	switch p {
	case ProfileLAN:
		return "lan"
	case ProfileWAN:
		return "wan"
	case ProfileLocal:
		return "local"
	}
	return fmt.Sprintf("profile(%d)", uint8(p))
}

// protocol returns the swim configuration of the profile (swim's
// LANConfig, WANConfig and LocalConfig, so that the simulator runs exactly
// what a node runs).
func (p Profile) protocol() swim.Config {
	switch p {
	case ProfileWAN:
		return swim.WANConfig()
	case ProfileLocal:
		return swim.LocalConfig()
	default:
		return swim.LANConfig()
	}
}

type config struct {
	name          string
	bind          string
	advertise     string
	ring          *keyring.Keyring
	plaintext     bool
	label         string
	payload       []byte
	metrics       *metrics.Metrics
	sink          metrics.MetricSink
	logger        *slog.Logger
	transport     transport.Transport
	profile       Profile
	tweaks        []func(*swim.Config)
	maxDatagram   int
	replayWindow  time.Duration
	replayCache   int
	eventBuffer   int
	streamTimeout time.Duration
	maxStream     int64
	maxInbound    int
	state         AppState
	maxState      int
	messageBuffer int
	maxPending    int
	evictAge      time.Duration
	maxOutbound   int
	allow         *swim.Allow   // WithAllowList (allowlist.go)
	allowList     AllowList     // as given, for Node.AllowList
	discover      bool          // WithDiscovery (discovery.go)
	discoverEvery time.Duration // 0: at start only
	legacyWire    bool          // WithLegacyWire (legacywire.go)

	clockSkew func() time.Duration // tests: see withClockSkew
	lookup    lookupFunc           // tests: see withLookup

	keys keysConfig // WithKeyringFile, WithEncryptionMode (keyfile.go, encryption.go)
}

// Defaults that are not in swim.Config.
const (
	// DefaultPort is the port bound when the bind address names none.
	DefaultPort = transport.DefaultPort
	// DefaultMaxDatagramSize is the largest UDP payload sent: 1400 bytes
	// stays under a 1500-byte Ethernet MTU with IPv6 and tunnel headers to
	// spare (memberlist's value).
	DefaultMaxDatagramSize = 1400
	// DefaultReplayWindow is how far a datagram's timestamp may be from our
	// clock: 5 minutes, Kerberos' clock-skew tolerance.
	DefaultReplayWindow = 5 * time.Minute
	// DefaultEventBuffer is the capacity of the Events channel.
	DefaultEventBuffer = 1024
	// DefaultMaxInboundStreams is how many authenticated inbound streams
	// (push-pull exchanges with peers that proved they hold a key) are
	// served at once.
	DefaultMaxInboundStreams = 32
	// DefaultMaxPendingStreams is how many inbound connections may wait to
	// authenticate at once: each costs a file descriptor and a small
	// goroutine. Beyond it a newcomer evicts the oldest silent one (see
	// SECURITY.md, "occupy stream slots").
	DefaultMaxPendingStreams = 256
)

func defaultConfig() config {
	return config{
		bind:          fmt.Sprintf("0.0.0.0:%d", DefaultPort),
		maxDatagram:   DefaultMaxDatagramSize,
		replayWindow:  DefaultReplayWindow,
		eventBuffer:   DefaultEventBuffer,
		streamTimeout: 10 * time.Second,
		maxStream:     64 << 20,
		maxInbound:    DefaultMaxInboundStreams,
		maxPending:    DefaultMaxPendingStreams,
		evictAge:      defaultEvictAge,
		maxOutbound:   4,
		maxState:      DefaultMaxState,
		messageBuffer: DefaultMessageBuffer,
	}
}

// WithName sets the member's name, unique in the cluster, at most 255
// bytes. Default: the host name, which is unique in most deployments.
func WithName(name string) Option {
	return func(c *config) error {
		if name == "" || len(name) > swim.MaxNameLen {
			return fmt.Errorf("WithName: name must be 1 to %d bytes, got %d", swim.MaxNameLen, len(name))
		}
		c.name = name
		return nil
	}
}

// WithBindAddr sets the address UDP and TCP bind: "ip:port", "ip" (port
// 7946), "[::]:7946", or a go-sockaddr template such as
// "{{ GetPrivateIP }}:7946". Port 0 picks a free port. Default
// "0.0.0.0:7946": every IPv4 interface on memberlist's port.
func WithBindAddr(addr string) Option {
	return func(c *config) error { c.bind = addr; return nil }
}

// WithAdvertiseAddr sets the address other members reach us at, in the same
// forms as WithBindAddr; without a port, the bound port is used. Default:
// the bound address, or when bound to 0.0.0.0 or ::, the first private
// address of an interface that is up (the error lists what was considered
// when there is none).
func WithAdvertiseAddr(addr string) Option {
	return func(c *config) error { c.advertise = addr; return nil }
}

// WithKeyring encrypts and authenticates every datagram and stream with
// ring, which may be rotated while the node runs (see SECURITY.md). There
// is no default: New fails without either WithKeyring or
// WithoutEncryption, so that a plaintext cluster is never an accident.
func WithKeyring(ring *keyring.Keyring) Option {
	return func(c *config) error {
		if ring == nil {
			return errors.New("WithKeyring: nil keyring")
		}
		c.ring = ring
		return nil
	}
}

// WithoutEncryption opts out of encryption: datagrams and streams travel in
// plaintext and anyone who can reach the port can join, read and forge
// membership. Only for networks where that is acceptable. A node with a
// keyring accepts plaintext only in the transitional modes of a move to
// encryption (WithEncryptionMode), and such a move needs every node to hold
// a keyring: a node that may move later can start with WithKeyring and
// WithEncryptionMode(EncryptionOff) instead, which is plaintext on the wire.
func WithoutEncryption() Option {
	return func(c *config) error { c.plaintext = true; return nil }
}

// WithLabel sets the cluster label, mixed into every datagram's
// authentication but never sent: nodes with another label cannot read or
// inject, even with the same key. At most 213 bytes, no control characters.
// Default: empty.
func WithLabel(label string) Option {
	return func(c *config) error {
		if err := envelope.CheckLabel([]byte(label)); err != nil {
			return fmt.Errorf("WithLabel: %w", err)
		}
		c.label = label
		return nil
	}
}

// WithPayload sets the member's initial payload (role, shard, version...),
// at most the payload cap (512 bytes by default). Default: empty.
func WithPayload(p []byte) Option {
	return func(c *config) error { c.payload = append([]byte(nil), p...); return nil }
}

// WithMetrics sends the node's metrics (docs/metrics.md) to m, which is an
// armon/go-metrics MetricSink (for example from metrics.NewDogStatsd, or
// go-metrics' Prometheus sink) or a *metrics.Metrics. Default: none. The
// node never uses go-metrics' global sink. Shut the sink down only after
// every node that uses it: go-metrics' statsd sink panics when written to
// after its Shutdown.
func WithMetrics(m any) Option {
	return func(c *config) error {
		switch v := m.(type) {
		case *metrics.Metrics:
			c.metrics = v
		case metrics.MetricSink:
			c.sink = v
		default:
			return fmt.Errorf("WithMetrics: %T is neither a go-metrics MetricSink nor a *metrics.Metrics", m)
		}
		return nil
	}
}

// WithLogger sets the logger. Lines that a remote peer can trigger are
// rate-limited. Default: slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error { c.logger = l; return nil }
}

// WithTransport replaces the UDP/TCP transport, for example with an
// in-memory one in tests. WithBindAddr and WithAdvertiseAddr are then
// ignored: the transport's LocalAddr is advertised. The node closes the
// transport on Shutdown.
func WithTransport(t transport.Transport) Option {
	return func(c *config) error { c.transport = t; return nil }
}

// WithProfile chooses the protocol timings; options that set a single knob
// apply on top of it, in any order. Default ProfileLAN.
func WithProfile(p Profile) Option {
	return func(c *config) error {
		if p > ProfileLocal {
			return fmt.Errorf("WithProfile: unknown profile %d", p)
		}
		c.profile = p
		if p == ProfileWAN {
			c.streamTimeout = 30 * time.Second
		}
		return nil
	}
}

func tweak(f func(*swim.Config)) Option {
	return func(c *config) error { c.tweaks = append(c.tweaks, f); return nil }
}

// WithProbeInterval sets the protocol period: one member is probed per
// period. Default from the profile (1 s on a LAN).
func WithProbeInterval(d time.Duration) Option {
	return tweak(func(s *swim.Config) { s.ProbeInterval = d })
}

// WithIndirectChecks sets k, how many members probe a target on our behalf
// when it does not answer us directly. Default 3.
func WithIndirectChecks(k int) Option {
	return tweak(func(s *swim.Config) { s.IndirectChecks = k })
}

// WithRetransmitMult sets λ: every update is piggybacked λ·⌈log2(n+1)⌉
// times. Default 3.
func WithRetransmitMult(lambda int) Option {
	return tweak(func(s *swim.Config) { s.RetransmitMult = lambda })
}

// WithSuspicionMult sets α and β of the suspicion timeout: it starts at
// β·α·log10(n)·period and shrinks towards α·log10(n)·period as other
// members confirm. Default 2 and 6 with ProfileLAN, 4 and 6 with
// ProfileWAN, 5 and 6 with ProfileLocal (docs/performance.md, "The
// frontier", measures the choice).
func WithSuspicionMult(alpha, beta float64) Option {
	return tweak(func(s *swim.Config) { s.SuspicionMult, s.SuspicionMaxMult = alpha, beta })
}

// WithAckTimeout fixes the ack timeout instead of adapting it to measured
// round trips. Default: adaptive.
func WithAckTimeout(d time.Duration) Option {
	return tweak(func(s *swim.Config) { s.AckTimeout, s.AdaptiveAckTimeout = d, false })
}

// WithAdaptiveAckTimeout adapts the ack timeout to the 99th percentile of
// recent round trips plus 10 %, clamped to [lo, hi]. Default on, with the
// profile's bounds (200–800 ms on a LAN).
func WithAdaptiveAckTimeout(lo, hi time.Duration) Option {
	return tweak(func(s *swim.Config) { s.AdaptiveAckTimeout, s.AckTimeoutMin, s.AckTimeoutMax = true, lo, hi })
}

// WithMaxDatagramSize sets the largest UDP payload the node sends, sealed:
// raise it for jumbo frames, lower it for tunnels. Default 1400, at most
// 65507. The least is what the largest probe message and the largest update
// behind it (a 255-byte name, an IPv6 address, a payload at the
// WithMaxPayload cap) take once sealed: 1134 bytes with the defaults
// (XChaCha20-Poly1305, 512-byte payload cap), 1122 with AES-GCM, and 620
// (608 with AES-GCM) with no payload at all. New refuses less with an error
// that names the least for the chosen suite and payload cap.
func WithMaxDatagramSize(n int) Option {
	return func(c *config) error {
		if n < 1 || n > transport.MaxDatagram {
			return fmt.Errorf("WithMaxDatagramSize: %d not in [1, %d]; New also needs room for a probe and an update (1134 bytes with the defaults)", n, transport.MaxDatagram)
		}
		c.maxDatagram = n
		return nil
	}
}

// WithMaxPayload sets the payload cap, which must be the same on every
// member. Default 512 bytes. Every update must fit one datagram: the cap
// can be at most what an alive message with the longest name (255 bytes),
// an IPv6 address and the highest incarnation leaves of a datagram behind
// the largest ack, which is 778 bytes with the default 1400-byte datagrams
// and XChaCha20-Poly1305 (790 with AES-GCM; swim.MaxPayloadFor computes
// it). New refuses a larger cap with an error that names the largest one
// that fits: raise WithMaxDatagramSize (jumbo frames) for more.
func WithMaxPayload(n int) Option {
	return tweak(func(s *swim.Config) { s.MaxPayload = n })
}

// WithReplayWindow sets how far a datagram's timestamp may be from our clock
// before it is dropped as a replay (and duplicates within it are dropped).
// Clocks must agree within it: run NTP. Default 5 minutes.
func WithReplayWindow(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("WithReplayWindow: %v must be positive", d)
		}
		c.replayWindow = d
		return nil
	}
}

// MaxReplayCache is the largest replay cache WithReplayCache accepts: about
// 140 MB when full.
const MaxReplayCache = 1 << 22

// WithReplayCache sets how many recent datagrams the replay guard remembers
// at least. When a flood fills it, the guard forgets the oldest and refuses
// anything that old from then on (dropped as window_shrunk), so a replay is
// never accepted but the effective window shrinks. Default: 400 datagrams a
// second over the replay window plus a second (120,400 at 5 minutes, about
// 4 MB when full, allocated only as traffic fills it).
func WithReplayCache(n int) Option {
	return func(c *config) error {
		if n < 0 || n > MaxReplayCache {
			return fmt.Errorf("WithReplayCache: %d not in [0, %d]", n, MaxReplayCache)
		}
		c.replayCache = n
		return nil
	}
}

// WithEventBuffer sets the capacity of the Events channel. When it is full,
// events are dropped and counted (the protocol never waits); Members is
// always the truth. Zero turns the Events channel off, for a program that
// uses only Subscribe. Default 1024.
func WithEventBuffer(n int) Option {
	return func(c *config) error {
		if n < 0 {
			return fmt.Errorf("WithEventBuffer: %d: negative (0 turns the Events channel off)", n)
		}
		c.eventBuffer = n
		return nil
	}
}

// WithInboundStreamLimits sets how many authenticated inbound streams are
// served at once and how many unauthenticated connections may wait to
// prove they hold a key. Both must be at least 1. Defaults
// DefaultMaxInboundStreams (32) and DefaultMaxPendingStreams (256).
func WithInboundStreamLimits(authenticated, pending int) Option {
	return func(c *config) error {
		if authenticated < 1 || pending < 1 {
			return fmt.Errorf("WithInboundStreamLimits: %d authenticated, %d pending: both must be at least 1", authenticated, pending)
		}
		c.maxInbound, c.maxPending = authenticated, pending
		return nil
	}
}

// WithProtocol edits the protocol configuration directly, after the profile
// and the other options: every knob of swim.Config is there, documented.
func WithProtocol(f func(*swim.Config)) Option { return tweak(f) }
