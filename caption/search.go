package caption

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// Search configures caption generation.
type Search struct {
	// MaxLength is the most tokens generated after the decoder start token,
	// EOS included; 0 takes config.json's max_length, else 20.
	MaxLength int
	// NumBeams is the beam width; 1 (or 0) is greedy decoding.
	NumBeams int
	// LengthPenalty is the exponent of the length normalisation of finished
	// beams (score = sum of log-probabilities / length^LengthPenalty); 0 means
	// 1, the Hugging Face default. Greedy decoding ignores it.
	LengthPenalty float64
}

// stepFunc runs the decoder once on rows of equal-length token prefixes,
// row r attending to the encoder states of image imgs[r], and returns the
// logits of each row's last position, rows*vocab values.
type stepFunc func(ids [][]int64, imgs []int) (logits []float32, vocab int, err error)

type hyp struct {
	ids   []int64 // start token first
	score float64 // summed log-probability (normalised once finished)
}

// search decodes n images with the beam rule below; greedy decoding is the
// beam width 1 case (the top token each step). Each step every live beam of
// every unfinished image is one decoder row, so a step is one decoder run;
// there is no key/value cache: the decoder re-reads the whole prefix each step,
// which costs O(L^2) for L tokens and is cheap at caption lengths.
//
// The beam rule, per image: every live beam proposes its 2*K most likely next
// tokens; the candidates are ranked by summed log-probability (ties: beam
// order, then token rank); walking that ranking, a candidate ranked among the
// first K that ends in EOS becomes a finished hypothesis scored
// sum / len^lengthPenalty (len: generated tokens including EOS), any other
// non-EOS candidate becomes a live beam until K are live. An image is done
// when K hypotheses have finished; after maxLen steps the live beams count as
// finished too. The first hypothesis with the best score wins. It returns the
// generated ids (start token dropped, EOS kept when generated) per image;
// failed[i] is set for images whose logits were not finite.
func search(n int, step stepFunc, start, eos int64, k, maxLen int, lengthPenalty float64, failed []error) [][]int64 {
	if k < 1 {
		k = 1
	}
	if lengthPenalty == 0 {
		lengthPenalty = 1
	}
	norm := func(h hyp) hyp {
		return hyp{h.ids, h.score / math.Pow(float64(len(h.ids)-1), lengthPenalty)}
	}
	live := make([][]hyp, n)
	finished := make([][]hyp, n)
	done := make([]bool, n)
	for i := range n {
		if failed[i] != nil {
			done[i] = true
			continue
		}
		live[i] = []hyp{{ids: []int64{start}}}
	}
	type cand struct {
		score    float64
		beam, tk int
	}
	var ids [][]int64
	var rowImg []int
	var cands []cand
	lp := []float64{}
	for t := 0; t < maxLen; t++ {
		ids, rowImg = ids[:0], rowImg[:0]
		for i := range n {
			if !done[i] {
				for _, h := range live[i] {
					ids = append(ids, h.ids)
					rowImg = append(rowImg, i)
				}
			}
		}
		if len(ids) == 0 {
			break
		}
		logits, vocab, err := step(ids, rowImg)
		if err != nil {
			for i := range n {
				if !done[i] {
					failed[i], done[i] = err, true
				}
			}
			break
		}
		row := 0
		for i := range n {
			if done[i] {
				continue
			}
			cands = cands[:0]
			bad := false
			for b := range live[i] {
				x := logits[row*vocab : (row+1)*vocab]
				row++
				if k == 1 {
					// Greedy: one beam, so the candidates rank as its
					// logits do (log-softmax subtracts one constant); the
					// score is never compared with another image's, so the
					// exponentials are skipped.
					if !finite(x) {
						bad = true
						continue
					}
					for _, tk := range topK(x, 2) {
						cands = append(cands, cand{float64(x[tk]), b, tk})
					}
					continue
				}
				lp = logSoftmax(lp, x)
				if lp == nil {
					bad = true
					continue
				}
				for _, tk := range topK(lp, 2*k) {
					cands = append(cands, cand{live[i][b].score + lp[tk], b, tk})
				}
			}
			if bad {
				failed[i] = fmt.Errorf("decoder produced NaN or infinite logits at step %d", t+1)
				done[i] = true
				continue
			}
			slices.SortStableFunc(cands, func(a, b cand) int { return cmp.Compare(b.score, a.score) })
			var next []hyp
			for rank, c := range cands {
				seq := append(append(make([]int64, 0, len(live[i][c.beam].ids)+1), live[i][c.beam].ids...), int64(c.tk))
				if int64(c.tk) == eos {
					if rank < k {
						finished[i] = append(finished[i], norm(hyp{seq, c.score}))
					}
				} else {
					next = append(next, hyp{seq, c.score})
				}
				if len(next) == k {
					break
				}
			}
			live[i] = next
			if len(finished[i]) >= k || len(next) == 0 {
				done[i] = true
			}
		}
	}
	out := make([][]int64, n)
	for i := range n {
		if failed[i] != nil {
			continue
		}
		if !done[i] {
			for _, h := range live[i] {
				finished[i] = append(finished[i], norm(h))
			}
		}
		if len(finished[i]) == 0 {
			failed[i] = fmt.Errorf("beam search ended with no hypothesis")
			continue
		}
		best := finished[i][0]
		for _, h := range finished[i][1:] {
			if h.score > best.score {
				best = h
			}
		}
		out[i] = best.ids[1:]
	}
	return out
}

// logSoftmax writes log-softmax(x) into dst (reused when large enough) in
// float64; it returns nil when x holds a NaN or an infinity.
func logSoftmax(dst []float64, x []float32) []float64 {
	if cap(dst) < len(x) {
		dst = make([]float64, len(x))
	}
	dst = dst[:len(x)]
	m := math.Inf(-1)
	for _, v := range x {
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil
		}
		m = max(m, f)
	}
	var s float64
	for _, v := range x {
		s += math.Exp(float64(v) - m)
	}
	ls := m + math.Log(s)
	for i, v := range x {
		dst[i] = float64(v) - ls
	}
	return dst
}

// topK returns the indices of the k largest values, largest first (ties: lower
// index first).
func topK[F float32 | float64](x []F, k int) []int {
	k = min(k, len(x))
	idx := make([]int, 0, k+1)
	for i, v := range x {
		if len(idx) == k && v <= x[idx[k-1]] {
			continue
		}
		j := len(idx)
		if j == k {
			j--
		} else {
			idx = append(idx, 0)
		}
		for j > 0 && x[idx[j-1]] < v {
			idx[j] = idx[j-1]
			j--
		}
		idx[j] = i
	}
	return idx
}
