package imaging

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func addSeeds(f *testing.F) {
	names, _ := filepath.Glob(filepath.Join("testdata", "*"))
	for _, n := range names {
		if b, err := os.ReadFile(n); err == nil && len(b) < 64<<10 {
			f.Add(b)
		}
	}
}

// FuzzProcess feeds arbitrary bytes through both backends: every input
// must give a Result or a *Reject, never a panic or another error.
func FuzzProcess(f *testing.F) {
	addSeeds(f)
	opt := Options{Size: 32, MaxDecodePixels: 1 << 20}
	turbo, err := NewProcessor(opt)
	if err != nil {
		f.Fatal(err)
	}
	opt.PureGo = true
	pure, err := NewProcessor(opt)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, p := range []*Processor{turbo, pure} {
			res, err := p.Process(data)
			var r *Reject
			if err != nil && !errors.As(err, &r) {
				t.Fatalf("error %v is not a *Reject", err)
			}
			if r != nil && r.Reason == ReasonDecode && len(r.Detail) > 12 && r.Detail[:12] == "decoder pani" {
				t.Fatalf("decoder panicked: %v", r)
			}
			if err == nil && (res.Width <= 0 || res.Height <= 0 || len(res.Encoded) == 0) {
				t.Fatalf("empty result %dx%d", res.Width, res.Height)
			}
		}
	})
}

// FuzzExifOrientation checks the EXIF readers on arbitrary bytes.
func FuzzExifOrientation(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, o := range []int{tiffOrientation(data), jpegOrientation(data), pngOrientation(data), webpOrientation(data)} {
			if o < 1 || o > 8 {
				t.Fatalf("orientation %d outside 1..8", o)
			}
		}
	})
}
