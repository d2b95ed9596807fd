package kernels

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"testing"
)

// refCase is one PyTorch fixture written by tools/kernels/make_refs.py.
type refCase struct {
	Name    string             `json:"name"`
	Op      string             `json:"op"`
	Args    map[string]float64 `json:"args"`
	Tensors map[string]struct {
		Offset int   `json:"offset"`
		Shape  []int `json:"shape"`
	} `json:"tensors"`
	data []float32
}

func (c *refCase) arg(k string) int { return int(c.Args[k]) }

// get returns a fresh copy of tensor k (kernels may write into it).
func (c *refCase) get(t *testing.T, k string) []float32 {
	t.Helper()
	tt, ok := c.Tensors[k]
	if !ok {
		t.Fatalf("fixture %s has no tensor %q", c.Name, k)
	}
	n := 1
	for _, d := range tt.Shape {
		n *= d
	}
	return append([]float32(nil), c.data[tt.Offset:tt.Offset+n]...)
}

func loadRefs(t *testing.T) []*refCase {
	t.Helper()
	raw, err := os.ReadFile("testdata/refs.bin")
	if err != nil {
		t.Fatalf("%v (regenerate with /usr/bin/python3 tools/kernels/make_refs.py)", err)
	}
	data := make([]float32, len(raw)/4)
	for i := range data {
		data[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	js, err := os.ReadFile("testdata/refs.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Cases []*refCase `json:"cases"`
	}
	if err := json.Unmarshal(js, &doc); err != nil {
		t.Fatalf("testdata/refs.json: %v", err)
	}
	for _, c := range doc.Cases {
		c.data = data
	}
	return doc.Cases
}

// TestForwardMatchesPyTorch runs the float32 CPU backend on PyTorch's inputs and
// compares outputs (and, where the fixture has them, gradients) by norm-wise
// relative error.
func TestForwardMatchesPyTorch(t *testing.T) {
	const tol = 1e-5
	for _, path := range gemmPaths(t) {
		for _, c := range loadRefs(t) {
			t.Run(path+"/"+c.Name, func(t *testing.T) {
				useGemmPath(path)
				check := func(what string, got []float32, want string) {
					t.Helper()
					e := relErr(got, c.get(t, want))
					if e > tol || math.IsNaN(e) {
						t.Errorf("%s: relative error %.3g > %g", what, e, tol)
					} else if testing.Verbose() {
						t.Logf("%s: relative error %.2g", what, e)
					}
				}
				var be Backend = &CPU{}
				switch c.Op {
				case "conv2d":
					s := ConvShape{B: c.arg("B"), C: c.arg("C"), H: c.arg("H"), W: c.arg("W"), OC: c.arg("OC"), K: c.arg("K"), Stride: c.arg("stride"), Pad: c.arg("pad")}
					inp, w, b := c.get(t, "inp"), c.get(t, "weight"), c.get(t, "bias")
					out := make([]float32, s.B*s.OC*s.OH()*s.OW())
					be.Conv2DForward(out, inp, w, b, s)
					check("out", out, "out")
					dx, dw, db := make([]float32, len(inp)), make([]float32, len(w)), make([]float32, len(b))
					be.Conv2DBackward(dx, dw, db, c.get(t, "dout"), inp, w, s)
					check("dinp", dx, "dinp")
					check("dweight", dw, "dweight")
					check("dbias", db, "dbias")
				case "group_norm":
					B, C, HW, G := c.arg("B"), c.arg("C"), c.arg("HW"), c.arg("G")
					inp, w, b := c.get(t, "inp"), c.get(t, "weight"), c.get(t, "bias")
					out, mean, rstd := make([]float32, len(inp)), make([]float32, B*G), make([]float32, B*G)
					be.GroupNormForward(out, mean, rstd, inp, w, b, B, C, HW, G, 1e-5)
					check("out", out, "out")
					dx, dw, db := make([]float32, len(inp)), make([]float32, C), make([]float32, C)
					be.GroupNormBackward(dx, dw, db, c.get(t, "dout"), inp, w, mean, rstd, B, C, HW, G)
					check("dinp", dx, "dinp")
					check("dweight", dw, "dweight")
					check("dbias", db, "dbias")
				case "layer_norm":
					N, C := c.arg("N"), c.arg("C")
					inp, w, b := c.get(t, "inp"), c.get(t, "weight"), c.get(t, "bias")
					out, mean, rstd := make([]float32, len(inp)), make([]float32, N), make([]float32, N)
					be.LayerNormForward(out, mean, rstd, inp, w, b, N, C, 1e-5)
					check("out", out, "out")
					dx, dw, db := make([]float32, len(inp)), make([]float32, C), make([]float32, C)
					be.LayerNormBackward(dx, dw, db, c.get(t, "dout"), inp, w, mean, rstd, N, C)
					check("dinp", dx, "dinp")
					check("dweight", dw, "dweight")
					check("dbias", db, "dbias")
				case "linear":
					N, C, OC := c.arg("N"), c.arg("C"), c.arg("OC")
					inp, w, b := c.get(t, "inp"), c.get(t, "weight"), c.get(t, "bias")
					out := make([]float32, N*OC)
					be.LinearForward(out, inp, w, b, N, C, OC)
					check("out", out, "out")
					dx, dw, db := make([]float32, len(inp)), make([]float32, len(w)), make([]float32, OC)
					be.LinearBackward(dx, dw, db, c.get(t, "dout"), inp, w, N, C, OC)
					check("dinp", dx, "dinp")
					check("dweight", dw, "dweight")
					check("dbias", db, "dbias")
				case "gelu", "silu":
					n := c.arg("n")
					inp := c.get(t, "inp")
					out, dx := make([]float32, n), make([]float32, n)
					if c.Op == "gelu" {
						be.GELUForward(out, inp, n)
						be.GELUBackward(dx, c.get(t, "dout"), inp, n)
					} else {
						be.SiLUForward(out, inp, n)
						be.SiLUBackward(dx, c.get(t, "dout"), inp, n)
					}
					check("out", out, "out")
					check("dinp", dx, "dinp")
				case "softmax":
					N, C := c.arg("N"), c.arg("C")
					out := make([]float32, N*C)
					be.SoftmaxForward(out, c.get(t, "inp"), N, C)
					check("out", out, "out")
				case "attention":
					s := AttentionShape{B: c.arg("B"), NH: c.arg("NH"), Nq: c.arg("Nq"), Nk: c.arg("Nk"), D: c.arg("D")}
					q, k, v := c.get(t, "q"), c.get(t, "k"), c.get(t, "v")
					scale, mask := c.get(t, "scale"), c.get(t, "mask")
					out, att := make([]float32, len(q)), make([]float32, s.B*s.NH*s.Nq*s.Nk)
					be.AttentionForward(out, att, q, k, v, scale, mask, s)
					check("att", att, "att")
					check("out", out, "out")
					dq, dk, dv := make([]float32, len(q)), make([]float32, len(k)), make([]float32, len(v))
					be.AttentionBackward(dq, dk, dv, make([]float32, len(att)), c.get(t, "dout"), att, q, k, v, scale, s)
					check("dq", dq, "dq")
					check("dk", dk, "dk")
					check("dv", dv, "dv")
				case "avg_pool", "upsample":
					N, H, W := c.arg("N"), c.arg("H"), c.arg("W")
					inp := c.get(t, "inp")
					dout := c.get(t, "dout")
					out, dx := make([]float32, len(c.get(t, "out"))), make([]float32, len(inp))
					if c.Op == "avg_pool" {
						be.AvgPool2xForward(out, inp, N, H, W)
						be.AvgPool2xBackward(dx, dout, N, H, W)
					} else {
						be.UpsampleNearest2xForward(out, inp, N, H, W)
						be.UpsampleNearest2xBackward(dx, dout, N, H, W)
					}
					check("out", out, "out")
					check("dinp", dx, "dinp")
				case "timestep_embedding":
					B, dim := c.arg("B"), c.arg("dim")
					out := make([]float32, B*dim)
					be.TimestepEmbedding(out, c.get(t, "t"), B, dim, 10000)
					check("out", out, "out")
				case "weighted_mse":
					B, C, HW := c.arg("B"), c.arg("C"), c.arg("HW")
					eps, hat, w := c.get(t, "eps"), c.get(t, "eps_hat"), c.get(t, "weight")
					loss := be.WeightedMSEForward(hat, eps, w, B, C, HW)
					check("loss", []float32{float32(loss)}, "loss")
					d := make([]float32, len(hat))
					be.WeightedMSEBackward(d, hat, eps, w, 1, B, C, HW)
					check("deps_hat", d, "deps_hat")
				case "adamw":
					var l Layout
					l.Add("w", 4, 5)
					l.Add("b", 7)
					p := NewParams(nil, &l)
					copy(p.Data, c.get(t, "p0"))
					cfg := AdamWConfig{LR: c.Args["lr"], Beta1: c.Args["beta1"], Beta2: c.Args["beta2"], Eps: c.Args["eps"], WeightDecay: c.Args["wd"]}
					norms := c.get(t, "norms")
					for step := 1; step <= 3; step++ {
						p.ZeroGrad()
						copy(p.Grad, c.get(t, "g"+itoa(step)))
						norm := p.ClipGradNorm(c.Args["max_norm"])
						if e := math.Abs(norm-float64(norms[step-1])) / float64(norms[step-1]); e > tol {
							t.Errorf("step %d: norm %g, torch %g", step, norm, norms[step-1])
						}
						p.AdamWStep(cfg)
						check("params after step "+itoa(step), p.Data, "p"+itoa(step))
					}
				default:
					t.Fatalf("fixture %s: unknown op %q", c.Name, c.Op)
				}
			})
		}
	}
}
