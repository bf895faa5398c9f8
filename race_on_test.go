//go:build race

package membership

// raceEnabled is true under the race detector, which allocates on its own,
// so allocation counts are not meaningful there.
const raceEnabled = true
