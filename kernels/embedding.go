package kernels

import (
	"fmt"
	"math"
)

// EmbeddingForward: tokens is (N) ids in [0,V), table is (V,C), out is (N,C)
// with out[i] = table[tokens[i]] (nn.Embedding).
func EmbeddingForward[F Float](out, table []F, tokens []int32, V, C int) {
	parallelFor(len(tokens), grainFor(C), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			t := int(tokens[i])
			if t < 0 || t >= V {
				panic(fmt.Sprintf("kernels: embedding: token %d at position %d outside vocabulary of %d", t, i, V))
			}
			copy(out[i*C:(i+1)*C], table[t*C:(t+1)*C])
		}
	})
}

// EmbeddingBackward scatter-adds dout (N,C) into dtable (V,C): dtable[tokens[i]]
// += dout[i]. Repeated tokens would race if split by row, so work is split by
// column range instead; every worker walks all tokens for its columns.
func EmbeddingBackward[F Float](dtable, dout []F, tokens []int32, V, C int) {
	parallelFor(C, grainFor(len(tokens)), func(lo, hi int) {
		for i, t := range tokens {
			dst := dtable[int(t)*C+lo : int(t)*C+hi]
			for j, g := range dout[i*C+lo : i*C+hi] {
				dst[j] += g
			}
		}
	})
}

// TimestepEmbedding writes GLIDE's sinusoidal embedding (nn.py
// timestep_embedding) of t (B) into out (B,dim): with half = dim/2 and
// freq_i = exp(-ln(maxPeriod) * i / half), out[b] = [cos(t*freq), sin(t*freq)]
// (cos first), plus a zero column when dim is odd. maxPeriod is 10000 in GLIDE.
// Frequencies and arguments are rounded to float32 as PyTorch computes them, so
// float32 results match it for t up to 1000. It has no backward: t is data.
func TimestepEmbedding[F Float](out, t []F, B, dim int, maxPeriod float64) {
	half := dim / 2
	for b := 0; b < B; b++ {
		row := out[b*dim : (b+1)*dim]
		for i := 0; i < half; i++ {
			freq := F(math.Exp(-math.Log(maxPeriod) * float64(F(i)) / float64(half)))
			arg := float64(t[b] * freq)
			row[i] = F(math.Cos(arg))
			row[half+i] = F(math.Sin(arg))
		}
		if dim%2 == 1 {
			row[dim-1] = 0
		}
	}
}
