//go:build !cgo

package imaging

const haveCPasses = false

func vpassC(src []byte, srcStride, colOff, rowBase int, k *kernel, acc []int32, dst []byte, dstStride, n int) {
	vpass(src, srcStride, colOff, rowBase, k, acc, dst, dstStride, n)
}

func hpassC(src []byte, srcStride, r0, r1, base int, k *kernel, dst []byte, dstStride int) {
	hpass(src, srcStride, r0, r1, base, k, dst, dstStride)
}
