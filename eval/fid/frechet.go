package fid

import (
	"errors"
	"fmt"
	"log"
	"math"
	"math/cmplx"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
	"gonum.org/v1/gonum/lapack"
	lapackgo "gonum.org/v1/gonum/lapack/gonum"
)

// Eps is the offset pytorch-fid adds to both covariances' diagonals when the
// square root of their product is not finite.
const Eps = 1e-6

// SingularWarning is pytorch-fid's message when it falls back to the Eps
// offset, word for word.
var SingularWarning = fmt.Sprintf("fid calculation produces singular product; adding %s to diagonal of cov estimates", "1e-06")

// FrechetDistance is the Fréchet distance between two Gaussians,
// |mu1 - mu2|^2 + tr(sigma1) + tr(sigma2) - 2 tr(sqrtm(sigma1 sigma2)),
// computed as pytorch-fid 0.3.0's calculate_frechet_distance does (see
// FrechetDistanceFunc); its warning goes to the standard logger.
func FrechetDistance(a, b Stats) (float64, error) {
	return FrechetDistanceFunc(a, b, func(msg string) { log.Print("fid: ", msg) })
}

// FrechetDistanceFunc is FrechetDistance with pytorch-fid's warning (the
// singular-product fallback, SingularWarning) handed to warn, which may be
// nil.
//
// The square root follows scipy 1.10's linalg.sqrtm on the non-symmetric
// product sigma1 sigma2: a real Schur decomposition (converted to the complex
// Schur form, as rsf2csf does, when it has 2x2 blocks), the upper-triangular
// square-root recurrence in scipy's blocks of 64 (a zero divisor inside a
// block fails, one between blocks is perturbed as LAPACK's trsyl does), in
// complex arithmetic when the form is complex or has a negative eigenvalue,
// then Z R Z^H. The Schur form and the blocks between the diagonal blocks
// come from OpenBLAS's dgees and trsyl when it loaded (see Backend), as in
// scipy, else from gonum and the same recurrence element by element, which
// perturbs a small divisor as trsyl does. When that fails or is not
// finite, Eps is added to both diagonals and the square root retried. A complex result whose diagonal has
// an imaginary part above 1e-3 is an error, as in pytorch-fid; otherwise its
// real part is used.
func FrechetDistanceFunc(a, b Stats, warn func(msg string)) (float64, error) {
	if err := a.check("a"); err != nil {
		return 0, err
	}
	if err := b.check("b"); err != nil {
		return 0, err
	}
	if a.Dim != b.Dim {
		return 0, fmt.Errorf("fid: statistics of dimension %d and %d: both sets need features from the same network", a.Dim, b.Dim)
	}
	n := a.Dim
	for _, s := range [][]float64{a.Mu, a.Sigma, b.Mu, b.Sigma} {
		for _, v := range s {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return 0, errors.New("fid: statistics hold non-finite values (recompute them from finite features)")
			}
		}
	}
	prod := func(eps float64) []float64 {
		s1, s2 := a.Sigma, b.Sigma
		if eps != 0 {
			s1, s2 = append([]float64(nil), s1...), append([]float64(nil), s2...)
			for i := 0; i < n; i++ {
				s1[i*n+i] += eps
				s2[i*n+i] += eps
			}
		}
		p := make([]float64, n*n)
		if useLAPACK() {
			blasGemm(n, n, n, 1, s1, n, s2, n, 0, p, n)
		} else {
			gonum.Implementation{}.Dgemm(blas.NoTrans, blas.NoTrans, n, n, n, 1, s1, n, s2, n, 0, p, n)
		}
		return p
	}
	d, err := sqrtmDiag(prod(0), n)
	if err != nil || !d.finite {
		if warn != nil {
			warn(SingularWarning)
		}
		d, err = sqrtmDiag(prod(Eps), n)
		if err != nil {
			return 0, fmt.Errorf("fid: square root of the covariance product: %w", err)
		}
	}
	tr := 0.0
	if d.complex {
		m := 0.0
		for _, v := range d.im {
			m = max(m, math.Abs(v))
		}
		if !(m <= 1e-3) {
			return 0, fmt.Errorf("fid: imaginary component %g on the diagonal of sqrtm(sigma1 sigma2) (pytorch-fid fails here too): the covariances are too ill-conditioned; use more images than feature dimensions", m)
		}
	}
	for _, v := range d.re {
		tr += v
	}
	dd, t1, t2 := 0.0, 0.0, 0.0
	for i := 0; i < n; i++ {
		x := a.Mu[i] - b.Mu[i]
		dd += x * x
		t1 += a.Sigma[i*n+i]
		t2 += b.Sigma[i*n+i]
	}
	return dd + t1 + t2 - 2*tr, nil
}

// sqrtDiag is the diagonal of scipy's sqrtm(A).
type sqrtDiag struct {
	re, im  []float64
	complex bool // sqrtm's result is complex
	finite  bool // every value of the result is finite
}

var errSqrtm = errors.New("failed to find the matrix square root (a zero eigenvalue repeated)")

// sqrtmDiag returns the diagonal of scipy.linalg.sqrtm(a) for the n x n
// row-major a, which it overwrites.
func sqrtmDiag(a []float64, n int) (sqrtDiag, error) {
	t, z, err := schur(a, n)
	if err != nil {
		return sqrtDiag{}, err
	}
	triangular := true
	for i := 1; i < n && triangular; i++ {
		triangular = t[i*n+i-1] == 0
	}
	nonneg := true
	for i := 0; i < n; i++ {
		nonneg = nonneg && t[i*n+i] >= 0
	}
	if triangular && nonneg {
		r, err := sqrtTriu(t, n, realField)
		if err != nil {
			return sqrtDiag{}, err
		}
		re := diagZRZt(z, r, n)
		return sqrtDiag{re: re, im: make([]float64, n), finite: allFinite(re) && allFinite(r)}, nil
	}
	tc, zc := toComplex(t), toComplex(z)
	if !triangular {
		rsf2csf(tc, zc, n)
	}
	r, err := sqrtTriu(tc, n, complexField)
	if err != nil {
		return sqrtDiag{}, err
	}
	re, im := diagZRZh(zc, r, n)
	fin := allFinite(re) && allFinite(im)
	for _, v := range r {
		fin = fin && !cmplx.IsNaN(v) && !cmplx.IsInf(v)
	}
	return sqrtDiag{re: re, im: im, complex: true, finite: fin}, nil
}

// schur returns the real Schur form T and vectors Z of a (A = Z T Z^T), as
// LAPACK's dgees does for scipy.linalg.schur: OpenBLAS's dgees itself when
// it loaded, else schurGo. a is overwritten by T.
func schur(a []float64, n int) (t, z []float64, err error) {
	if !useLAPACK() {
		return schurGo(a, n)
	}
	ca := transpose(a, n) // dgees is column-major
	vs := make([]float64, n*n)
	if info := lapackDgees(n, ca, vs); info > 0 {
		return nil, nil, fmt.Errorf("the Schur decomposition did not converge (dgees info %d)", info)
	} else if info < 0 {
		panic(fmt.Sprintf("fid: dgees: argument %d is invalid", -info))
	}
	transposeTo(a, ca, n)
	return a, transpose(vs, n), nil
}

// transpose returns the transpose of the n x n x.
func transpose[T any](x []T, n int) []T {
	y := make([]T, n*n)
	transposeTo(y, x, n)
	return y
}

// transposeTo writes the transpose of the n x n x to y.
func transposeTo[T any](y, x []T, n int) {
	const b = 32 // in tiles, so that both sides stay in cache
	for i0 := 0; i0 < n; i0 += b {
		for j0 := 0; j0 < n; j0 += b {
			for i := i0; i < min(i0+b, n); i++ {
				for j := j0; j < min(j0+b, n); j++ {
					y[j*n+i] = x[i*n+j]
				}
			}
		}
	}
}

// schurGo is dgees in pure Go (gonum's LAPACK), step by step:
// permutation-only balancing (which isolates eigenvalues of zero rows and
// columns exactly, so that a singular product keeps its exact zeros),
// Hessenberg reduction, the QR algorithm, and the permutation undone on Z.
func schurGo(a []float64, n int) (t, z []float64, err error) {
	impl := lapackgo.Implementation{}
	scale := make([]float64, n)
	ilo, ihi := impl.Dgebal(lapack.Permute, n, a, n, scale)
	tau := make([]float64, max(n-1, 1))
	work := make([]float64, 1)
	impl.Dgehrd(n, ilo, ihi, a, n, tau, work, -1)
	work = make([]float64, max(int(work[0]), n))
	impl.Dgehrd(n, ilo, ihi, a, n, tau, work, len(work))
	z = append([]float64(nil), a...)
	impl.Dorghr(n, ilo, ihi, z, n, tau, work[:1], -1)
	if int(work[0]) > len(work) {
		work = make([]float64, int(work[0]))
	}
	impl.Dorghr(n, ilo, ihi, z, n, tau, work, len(work))
	for i := 2; i < n; i++ {
		clear(a[i*n : i*n+i-1])
	}
	wr, wi := make([]float64, n), make([]float64, n)
	impl.Dhseqr(lapack.EigenvaluesAndSchur, lapack.SchurOrig, n, ilo, ihi, a, n, wr, wi, z, n, work[:1], -1)
	if int(work[0]) > len(work) {
		work = make([]float64, int(work[0]))
	}
	if k := impl.Dhseqr(lapack.EigenvaluesAndSchur, lapack.SchurOrig, n, ilo, ihi, a, n, wr, wi, z, n, work, len(work)); k > 0 {
		return nil, nil, fmt.Errorf("the Schur decomposition did not converge (eigenvalue %d)", k)
	}
	impl.Dgebak(lapack.Permute, lapack.EVRight, n, ilo, ihi, scale, n, z, n)
	return a, z, nil
}

// blocks are scipy's _sqrtm_triu blocks: n/64 (at least one) nearly equal
// runs, the smaller ones first.
func blocks(n int) [][2]int {
	const blocksize = 64
	nb := max(n/blocksize, 1)
	bsmall, nlarge := n/nb, n%nb
	var out [][2]int
	start := 0
	for i := 0; i < nb; i++ {
		size := bsmall
		if i >= nb-nlarge {
			size++
		}
		out = append(out, [2]int{start, start + size})
		start += size
	}
	return out
}

// field is the arithmetic sqrtTriu needs beyond + - * /, for float64 (a
// real Schur form with a real spectrum) and complex128 (the complex Schur
// form).
type field[T float64 | complex128] struct {
	sqrt func(T) T
	abs  func(T) float64
	dot  func(n int, x, y []T) T // sum x[i] y[i], unconjugated
}

var (
	realField = field[float64]{math.Sqrt, math.Abs,
		func(n int, x, y []float64) float64 { return gonum.Implementation{}.Ddot(n, x, 1, y, 1) }}
	complexField = field[complex128]{cmplx.Sqrt, cmplx.Abs,
		func(n int, x, y []complex128) complex128 { return gonum.Implementation{}.Zdotu(n, x, 1, y, 1) }}
)

// sqrtTriu is scipy's _sqrtm_triu for an upper-triangular t (with a
// non-negative diagonal when real): R with R R = t, R upper triangular.
func sqrtTriu[T float64 | complex128](t []T, n int, f field[T]) ([]T, error) {
	r := make([]T, n*n)  // row-major R
	rt := make([]T, n*n) // R^T, so that columns of R are contiguous
	set := func(i, j int, v T) { r[i*n+j], rt[j*n+i] = v, v }
	for i := 0; i < n; i++ {
		set(i, i, f.sqrt(t[i*n+i]))
	}
	elem := func(i, j int) (num, denom T) {
		var s T
		if j-i > 1 {
			s = f.dot(j-i-1, r[i*n+i+1:], rt[j*n+i+1:])
		}
		return t[i*n+j] - s, r[i*n+i] + r[j*n+j]
	}
	bs := blocks(n)
	for _, b := range bs {
		for j := b[0]; j < b[1]; j++ {
			for i := j - 1; i >= b[0]; i-- {
				num, denom := elem(i, j)
				switch {
				case denom != 0:
					set(i, j, num/denom)
				case num == 0:
					set(i, j, 0)
				default:
					return nil, errSqrtm
				}
			}
		}
	}
	if useLAPACK() {
		trsylBlocks(t, r, n, bs)
		return r, nil
	}
	smlnum := 0x1p-1022 / dlamchEps // dlamch('S')/eps; trsyl scales it by the block size
	for jb := range bs {
		for ib := jb - 1; ib >= 0; ib-- {
			I, J := bs[ib], bs[jb]
			m := 0.0
			for _, b := range [][2]int{I, J} {
				for i := b[0]; i < b[1]; i++ {
					for j := i; j < b[1]; j++ {
						m = max(m, f.abs(r[i*n+j]))
					}
				}
			}
			smin := max(dlamchEps*m, smlnum*float64((I[1]-I[0])*(J[1]-J[0])))
			for j := J[0]; j < J[1]; j++ {
				for i := I[1] - 1; i >= I[0]; i-- {
					num, denom := elem(i, j)
					if f.abs(denom) <= smin {
						denom = fromReal[T](smin)
					}
					set(i, j, num/denom)
				}
			}
		}
	}
	return r, nil
}

// trsylBlocks fills the blocks of R above its diagonal blocks as scipy's
// _sqrtm_triu does, through OpenBLAS: block column by block column, bottom
// to top, S = T_IJ - R_IK R_KJ over the blocks K between I and J (a GEMM),
// then R_IJ = scale X with X from trsyl(R_II, R_JJ, S), which solves
// R_II X + X R_JJ = scale S (scale < 1 only against overflow; scipy
// multiplies by it, and so does this). t and r are row-major n x n.
func trsylBlocks[T float64 | complex128](t, r []T, n int, bs [][2]int) {
	diag := make([][]T, len(bs)) // the diagonal blocks, column-major for trsyl
	for k, b := range bs {
		diag[k] = colMajor(r, n, b, b)
	}
	for jb, J := range bs {
		nj := J[1] - J[0]
		for ib := jb - 1; ib >= 0; ib-- {
			I := bs[ib]
			mi := I[1] - I[0]
			s := make([]T, mi*nj) // row-major S
			for i := range mi {
				copy(s[i*nj:(i+1)*nj], t[(I[0]+i)*n+J[0]:(I[0]+i)*n+J[1]])
			}
			if k := J[0] - I[1]; k > 0 {
				blasGemm(mi, nj, k, -1, r[I[0]*n+I[1]:], n, r[I[1]*n+J[0]:], n, 1, s, nj)
			}
			c := colMajor(s, nj, [2]int{0, mi}, [2]int{0, nj})
			scale := lapackTrsyl(mi, nj, diag[ib], diag[jb], c)
			for j := range nj {
				for i := range mi {
					v := c[j*mi+i]
					if scale != 1 {
						v *= fromReal[T](scale)
					}
					r[(I[0]+i)*n+J[0]+j] = v
				}
			}
		}
	}
}

// colMajor copies the block rows I, columns J of the row-major x (row
// stride ld) into a column-major array.
func colMajor[T any](x []T, ld int, I, J [2]int) []T {
	m := I[1] - I[0]
	c := make([]T, m*(J[1]-J[0]))
	for i := I[0]; i < I[1]; i++ {
		for j := J[0]; j < J[1]; j++ {
			c[(j-J[0])*m+i-I[0]] = x[i*ld+j]
		}
	}
	return c
}

// fromReal is x as a T.
func fromReal[T float64 | complex128](x float64) T {
	var v T
	switch p := any(&v).(type) {
	case *float64:
		*p = x
	case *complex128:
		*p = complex(x, 0)
	}
	return v
}

// dlamchEps is LAPACK's dlamch('P'): the relative machine precision.
const dlamchEps = 0x1p-52

// rsf2csf converts the real Schur form t, z (held as complex) to the
// complex Schur form in place, as scipy.linalg.rsf2csf does: a Givens
// rotation built from an eigenvalue of each 2x2 diagonal block zeroes its
// subdiagonal entry.
func rsf2csf(t, z []complex128, n int) {
	const eps = 0x1p-52
	for m := n - 1; m > 0; m-- {
		if cmplx.Abs(t[m*n+m-1]) > eps*(cmplx.Abs(t[(m-1)*n+m-1])+cmplx.Abs(t[m*n+m])) {
			a, b, c, d := t[(m-1)*n+m-1], t[(m-1)*n+m], t[m*n+m-1], t[m*n+m]
			p := (a + d) / 2
			q := cmplx.Sqrt((a-d)*(a-d)/4 + b*c)
			mu := p + q
			if imag(p-q) > imag(mu) {
				mu = p - q
			}
			mu -= d
			rr := math.Hypot(cmplx.Abs(mu), cmplx.Abs(c))
			cc, ss := mu/complex(rr, 0), c/complex(rr, 0)
			// G = [[conj(cc), ss], [-ss, cc]] on rows m-1, m from column m-1.
			for j := m - 1; j < n; j++ {
				x, y := t[(m-1)*n+j], t[m*n+j]
				t[(m-1)*n+j] = cmplx.Conj(cc)*x + ss*y
				t[m*n+j] = -ss*x + cc*y
			}
			// G^H = [[cc, -conj(ss)], [conj(ss), conj(cc)]] on columns m-1, m.
			rot := func(x, y complex128) (complex128, complex128) {
				return x*cc + y*cmplx.Conj(ss), -x*cmplx.Conj(ss) + y*cmplx.Conj(cc)
			}
			for i := 0; i <= m; i++ {
				t[i*n+m-1], t[i*n+m] = rot(t[i*n+m-1], t[i*n+m])
			}
			for i := 0; i < n; i++ {
				z[i*n+m-1], z[i*n+m] = rot(z[i*n+m-1], z[i*n+m])
			}
		}
		t[m*n+m-1] = 0
	}
}

// diagZRZt returns the diagonal of Z R Z^T: (Z R)[i,:] . Z[i,:].
// With OpenBLAS, Z R is a triangular product (half a GEMM's work).
func diagZRZt(z, r []float64, n int) []float64 {
	bl := gonum.Implementation{}
	y := make([]float64, n*n)
	if useLAPACK() {
		copy(y, z)
		blasTrmmRightUpper(n, n, r, y)
	} else {
		bl.Dgemm(blas.NoTrans, blas.NoTrans, n, n, n, 1, z, n, r, n, 0, y, n)
	}
	d := make([]float64, n)
	for i := range d {
		d[i] = bl.Ddot(n, y[i*n:], 1, z[i*n:], 1)
	}
	return d
}

// diagZRZh returns the real and imaginary parts of the diagonal of Z R Z^H:
// with OpenBLAS, Z R as a complex triangular product, else as real gonum
// Dgemm calls (blocked and parallel, where gonum's Zgemm is neither).
func diagZRZh(z, r []complex128, n int) (re, im []float64) {
	if useLAPACK() {
		y := append([]complex128(nil), z...)
		blasTrmmRightUpper(n, n, r, y)
		re, im = make([]float64, n), make([]float64, n)
		for i := range n {
			var d complex128
			for k, v := range y[i*n : (i+1)*n] {
				d += v * cmplx.Conj(z[i*n+k])
			}
			re[i], im[i] = real(d), imag(d)
		}
		return re, im
	}
	bl := gonum.Implementation{}
	zr, zi := split(z)
	rr, ri := split(r)
	yr, yi := make([]float64, n*n), make([]float64, n*n)
	gemm := func(a, b []float64, alpha, beta float64, c []float64) {
		bl.Dgemm(blas.NoTrans, blas.NoTrans, n, n, n, alpha, a, n, b, n, beta, c, n)
	}
	gemm(zr, rr, 1, 0, yr)
	gemm(zr, ri, 1, 0, yi)
	if anyNonzero(zi) {
		gemm(zi, ri, -1, 1, yr)
		gemm(zi, rr, 1, 1, yi)
	}
	re, im = make([]float64, n), make([]float64, n)
	for i := 0; i < n; i++ {
		// y . conj(z) = (yr + i yi)(zr - i zi)
		re[i] = bl.Ddot(n, yr[i*n:], 1, zr[i*n:], 1) + bl.Ddot(n, yi[i*n:], 1, zi[i*n:], 1)
		im[i] = bl.Ddot(n, yi[i*n:], 1, zr[i*n:], 1) - bl.Ddot(n, yr[i*n:], 1, zi[i*n:], 1)
	}
	return re, im
}

func toComplex(x []float64) []complex128 {
	c := make([]complex128, len(x))
	for i, v := range x {
		c[i] = complex(v, 0)
	}
	return c
}

func split(x []complex128) (re, im []float64) {
	re, im = make([]float64, len(x)), make([]float64, len(x))
	for i, v := range x {
		re[i], im[i] = real(v), imag(v)
	}
	return re, im
}

func anyNonzero(x []float64) bool {
	for _, v := range x {
		if v != 0 {
			return true
		}
	}
	return false
}

func allFinite(x []float64) bool {
	for _, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}
