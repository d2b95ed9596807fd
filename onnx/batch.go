package onnx

import "image"

// BatchesBySize calls fn on the items 0..n-1 in batches of at most size items
// that share one model input size (w x h), so that each batch is one tensor.
// Sizes are taken in the order they first appear, and items keep their order
// within a size. sizeOf gives an item's input size, or ok false to leave the
// item out (the caller records why).
func BatchesBySize(n, size int, sizeOf func(i int) (w, h int, ok bool), fn func(idx []int, w, h int)) {
	size = max(size, 1)
	groups := map[image.Point][]int{}
	var order []image.Point
	for i := range n {
		w, h, ok := sizeOf(i)
		if !ok {
			continue
		}
		k := image.Pt(w, h)
		if _, seen := groups[k]; !seen {
			order = append(order, k)
		}
		groups[k] = append(groups[k], i)
	}
	for _, k := range order {
		idx := groups[k]
		for lo := 0; lo < len(idx); lo += size {
			fn(idx[lo:min(lo+size, len(idx))], k.X, k.Y)
		}
	}
}
