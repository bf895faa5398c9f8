//go:build race

package envelope

// raceEnabled is true under the race detector, whose sync.Pool drops items
// on purpose, so allocation counts are not meaningful there.
const raceEnabled = true
