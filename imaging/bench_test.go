package imaging

import (
	"testing"
	"time"
)

// BenchmarkProcess640x480 is the pipeline's image stage on a 640x480
// photo-like JPEG: decode (DCT-scaled) -> centre crop 256 -> JPEG q95, with
// BareTurboDecode640x480 (full-size decode only) as the anchor. Compare
// images/s of the two.
func BenchmarkProcess640x480(b *testing.B) {
	data := readFile(b, "photo.jpg")
	for _, pure := range []bool{false, true} {
		name := "turbo"
		if pure {
			name = "purego"
		} else if !loadTurbo() {
			continue
		}
		b.Run(name, func(b *testing.B) {
			p := newP(b, Options{PureGo: pure})
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Process(data); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
		})
	}
}

func BenchmarkBareTurboDecode640x480(b *testing.B) {
	d, err := NewBareTurboDecoder()
	if err != nil {
		b.Skip(err)
	}
	defer d.Close()
	data := readFile(b, "photo.jpg")
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := d.Decode(data); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
}

// BenchmarkPipelineVsBare alternates one bare full-size decode and one
// Process on the same JPEG and reports Process's rate as a percentage of
// the bare decode rate; interleaving keeps the ratio meaningful on a busy
// machine. The target is >= 80.
func BenchmarkPipelineVsBare(b *testing.B) {
	d, err := NewBareTurboDecoder()
	if err != nil {
		b.Skip(err)
	}
	defer d.Close()
	p := newP(b, Options{})
	data := readFile(b, "photo.jpg")
	var tb, tp time.Duration
	for b.Loop() {
		t0 := time.Now()
		if _, _, err := d.Decode(data); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := p.Process(data); err != nil {
			b.Fatal(err)
		}
		tb, tp = tb+t1.Sub(t0), tp+time.Since(t1)
	}
	b.ReportMetric(100*tb.Seconds()/tp.Seconds(), "%_of_bare_rate")
	b.ReportMetric(float64(tb.Microseconds())/float64(b.N), "bare_us/op")
	b.ReportMetric(float64(tp.Microseconds())/float64(b.N), "pipeline_us/op")
}
