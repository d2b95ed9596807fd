package fid

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kediff/kediff/internal/pyref"
)

// featureSet is n feature vectors of dim values: k latent factors mixed into
// the dimensions plus noise, like a network's features, with the first dead
// dimensions always zero (a ReLU that never fires).
func featureSet(seed uint64, n, dim, k, dead int, shift float64) []float32 {
	return featureSetDead(seed, n, dim, k, 0, dead, shift)
}

// featureSetDead is featureSet with the dead dimensions [from, to).
func featureSetDead(seed uint64, n, dim, k, from, to int, shift float64) []float32 {
	r := rand.New(rand.NewPCG(seed, 11))
	w := make([]float64, k*dim)
	wr := rand.New(rand.NewPCG(99, 5)) // the same mixing for every set
	for i := range w {
		w[i] = wr.NormFloat64()
	}
	f := make([]float32, n*dim)
	lat := make([]float64, k)
	for i := 0; i < n; i++ {
		for j := range lat {
			lat[j] = r.NormFloat64() + shift
		}
		for d := 0; d < dim; d++ {
			if d >= from && d < to {
				continue
			}
			v := 0.1 * r.NormFloat64()
			for j, l := range lat {
				v += l * w[j*dim+d]
			}
			f[i*dim+d] = float32(math.Max(v, 0))
		}
	}
	return f
}

type refCase struct {
	Op       string `json:"op"`
	Features string `json:"features,omitempty"`
	Out      string `json:"out,omitempty"`
	A        string `json:"a,omitempty"`
	B        string `json:"b,omitempty"`
	Dims     int    `json:"dims,omitempty"`
}

type refResult struct {
	FID     float64 `json:"fid"`
	Warning string  `json:"warning"`
}

func runRef(t *testing.T, cases []refCase) []refResult {
	t.Helper()
	py := pyref.Venv(t, "pytorch_fid", "scipy")
	dir := t.TempDir()
	js, _ := json.Marshal(cases)
	manifest := filepath.Join(dir, "cases.json")
	if err := os.WriteFile(manifest, js, 0o644); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(pyref.Root(t), "tools", "eval", "fid_ref.py")
	cmd := exec.Command(py, script, manifest)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, stderr.String())
	}
	var res []refResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	return res
}

func writeFeatures(t *testing.T, path string, f []float32, n, dim int) {
	t.Helper()
	d := make([]float64, len(f))
	for i, v := range f {
		d[i] = float64(v)
	}
	w, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeNPY(w, []int{n, dim}, d); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

var frechetCases = []struct {
	name                string
	n, dim, k, dead     int
	deadB               int // the second set's dead dimensions start here
	na                  int // second set's size; 0 = n
	shift               float64
	identical, wantWarn bool
}{
	{name: "well_conditioned_dim8", n: 200, dim: 8, k: 8, shift: 0.3},
	{name: "dim64_low_rank_factors", n: 500, dim: 64, k: 10, shift: 0.2},
	{name: "dim300_several_blocks", n: 1000, dim: 300, k: 40, shift: 0.1},
	{name: "fewer_images_than_dims_singular", n: 20, dim: 64, k: 64, shift: 0.5},
	{name: "dead_features_exact_zero_rows", n: 100, dim: 16, k: 4, dead: 3, shift: 0.5},
	{name: "dead_in_one_set_each_sqrtm_fails", n: 100, dim: 16, k: 6, dead: 1, deadB: 1, shift: 0.5, wantWarn: true},
	{name: "dead_in_one_set_each_multiblock", n: 400, dim: 130, k: 20, dead: 2, deadB: 5, shift: 0.2},
	{name: "identical_sets", n: 300, dim: 32, k: 32, identical: true},
}

// backends are the linear algebra paths a distance can take: OpenBLAS's
// LAPACK, when it loads here, and gonum's pure Go.
func backends(t *testing.T) []string {
	if SetLAPACK(true); Backend() == "go" {
		t.Log("OpenBLAS not loaded: testing the pure-Go path only")
		return []string{"go"}
	}
	return []string{"openblas", "go"}
}

// useBackend switches to the named backend until the test ends.
func useBackend(t *testing.T, name string) {
	was := SetLAPACK(name == "openblas")
	t.Cleanup(func() { SetLAPACK(was) })
}

// TestFrechetMatchesPytorchFID computes statistics with numpy (through
// fid_ref.py), reads them with ReadNPZ, checks ComputeStats against them, and
// compares FrechetDistance, on each backend, with pytorch-fid's
// calculate_frechet_distance.
func TestFrechetMatchesPytorchFID(t *testing.T) {
	dir := t.TempDir()
	var cases []refCase
	type sets struct{ a, b []float32 }
	var data []sets
	for i, fc := range frechetCases {
		a := featureSet(uint64(2*i), fc.n, fc.dim, fc.k, fc.dead, 0)
		b := featureSetDead(uint64(2*i+1), fc.n, fc.dim, fc.k, fc.deadB, fc.deadB+fc.dead, fc.shift)
		if fc.identical {
			b = a
		}
		data = append(data, sets{a, b})
		fa, fb := filepath.Join(dir, fc.name+"_a.npy"), filepath.Join(dir, fc.name+"_b.npy")
		sa, sb := filepath.Join(dir, fc.name+"_a.npz"), filepath.Join(dir, fc.name+"_b.npz")
		writeFeatures(t, fa, a, fc.n, fc.dim)
		writeFeatures(t, fb, b, fc.n, fc.dim)
		cases = append(cases,
			refCase{Op: "stats", Features: fa, Out: sa},
			refCase{Op: "stats", Features: fb, Out: sb},
			refCase{Op: "frechet", A: sa, B: sb})
	}
	res := runRef(t, cases)
	for i, fc := range frechetCases {
		t.Run(fc.name, func(t *testing.T) {
			npA, err := ReadNPZFile(filepath.Join(dir, fc.name+"_a.npz"))
			if err != nil {
				t.Fatal(err)
			}
			npB, err := ReadNPZFile(filepath.Join(dir, fc.name+"_b.npz"))
			if err != nil {
				t.Fatal(err)
			}
			want := res[3*i+2]
			for _, be := range backends(t) {
				t.Run(be, func(t *testing.T) {
					useBackend(t, be)
					ourA, err := ComputeStats(data[i].a, fc.n, fc.dim)
					if err != nil {
						t.Fatal(err)
					}
					ourB, err := ComputeStats(data[i].b, fc.n, fc.dim)
					if err != nil {
						t.Fatal(err)
					}
					scale := 0.0
					for j := 0; j < fc.dim; j++ {
						scale = max(scale, npA.Sigma[j*fc.dim+j], math.Abs(npA.Mu[j]))
					}
					if e := maxAbsDiff(ourA.Mu, npA.Mu); e > 1e-12*scale {
						t.Errorf("ComputeStats mu differs from np.mean by %g", e)
					}
					if e := maxAbsDiff(ourA.Sigma, npA.Sigma); e > 1e-12*scale {
						t.Errorf("ComputeStats sigma differs from np.cov by %g", e)
					}
					checkFrechet(t, fc.identical, fc.wantWarn, npA, npB, ourA, ourB, want)
				})
			}
		})
	}
}

// checkFrechet compares the distances of the statistics numpy computed (npA,
// npB) and of ours with pytorch-fid's.
func checkFrechet(t *testing.T, identical, wantWarn bool, npA, npB, ourA, ourB Stats, want refResult) {
	dim := npA.Dim
	var warned []string
	got, err := FrechetDistanceFunc(npA, npB, func(m string) { warned = append(warned, m) })
	if err != nil {
		t.Fatal(err)
	}
	ours, err := FrechetDistanceFunc(ourA, ourB, nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := 0.0
	for j := 0; j < dim; j++ {
		tr += npA.Sigma[j*dim+j] + npB.Sigma[j*dim+j]
	}
	rel := math.Abs(got-want.FID) / math.Max(math.Abs(want.FID), 1e-300)
	t.Logf("FID ours %.12g, pytorch-fid %.12g: relative error %.3g (|diff|/trace %.3g); warnings ours %q, pytorch-fid %q",
		got, want.FID, rel, math.Abs(got-want.FID)/tr, warned, want.Warning)
	if (len(warned) > 0) != (want.Warning != "") || (len(warned) > 0 && warned[0] != want.Warning) {
		t.Errorf("warnings: ours %q, pytorch-fid %q", warned, want.Warning)
	}
	if wantWarn && len(warned) == 0 {
		t.Errorf("no %q warning: the test no longer reaches the eps fallback", SingularWarning)
	}
	if identical {
		if math.Abs(got) > 1e-6*tr || math.Abs(ours) > 1e-6*tr {
			t.Errorf("FID of identical sets = %g (from our stats %g), want ~0 (pytorch-fid %g)", got, ours, want.FID)
		}
		return
	}
	if rel > 1e-6 {
		t.Errorf("FID %.12g, pytorch-fid %.12g: relative error %.3g > 1e-6", got, want.FID, rel)
	}
	if r2 := math.Abs(ours-want.FID) / math.Abs(want.FID); r2 > 1e-6 {
		t.Errorf("FID from ComputeStats %.12g, pytorch-fid %.12g: relative error %.3g > 1e-6", ours, want.FID, r2)
	}
}

// TestBackendsAgree computes distances with OpenBLAS's LAPACK and with
// gonum: the same algorithm in two implementations, so they agree to
// rounding, 1e-10 relative on a well-conditioned 300-dimensional case (five
// blocks of the triangular root). With fewer images than dimensions the
// product is singular, its Schur form complex, and the two QR iterations'
// rounding moves the distance by ~2e-9 (the gonum path differs from
// pytorch-fid by as much, see TestFrechetMatchesPytorchFID), hence 1e-8.
func TestBackendsAgree(t *testing.T) {
	if len(backends(t)) < 2 {
		t.Skip("OpenBLAS not loaded (install libopenblas0 or set KEDIFF_OPENBLAS)")
	}
	for _, c := range []struct {
		name       string
		n, dim, k  int
		shift, tol float64
	}{
		{"dim300_real", 1000, 300, 40, 0.1, 1e-10},
		{"dim300_fewer_images_complex", 200, 300, 300, 0.3, 1e-8},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, err := ComputeStats(featureSet(7, c.n, c.dim, c.k, 0, 0), c.n, c.dim)
			if err != nil {
				t.Fatal(err)
			}
			b, err := ComputeStats(featureSet(8, c.n, c.dim, c.k, 0, c.shift), c.n, c.dim)
			if err != nil {
				t.Fatal(err)
			}
			var d [2]float64
			for i, be := range []string{"openblas", "go"} {
				was := SetLAPACK(be == "openblas")
				d[i], err = FrechetDistanceFunc(a, b, nil)
				SetLAPACK(was)
				if err != nil {
					t.Fatalf("%s: %v", be, err)
				}
			}
			rel := math.Abs(d[0]-d[1]) / math.Abs(d[1])
			t.Logf("openblas %.15g, go %.15g: relative difference %.3g", d[0], d[1], rel)
			if rel > c.tol {
				t.Errorf("openblas %.15g, go %.15g: relative difference %.3g > %g", d[0], d[1], rel, c.tol)
			}
		})
	}
}

func maxAbsDiff(a, b []float64) float64 {
	m := 0.0
	for i := range a {
		m = max(m, math.Abs(a[i]-b[i]))
	}
	return m
}

// TestNPZReadByPytorchFID writes statistics with WriteNPZ and has pytorch-fid's
// calculate_fid_given_paths read them.
func TestNPZReadByPytorchFID(t *testing.T) {
	dir := t.TempDir()
	var cases []refCase
	var want []float64
	for i, dim := range []int{5, 64} {
		a, err := ComputeStats(featureSet(uint64(40+i), 100, dim, 6, 0, 0), 100, dim)
		if err != nil {
			t.Fatal(err)
		}
		b, err := ComputeStats(featureSet(uint64(50+i), 100, dim, 6, 0, 0.4), 100, dim)
		if err != nil {
			t.Fatal(err)
		}
		pa, pb := filepath.Join(dir, fmt.Sprintf("a%d.npz", i)), filepath.Join(dir, fmt.Sprintf("b%d.npz", i))
		if err := WriteNPZFile(pa, a); err != nil {
			t.Fatal(err)
		}
		if err := WriteNPZFile(pb, b); err != nil {
			t.Fatal(err)
		}
		d, err := FrechetDistanceFunc(a, b, nil)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, d)
		cases = append(cases, refCase{Op: "paths", A: pa, B: pb, Dims: dim})
		back, err := ReadNPZFile(pa)
		if err != nil {
			t.Fatal(err)
		}
		if maxAbsDiff(back.Mu, a.Mu) != 0 || maxAbsDiff(back.Sigma, a.Sigma) != 0 {
			t.Errorf("dim %d: ReadNPZ(WriteNPZ(s)) != s", dim)
		}
	}
	res := runRef(t, cases)
	for i, r := range res {
		if rel := math.Abs(r.FID-want[i]) / want[i]; rel > 1e-6 {
			t.Errorf("case %d: calculate_fid_given_paths on our .npz = %.12g, ours %.12g (relative error %.3g)", i, r.FID, want[i], rel)
		}
	}
}

// BenchmarkFrechet2048 is the size of Inception's pool3 features, on each
// backend.
func BenchmarkFrechet2048(b *testing.B) {
	const n, dim = 3000, 2048
	sa, err := ComputeStats(featureSet(1, n, dim, 300, 0, 0), n, dim)
	if err != nil {
		b.Fatal(err)
	}
	sb, err := ComputeStats(featureSet(2, n, dim, 300, 0, 0.1), n, dim)
	if err != nil {
		b.Fatal(err)
	}
	for _, be := range []string{"openblas", "go"} {
		b.Run(be, func(b *testing.B) {
			was := SetLAPACK(be == "openblas")
			defer SetLAPACK(was)
			if be == "openblas" && Backend() == "go" {
				b.Skip("OpenBLAS not loaded")
			}
			for b.Loop() {
				if _, err := FrechetDistanceFunc(sa, sb, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
