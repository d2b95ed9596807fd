//go:build !cgo

package imaging

// Without cgo there is no dctdecode.c (and no YUV path to use it).
type dctState = *dctMem

type dctMem struct{}

const dctDecoderOn = false

func newDCTState() dctState { return nil }
