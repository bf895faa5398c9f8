//go:build !race

package swim

const raceEnabled = false
