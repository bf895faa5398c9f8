package swimtest

import (
	"runtime"
	"testing"

	"github.com/meshward/membership/swim"
)

// BenchmarkSim10k simulates 10,000 members for 100 protocol periods with the
// default configuration on a LAN. Full views of 10,000 members would hold
// 10⁸ entries, so every member starts knowing 256 random others; push-pull
// and fast repair are off so the views stay that size. It reports the
// wall time per member and period, and the heap held per member.
func BenchmarkSim10k(b *testing.B) {
	const n, periods, view = 10000, 100, 256
	cfg := swim.DefaultConfig()
	cfg.PushPullInterval = 0
	cfg.RepairInterval = 0
	for b.Loop() {
		b.StopTimer()
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		s, err := New(Options{Nodes: n, Seed: 1, Config: cfg, Link: lan, ViewSize: view})
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heapB/member")
		b.StartTimer()
		s.Run(periods * s.Period())
		b.StopTimer()
		tot := s.Totals()
		b.ReportMetric(float64(tot.Datagrams)/n/periods, "datagrams/member-period")
		runtime.KeepAlive(s)
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n/periods, "ns/member-period")
}

// BenchmarkSimFullView1k is the same with 1,000 members that all know each
// other, push-pull and fast repair on.
func BenchmarkSimFullView1k(b *testing.B) {
	const n, periods = 1000, 100
	cfg := swim.DefaultConfig()
	for b.Loop() {
		b.StopTimer()
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		s, err := New(Options{Nodes: n, Seed: 1, Config: cfg, Link: lan})
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heapB/member")
		b.StartTimer()
		s.Run(periods * s.Period())
		runtime.KeepAlive(s)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n/periods, "ns/member-period")
}
