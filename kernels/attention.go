package kernels

import "math"

// AttentionShape describes one multi-head attention call. Queries are the image
// tokens; keys and values are whatever the caller concatenated along the token
// axis (DESIGN.md 1.2: image tokens and projected text tokens, GLIDE puts the
// text first). KeyScale and KeyMask are per key, so token order is the caller's.
type AttentionShape struct {
	B, NH  int // batch, heads
	Nq, Nk int // query tokens, key/value tokens
	D      int // head width; logits are scaled by 1/sqrt(D)
}

// AttentionForward computes, per batch b and head h,
//
//	att[i, j] = softmax_j( s[b,j] * q_i . k_j / sqrt(D) )   over keys with mask[b,j] != 0
//	out[i]    = sum_j att[i, j] v_j
//
// q is (B,NH,Nq,D), k and v are (B,NH,Nk,D), keyScale (B,Nk) is the keyword
// weight vector s_j in {1, 1+w_a} of DESIGN.md 1.3 (nil means all 1), keyMask
// (B,Nk) is 1 for real keys and 0 for text padding (nil means no padding). att
// (B,NH,Nq,Nk) receives the probabilities, which AttentionBackward needs; out is
// (B,NH,Nq,D). The two products run as one GEMM per (b,h); the softmax runs in
// parallel over all B*NH*Nq rows.
func AttentionForward[F Float](out, att, q, k, v, keyScale, keyMask []F, s AttentionShape) {
	alpha := 1 / math.Sqrt(float64(s.D))
	qs, ks, as := s.Nq*s.D, s.Nk*s.D, s.Nq*s.Nk
	for bh := 0; bh < s.B*s.NH; bh++ {
		Gemm(false, true, s.Nq, s.Nk, s.D, 1, q[bh*qs:(bh+1)*qs], s.D, k[bh*ks:(bh+1)*ks], s.D, 0, att[bh*as:(bh+1)*as], s.Nk)
	}
	rows := s.B * s.NH * s.Nq
	if a32, _, ok := f32s(att, att); ok { // the same softmax in C (simd.c)
		a32 = a32[:rows*s.Nk]
		sc, mk := keys32(keyScale, s), keys32(keyMask, s)
		parallelFor(rows, grainFor(4*s.Nk), func(lo, hi int) {
			simdAttnSoftmax(a32, sc, mk, alpha, s.Nk, s.NH*s.Nq, lo, hi)
		})
	} else {
		parallelFor(rows, grainFor(4*s.Nk), func(lo, hi int) {
			for r := lo; r < hi; r++ {
				b := r / (s.NH * s.Nq)
				row := att[r*s.Nk : (r+1)*s.Nk]
				softmaxRow(row, row, keyRow(keyScale, b, s.Nk), keyRow(keyMask, b, s.Nk), alpha)
			}
		})
	}
	for bh := 0; bh < s.B*s.NH; bh++ {
		Gemm(false, false, s.Nq, s.D, s.Nk, 1, att[bh*as:(bh+1)*as], s.Nk, v[bh*ks:(bh+1)*ks], s.D, 0, out[bh*qs:(bh+1)*qs], s.D)
	}
}

// keys32 is a (B,Nk) key vector as []float32 (bounds-checked), or nil.
func keys32[F Float](m []F, s AttentionShape) []float32 {
	if m == nil {
		return nil
	}
	return any(m).([]float32)[:s.B*s.Nk]
}

func keyRow[F Float](m []F, b, nk int) []F {
	if m == nil {
		return nil
	}
	return m[b*nk : (b+1)*nk]
}

// AttentionBackward accumulates (+=) into dq (B,NH,Nq,D), dk and dv
// (B,NH,Nk,D) from dout (B,NH,Nq,D), using att saved by AttentionForward.
// keyScale is the same vector as in the forward; it gets no gradient. scratch
// is (B,NH,Nq,Nk) and holds the logit gradients; it may be shared between layers.
//
//	dv   = att^T dout
//	datt = dout v^T
//	dl   = att ⊙ (datt - rowsum(att ⊙ datt)) * s_j / sqrt(D)   (softmax backward)
//	dq   = dl k,  dk = dl^T q
func AttentionBackward[F Float](dq, dk, dv, scratch, dout, att, q, k, v, keyScale []F, s AttentionShape) {
	alpha := 1 / math.Sqrt(float64(s.D))
	qs, ks, as := s.Nq*s.D, s.Nk*s.D, s.Nq*s.Nk
	for bh := 0; bh < s.B*s.NH; bh++ {
		a, do := att[bh*as:(bh+1)*as], dout[bh*qs:(bh+1)*qs]
		Gemm(true, false, s.Nk, s.D, s.Nq, 1, a, s.Nk, do, s.D, 1, dv[bh*ks:(bh+1)*ks], s.D)
		Gemm(false, true, s.Nq, s.Nk, s.D, 1, do, s.D, v[bh*ks:(bh+1)*ks], s.D, 0, scratch[bh*as:(bh+1)*as], s.Nk)
	}
	rows := s.B * s.NH * s.Nq
	if g32, a32, ok := f32s(scratch, att); ok { // the same loops in C (simd.c)
		g32, a32 = g32[:rows*s.Nk], a32[:rows*s.Nk]
		sc := keys32(keyScale, s)
		parallelFor(rows, grainFor(4*s.Nk), func(lo, hi int) {
			simdAttnSoftmaxBackward(g32, a32, sc, alpha, s.Nk, s.NH*s.Nq, lo, hi)
		})
	} else {
		attnSoftmaxBackward(scratch, att, keyScale, alpha, s)
	}
	for bh := 0; bh < s.B*s.NH; bh++ {
		dl := scratch[bh*as : (bh+1)*as]
		Gemm(false, false, s.Nq, s.D, s.Nk, 1, dl, s.Nk, k[bh*ks:(bh+1)*ks], s.D, 1, dq[bh*qs:(bh+1)*qs], s.D)
		Gemm(true, false, s.Nk, s.D, s.Nq, 1, dl, s.Nk, q[bh*qs:(bh+1)*qs], s.D, 1, dk[bh*ks:(bh+1)*ks], s.D)
	}
}

// attnSoftmaxBackward turns scratch (the probabilities' gradient) into the
// logits' gradient, in place, row by row.
func attnSoftmaxBackward[F Float](scratch, att, keyScale []F, alpha float64, s AttentionShape) {
	rows := s.B * s.NH * s.Nq
	parallelFor(rows, grainFor(4*s.Nk), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			b := r / (s.NH * s.Nq)
			p, g := att[r*s.Nk:(r+1)*s.Nk], scratch[r*s.Nk:(r+1)*s.Nk]
			sc := keyRow(keyScale, b, s.Nk)
			var dot float64
			for j := range p {
				dot += float64(p[j]) * float64(g[j])
			}
			for j := range p {
				d := float64(p[j]) * (float64(g[j]) - dot) * alpha
				if sc != nil {
					d *= float64(sc[j])
				}
				g[j] = F(d)
			}
		}
	})
}

// Permute0213 rearranges inp (A,B,C,D) into out (A,C,B,D). It moves heads in and
// out of the attention layout:
//   - a sequence (N,T,NH*d) is (A=N, B=T, C=NH, D=d) and becomes (N,NH,T,d);
//   - a channels-first activation (N,NH*d,HW) is (A=N*NH, B=d, C=HW, D=1) and
//     becomes (N,NH,HW,d).
//
// The inverse permutation is Permute0213 with B and C swapped.
func Permute0213[F Float](out, inp []F, A, B, C, D int) {
	if o, in, ok := f32s(out, inp); ok { // the same copies in C (simd.c)
		o, in = o[:A*B*C*D], in[:A*B*C*D]
		parallelFor(A*C, grainFor(B*D), func(lo, hi int) { simdPermute0213(o, in, A, B, C, D, lo, hi) })
		return
	}
	parallelFor(A*C, grainFor(B*D), func(lo, hi int) {
		for ac := lo; ac < hi; ac++ {
			a, c := ac/C, ac%C
			for b := 0; b < B; b++ {
				copy(out[((a*C+c)*B+b)*D:((a*C+c)*B+b+1)*D], inp[((a*B+b)*C+c)*D:((a*B+b)*C+c+1)*D])
			}
		}
	})
}

// Permute0213Backward accumulates (+=) dout (A,C,B,D) into dinp (A,B,C,D).
func Permute0213Backward[F Float](dinp, dout []F, A, B, C, D int) {
	if dx, dy, ok := f32s(dinp, dout); ok { // the same sums in C (simd.c)
		dx, dy = dx[:A*B*C*D], dy[:A*B*C*D]
		parallelFor(A*B, grainFor(C*D), func(lo, hi int) { simdPermute0213Backward(dx, dy, A, B, C, D, lo, hi) })
		return
	}
	parallelFor(A*B, grainFor(C*D), func(lo, hi int) {
		for ab := lo; ab < hi; ab++ {
			a, b := ab/B, ab%B
			for c := 0; c < C; c++ {
				dst := dinp[((a*B+b)*C+c)*D : ((a*B+b)*C+c+1)*D]
				for i, g := range dout[((a*C+c)*B+b)*D : ((a*C+c)*B+b+1)*D] {
					dst[i] += g
				}
			}
		}
	})
}
