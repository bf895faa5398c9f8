package keyring

import (
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// TestOnChangeCalledOncePerChange: every Install, Use and Remove that
// changes the keyring calls the function once, before it returns; one that
// changes nothing calls nothing; a failed one calls nothing.
func TestOnChangeCalledOncePerChange(t *testing.T) {
	k := mustNew(t, testKey(32, 1))
	var calls int
	stop := k.OnChange(func() { calls++ })
	k2, k3 := testKey(32, 2), testKey(32, 3)
	steps := []struct {
		name string
		do   func() error
		want int // calls after the step
	}{
		{"install", func() error { return k.Install(k2) }, 1},
		{"install again", func() error { return k.Install(k2) }, 1},
		{"use", func() error { return k.Use(k2) }, 2},
		{"use the primary", func() error { return k.Use(k2) }, 2},
		{"use a key not installed", func() error { _ = k.Use(k3); return nil }, 2},
		{"remove the primary", func() error { _ = k.Remove(k2); return nil }, 2},
		{"remove", func() error { return k.Remove(testKey(32, 1)) }, 3},
		{"remove again", func() error { return k.Remove(testKey(32, 1)) }, 3},
		{"install a bad key", func() error { _ = k.Install([]byte{1, 2}); return nil }, 3},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if calls != s.want {
			t.Fatalf("after %s: %d calls, want %d", s.name, calls, s.want)
		}
	}
	stop()
	if err := k.Install(k3); err != nil {
		t.Fatal(err)
	}
	if calls != 3 {
		t.Fatalf("called after stop: %d calls", calls)
	}
}

// TestOnChangeMayCallBack: the function runs without the keyring's lock,
// so it may read, save and even change the keyring without deadlock, and
// it sees the change that called it.
func TestOnChangeMayCallBack(t *testing.T) {
	k := mustNew(t, testKey(32, 1))
	path := filepath.Join(t.TempDir(), "keys")
	k2 := testKey(32, 2)
	var sawPrimary []byte
	k.OnChange(func() {
		sawPrimary = k.Primary()
		if err := k.Save(path); err != nil {
			t.Error(err)
		}
		_ = k.Install(k2) // a change from inside: must not deadlock
	})
	if err := k.Install(testKey(32, 3)); err != nil {
		t.Fatal(err)
	}
	if err := k.Use(testKey(32, 3)); err != nil {
		t.Fatal(err)
	}
	if string(sawPrimary) != string(testKey(32, 3)) {
		t.Fatal("the function did not see the change that called it")
	}
	loaded, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(loaded.Primary()) != string(testKey(32, 3)) {
		t.Fatal("saved file does not hold the new primary")
	}
}

// TestOnChangeConcurrent: changes on many goroutines each call every
// registered function, and unregistering one leaves the others.
func TestOnChangeConcurrent(t *testing.T) {
	k := mustNew(t, testKey(32, 1))
	var a, b atomic.Int64
	stopA := k.OnChange(func() { a.Add(1) })
	k.OnChange(func() { b.Add(1) })
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := testKey(32, byte(10+i))
			for range 50 {
				if err := k.Install(key); err != nil {
					t.Error(err)
				}
				if err := k.Remove(key); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if a.Load() != 8*50*2 || b.Load() != 8*50*2 {
		t.Fatalf("calls: %d and %d, want %d each", a.Load(), b.Load(), 8*50*2)
	}
	stopA()
	if err := k.Install(testKey(32, 99)); err != nil {
		t.Fatal(err)
	}
	if a.Load() != 800 || b.Load() != 801 {
		t.Fatalf("after stopping the first: %d and %d calls, want 800 and 801", a.Load(), b.Load())
	}
}
