// Package fid computes the Fréchet Inception Distance (FID) between two image
// sets the way pytorch-fid 0.3.0 does, with clean-fid's "clean" resize, so
// that kediff's numbers compare with published ones.
//
// The steps, each usable alone:
//
//	e, err := fid.NewExtractor("inception.onnx", fid.ExtractorOptions{Batch: 32})
//	feats, err := e.Features(imgs)            // len(imgs) x e.Dim() float32
//	s, err := fid.ComputeStats(feats, len(imgs), e.Dim())
//	err = fid.WriteNPZFile("real.npz", s)     // pytorch-fid reads it
//	ref, err := fid.ReadNPZFile("ref.npz")    // ... and writes these
//	d, err := fid.FrechetDistance(s, ref)
//
// # Features
//
// NewExtractor opens a user-supplied ONNX feature network in pytorch-fid's
// layout: one float32 input [N, 3, S, S] taking RGB in [0, 1] (pytorch-fid's
// InceptionV3 normalises to [-1, 1] inside; S = 299) and one float32 output
// [N, D] or [N, D, 1, 1] (pool3, D = 2048). It checks the layout before any
// image and says what the model has and what is needed. Features converts
// each image to 8-bit RGB as PIL's convert("RGB") does (gray replicated,
// alpha dropped rather than composited, as pytorch-fid and clean-fid read
// files), resizes each channel as a float plane with PIL's bicubic filter
// (package pilresize, bit-exact), clips to [0, 255] and divides by 255, then
// runs the model in batches.
//
// # Statistics and .npz files
//
// ComputeStats is np.mean and np.cov(rowvar=False) in float64. WriteNPZ and
// ReadNPZ use pytorch-fid's .npz layout (arrays mu [D] and sigma [D, D],
// float64, .npy 1.0 inside a zip); reading also takes float32 arrays.
//
// # The distance
//
// FrechetDistance follows calculate_frechet_distance and scipy 1.10's sqrtm
// on the non-symmetric product sigma1 sigma2 (Schur form, complex when
// needed, the triangular square-root recurrence; see FrechetDistanceFunc),
// including the 1e-6 diagonal offset when the root is not finite and the
// error on a large imaginary part. Against pytorch-fid the relative
// difference is ~1e-14 on well-conditioned sets and ~2e-9 when there are
// fewer images than dimensions on the pure-Go path (below).
//
// # Linear algebra
//
// The Schur decomposition is LAPACK's dgees, the one scipy calls, from
// OpenBLAS loaded at run time as package kernels loads it (dlopen of
// $KEDIFF_OPENBLAS, else libopenblas.so.0; Debian's libopenblas0 carries
// LAPACK); the off-diagonal blocks of the triangular root are scipy's GEMM
// and trsyl, and the matrix products (ComputeStats's covariance too) are
// OpenBLAS GEMM and TRMM calls. With the same dgees as scipy the distance
// matches pytorch-fid to ~1e-14 even on a singular product, and a
// 2048-dimensional distance takes about as long as pytorch-fid's (6 s on 2
// cores, nearly all of it in dgees). Without OpenBLAS, or built without
// cgo, every step runs in pure Go (gonum, the same algorithm step by step):
// about 40 s at 2048 dimensions. Backend says which is in use; SetLAPACK
// switches for comparisons.
package fid
