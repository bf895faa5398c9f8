//go:build !race

package swimtest

const raceEnabled = false
