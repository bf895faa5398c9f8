package swim_test

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/meshward/membership/codec"
	"github.com/meshward/membership/swim"
)

// wireConfig is the node runtime's configuration of the core: codec sizes,
// and the datagram budget of 1400-byte UDP payloads sealed with
// XChaCha20-Poly1305 (46 bytes) behind a timestamp (8).
func wireConfig() swim.Config {
	cfg := swim.DefaultConfig()
	cfg.Jitter = 0
	cfg.MaxDatagram = 1400 - 8 - 46
	cfg.CompoundOverhead = codec.HeaderSize
	cfg.MessageSize = codec.MessageSize
	return cfg
}

func encode(t *testing.T, msgs []swim.Message) []byte {
	t.Helper()
	b, err := codec.Append(nil, msgs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMaxPayloadBound checks Validate's payload bound at its boundary, with
// the built-in estimate and with the codec's sizes at the runtime's default
// datagram budget; the numbers are the ones MaxPayload's doc quotes.
func TestMaxPayloadBound(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  swim.Config
		want int
	}{
		// 1200 − 8 − ack (64+255) − alive without payload (64+255).
		{"DefaultConfig", swim.DefaultConfig(), 554},
		// 1346 − 4 − ack (273) − alive without payload (291).
		{"runtime", wireConfig(), 778},
	} {
		t.Run(tc.name, func(t *testing.T) {
			maxp := swim.MaxPayloadFor(tc.cfg)
			if maxp != tc.want {
				t.Fatalf("MaxPayloadFor = %d, want %d", maxp, tc.want)
			}
			cfg := tc.cfg
			cfg.MaxPayload = maxp
			if err := cfg.Validate(); err != nil {
				t.Fatalf("MaxPayload %d refused: %v", maxp, err)
			}
			cfg.MaxPayload = maxp + 1
			err := cfg.Validate()
			if !errors.Is(err, swim.ErrConfig) || !strings.Contains(err.Error(), "largest MaxPayload that fits is "+strconv.Itoa(maxp)) {
				t.Fatalf("MaxPayload %d: %v, want ErrConfig naming %d", maxp+1, err, maxp)
			}
			// At the largest payload, the worst-case alive message fits
			// one encoded datagram behind the worst-case ack.
			if tc.cfg.MessageSize != nil {
				long := strings.Repeat("x", swim.MaxNameLen)
				b := encode(t, []swim.Message{
					{Kind: swim.KindAck, Seq: ^uint32(0), From: long, Digest: ^uint64(0)},
					{Kind: swim.KindAlive, Name: long, Addr: netip.MustParseAddrPort("[2001:db8::1]:65535"), Incarnation: swim.MaxIncarnation, Payload: make([]byte, maxp)},
				})
				if len(b) != cfg.MaxDatagram {
					t.Fatalf("worst case at the bound is %d bytes, want exactly %d", len(b), cfg.MaxDatagram)
				}
			}
		})
	}
	cfg := wireConfig()
	cfg.MaxDatagram = 500
	if got := swim.MaxPayloadFor(cfg); got != -1 {
		t.Fatalf("MaxPayloadFor with a 500-byte datagram = %d, want -1", got)
	}
}
