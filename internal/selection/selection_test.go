package selection

import (
	"strconv"
	"testing"
)

func itoa(i int) string { return strconv.Itoa(i) }

func TestSelected(t *testing.T) {
	t.Run("deterministic", func(t *testing.T) {
		for _, k := range []string{"", "a", "000123", "样本"} {
			if Selected(k, 3, 0.5) != Selected(k, 3, 0.5) {
				t.Fatalf("Selected(%q) changed between calls", k)
			}
		}
	})
	t.Run("known_values", func(t *testing.T) {
		// fmix64(FNV-1a 64 of 8 zero bytes then "a"), >> 11, / 2^53.
		h := uint64(14695981039346656037)
		for _, b := range append(make([]byte, 8), 'a') {
			h ^= uint64(b)
			h *= 1099511628211
		}
		h ^= h >> 33
		h *= 0xff51afd7ed558ccd
		h ^= h >> 33
		h *= 0xc4ceb9fe1a85ec53
		h ^= h >> 33
		u := float64(h>>11) / (1 << 53)
		if Selected("a", 0, u) || !Selected("a", 0, u+1e-12) {
			t.Fatalf("Selected(\"a\", 0, f) does not switch at u = %v", u)
		}
	})
	t.Run("fraction_is_respected", func(t *testing.T) {
		for _, f := range []float64{0, 0.1, 0.5, 0.9, 1} {
			n := 0
			for i := 0; i < 20000; i++ {
				if Selected("key"+itoa(i), 42, f) {
					n++
				}
			}
			if got := float64(n) / 20000; got < f-0.015 || got > f+0.015 {
				t.Errorf("fraction %v: selected %v", f, got)
			}
		}
	})
	t.Run("seed_changes_the_choice", func(t *testing.T) {
		same := 0
		for i := 0; i < 1000; i++ {
			if Selected(itoa(i), 1, 0.5) == Selected(itoa(i), 2, 0.5) {
				same++
			}
		}
		if same > 600 || same < 400 {
			t.Errorf("seeds 1 and 2 agree on %d of 1000 keys; want about 500", same)
		}
	})
}

// The u values come from an independent Python implementation of the rule
// (FNV-1a 64 over seed bytes + key, murmur3 fmix64, top 53 bits / 2^53).
func TestSelectedMatchesPython(t *testing.T) {
	for _, tc := range []struct {
		key  string
		seed uint64
		u    float64
	}{
		{"000000000", 0, 0.9634537610775014},
		{"000000001", 0, 0.3884886396141739},
		{"000000042", 7, 0.0086692667489916},
		{"key", 12345, 0.49796708586664074},
		{"", 1, 0.28995098444858847},
	} {
		if !Selected(tc.key, tc.seed, tc.u+1e-9) || Selected(tc.key, tc.seed, tc.u-1e-9) {
			t.Errorf("Selected(%q, %d): u is not %v", tc.key, tc.seed, tc.u)
		}
	}
	if Selected("x", 1, 0) || !Selected("x", 1, 1) {
		t.Error("fractions 0 and 1 must select nothing and everything")
	}
	n := 0
	for i := range 10000 {
		if Selected(string(rune('a'+i%26))+string(rune(i)), 3, 0.3) {
			n++
		}
	}
	if n < 2700 || n > 3300 {
		t.Errorf("fraction 0.3 selected %d of 10000", n)
	}
}
