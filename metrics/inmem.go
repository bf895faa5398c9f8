package metrics

import (
	"time"

	gometrics "github.com/armon/go-metrics"
)

// Inmem is a go-metrics InmemSink with lookups for tests: it answers "what
// was emitted under this name with these labels", summed over the retained
// intervals and over label sets that include the given labels.
type Inmem struct {
	*gometrics.InmemSink
}

// NewInmem returns an in-memory sink that keeps what it receives for two
// one-hour intervals, so a test never loses metrics to an interval rolling
// over.
func NewInmem() *Inmem {
	return &Inmem{gometrics.NewInmemSink(time.Hour, 2*time.Hour)}
}

// hasLabels reports whether have includes every label of want.
func hasLabels(have, want []Label) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			if h == w {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// Counter returns the total added to counter name over every label set that
// includes labels, and how many increments made it.
func (s *Inmem) Counter(name string, labels ...Label) (sum float64, count int) {
	for _, iv := range s.Data() {
		iv.RLock()
		for _, v := range iv.Counters {
			if v.Name == name && hasLabels(v.Labels, labels) {
				sum += v.Sum
				count += v.Count
			}
		}
		iv.RUnlock()
	}
	return sum, count
}

// Gauge returns the last value set for gauge name with a label set that
// includes labels, and whether there was one. When several label sets
// match, the last one found wins: pass enough labels to pick one.
func (s *Inmem) Gauge(name string, labels ...Label) (val float32, ok bool) {
	for _, iv := range s.Data() { // oldest interval first: later ones win
		iv.RLock()
		for _, v := range iv.Gauges {
			if v.Name == name && hasLabels(v.Labels, labels) {
				val, ok = v.Value, true
			}
		}
		iv.RUnlock()
	}
	return val, ok
}

// Samples returns how many samples were added to name over every label set
// that includes labels, their sum, and their minimum and maximum.
func (s *Inmem) Samples(name string, labels ...Label) (count int, sum, min, max float64) {
	for _, iv := range s.Data() {
		iv.RLock()
		for _, v := range iv.Samples {
			if v.Name == name && hasLabels(v.Labels, labels) {
				if count == 0 || v.Min < min {
					min = v.Min
				}
				if count == 0 || v.Max > max {
					max = v.Max
				}
				count += v.Count
				sum += v.Sum
			}
		}
		iv.RUnlock()
	}
	return count, sum, min, max
}
