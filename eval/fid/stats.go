package fid

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// Stats are the Gaussian statistics of a set's features: what pytorch-fid's
// calculate_activation_statistics returns and its .npz files hold.
type Stats struct {
	// Mu is the mean feature, Dim values.
	Mu []float64
	// Sigma is the covariance, Dim x Dim row-major, with the unbiased (N-1)
	// normalisation of np.cov.
	Sigma []float64
	// Dim is the feature dimension.
	Dim int
	// N is the number of images the statistics come from (0 when read from
	// an .npz file, which does not record it).
	N int
}

// ComputeStats returns the mean and covariance of n feature vectors of dim
// values each (features is n x dim, row-major), as pytorch-fid does with
// np.mean(act, axis=0) and np.cov(act, rowvar=False) in float64. At least two
// vectors are needed (a covariance of one is undefined), and every value must
// be finite.
func ComputeStats(features []float32, n, dim int) (Stats, error) {
	if dim <= 0 {
		return Stats{}, fmt.Errorf("fid: feature dimension %d, want > 0", dim)
	}
	if len(features) != n*dim {
		return Stats{}, fmt.Errorf("fid: %d feature values for %d images of %d features, want %d", len(features), n, dim, n*dim)
	}
	if n < 2 {
		return Stats{}, fmt.Errorf("fid: statistics of %d image(s): need at least 2 images for a covariance (and thousands for a meaningful FID)", n)
	}
	for i, v := range features {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return Stats{}, fmt.Errorf("fid: feature %d of image %d is %v: the feature network produced a non-finite value (check the model and its inputs)", i%dim, i/dim, v)
		}
	}
	mu := make([]float64, dim)
	for i := 0; i < n; i++ {
		row := features[i*dim : (i+1)*dim]
		for j, v := range row {
			mu[j] += float64(v)
		}
	}
	for j := range mu {
		mu[j] /= float64(n)
	}
	x := make([]float64, n*dim)
	for i := 0; i < n; i++ {
		row := features[i*dim : (i+1)*dim]
		xr := x[i*dim : (i+1)*dim]
		for j, v := range row {
			xr[j] = float64(v) - mu[j]
		}
	}
	sigma := make([]float64, dim*dim)
	// sigma = x^T x / (n-1); a full Dgemm is blocked and parallel where
	// Dsyrk is not, and gives an exactly symmetric result only up to
	// rounding, so the lower triangle is mirrored from the upper.
	// OpenBLAS, when it loaded, takes about 2 s for 5000 x 2048 features on
	// 2 cores, gonum 12 s.
	if useLAPACK() {
		blasDgemmTA(dim, dim, n, 1/float64(n-1), x, dim, x, dim, 0, sigma, dim)
	} else {
		gonum.Implementation{}.Dgemm(blas.Trans, blas.NoTrans, dim, dim, n, 1/float64(n-1), x, dim, x, dim, 0, sigma, dim)
	}
	for i := 0; i < dim; i++ {
		for j := i + 1; j < dim; j++ {
			sigma[j*dim+i] = sigma[i*dim+j]
		}
	}
	return Stats{Mu: mu, Sigma: sigma, Dim: dim, N: n}, nil
}

// check reports whether s is well formed.
func (s Stats) check(name string) error {
	if s.Dim <= 0 || len(s.Mu) != s.Dim || len(s.Sigma) != s.Dim*s.Dim {
		return fmt.Errorf("fid: statistics %s: mu has %d values and sigma %d for dimension %d, want %d and %d", name, len(s.Mu), len(s.Sigma), s.Dim, s.Dim, s.Dim*s.Dim)
	}
	return nil
}
