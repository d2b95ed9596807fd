package kernels

// LinearForward: inp is (N,C), weight is (OC,C) (nn.Linear layout), bias is
// (OC) or nil, out is (N,OC): out = inp @ weight^T + bias.
func LinearForward[F Float](out, inp, weight, bias []F, N, C, OC int) {
	var beta F
	if bias != nil {
		beta = 1
		parallelFor(N, grainFor(OC), func(lo, hi int) {
			for r := lo; r < hi; r++ {
				copy(out[r*OC:(r+1)*OC], bias[:OC])
			}
		})
	}
	Gemm(false, true, N, OC, C, 1, inp, C, weight, C, beta, out, OC)
}

// LinearBackward accumulates (+=) into dinp (N,C), dweight (OC,C) and dbias
// (OC) from dout (N,OC). dinp and dbias may be nil.
func LinearBackward[F Float](dinp, dweight, dbias, dout, inp, weight []F, N, C, OC int) {
	if dinp != nil {
		Gemm(false, false, N, C, OC, 1, dout, OC, weight, C, 1, dinp, C)
	}
	Gemm(true, false, OC, C, N, 1, dout, OC, inp, C, 1, dweight, C)
	if dbias != nil {
		sumColsInto(dbias, dout, N, OC)
	}
}

// sumColsInto does dst[c] += sum over r of m[r, c] for m (N, C), split by column
// ranges so each worker owns its outputs.
func sumColsInto[F Float](dst, m []F, N, C int) {
	parallelFor(C, grainFor(N), func(lo, hi int) {
		acc := make([]float64, hi-lo)
		for r := 0; r < N; r++ {
			for i, v := range m[r*C+lo : r*C+hi] {
				acc[i] += float64(v)
			}
		}
		for i, v := range acc {
			dst[lo+i] += F(v)
		}
	})
}
