//go:build race

package keyring

// raceEnabled is true under the race detector, whose sync.Pool drops items
// on purpose, so allocation counts are not meaningful there.
const raceEnabled = true
