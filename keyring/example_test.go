package keyring_test

import (
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/meshward/membership/keyring"
)

func Example() {
	key, err := keyring.Generate(keyring.XChaCha20Poly1305)
	if err != nil {
		log.Fatal(err)
	}
	ring, err := keyring.New(key)
	if err != nil {
		log.Fatal(err)
	}
	label := []byte("prod-eu") // authenticated, never sent
	datagram, err := ring.Seal(nil, []byte("hello, cluster"), label)
	if err != nil {
		log.Fatal(err)
	}
	plaintext, err := ring.Open(nil, datagram, label)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s (%d bytes on the wire)\n", plaintext, len(datagram))

	// Another cluster's label does not open it.
	_, err = ring.Open(nil, datagram, []byte("prod-us"))
	fmt.Println(errors.Is(err, keyring.ErrAuthFailed))
	// Output:
	// hello, cluster (60 bytes on the wire)
	// true
}

// Rotation on one node, in the order an operator runs it across the
// cluster: install the new key everywhere, then use it everywhere, then
// remove the old one everywhere.
func ExampleKeyring_Use() {
	oldKey, _ := keyring.Generate(keyring.XChaCha20Poly1305)
	newKey, _ := keyring.Generate(keyring.XChaCha20Poly1305)
	ring, _ := keyring.New(oldKey)
	sealedBefore, _ := ring.Seal(nil, []byte("old"), nil)

	if err := ring.Install(newKey); err != nil { // 1. decrypt-only for now
		log.Fatal(err)
	}
	if err := ring.Use(newKey); err != nil { // 2. seal with the new key
		log.Fatal(err)
	}
	_, err := ring.Open(nil, sealedBefore, nil)
	fmt.Println("old datagram after Use:", err)

	if err := ring.Remove(oldKey); err != nil { // 3. retire the old key
		log.Fatal(err)
	}
	_, err = ring.Open(nil, sealedBefore, nil)
	fmt.Println("old datagram after Remove:", errors.Is(err, keyring.ErrUnknownKey))
	fmt.Println("removing the primary:", errors.Is(ring.Remove(newKey), keyring.ErrRemovePrimary))
	// Output:
	// old datagram after Use: <nil>
	// old datagram after Remove: true
	// removing the primary: true
}

func ExampleLoad() {
	dir, _ := os.MkdirTemp("", "keyring")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "keyring")

	key, _ := keyring.ParseKey("HvY8ubRZMgafUOWvrOadwOckVa1wN3QWAo46FVKbVN8=") // as `consul keygen` prints
	ring, _ := keyring.New(key)
	if err := ring.Save(path); err != nil { // mode 0600, atomic rename
		log.Fatal(err)
	}
	loaded, err := keyring.Load(path)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s, %d key(s), primary %x\n", loaded.Suite(), len(loaded.Keys()), keyring.Fingerprint(loaded.Primary()))
	// Output:
	// xchacha20-poly1305, 1 key(s), primary 8759d738
}
