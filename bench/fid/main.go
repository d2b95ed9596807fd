// Command fid is the Fréchet distance benchmark (task bench-fid).
//
// It makes two sets of Inception-sized features from a fixed seed (5000
// images x 2048 dimensions: latent factors mixed into the dimensions, noise,
// a ReLU, the second set shifted), computes their statistics with
// fid.ComputeStats, writes them as pytorch-fid .npz files, and times the
// distance between them: kediff's fid.FrechetDistance on OpenBLAS's LAPACK,
// next to pytorch-fid's calculate_frechet_distance (scipy's sqrtm, on the
// same OpenBLAS) through tools/eval/fid_bench.py in the tools venv, rounds
// alternating, both sides with the same OpenBLAS threads. It prints the
// median of each, their ratio (kediff / pytorch-fid; below 1 is faster) and
// the relative difference of the two distances, then times kediff's pure-Go
// fallback (gonum, used without cgo or OpenBLAS) once.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"

	"github.com/kediff/kediff/bench/internal/benchrun"
	"github.com/kediff/kediff/eval/fid"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

func main() {
	n := flag.Int("n", 5000, "images per set")
	dim := flag.Int("dim", 2048, "feature dimension (Inception pool3: 2048)")
	k := flag.Int("factors", 256, "latent factors mixed into the features")
	rounds := flag.Int("rounds", 2, "rounds of a kediff distance then a pytorch-fid one")
	goRounds := flag.Int("go-rounds", 1, "timed distances on the pure-Go fallback (0: skip)")
	threads := flag.Int("threads", runtime.GOMAXPROCS(0), "OpenBLAS threads, both sides (OPENBLAS_NUM_THREADS)")
	python := flag.String("python", ".cache/venv/bin/python", "python with pytorch-fid and scipy (the tools venv)")
	ref := flag.String("reference", "tools/eval/fid_bench.py", "the pytorch-fid timing script")
	dir := flag.String("dir", "out/bench-fid", "working folder (the .npz statistics)")
	flag.Parse()
	if err := run(*n, *dim, *k, *rounds, *goRounds, *threads, *python, *ref, *dir); err != nil {
		log.Fatal(err)
	}
}

// pyResult is fid_bench.py's line.
type pyResult struct {
	FID     float64 `json:"fid"`
	Seconds float64 `json:"seconds"`
	Warning string  `json:"warning"`
	Scipy   string  `json:"scipy"`
	Numpy   string  `json:"numpy"`
}

func run(n, dim, k, rounds, goRounds, threads int, python, ref, dir string) error {
	// OpenBLAS reads its thread count once, when it is loaded (by the first
	// distance below); the child inherits the same setting.
	os.Setenv("OPENBLAS_NUM_THREADS", strconv.Itoa(threads))
	fmt.Printf("machine: %s, %d cores, GOMAXPROCS %d; OpenBLAS threads %d (both sides)\n",
		benchrun.CPUModel(), runtime.NumCPU(), runtime.GOMAXPROCS(0), threads)

	stats := make([]fid.Stats, 2)
	paths := make([]string, 2)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i := range stats {
		f := features(uint64(i+1), n, dim, k, 0.1*float64(i))
		var err error
		if stats[i], err = fid.ComputeStats(f, n, dim); err != nil {
			return err
		}
		paths[i] = filepath.Join(dir, fmt.Sprintf("set%d.npz", i))
		if err := fid.WriteNPZFile(paths[i], stats[i]); err != nil {
			return err
		}
	}
	fmt.Printf("statistics: 2 sets of %d images x %d features (%d latent factors), in %s\n", n, dim, k, dir)

	warm := fid.Stats{Mu: make([]float64, 2), Sigma: []float64{1, 0, 0, 1}, Dim: 2}
	if _, err := fid.FrechetDistanceFunc(warm, warm, nil); err != nil { // loads OpenBLAS
		return err
	}
	fmt.Printf("kediff linear algebra: %s\n", fid.Backend())
	if fid.Backend() == "go" {
		log.Print("warning: OpenBLAS did not load, so both kediff timings are the pure-Go path")
	}

	var ours, theirs []benchrun.Timing
	var dOurs float64
	var py pyResult
	for range rounds {
		t, err := benchrun.Time(func() (float64, error) { return fid.FrechetDistanceFunc(stats[0], stats[1], nil) })
		if err != nil {
			return err
		}
		ours, dOurs = append(ours, t), t.Loss
		if py, err = pytorchFID(python, ref, paths); err != nil {
			return err
		}
		theirs = append(theirs, benchrun.Timing{Wall: py.Seconds, Loss: py.FID})
	}
	mo, mt := benchrun.Median(ours, benchrun.WallOf), benchrun.Median(theirs, benchrun.WallOf)
	fmt.Printf("pytorch-fid 0.3.0 calculate_frechet_distance (scipy %s, numpy %s): %.3f s (median of %s)\n", py.Scipy, py.Numpy, mt, benchrun.Walls(theirs))
	fmt.Printf("kediff fid.FrechetDistance:                                     %.3f s (median of %s; %.2f CPU-s per distance)\n", mo, benchrun.Walls(ours), benchrun.Median(ours, benchrun.CPUOf))
	fmt.Printf("ratio kediff / pytorch-fid: %.3f\n", mo/mt)
	fmt.Printf("FID kediff %.12g, pytorch-fid %.12g: relative difference %.3g\n", dOurs, py.FID, math.Abs(dOurs-py.FID)/math.Abs(py.FID))
	if py.Warning != "" {
		fmt.Printf("pytorch-fid warned: %s\n", py.Warning)
	}

	if goRounds > 0 {
		was := fid.SetLAPACK(false)
		var gs []benchrun.Timing
		for range goRounds {
			t, err := benchrun.Time(func() (float64, error) { return fid.FrechetDistanceFunc(stats[0], stats[1], nil) })
			if err != nil {
				return err
			}
			gs = append(gs, t)
		}
		fid.SetLAPACK(was)
		mg := benchrun.Median(gs, benchrun.WallOf)
		fmt.Printf("kediff pure-Go fallback (gonum):                                %.3f s (%s; ratio to pytorch-fid %.2f), FID %.12g (relative to pytorch-fid %.3g)\n",
			mg, benchrun.Walls(gs), mg/mt, gs[0].Loss, math.Abs(gs[0].Loss-py.FID)/math.Abs(py.FID))
	}
	return nil
}

// pytorchFID runs fid_bench.py on the two .npz files once.
func pytorchFID(python, ref string, paths []string) (pyResult, error) {
	cmd := exec.Command(python, ref, paths[0], paths[1])
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return pyResult{}, fmt.Errorf("%s %s: %w (run go tool task setup for the tools venv with pytorch-fid, or pass -python)", python, ref, err)
	}
	var r pyResult
	if err := json.Unmarshal(bytes.TrimSpace(out), &r); err != nil {
		return pyResult{}, fmt.Errorf("%s: %w in %q", ref, err, out)
	}
	return r, nil
}

// features is n x dim float32 features shaped like a network's: k latent
// factors (shifted by shift) mixed into every dimension by a fixed matrix,
// a per-dimension scale and noise, then a ReLU, so the covariance has a few
// hundred strong directions over a full-rank floor, as Inception's does.
func features(seed uint64, n, dim, k int, shift float64) []float32 {
	r := rand.New(rand.NewPCG(seed, 11))
	wr := rand.New(rand.NewPCG(99, 5)) // the same mixing for both sets
	w := make([]float64, k*dim)
	for i := range w {
		w[i] = wr.NormFloat64() / math.Sqrt(float64(k))
	}
	for d := range dim {
		s := math.Exp(wr.NormFloat64()) // dimensions of different scales
		for j := range k {
			w[j*dim+d] *= s
		}
	}
	lat := make([]float64, n*k)
	for i := range lat {
		lat[i] = r.NormFloat64() + shift
	}
	x := make([]float64, n*dim)
	gonum.Implementation{}.Dgemm(blas.NoTrans, blas.NoTrans, n, dim, k, 1, lat, k, w, dim, 0, x, dim)
	f := make([]float32, n*dim)
	for i, v := range x {
		f[i] = float32(max(v+0.1*r.NormFloat64(), 0))
	}
	return f
}
