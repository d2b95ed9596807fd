package onnx

import (
	"fmt"
	"testing"
)

func TestBatchesBySize(t *testing.T) {
	// Items: sizes by index; item 3 is left out.
	sizes := [][2]int{{64, 64}, {32, 32}, {64, 64}, {0, 0}, {64, 64}, {32, 32}, {64, 64}}
	var got []string
	BatchesBySize(len(sizes), 2, func(i int) (int, int, bool) {
		return sizes[i][0], sizes[i][1], i != 3
	}, func(idx []int, w, h int) {
		got = append(got, fmt.Sprintf("%dx%d%v", w, h, idx))
	})
	want := "[64x64[0 2] 64x64[4 6] 32x32[1 5]]"
	if fmt.Sprint(got) != want {
		t.Fatalf("batches %v, want %s", got, want)
	}
}
