package membership

import (
	"bytes"
	"errors"
	"fmt"
	"maps"

	msgpack "github.com/hashicorp/go-msgpack/v2/codec"
)

// A payload can be kept as a small key/value map, as tarantool's
// set_payload(key, value) keeps it: a msgpack map from string keys to
// binary values (str values written by other encoders read as well, and
// a nil value as an absent key), keys
// in sorted order so that equal maps are equal bytes, and the empty map as
// the empty payload. Any msgpack library reads it. The opaque []byte API
// (WithPayload, SetPayload, Member.Payload) is unchanged: the map is one
// way of filling it.

// Errors of the payload calls.
var (
	// ErrPayloadTooLarge: a payload, or a payload map once encoded, is
	// above the payload cap (WithMaxPayload, 512 bytes by default).
	ErrPayloadTooLarge = errors.New("membership: payload above the payload cap")
	// ErrPayloadNotMap: the payload is not a key/value map: it was set as
	// opaque bytes, or is not well-formed.
	ErrPayloadNotMap = errors.New("membership: payload is not a key/value map")
)

// payloadHandle is the msgpack dialect of payload maps: the current spec
// (bin for values, str for keys) with sorted keys.
var payloadHandle = func() *msgpack.MsgpackHandle {
	h := &msgpack.MsgpackHandle{WriteExt: true}
	h.Canonical = true
	return h
}()

// EncodePayloadMap encodes kv as a payload map, for WithPayload or
// SetPayload; SetPayloadValue changes one key of our payload in place. A
// nil value is left out, as SetPayloadValue deletes a key set to nil; an
// empty map is the empty payload. It does not check the payload cap,
// which the node applies.
func EncodePayloadMap(kv map[string][]byte) ([]byte, error) {
	live := 0
	for _, v := range kv {
		if v != nil {
			live++
		}
	}
	if live == 0 {
		return nil, nil
	}
	if live < len(kv) {
		trimmed := make(map[string][]byte, live)
		for k, v := range kv {
			if v != nil {
				trimmed[k] = v
			}
		}
		kv = trimmed
	}
	var b []byte
	if err := msgpack.NewEncoderBytes(&b, payloadHandle).Encode(kv); err != nil {
		return nil, fmt.Errorf("membership: encode payload map: %w", err)
	}
	return b, nil
}

// decodePayloadMap decodes a payload map; the empty payload is the empty
// map.
func decodePayloadMap(p []byte) (map[string][]byte, error) {
	kv := make(map[string][]byte)
	if len(p) == 0 {
		return kv, nil
	}
	// A map's first byte: fixmap, map 16 or map 32. Anything else (nil
	// among them, which the decoder would take for an empty map) is not.
	if b := p[0]; b&0xf0 != 0x80 && b != 0xde && b != 0xdf {
		return nil, fmt.Errorf("%w: it starts with 0x%02x, not a msgpack map", ErrPayloadNotMap, b)
	}
	dec := msgpack.NewDecoderBytes(p, payloadHandle)
	if err := dec.Decode(&kv); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPayloadNotMap, err)
	}
	if n := dec.NumBytesRead(); n != len(p) {
		return nil, fmt.Errorf("%w: %d bytes after the map", ErrPayloadNotMap, len(p)-n)
	}
	// A nil value, which another encoder may write, is no value: the key
	// is absent, as SetPayloadValue with nil makes it.
	maps.DeleteFunc(kv, func(_ string, v []byte) bool { return v == nil })
	return kv, nil
}

// PayloadMap decodes the member's payload as a key/value map (see
// SetPayloadValue). An empty payload is an empty map; a payload that is
// not such a map gives an error wrapping ErrPayloadNotMap. The map is the
// caller's.
func (m Member) PayloadMap() (map[string][]byte, error) {
	return decodePayloadMap(m.Payload)
}

// PayloadValue returns the value of key in the member's payload map. It
// reports false when the key is absent, and also when the payload is not a
// map (PayloadMap says why).
func (m Member) PayloadValue(key string) ([]byte, bool) {
	kv, err := decodePayloadMap(m.Payload)
	if err != nil {
		return nil, false
	}
	v, ok := kv[key]
	return v, ok
}

// SetPayloadValue sets key to value in our payload map, or deletes key
// when value is nil (an empty, non-nil value is kept), as tarantool's
// set_payload(key, value) does, and spreads the change like SetPayload.
// The change is atomic with respect to other payload calls. It fails with
// ErrPayloadNotMap when our payload holds opaque bytes (replace them with
// SetPayload first), and with ErrPayloadTooLarge when the map would be
// above the payload cap, leaving the payload as it was. Setting a value a
// key already has changes nothing and sends nothing.
func (n *Node) SetPayloadValue(key string, value []byte) error {
	if !n.running() {
		return ErrShutdown
	}
	var err error
	n.do(func() { err = n.setPayloadValue(key, value) })
	if err != nil {
		return fmt.Errorf("membership: set payload value %q: %w", key, err)
	}
	return nil
}

// setPayloadValue runs on the loop goroutine.
func (n *Node) setPayloadValue(key string, value []byte) error {
	old := n.core.Myself().Payload
	kv, err := decodePayloadMap(old)
	if err != nil {
		return err
	}
	if value == nil {
		delete(kv, key)
	} else {
		kv[key] = value
	}
	p, err := EncodePayloadMap(kv)
	if err != nil {
		return err
	}
	if len(p) > n.pcfg.MaxPayload {
		return fmt.Errorf("%w: the map would take %d bytes, which exceeds MaxPayload %d (WithMaxPayload)", ErrPayloadTooLarge, len(p), n.pcfg.MaxPayload)
	}
	if bytes.Equal(p, old) {
		return nil
	}
	return n.core.SetPayload(p)
}
