package kernels

import (
	"math"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// gradCase is one op under a gradient check. The harness draws random inputs,
// defines the loss L = sum(out * R) for a random R, and compares the analytic
// gradients of backward (called with dout = R) against central differences of
// forward, all in float64 through the same generic code float32 training runs.
type gradCase struct {
	name    string
	sizes   []int // lengths of the differentiable inputs
	outSize int
	// forward reads in and writes out; backward accumulates into grads.
	forward  func(out []float64, in [][]float64)
	backward func(grads [][]float64, dout []float64, in [][]float64)
}

func gradCases() []gradCase {
	var cases []gradCase
	for _, cs := range []struct {
		name string
		s    ConvShape
		bias bool
	}{
		{"conv3x3_stride1_pad1", ConvShape{B: 2, C: 3, H: 5, W: 6, OC: 4, K: 3, Stride: 1, Pad: 1}, true},
		{"conv3x3_stride2_pad1_odd", ConvShape{B: 2, C: 2, H: 7, W: 5, OC: 3, K: 3, Stride: 2, Pad: 1}, true},
		{"conv3x3_stride2_pad1_even", ConvShape{B: 1, C: 3, H: 6, W: 8, OC: 2, K: 3, Stride: 2, Pad: 1}, false},
		{"conv3x3_nopad", ConvShape{B: 2, C: 2, H: 5, W: 4, OC: 3, K: 3, Stride: 1, Pad: 0}, true},
		{"conv3x3_batch3", ConvShape{B: 3, C: 2, H: 5, W: 6, OC: 3, K: 3, Stride: 1, Pad: 1}, true},
		{"conv1x1_batch3", ConvShape{B: 3, C: 2, H: 5, W: 6, OC: 3, K: 1, Stride: 1, Pad: 0}, true},
		{"conv1x1_direct", ConvShape{B: 2, C: 5, H: 3, W: 4, OC: 3, K: 1, Stride: 1, Pad: 0}, true},
		{"conv1x1_stride2", ConvShape{B: 2, C: 3, H: 5, W: 5, OC: 2, K: 1, Stride: 2, Pad: 0}, false},
	} {
		s := cs.s
		nb := 0
		if cs.bias {
			nb = s.OC
		}
		col := make([]float64, s.ColSize())
		cases = append(cases, gradCase{
			name:    cs.name,
			sizes:   []int{s.B * s.C * s.H * s.W, s.OC * s.C * s.K * s.K, nb},
			outSize: s.B * s.OC * s.OH() * s.OW(),
			forward: func(out []float64, in [][]float64) { Conv2DForward(out, in[0], in[1], nilIfEmpty(in[2]), col, s) },
			backward: func(g [][]float64, dout []float64, in [][]float64) {
				Conv2DBackward(g[0], g[1], nilIfEmpty(g[2]), col, dout, in[0], in[1], s)
			},
		})
	}
	for _, gs := range []struct {
		name        string
		B, C, HW, G int
	}{
		{"group_norm_2_groups", 2, 4, 6, 2},
		{"group_norm_1_group", 2, 3, 5, 1},
		{"group_norm_group_per_channel", 1, 4, 7, 4},
	} {
		B, C, HW, G := gs.B, gs.C, gs.HW, gs.G
		mean, rstd := make([]float64, B*G), make([]float64, B*G)
		cases = append(cases, gradCase{
			name: gs.name, sizes: []int{B * C * HW, C, C}, outSize: B * C * HW,
			forward: func(out []float64, in [][]float64) {
				GroupNormForward(out, mean, rstd, in[0], in[1], in[2], B, C, HW, G, 1e-5)
			},
			backward: func(g [][]float64, dout []float64, in [][]float64) {
				GroupNormBackward(g[0], g[1], g[2], dout, in[0], in[1], mean, rstd, B, C, HW, G)
			},
		})
	}
	{
		N, C := 5, 7
		mean, rstd := make([]float64, N), make([]float64, N)
		cases = append(cases, gradCase{
			name: "layer_norm", sizes: []int{N * C, C, C}, outSize: N * C,
			forward: func(out []float64, in [][]float64) {
				LayerNormForward(out, mean, rstd, in[0], in[1], in[2], N, C, 1e-5)
			},
			backward: func(g [][]float64, dout []float64, in [][]float64) {
				LayerNormBackward(g[0], g[1], g[2], dout, in[0], in[1], mean, rstd, N, C)
			},
		})
	}
	for _, bias := range []bool{true, false} {
		N, C, OC := 4, 5, 3
		nb, name := OC, "linear_bias"
		if !bias {
			nb, name = 0, "linear_no_bias"
		}
		cases = append(cases, gradCase{
			name: name, sizes: []int{N * C, OC * C, nb}, outSize: N * OC,
			forward: func(out []float64, in [][]float64) { LinearForward(out, in[0], in[1], nilIfEmpty(in[2]), N, C, OC) },
			backward: func(g [][]float64, dout []float64, in [][]float64) {
				LinearBackward(g[0], g[1], nilIfEmpty(g[2]), dout, in[0], in[1], N, C, OC)
			},
		})
	}
	n := 40
	cases = append(cases,
		gradCase{name: "silu", sizes: []int{n}, outSize: n,
			forward:  func(out []float64, in [][]float64) { SiLUForward(out, in[0], n) },
			backward: func(g [][]float64, dout []float64, in [][]float64) { SiLUBackward(g[0], dout, in[0], n) }},
		gradCase{name: "gelu", sizes: []int{n}, outSize: n,
			forward:  func(out []float64, in [][]float64) { GELUForward(out, in[0], n) },
			backward: func(g [][]float64, dout []float64, in [][]float64) { GELUBackward(g[0], dout, in[0], n) }},
		gradCase{name: "dropout", sizes: []int{n}, outSize: n,
			forward:  func(out []float64, in [][]float64) { DropoutForward(out, in[0], n, 0.3, 42) },
			backward: func(g [][]float64, dout []float64, in [][]float64) { DropoutBackward(g[0], dout, n, 0.3, 42) }},
		gradCase{name: "softmax", sizes: []int{4 * 6}, outSize: 4 * 6,
			forward: func(out []float64, in [][]float64) { SoftmaxForward(out, in[0], 4, 6) },
			backward: func(g [][]float64, dout []float64, in [][]float64) {
				out := make([]float64, 24)
				SoftmaxForward(out, in[0], 4, 6)
				SoftmaxBackward(g[0], dout, out, 4, 6)
			}},
	)
	for _, ac := range []struct {
		name        string
		s           AttentionShape
		scale, mask bool
	}{
		{"attention_plain", AttentionShape{B: 2, NH: 2, Nq: 3, Nk: 3, D: 4}, false, false},
		{"attention_text_keys_mask_and_scale", AttentionShape{B: 2, NH: 2, Nq: 3, Nk: 6, D: 4}, true, true},
		{"attention_scale_only", AttentionShape{B: 1, NH: 3, Nq: 4, Nk: 5, D: 2}, true, false},
	} {
		s := ac.s
		var scale, mask []float64
		if ac.scale {
			scale = make([]float64, s.B*s.Nk)
			for i := range scale {
				scale[i] = 1
				if i%3 != 1 { // image tokens and keywords get 1 + w_a
					scale[i] = 1.3
				}
			}
		}
		if ac.mask {
			mask = make([]float64, s.B*s.Nk)
			for b := 0; b < s.B; b++ {
				for j := 0; j < s.Nk; j++ {
					if j < s.Nk-b-1 { // sample b has b+1 padded text keys at the end
						mask[b*s.Nk+j] = 1
					}
				}
			}
		}
		qn, kn := s.B*s.NH*s.Nq*s.D, s.B*s.NH*s.Nk*s.D
		att := make([]float64, s.B*s.NH*s.Nq*s.Nk)
		scratch := make([]float64, len(att))
		cases = append(cases, gradCase{
			name: ac.name, sizes: []int{qn, kn, kn}, outSize: qn,
			forward: func(out []float64, in [][]float64) {
				AttentionForward(out, att, in[0], in[1], in[2], scale, mask, s)
			},
			backward: func(g [][]float64, dout []float64, in [][]float64) {
				AttentionBackward(g[0], g[1], g[2], scratch, dout, att, in[0], in[1], in[2], scale, s)
			},
		})
	}
	{
		A, B, C, D := 2, 3, 4, 2
		cases = append(cases, gradCase{name: "permute0213", sizes: []int{A * B * C * D}, outSize: A * B * C * D,
			forward:  func(out []float64, in [][]float64) { Permute0213(out, in[0], A, B, C, D) },
			backward: func(g [][]float64, dout []float64, in [][]float64) { Permute0213Backward(g[0], dout, A, B, C, D) }})
	}
	{
		V, C := 5, 3
		tokens := []int32{1, 4, 1, 0, 1, 3}
		cases = append(cases, gradCase{name: "embedding_repeated_tokens", sizes: []int{V * C}, outSize: len(tokens) * C,
			forward:  func(out []float64, in [][]float64) { EmbeddingForward(out, in[0], tokens, V, C) },
			backward: func(g [][]float64, dout []float64, in [][]float64) { EmbeddingBackward(g[0], dout, tokens, V, C) }})
	}
	{
		N, H, W := 3, 3, 4
		cases = append(cases, gradCase{name: "upsample_nearest_2x", sizes: []int{N * H * W}, outSize: N * 4 * H * W,
			forward:  func(out []float64, in [][]float64) { UpsampleNearest2xForward(out, in[0], N, H, W) },
			backward: func(g [][]float64, dout []float64, in [][]float64) { UpsampleNearest2xBackward(g[0], dout, N, H, W) }})
	}
	for _, hw := range [][2]int{{4, 6}, {5, 5}} {
		N, H, W := 2, hw[0], hw[1]
		cases = append(cases, gradCase{name: "avg_pool_2x2_" + itoa(H) + "x" + itoa(W), sizes: []int{N * H * W}, outSize: N * (H / 2) * (W / 2),
			forward:  func(out []float64, in [][]float64) { AvgPool2xForward(out, in[0], N, H, W) },
			backward: func(g [][]float64, dout []float64, in [][]float64) { AvgPool2xBackward(g[0], dout, N, H, W) }})
	}
	cases = append(cases, gradCase{name: "residual_add", sizes: []int{10, 10}, outSize: 10,
		forward: func(out []float64, in [][]float64) { AddForward(out, in[0], in[1], 10) },
		backward: func(g [][]float64, dout []float64, in [][]float64) {
			Accumulate(g[0], dout, 10)
			Accumulate(g[1], dout, 10)
		}})
	{
		B, C, HW := 2, 3, 5
		cases = append(cases,
			gradCase{name: "scale_shift", sizes: []int{B * C * HW, B * C, B * C}, outSize: B * C * HW,
				forward: func(out []float64, in [][]float64) { ScaleShiftForward(out, in[0], in[1], in[2], B, C, HW) },
				backward: func(g [][]float64, dout []float64, in [][]float64) {
					ScaleShiftBackward(g[0], g[1], g[2], dout, in[0], in[1], B, C, HW)
				}},
			gradCase{name: "broadcast_add_bias", sizes: []int{B * C * HW, B * C}, outSize: B * C * HW,
				forward: func(out []float64, in [][]float64) { ScaleShiftForward(out, in[0], nil, in[1], B, C, HW) },
				backward: func(g [][]float64, dout []float64, in [][]float64) {
					ScaleShiftBackward(g[0], nil, g[1], dout, in[0], nil, B, C, HW)
				}},
			gradCase{name: "concat_channels", sizes: []int{B * C * HW, B * 2 * HW}, outSize: B * (C + 2) * HW,
				forward: func(out []float64, in [][]float64) { ConcatChannelsForward(out, in[0], in[1], B, C, 2, HW) },
				backward: func(g [][]float64, dout []float64, in [][]float64) {
					ConcatChannelsBackward(g[0], g[1], dout, B, C, 2, HW)
				}},
		)
	}
	for _, weighted := range []bool{true, false} {
		B, C, HW := 2, 3, 4
		rng := rand.New(rand.NewPCG(7, 7))
		eps := randSlice(rng, B*C*HW)
		var w []float64
		name := "mse_plain"
		if weighted {
			name = "mse_weighted_latent_mask"
			w = make([]float64, B*HW)
			for i := range w {
				w[i] = 1 + 0.1*float64(i%2)
			}
		}
		cases = append(cases, gradCase{name: name, sizes: []int{B * C * HW}, outSize: 1,
			forward: func(out []float64, in [][]float64) { out[0] = WeightedMSEForward(in[0], eps, w, B, C, HW) },
			backward: func(g [][]float64, dout []float64, in [][]float64) {
				WeightedMSEBackward(g[0], in[0], eps, w, dout[0], B, C, HW)
			}})
	}
	return cases
}

// forceSplit makes every parallelFor split its work (even tiny shapes) across
// four chunks, and returns the function restoring the defaults.
func forceSplit() func() {
	was, procs := minChunkWork, runtime.GOMAXPROCS(4)
	minChunkWork = 1
	return func() { minChunkWork = was; runtime.GOMAXPROCS(procs) }
}

func nilIfEmpty(s []float64) []float64 {
	if len(s) == 0 {
		return nil
	}
	return s
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestBackwardMatchesFiniteDifferences(t *testing.T) {
	defer forceSplit()()
	def := convMinCols
	defer func() { convMinCols = def }()
	// Conv groups: one sample per GEMM, groups of 2 (a partial last group for
	// B=3 at 30 output pixels), and the default (whole small batches).
	for _, cols := range []int{1, 40, def} {
		convMinCols = cols
		for _, path := range gemmPaths(t) {
			for _, c := range gradCases() {
				if cols != def && !strings.HasPrefix(c.name, "conv") {
					continue
				}
				t.Run(path+"/conv_min_cols="+itoa(cols)+"/"+c.name, func(t *testing.T) {
					useGemmPath(path)
					rng := rand.New(rand.NewPCG(1, uint64(len(c.name))))
					in := make([][]float64, len(c.sizes))
					for i, n := range c.sizes {
						in[i] = randSlice(rng, n)
					}
					r := randSlice(rng, c.outSize)
					out := make([]float64, c.outSize)
					loss := func() float64 {
						c.forward(out, in)
						var s float64
						for i := range out {
							s += out[i] * r[i]
						}
						return s
					}
					// Gradients start non-zero to check that backward accumulates.
					pre := make([][]float64, len(in))
					grads := make([][]float64, len(in))
					for i, n := range c.sizes {
						pre[i] = randSlice(rng, n)
						grads[i] = append([]float64(nil), pre[i]...)
					}
					loss()
					c.backward(grads, r, in)
					const h = 1e-5
					for i := range in {
						if len(in[i]) == 0 {
							continue
						}
						analytic := make([]float64, len(in[i]))
						numeric := make([]float64, len(in[i]))
						for j := range in[i] {
							analytic[j] = grads[i][j] - pre[i][j]
							x := in[i][j]
							in[i][j] = x + h
							lp := loss()
							in[i][j] = x - h
							lm := loss()
							in[i][j] = x
							numeric[j] = (lp - lm) / (2 * h)
						}
						e := relErr(analytic, numeric)
						if e > 1e-6 || math.IsNaN(e) {
							t.Errorf("input %d: relative error %.3g (analytic %v, numeric %v)", i, e, head(analytic), head(numeric))
						}
						if testing.Verbose() {
							t.Logf("input %d: relative error %.2g over %d elements", i, e, len(in[i]))
						}
					}
				})
			}
		}
	}
}

func head(s []float64) []float64 { return s[:min(len(s), 6)] }
