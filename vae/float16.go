package vae

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Float16 converts f to IEEE 754 binary16 bits, rounding to nearest with ties
// to even. Values beyond the half range become infinities, values below half
// the smallest subnormal (2^-25) become signed zeros, NaN stays a quiet NaN.
func Float16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00 | uint16(mant>>13)
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15 // the half exponent field
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		// Subnormal half: value = m * 2^-24 with m = (1.mant * 2^23) >> (14 - e).
		if exp == 0 || e < -10 {
			return sign // float32 subnormals and tiny values round to zero
		}
		m := mant | 0x800000
		shift := uint(14 - e)
		q := m >> shift
		rem, half := m&(1<<shift-1), uint32(1)<<(shift-1)
		if rem > half || (rem == half && q&1 == 1) {
			q++ // may carry into the smallest normal, which is the right encoding
		}
		return sign | uint16(q)
	}
	q := mant >> 13
	rem := mant & 0x1fff
	h := uint32(e)<<10 + q
	if rem > 0x1000 || (rem == 0x1000 && q&1 == 1) {
		h++ // a carry out of the mantissa bumps the exponent (up to infinity)
	}
	return sign | uint16(h)
}

// Float32From16 converts IEEE 754 binary16 bits to float32 (exactly).
func Float32From16(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0:
		if mant == 0 {
			return math.Float32frombits(sign)
		}
		v := float32(mant) * (1.0 / (1 << 24))
		if sign != 0 {
			v = -v
		}
		return v
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// AppendFloat16 appends src as little-endian binary16 values to dst: the
// bytes of the latent column (numpy dtype '<f2').
func AppendFloat16(dst []byte, src []float32) []byte {
	for _, v := range src {
		dst = binary.LittleEndian.AppendUint16(dst, Float16(v))
	}
	return dst
}

// Float16Values reads little-endian binary16 bytes into float32 values.
func Float16Values(b []byte) ([]float32, error) {
	if len(b)%2 != 0 {
		return nil, fmt.Errorf("vae: float16 data has %d bytes, want an even count", len(b))
	}
	out := make([]float32, len(b)/2)
	for i := range out {
		out[i] = Float32From16(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return out, nil
}
