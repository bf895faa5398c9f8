//go:build race

package transport

// raceEnabled is true when the race detector is on: it allocates on its own
// account, so allocation counts are not asserted then.
const raceEnabled = true
