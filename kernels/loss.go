package kernels

// WeightedMSEForward returns the loss of DESIGN.md 1.4,
//
//	L = (1/(B*C*HW)) * sum_{b,c,p} W[b,p] * (eps[b,c,p] - epsHat[b,c,p])^2
//
// where eps and epsHat are (B,C,HW) and the latent-grid weight W is (B,HW),
// broadcast over channels (1 + w_l on kept objects, else 1; nil means all 1,
// the plain MSE). The divisor is the element count, as torch.mean((W*d*d)), not
// the sum of weights. Accumulated in float64.
func WeightedMSEForward[F Float](epsHat, eps, weight []F, B, C, HW int) float64 {
	var total float64
	// Per-sample partial sums keep the reduction deterministic.
	part := make([]float64, B)
	parallelFor(B, grainFor(C*HW), func(lo, hi int) {
		for b := lo; b < hi; b++ {
			var s float64
			for c := 0; c < C; c++ {
				off := (b*C + c) * HW
				for p := 0; p < HW; p++ {
					d := float64(eps[off+p]) - float64(epsHat[off+p])
					if weight != nil {
						d *= d * float64(weight[b*HW+p])
					} else {
						d *= d
					}
					s += d
				}
			}
			part[b] = s
		}
	})
	for _, s := range part {
		total += s
	}
	return total / float64(B*C*HW)
}

// WeightedMSEBackward accumulates (+=) dL/depsHat = dloss * 2*W*(epsHat-eps)/(B*C*HW)
// into dEpsHat (B,C,HW). dloss is the upstream gradient (1 for the final loss).
func WeightedMSEBackward[F Float](dEpsHat, epsHat, eps, weight []F, dloss float64, B, C, HW int) {
	k := 2 * dloss / float64(B*C*HW)
	parallelFor(B*C, grainFor(HW), func(lo, hi int) {
		for bc := lo; bc < hi; bc++ {
			b := bc / C
			off := bc * HW
			for p := 0; p < HW; p++ {
				g := k * (float64(epsHat[off+p]) - float64(eps[off+p]))
				if weight != nil {
					g *= float64(weight[b*HW+p])
				}
				dEpsHat[off+p] += F(g)
			}
		}
	})
}
