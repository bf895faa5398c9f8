package membership

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestPayloadMapEncoding(t *testing.T) {
	kv := map[string][]byte{"zone": []byte("eu-1"), "role": []byte("db"), "empty": {}, "gone": nil}
	p, err := EncodePayloadMap(kv)
	if err != nil {
		t.Fatal(err)
	}
	// Keys sorted, values as msgpack bin, the nil value left out.
	want := []byte("\x83\xa5empty\xc4\x00\xa4role\xc4\x02db\xa4zone\xc4\x04eu-1")
	if !bytes.Equal(p, want) {
		t.Fatalf("encoded %q, want %q", p, want)
	}
	got, err := Member{Payload: p}.PayloadMap()
	if err != nil {
		t.Fatal(err)
	}
	delete(kv, "gone")
	if !maps.EqualFunc(got, kv, bytes.Equal) {
		t.Fatalf("decoded %q, want %q", got, kv)
	}
	if v, ok := (Member{Payload: p}).PayloadValue("role"); !ok || string(v) != "db" {
		t.Fatalf("PayloadValue(role) = %q, %v", v, ok)
	}
	if _, ok := (Member{Payload: p}).PayloadValue("gone"); ok {
		t.Fatal("PayloadValue found a key set to nil")
	}
	if p, err := EncodePayloadMap(map[string][]byte{"x": nil}); err != nil || p != nil {
		t.Fatalf("a map of nothing: %q, %v; want the empty payload", p, err)
	}
	if m, err := (Member{}).PayloadMap(); err != nil || len(m) != 0 || m == nil {
		t.Fatalf("the empty payload: %v, %v; want an empty map", m, err)
	}
	// A nil value is an absent key.
	if m, err := (Member{Payload: []byte("\x81\xa1k\xc0")}).PayloadMap(); err != nil || len(m) != 0 {
		t.Fatalf("a key with a nil value: %q, %v; want an empty map", m, err)
	}
	// A str value, as another encoder may write it, reads as bytes.
	if v, ok := (Member{Payload: []byte("\x81\xa1k\xa2vv")}).PayloadValue("k"); !ok || string(v) != "vv" {
		t.Fatalf("str value: %q, %v", v, ok)
	}
}

func TestPayloadMapRejects(t *testing.T) {
	for _, p := range []string{
		`{"role":"db"}`,           // JSON
		"\xc0",                    // msgpack nil
		"\x91\x01",                // an array
		"\x81\x01\xa1v",           // an integer key
		"\x81\xa1k\x01",           // an integer value
		"\x81\xa1k\xc4\x01v\x00",  // a byte after the map
		"\x82\xa1k\xc4\x01v",      // a map that ends early
		"\xdf\xff\xff\xff\xff",    // a huge length and nothing after
		"\x81\xa1k\x81\xa1k\xa1v", // a nested map
	} {
		_, err := Member{Payload: []byte(p)}.PayloadMap()
		if !errors.Is(err, ErrPayloadNotMap) {
			t.Errorf("payload %q: %v, want ErrPayloadNotMap", p, err)
		}
		if _, ok := (Member{Payload: []byte(p)}).PayloadValue("k"); ok {
			t.Errorf("payload %q: PayloadValue found a key", p)
		}
	}
}

// FuzzPayloadMap: decoding never panics, and what decodes re-encodes to a
// map that decodes the same.
func FuzzPayloadMap(f *testing.F) {
	for _, s := range []string{"", "\x80", "\x81\xa1k\xc4\x01v", "\x83\xa5empty\xc4\x00\xa4role\xc4\x02db\xa4zone\xc4\x04eu-1", "\xdf\xff\xff\xff\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		kv, err := decodePayloadMap(p)
		if err != nil {
			return
		}
		q, err := EncodePayloadMap(kv)
		if err != nil {
			t.Fatal(err)
		}
		again, err := decodePayloadMap(q)
		if err != nil {
			t.Fatalf("re-encoded %q does not decode: %v", q, err)
		}
		for k, v := range kv {
			if w, ok := again[k]; !ok || !bytes.Equal(v, w) {
				t.Fatalf("key %q: %q then %q", k, v, w)
			}
		}
	})
}

// TestSetPayloadValue: keys set and deleted on one node reach the others;
// the cap and opaque payloads are refused with errors callers can test.
func TestSetPayloadValue(t *testing.T) {
	c := newMemCluster(t, 2)
	a, b := c.nodes[0], c.nodes[1]
	c.joinAll()
	for _, kv := range []struct{ k, v string }{{"role", "db"}, {"zone", "eu-1"}, {"note", ""}} {
		if err := a.SetPayloadValue(kv.k, []byte(kv.v)); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.SetPayloadValue("zone", nil); err != nil {
		t.Fatal(err)
	}
	if err := a.SetPayloadValue("never-set", nil); err != nil {
		t.Fatalf("deleting a key that is not there: %v", err)
	}
	want := map[string][]byte{"role": []byte("db"), "note": {}}
	waitFor(t, 10*time.Second, "node-1 to read node-0's map", func() bool {
		m, _ := b.Member("node-0")
		got, err := m.PayloadMap()
		return err == nil && maps.EqualFunc(got, want, bytes.Equal)
	})

	inc := a.Myself().Incarnation
	if err := a.SetPayloadValue("role", []byte("db")); err != nil || a.Myself().Incarnation != inc {
		t.Fatalf("setting a value a key already has: %v, incarnation %d -> %d", err, inc, a.Myself().Incarnation)
	}
	err := a.SetPayloadValue("big", bytes.Repeat([]byte{1}, 600))
	if !errors.Is(err, ErrPayloadTooLarge) || !strings.Contains(err.Error(), "exceeds MaxPayload 512") {
		t.Fatalf("a value beyond the cap: %v", err)
	}
	if got, _ := a.Myself().PayloadMap(); !maps.EqualFunc(got, want, bytes.Equal) {
		t.Fatalf("a refused value changed the payload: %q", got)
	}
	if err := a.SetPayload(make([]byte, 513)); !errors.Is(err, ErrPayloadTooLarge) || !strings.Contains(err.Error(), "513 bytes exceeds MaxPayload 512") {
		t.Fatalf("SetPayload beyond the cap: %v", err)
	}
	if err := a.SetPayload([]byte(`{"role":"db"}`)); err != nil {
		t.Fatal(err)
	}
	if err := a.SetPayloadValue("role", []byte("web")); !errors.Is(err, ErrPayloadNotMap) {
		t.Fatalf("SetPayloadValue over an opaque payload: %v", err)
	}
	if string(a.Myself().Payload) != `{"role":"db"}` {
		t.Fatalf("the opaque payload changed: %q", a.Myself().Payload)
	}
}

// TestSetPayloadValueConcurrent: concurrent calls on distinct keys lose
// none of them (each reads, changes and writes the map atomically).
func TestSetPayloadValueConcurrent(t *testing.T) {
	c := newMemCluster(t, 1)
	a := c.nodes[0]
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.SetPayloadValue(fmt.Sprintf("k%02d", i), []byte{byte(i)}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, err := a.Myself().PayloadMap()
	if err != nil || len(got) != 16 {
		t.Fatalf("after 16 concurrent keys: %d keys, %v", len(got), err)
	}
}

func TestSetPayloadValueRealSockets(t *testing.T) {
	if testing.Short() {
		t.Skip("real sockets")
	}
	var nodes []*Node
	for i := range 2 {
		nd, err := New(WithName(fmt.Sprintf("udp-%d", i)), WithBindAddr("127.0.0.1:0"), WithKeyring(newRing(t, testKey)),
			WithProfile(ProfileLocal), WithLogger(quietLogger()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nd.Shutdown() })
		nodes = append(nodes, nd)
	}
	if _, err := nodes[1].Join(context.Background(), nodes[0].Myself().Addr.String()); err != nil {
		t.Fatal(err)
	}
	if err := nodes[1].SetPayloadValue("role", []byte("db")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "udp-0 to read udp-1's role", func() bool {
		m, _ := nodes[0].Member("udp-1")
		v, ok := m.PayloadValue("role")
		return ok && string(v) == "db"
	})
}
