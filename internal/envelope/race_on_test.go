//go:build race

package envelope

// raceEnabled is true under the race detector, whose instrumentation may
// allocate, so allocation counts are not meaningful there.
const raceEnabled = true
