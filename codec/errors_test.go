package codec

import (
	"errors"
	"testing"

	"github.com/meshward/membership/swim"
)

func TestFieldErrorText(t *testing.T) {
	for _, tt := range []struct {
		err  *FieldError
		want string
	}{
		{&FieldError{Field: "payload", Index: 3, Kind: swim.KindAlive, Err: ErrLimit, Detail: "600 > 512"},
			"codec: message 3 (alive): payload: bound exceeded (600 > 512)"},
		{&FieldError{Field: "state", Index: 7, Member: true, Err: ErrInvalid, Detail: "9"},
			"codec: member 7: state: invalid value (9)"},
		{&FieldError{Field: "version", Index: -1, Err: ErrVersion},
			"codec: version: unsupported protocol version"},
	} {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
		if !errors.Is(tt.err, tt.err.Err) {
			t.Errorf("%v does not unwrap to %v", tt.err, tt.err.Err)
		}
	}
}
