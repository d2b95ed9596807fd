// Package selection decides which samples a knowledge stage treats, by a hash
// of the sample key and a seed, so that re-runs, resumed runs and any number of
// workers agree without sharing state. The POS, detection and captioning
// stages all use this one rule, each with its own seed.
package selection

// Selected reports whether the sample with this key is in the selected fraction for
// the given seed: h = FNV-1a 64 over the 8 little-endian bytes of seed followed by
// the bytes of key, then the murmur3 64-bit finalizer (fmix64) on h, u = (h >> 11) /
// 2^53, selected when u < fraction. A fraction of
// 0 or less selects nothing, 1 or more selects everything.
func Selected(key string, seed uint64, fraction float64) bool {
	if fraction <= 0 {
		return false
	}
	if fraction >= 1 {
		return true
	}
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for i := 0; i < 8; i++ {
		h ^= (seed >> (8 * i)) & 0xff
		h *= prime
	}
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= prime
	}
	// FNV-1a alone leaves the high bits of similar keys (key1, key2, ...) biased;
	// the murmur3 finalizer mixes them.
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	u := float64(h>>11) / (1 << 53)
	return u < fraction
}
