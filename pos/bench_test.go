package pos

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func vilgChinese(b *testing.B) ([]string, int) {
	f, err := os.Open(filepath.Join(sharedData, "ViLG-300.csv"))
	if err != nil {
		b.Fatalf("reference data missing: %v; clone the shared data beside the repository", err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		b.Fatal(err)
	}
	var out []string
	size := 0
	for _, r := range rows[1:] {
		out = append(out, strings.Join(strings.Fields(r[1]), " "))
		size += len(out[len(out)-1])
	}
	return out, size
}

// BenchmarkAnalyze measures the whole stage on the Chinese ViLG-300 prompts.
func BenchmarkAnalyze(b *testing.B) {
	tg := tagger(b)
	prompts, size := vilgChinese(b)
	tg.Analyze("k", "load the English model first")
	b.SetBytes(int64(size))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, p := range prompts {
			tg.Analyze("k", p)
		}
	}
}

// BenchmarkSegment measures gse's segmentation alone with the stage's dictionary.
func BenchmarkSegment(b *testing.B) {
	tg := tagger(b)
	prompts, size := vilgChinese(b)
	b.SetBytes(int64(size))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, p := range prompts {
			tg.seg.Pos(p)
		}
	}
}
