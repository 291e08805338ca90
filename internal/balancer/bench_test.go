package balancer

import (
	"testing"
	"time"
)

func benchBalancer(b *testing.B, cfg Config) *Balancer {
	bal, err := New(cfg, nil, testLogger(b))
	if err != nil {
		b.Fatal(err)
	}
	bal.Update(ups("n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7"))
	return bal
}

// BenchmarkPick is one Pick and Done over 8 nodes in service.
func BenchmarkPick(b *testing.B) {
	bal := benchBalancer(b, noSlowStart())
	b.ReportAllocs()
	for b.Loop() {
		n, err := bal.Pick()
		if err != nil {
			b.Fatal(err)
		}
		n.Done(OK)
	}
}

// BenchmarkPickWarming: every node in slow start, so Pick reads the clock.
func BenchmarkPickWarming(b *testing.B) {
	cfg := DefaultConfig()
	cfg.SlowStart = time.Hour
	bal := benchBalancer(b, cfg)
	b.ReportAllocs()
	for b.Loop() {
		n, err := bal.Pick()
		if err != nil {
			b.Fatal(err)
		}
		n.Done(OK)
	}
}

// BenchmarkPickExclude is the retry path.
func BenchmarkPickExclude(b *testing.B) {
	bal := benchBalancer(b, noSlowStart())
	b.ReportAllocs()
	for b.Loop() {
		n, err := bal.Pick("n3")
		if err != nil {
			b.Fatal(err)
		}
		n.Done(OK)
	}
}

func BenchmarkPickParallel(b *testing.B) {
	bal := benchBalancer(b, noSlowStart())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n, err := bal.Pick()
			if err != nil {
				b.Error(err)
				return
			}
			n.Done(OK)
		}
	})
}
