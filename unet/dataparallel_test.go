package unet

import (
	"testing"
)

// sliceBatch returns samples [lo, hi) of b (and of noise and weight).
func sliceBatch(cfg Config, b *Batch, noise, w []float32, lo, hi int) (*Batch, []float32, []float32) {
	n, L, hw := cfg.InChannels*cfg.ImageSize*cfg.ImageSize, cfg.TextCtx, cfg.ImageSize*cfg.ImageSize
	return &Batch{X: b.X[lo*n : hi*n], Timesteps: b.Timesteps[lo:hi], WA: b.WA[lo:hi],
		Tokens: b.Tokens[lo*L : hi*L], Mask: b.Mask[lo*L : hi*L], Keyword: b.Keyword[lo*L : hi*L]}, noise[lo*n : hi*n], w[lo*hw : hi*hw]
}

// A batch split across data-parallel ranks, each slice run with its
// SampleOffset and the gradients averaged, gives the whole batch's loss and
// gradients: dropout masks follow the sample, not its place in the slice.
func TestBatchSplitMatchesWholeBatch(t *testing.T) {
	for _, tc := range []struct {
		name    string
		dropout float64
		B       int
		parts   []int // slice boundaries
	}{
		{"two halves, dropout", 0.3, 4, []int{0, 2, 4}},
		{"three ranks, dropout", 0.3, 6, []int{0, 2, 4, 6}},
		{"no dropout", 0, 4, []int{0, 2, 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := TinyConfig()
			cfg.Dropout = tc.dropout
			m := randomModel(t, cfg, 5)
			m.Train, m.Seed = true, 9
			b, noise, w := testBatch(cfg, tc.B, 6)
			m.ZeroGrad()
			whole, err := m.Loss(b, noise, w, true)
			if err != nil {
				t.Fatal(err)
			}
			want := append([]float32(nil), m.Params.Grad...)
			forwards := m.Forwards

			sum := make([]float32, len(want))
			var loss float64
			k := len(tc.parts) - 1
			for i := range k {
				lo, hi := tc.parts[i], tc.parts[i+1]
				m.Forwards, m.SampleOffset = forwards-1, lo // every rank is at the same forward count
				m.ZeroGrad()
				sb, sn, sw := sliceBatch(cfg, b, noise, w, lo, hi)
				l, err := m.Loss(sb, sn, sw, true)
				if err != nil {
					t.Fatal(err)
				}
				loss += l / float64(k)
				for j, g := range m.Params.Grad {
					sum[j] += g / float32(k)
				}
			}
			if e := relErr(sum, want); e > 2e-6 {
				t.Errorf("gradients of the slices averaged differ from the whole batch's by %.2g relative", e)
			}
			if d := (loss - whole) / whole; d > 1e-6 || d < -1e-6 {
				t.Errorf("loss of the slices %v, whole batch %v", loss, whole)
			}
			if tc.dropout > 0 {
				// The masks really depend on the offset: the second slice
				// run as if it were the first gives other gradients.
				m.Forwards, m.SampleOffset = forwards-1, 0
				m.ZeroGrad()
				sb, sn, sw := sliceBatch(cfg, b, noise, w, tc.parts[1], tc.parts[2])
				if _, err := m.Loss(sb, sn, sw, true); err != nil {
					t.Fatal(err)
				}
				g0 := append([]float32(nil), m.Params.Grad...)
				m.Forwards, m.SampleOffset = forwards-1, tc.parts[1]
				m.ZeroGrad()
				if _, err := m.Loss(sb, sn, sw, true); err != nil {
					t.Fatal(err)
				}
				if relErr(g0, m.Params.Grad) < 1e-3 {
					t.Error("SampleOffset does not change the dropout masks")
				}
			}
		})
	}
}

// GradsReady's offsets are honest: what it reports final is what the
// backward pass ends with, so an all-reduce may start on it.
func TestGradsReadyReportsFinalGradients(t *testing.T) {
	cfg := TinyConfig()
	cfg.Dropout = 0.1
	m := randomModel(t, cfg, 7)
	m.Train = true
	b, noise, w := testBatch(cfg, 3, 8)
	type snap struct {
		from int
		g    []float32
	}
	var snaps []snap
	m.GradsReady = func(from int) {
		snaps = append(snaps, snap{from, append([]float32(nil), m.Params.Grad[from:]...)})
	}
	m.ZeroGrad()
	if _, err := m.Loss(b, noise, w, true); err != nil {
		t.Fatal(err)
	}
	if len(snaps) < 10 {
		t.Fatalf("GradsReady called %d times; want one call per layer with parameters", len(snaps))
	}
	prev := len(m.Params.Grad) + 1
	for i, s := range snaps {
		if s.from >= prev {
			t.Fatalf("call %d: offset %d after %d: offsets must decrease", i, s.from, prev)
		}
		prev = s.from
		final := m.Params.Grad[s.from:]
		for j := range final {
			if final[j] != s.g[j] {
				name := ""
				for _, v := range m.Params.Layout.Views() {
					if s.from+j >= v.Offset && s.from+j < v.Offset+v.Size {
						name = v.Name
					}
				}
				t.Fatalf("call %d reported gradients from %d final, but %s changed after it", i, s.from, name)
			}
		}
	}
	if prev != 0 {
		t.Errorf("the last GradsReady offset is %d, want 0", prev)
	}
}
