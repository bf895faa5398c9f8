package bench

import (
	"flag"
	"os"
	"testing"
)

var quickFlag = flag.Bool("quick", false, "run the smaller comparison (under 2 minutes); BENCH_QUICK=1 does the same")

// benchMode says how much of the comparison to run.
type benchMode int

const (
	modeOff   benchMode = iota // only the smoke test and the unit tests
	modeQuick                  // -quick or BENCH_QUICK=1: a smaller table in under 2 minutes
	modeFull                   // MEMBERSHIP_BENCH=1: the full comparison (many minutes)
)

func mode() benchMode {
	switch {
	case *quickFlag || os.Getenv("BENCH_QUICK") == "1":
		return modeQuick
	case os.Getenv("MEMBERSHIP_BENCH") == "1":
		return modeFull
	}
	return modeOff
}

// needMode skips the test unless the comparison was asked for.
func needMode(t *testing.T) benchMode {
	t.Helper()
	m := mode()
	if m == modeOff {
		t.Skip("set MEMBERSHIP_BENCH=1 for the full comparison (many minutes), or BENCH_QUICK=1 (or -quick) for a smaller one (under 2 minutes)")
	}
	return m
}
