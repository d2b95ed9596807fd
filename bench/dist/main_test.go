package main

import (
	"math"
	"testing"
)

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-12*math.Max(1, math.Abs(b)) }

func TestRingAllReduce(t *testing.T) {
	const mb = 1e6
	for _, tc := range []struct {
		name                 string
		bytes                float64
		n                    int
		busBW, latency, want float64
		star, wantStarEqRing bool
	}{
		{name: "one_rank_moves_nothing", bytes: 100 * mb, n: 1, busBW: 1e9, latency: 1e-5, want: 0},
		// n = 2: 2(n-1)/n = 1, so one buffer's time plus 2 latencies.
		{name: "two_ranks", bytes: 100 * mb, n: 2, busBW: 1e9, latency: 1e-5, want: 0.1 + 2e-5},
		// 8 ranks: 2*7/8 = 1.75 buffers, 14 steps.
		{name: "eight_ranks", bytes: 100 * mb, n: 8, busBW: 1e9, latency: 1e-5, want: 0.175 + 14e-5},
		// Bandwidth-free: only the 2(n-1) latencies.
		{name: "latency_only", bytes: 0, n: 64, busBW: 1e9, latency: 3e-6, want: 126 * 3e-6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ringAllReduce(tc.bytes, tc.n, tc.busBW, tc.latency); !near(got, tc.want) {
				t.Errorf("ringAllReduce(%g, %d, %g, %g) = %g, want %g", tc.bytes, tc.n, tc.busBW, tc.latency, got, tc.want)
			}
		})
	}
}

func TestStarAllReduce(t *testing.T) {
	// At two ranks the star and the ring are the same exchange.
	if r, s := ringAllReduce(1e8, 2, 1e9, 1e-5), starAllReduce(1e8, 2, 1e9, 1e-5); !near(r, s) {
		t.Errorf("2 ranks: ring %g, star %g", r, s)
	}
	// At N ranks rank 0 moves N-1 buffers each way: N/2 times the ring's bandwidth term.
	if got, want := starAllReduce(1e8, 64, 1e9, 0), 32*ringAllReduce(1e8, 64, 1e9, 0); !near(got, want) {
		t.Errorf("64 ranks: star %g, want 32 x ring = %g", got, want)
	}
}

func TestCostOf(t *testing.T) {
	for _, tc := range []struct {
		name                    string
		compute, comm           float64
		noOverlap, exposed, eff float64
	}{
		{name: "no_communication", compute: 3, comm: 0, noOverlap: 0, exposed: 0, eff: 1},
		// 1 s of all-reduce fits in the 2 s backward pass of a 3 s step.
		{name: "hidden_behind_backward", compute: 3, comm: 1, noOverlap: 0.25, exposed: 0, eff: 1},
		{name: "exactly_the_backward", compute: 3, comm: 2, noOverlap: 0.4, exposed: 0, eff: 1},
		// 5 s of all-reduce: 2 hidden, 3 exposed; the step takes 6 s.
		{name: "longer_than_backward", compute: 3, comm: 5, noOverlap: 5.0 / 8, exposed: 3, eff: 0.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := costOf(tc.compute, tc.comm)
			if !near(c.noOverlap, tc.noOverlap) || !near(c.exposed, tc.exposed) || !near(c.eff, tc.eff) || !near(c.overlap, 1-tc.eff) {
				t.Errorf("costOf(%g, %g) = %+v, want no-overlap share %g, exposed %g, efficiency %g", tc.compute, tc.comm, c, tc.noOverlap, tc.exposed, tc.eff)
			}
		})
	}
}

func TestLadder(t *testing.T) {
	cs := ladder(4<<10, 128<<20, 1000)
	var got []int64
	for _, c := range cs {
		got = append(got, c.bytes())
	}
	want := []int64{4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20, 64 << 20, 128 << 20, 4000, 2000}
	if len(got) != len(want) {
		t.Fatalf("sizes %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("sizes %v, want %v", got, want)
		}
	}
	if !cs[len(cs)-1].bf16 || cs[len(cs)-2].bf16 || cs[len(cs)-1].elems != 1000 {
		t.Errorf("the last two cases are not the gradients in fp32 then bf16: %+v", cs[len(cs)-2:])
	}
	round, err := parseCases(cs[0].arg() + "," + cs[len(cs)-1].arg())
	if err != nil || len(round) != 2 || round[0].elems != cs[0].elems || !round[1].bf16 {
		t.Errorf("parseCases(arg) = %+v, %v", round, err)
	}
}
