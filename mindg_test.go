package membership

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/meshward/membership/keyring"
	"github.com/meshward/membership/transport"
)

// TestMaxDatagramSizeBounds: WithMaxDatagramSize's documented minimum is
// what New enforces, for each suite and payload cap, and the error names
// the minimum.
func TestMaxDatagramSizeBounds(t *testing.T) {
	for _, tc := range []struct {
		suite      keyring.Suite
		maxPayload int
		least      int // as documented on WithMaxDatagramSize
	}{
		{keyring.XChaCha20Poly1305, 512, 1134},
		{keyring.AESGCM, 512, 1122},
		{keyring.XChaCha20Poly1305, 0, 620},
		{keyring.AESGCM, 0, 608},
	} {
		t.Run(fmt.Sprintf("%v/%d", tc.suite, tc.maxPayload), func(t *testing.T) {
			key := testKey
			ring, err := keyring.New(key, keyring.WithSuite(tc.suite))
			if err != nil {
				t.Fatal(err)
			}
			net := transport.NewMemNetwork(1)
			defer net.Close()
			try := func(size int) error {
				nd, err := New(WithName("a"), WithTransport(net.NewTransport()), WithKeyring(ring), WithLogger(quietLogger()),
					WithMaxPayload(tc.maxPayload), WithMaxDatagramSize(size))
				if err == nil {
					nd.Shutdown()
				}
				return err
			}
			if err := try(tc.least); err != nil {
				t.Fatalf("WithMaxDatagramSize(%d): %v", tc.least, err)
			}
			err = try(tc.least - 1)
			if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("at least %d bytes", tc.least)) {
				t.Fatalf("WithMaxDatagramSize(%d): %v, want an error naming the minimum %d", tc.least-1, err, tc.least)
			}
		})
	}
	if _, err := New(WithMaxDatagramSize(70000)); err == nil || errors.Is(err, ErrNoEncryption) {
		t.Fatalf("WithMaxDatagramSize(70000): %v, want a range error", err)
	}
}
